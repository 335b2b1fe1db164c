"""What a run shows while it works, in two forms with the same methods:

- `LiveDisplay` in a terminal: a rich progress bar (current node or finish phase, env steps
  used of the budget with rate and ETA, best score, last note) and one line per decision;
- `PlainLog` when the output is not a terminal (piped to a file, CI, a batch): one full line
  per event with a clock time, no bar, no wrapping, nothing cut.

`make_display(ctx)` picks one. `print_summary` ends the run the same way in both: a table
of numbers in a terminal, `key: value` lines otherwise, and the paths a user copies always
whole, one per line."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# What a summary shows, in order: numbers first, then the paths (printed whole).
SUMMARY_FIELDS = ("best_score", "best_hns", "env_steps_to_best", "env_steps", "frames", "iterations", "accepted", "rejected",
                  "holdout", "robustness", "wall_seconds", "tokens", "cost_usd", "stop_reason")  # fmt: skip
SUMMARY_PATHS = ("run_dir", "policy", "readme", "video", "curve")
# What each finish phase is doing, for a display that would otherwise sit still.
PHASE_NOTES = {"holdout": "evaluating the best policy on holdout seeds",
               "robustness": "the best policy on holdout seeds under a protocol where seeds differ (memorisation shows)",
               "report": "writing README.md and report.html"}  # fmt: skip


def summary_fields(summary: dict) -> list[str]:
    """The fields a summary shows: all, but the robustness check only when the run had one."""
    return [k for k in SUMMARY_FIELDS if k != "robustness" or summary.get("robustness_protocol")]


def is_terminal() -> bool:
    """Both streams a run writes to go to a terminal (otherwise: plain lines)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def make_display(ctx):
    return LiveDisplay(ctx) if is_terminal() else PlainLog(ctx)


def fmt_number(value) -> str:
    """Numbers one way everywhere: thousands separated, floats to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value != int(value):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{int(value):,}"


def _best_text(best: dict | None) -> str:
    return fmt_number(best["score"]) if best else "-"


def _llm(ctx) -> str:
    """Tokens and cost so far, when an LLM brain is in use."""
    session = ctx.llm
    return f"{session.tokens:,} tok ${session.spent_usd:.3f}" if session else ""


class LiveDisplay:
    def __init__(self, ctx):
        self.ctx = ctx
        self.console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold cyan]{task.fields[node]:<15}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("env steps"), TextColumn("best [bold]{task.fields[best]}"), TextColumn("{task.fields[llm]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[diag]}"), console=self.console,
        )  # fmt: skip
        self._task = None
        self._steps_at_eval = 0

    def start(self) -> None:
        self._bar.start()
        self._task = self._bar.add_task("run", total=self.ctx.meter.budget, completed=self.ctx.meter.used_steps,
                                        node="start", best="-", diag="", llm=_llm(self.ctx))  # fmt: skip

    def stop(self) -> None:
        self._bar.stop()

    def _update(self, **fields) -> None:
        if self._task is not None:
            self._bar.update(self._task, **fields)

    def node(self, name: str, state: dict) -> None:
        self._steps_at_eval = self.ctx.meter.used_steps
        self._update(node=name, completed=self.ctx.meter.used_steps, best=_best_text(state.get("best")), llm=_llm(self.ctx))

    def phase(self, name: str) -> None:
        """A finish phase (holdout, report): labelled, so the display never sits still unnamed."""
        self._steps_at_eval = self.ctx.meter.used_steps
        self._update(node=name, completed=self.ctx.meter.used_steps, diag=PHASE_NOTES.get(name, ""))

    def search(self, p: dict) -> None:
        """Progress of a route search: steps, best score, cells."""
        self._update(completed=self._steps_at_eval + int(p.get("steps", 0)),
                     diag=f"search: best {p.get('best_score', p.get('score', '-'))}, {p.get('cells', '-')} cells")  # fmt: skip

    def progress(self, p: dict) -> None:
        self._update(completed=self._steps_at_eval + p["steps"])

    def trial(self, record) -> None:
        self._steps_at_eval = self.ctx.meter.used_steps
        self._update(completed=self.ctx.meter.used_steps)

    def note(self, message: str) -> None:
        self._update(diag=message[:60])  # the bar's cell is short; the full line is printed above it
        self._bar.console.print(f"  {message}", highlight=False, soft_wrap=True)

    def decision(self, iteration, direction, outcome, best, stop) -> None:
        colour = {"accepted": "green", "rejected": "red"}.get(outcome, "yellow")
        self._update(best=_best_text(best))
        if outcome != "stopped":
            self._bar.console.print(
                f"[bold]#{iteration:<3}[/] [{colour}]{outcome:<9}[/] best {_best_text(best):<8} "
                f"{self.ctx.meter.used_steps:>11,} steps  {direction}", highlight=False, soft_wrap=True,
            )  # fmt: skip
        if stop:
            self._bar.console.print(f"[bold]stopping:[/] {stop}", soft_wrap=True)

    @staticmethod
    def print_summary(ctx, summary: dict) -> None:
        console = Console()
        table = Table(title=f"{summary['game']} · {summary['obs_mode']} · {summary['protocol']} · run {summary['run_id']}", show_header=False)
        table.add_column("", style="bold", no_wrap=True)
        table.add_column("", overflow="fold")  # long text wraps inside its cell, never cut
        for key in summary_fields(summary):
            label = f"holdout {summary['robustness_protocol']}" if key == "robustness" else key.replace("_", " ")
            table.add_row(label, fmt_number(summary.get(key)))
        console.print(table)
        for key in SUMMARY_PATHS:  # outside the table: a path is copied whole, so it is never folded or cut
            if summary.get(key):
                console.print(f"[bold]{key:<8}[/] {summary[key]}", highlight=False, soft_wrap=True)


class PlainLog:
    """One full line per event, for logs: `HH:MM:SS  what  details`. Printed to stderr like the
    live display (stdout keeps the run's own lines and the summary)."""

    def __init__(self, ctx, stream=None):
        self.ctx = ctx
        self.stream = stream or sys.stderr
        self._last_search = 0.0

    def _line(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')}  {text}", file=self.stream, flush=True)

    def _steps(self) -> str:
        return f"env steps {self.ctx.meter.used_steps:,} of {self.ctx.meter.budget:,}"

    def start(self) -> None:
        self._line(f"start  {self._steps()}")

    def stop(self) -> None:
        pass

    def node(self, name: str, state: dict) -> None:
        self._line(f"node {name}  {self._steps()}  best {_best_text(state.get('best'))}")

    def phase(self, name: str) -> None:
        self._line(f"finish {name}: {PHASE_NOTES.get(name, name)}  {self._steps()}")

    def search(self, p: dict) -> None:
        """A search reports often: one line every 30 s is enough for a log."""
        if time.time() - self._last_search >= 30.0:
            self._last_search = time.time()
            self._line(f"search  steps {int(p.get('steps', 0)):,}  best {fmt_number(p.get('best_score', p.get('score')))}  "
                       f"cells {fmt_number(p.get('cells'))}")  # fmt: skip

    def progress(self, p: dict) -> None:
        pass  # an evaluation's progress: its trial line says what it came to

    def trial(self, record) -> None:
        score = fmt_number(record.score_mean)
        cut = [t for t in record.truncated if t]
        cuts = f"  cut: {', '.join(f'{cut.count(t)} {t}' for t in sorted(set(cut)))}" if cut else ""
        episodes = f"{record.episodes} episode{'s' if record.episodes != 1 else ''}"
        self._line(f"trial {record.trial} {record.kind} by {record.role}: {record.status}, score {score} over "
                   f"{episodes}, {record.env_steps:,} env steps{cuts}  ({self._steps()})")  # fmt: skip

    def note(self, message: str) -> None:
        self._line(message)

    def decision(self, iteration, direction, outcome, best, stop) -> None:
        if outcome != "stopped":  # "stopped" is no decision on a direction: the stop line says it all
            self._line(f"#{iteration} {outcome}: {direction}  best {_best_text(best)}  {self._steps()}")
        if stop:
            self._line(f"stopping: {stop}")

    @staticmethod
    def print_summary(ctx, summary: dict) -> None:
        print(f"{summary['game']} · {summary['obs_mode']} · {summary['protocol']} · run {summary['run_id']}")
        shown = summary_fields(summary)
        for key in shown + list(SUMMARY_PATHS):
            if key in shown or summary.get(key):
                label = f"holdout {summary['robustness_protocol']}" if key == "robustness" else key.replace("_", " ")
                print(f"{label}: {fmt_number(summary.get(key))}")
        sys.stdout.flush()
