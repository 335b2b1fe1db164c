"""What a batch shows while it works, in two forms with the same methods:

- `LiveBatchView` in a terminal: a rich panel with the cells done, running, failed and
  pending, env steps used of the batch's total, elapsed time and ETA, a row per running cell
  (its env steps and best score so far, read from its ledger) and the latest events;
- `PlainBatchLog` otherwise: one full line per event (a cell started, resumed, done, failed)
  with a clock time, and a status line every minute.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from graph.batch.manifest import Cell, Manifest
from graph.display import fmt_number, is_terminal
from record.ledger import Ledger

STATUS_EVERY_S = 60.0


def cell_progress(batch_dir: Path, cell: Cell) -> tuple[int, float | None]:
    """(env steps used, best dev score so far) of a cell, from its ledger (or its result)."""
    if cell.result is not None and cell.state == "done":
        return cell.result.env_steps, cell.result.best_score
    path = Path(batch_dir) / cell.run_dir / "trials.jsonl"
    if not path.exists():
        return 0, None
    records = Ledger(path).read().records
    scores = [r.score_mean for r in records if r.status == "ok" and r.score_mean is not None and r.role != "finish"]
    return (records[-1].cumulative_env_steps if records else 0), (max(scores) if scores else None)


class BatchStatus:
    """The numbers both views show, refreshed from the manifest and the running cells' ledgers."""

    def __init__(self, batch_dir: Path, manifest: Manifest, budget_per_cell: int, started: float):
        self.batch_dir, self.manifest, self.started = Path(batch_dir), manifest, started
        self.total = budget_per_cell * len(manifest.cells)
        self.started_iso = datetime.fromtimestamp(started).isoformat(timespec="seconds")
        self.progress: dict[str, tuple[int, float | None]] = {}

    def refresh(self) -> None:
        for cell in self.manifest.cells:
            if cell.state in ("running", "done") or cell.id not in self.progress:
                self.progress[cell.id] = cell_progress(self.batch_dir, cell)

    @property
    def used(self) -> int:
        return sum(steps for steps, _ in self.progress.values())

    def eta_seconds(self) -> float | None:
        """From the cells finished in this session (a cell's length varies less than its
        steps: runs end early at a plateau or the game's maximum); before the first, from steps."""
        counts, elapsed = self.manifest.counts(), time.time() - self.started
        finished_here = sum(c.state in ("done", "failed") and (c.finished or "") >= self.started_iso for c in self.manifest.cells)
        left = counts["pending"] + counts["running"]
        if finished_here > 0:
            return elapsed / finished_here * left
        fraction = self.used / self.total if self.total else 0
        return elapsed / fraction * (1 - fraction) if fraction > 0.01 else None

    def line(self) -> str:
        c = self.manifest.counts()
        eta = self.eta_seconds()
        return (f"{c['done']} done · {c['running']} running · {c['failed']} failed · {c['pending']} pending · "
                f"env steps {fmt_number(self.used)} of {fmt_number(self.total)} · elapsed {_clock(time.time() - self.started)}"
                + (f" · ETA {_clock(eta)}" if eta is not None else ""))  # fmt: skip


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class PlainBatchLog:
    def __init__(self, status: BatchStatus):
        self.status = status
        self._last_status = 0.0

    def start(self) -> None:
        self.status.refresh()
        self.event(f"batch {self.status.batch_dir}: {len(self.status.manifest.cells)} cells · {self.status.line()}")

    def stop(self) -> None:
        pass

    def event(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)

    def tick(self) -> None:
        if time.time() - self._last_status >= STATUS_EVERY_S:
            self._last_status = time.time()
            self.status.refresh()
            self.event(f"batch {self.status.line()}")


class LiveBatchView:
    def __init__(self, status: BatchStatus):
        self.status = status
        self.console = Console(stderr=True)
        self._events: deque[str] = deque(maxlen=6)
        self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
        self._last = 0.0

    def start(self) -> None:
        self.status.refresh()
        self._live.start()

    def stop(self) -> None:
        self.status.refresh()
        self._live.update(self._render())
        self._live.stop()

    def event(self, text: str) -> None:
        self._events.append(f"{time.strftime('%H:%M:%S')}  {text}")
        self._live.update(self._render())

    def tick(self) -> None:
        if time.time() - self._last >= 2.0:  # ledgers are read at most every 2 s
            self._last = time.time()
            self.status.refresh()
            self._live.update(self._render())

    def _render(self):
        s = self.status
        running = Table(show_edge=False, box=None, pad_edge=False)
        for column in ("running cell", "attempt", "env steps", "best so far"):
            running.add_column(column, justify="left" if column == "running cell" else "right")
        for cell in s.manifest.cells:
            if cell.state == "running":
                steps, best = s.progress.get(cell.id, (0, None))
                running.add_row(cell.id, str(cell.attempts), fmt_number(steps), fmt_number(best))
        parts = [Text(s.line(), style="bold")]
        if running.row_count:
            parts.append(running)
        parts += [Text(e, style="dim") for e in self._events]
        return Group(*parts)


def make_view(status: BatchStatus, quiet: bool):
    return LiveBatchView(status) if is_terminal() and not quiet else PlainBatchLog(status)
