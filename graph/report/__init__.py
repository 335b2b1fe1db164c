"""One self-contained HTML page for a run (`report.html` in the run folder, also written at the
end of every run) and one page for all runs under a folder (`suite.html`); the command line is
in __main__.py (`python -m graph.report RUN`, `python -m graph.report --suite runs`).

The page opens from disk with no network: the chart library (Bokeh's BokehJS, from the bokeh
package) and the syntax-highlighting CSS (Pygments) are inlined, the replay video and the
contact sheets are data: URIs. What a run page shows:

- the graph with the path this run took (edges taken, with counts), and the stop reason;
- score and running best against env steps (interactive: hover, zoom, pan);
- one row per iteration: direction tried, accepted/rejected, score and delta, the critic's
  diagnosis, and a link to the code diff (hs/ commit) or, for a rejected candidate (rolled
  back, not in hs/), the parameter diff from the checkpoint;
- the final policy code, every hs/ commit with its diff;
- the replay video of the best policy's holdout episode and contact sheets of failures;
- memory entries this run wrote (by run id) and those it could read (same game and obs mode,
  written by earlier runs before this run started), plus any memory tool calls in the trace;
- costs: env steps, frames, wall time, tokens, USD, per node and in total; the timeline.

The modules, read top to bottom: html.py (what every page shares), graph_svg.py (the graph
picture), plots.py (the Bokeh plots), run_files.py (what a run page reads from the run folder),
run_page.py (the run report, one function per section), stats.py (median, IQM, bootstrap
intervals), scoreboard.py (the suite's numbers), suite_files.py (suite.csv, suite.md,
suite_curve.png), suite_page.py (the suite page), tensorboard.py (the ledgers as TensorBoard
scalars).
"""

from graph.report.plots import median_hns_curve, sample_efficiency_plot, suite_plot
from graph.report.run_page import render_run, write_report
from graph.report.scoreboard import write_scoreboard
from graph.report.suite_page import find_runs, render_suite, suite_data, write_suite
from graph.report.tensorboard import export_tensorboard

__all__ = ["export_tensorboard", "find_runs", "median_hns_curve", "render_run", "render_suite", "sample_efficiency_plot", "suite_data",
           "suite_plot", "write_report", "write_scoreboard", "write_suite"]  # fmt: skip
