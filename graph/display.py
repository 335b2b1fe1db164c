"""The live terminal display of a run: current node, env steps used of the budget (with
rate and ETA), best score, last diagnosis, and one line per decision."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class LiveDisplay:
    def __init__(self, ctx):
        self.ctx = ctx
        self.console = Console(stderr=True)
        self.progress = None
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
                                        node="start", best="-", diag="", llm=self._llm())  # fmt: skip
        self.progress = self._progress

    def stop(self) -> None:
        self._bar.stop()

    def _update(self, **fields) -> None:
        if self._task is not None:
            self._bar.update(self._task, **fields)

    def node(self, name: str, state: dict) -> None:
        self._steps_at_eval = self.ctx.meter.used_steps
        best = state.get("best")
        self._update(node=name, completed=self.ctx.meter.used_steps, best=f"{best['score']:g}" if best else "-", llm=self._llm())

    def _llm(self) -> str:
        """Tokens and cost so far, when an LLM brain is in use."""
        session = self.ctx.llm
        return f"{session.tokens:,} tok ${session.spent_usd:.3f}" if session else ""

    def search(self, p: dict) -> None:
        """Progress of a route search: steps, best score, cells."""
        self._update(completed=self._steps_at_eval + int(p.get("steps", 0)),
                     diag=f"search: best {p.get('best_score', p.get('score', '-'))}, {p.get('cells', '-')} cells")  # fmt: skip

    def _progress(self, p: dict) -> None:
        self._update(completed=self._steps_at_eval + p["steps"])

    def trial(self, record) -> None:
        self._steps_at_eval = self.ctx.meter.used_steps
        self._update(completed=self.ctx.meter.used_steps)

    def note(self, message: str) -> None:
        self._update(diag=message[:60])
        self._bar.console.print(f"  {message}", highlight=False)

    def decision(self, iteration, direction, outcome, best, stop) -> None:
        colour = {"accepted": "green", "rejected": "red"}.get(outcome, "yellow")
        best_text = f"{best['score']:g}" if best else "-"
        self._bar.console.print(
            f"[bold]#{iteration:<3}[/] [{colour}]{outcome:<9}[/] best {best_text:<8} "
            f"{self.ctx.meter.used_steps:>11,} steps  {direction[:90]}", highlight=False,
        )  # fmt: skip
        if stop:
            self._bar.console.print(f"[bold]stopping:[/] {stop}")

    @staticmethod
    def print_summary(ctx, summary: dict) -> None:
        console = Console()
        table = Table(title=f"{summary['game']} · {summary['obs_mode']} · {summary['protocol']} · run {summary['run_id']}", show_header=False)
        table.add_column("", style="bold")
        table.add_column("")
        for key in ("best_score", "best_hns", "env_steps_to_best", "env_steps", "frames", "iterations",
                    "accepted", "rejected", "holdout", "wall_seconds", "tokens", "cost_usd", "stop_reason"):  # fmt: skip
            table.add_row(key.replace("_", " "), str(summary.get(key)))
        for key in ("run_dir", "policy", "readme", "video", "curve"):
            if summary.get(key):
                table.add_row(key, str(summary[key]))
        console.print(table)
