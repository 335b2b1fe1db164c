"""`python -m graph.report RUN`: one self-contained HTML page for a run (`report.html` in the
run folder, also written at the end of every run); `--suite RUNS_DIR`: one page for all runs
and the suite's scoreboard (suite.csv, suite.md, suite_curve.png), each path printed.

    python -m graph.report RUN                     # RUN: run id (under --runs-dir) or run folder
    python -m graph.report --suite runs            # every run under runs/ -> runs/suite.html, suite.csv, suite.md, suite_curve.png
    python -m graph.report --suite runs/pb --tensorboard   # also runs/pb/tensorboard/<run_id>/ (tensorboard --logdir runs/pb/tensorboard)
    python -m graph.report RUN -o /tmp/r.html
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from graph.batch.manifest import ManifestError
from graph.report.run_page import write_report
from graph.report.scoreboard import write_scoreboard
from graph.report.suite_page import write_suite
from graph.report.tensorboard import export_tensorboard
from graph.trace import resolve_run
from record.workspace import DEFAULT_RUNS_DIR

DESCRIPTION = textwrap.fill("One self-contained HTML page for a run (report.html in the run folder, also written at the end of every run), "
               "or with --suite one page for every run under a folder (suite.html there) and the suite's scoreboard beside it "
               "(suite.csv, suite.md, suite_curve.png). The pages open from disk with no network.", 78)  # fmt: skip
EXAMPLES = "examples:\n" + "\n".join(line.strip() and "  " + line.strip() for line in __doc__.split("\n\n", 1)[1].strip().splitlines())


def main(argv: list[str] | None = None) -> int:
    from tools.cli import OneLineParser, run_command

    parser = OneLineParser(prog="python -m graph.report", description=DESCRIPTION, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("run", nargs="?", help="run id (looked up under --runs-dir) or run folder")
    parser.add_argument("--suite", type=Path, metavar="RUNS_DIR",
                        help="one page for every run under RUNS_DIR (a batch folder or any runs folder) and the scoreboard files")
    parser.add_argument("--tensorboard", action="store_true",
                        help="with --suite: also export every run's ledger as TensorBoard scalars (RUNS_DIR/tensorboard/<run_id>/)")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, metavar="RUNS_DIR",
                        help=f"where to look a run id up (default: {DEFAULT_RUNS_DIR})")  # fmt: skip
    parser.add_argument("-o", "--out", type=Path, help="where to write the page (default: report.html in the run folder, suite.html in RUNS_DIR)")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.suite is not None:
            if not args.suite.is_dir():
                raise FileNotFoundError(f"no runs folder {args.suite}")
            paths = [write_suite(args.suite, args.out), *write_scoreboard(args.suite).values()]
            if args.tensorboard:
                paths.append(export_tensorboard(args.suite))
            print("\n".join(map(str, paths)))
            return 0
        if args.tensorboard:
            raise FileNotFoundError("--tensorboard goes with --suite RUNS_DIR")
        if not args.run:
            raise FileNotFoundError("give a run id or folder, or --suite RUNS_DIR")
        print(write_report(resolve_run(args.run, args.runs_dir), args.out))
        return 0

    return run_command(body, usage_errors=(FileNotFoundError, ManifestError))


if __name__ == "__main__":
    sys.exit(main())
