"""One self-contained HTML page for a run, and one for all runs: graph/report/run_page.py
(moved here from graph/report.py, to be split into modules)."""

from graph.report.run_page import render_run, render_suite, write_report, write_suite

__all__ = ["render_run", "render_suite", "write_report", "write_suite"]
