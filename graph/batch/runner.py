"""The batch loop: start cells while the executor has room, record each outcome in the
manifest as it arrives, and write the scoreboard at the end.

Resuming is the same loop on an existing manifest: a done cell is skipped; any other cell is
looked up on disk first. Its run folder with `summary.json` finished (the batch died before
recording it); with a checkpoint it is continued with `graph.run --resume` (the ledger keeps
every trial it already paid for, none runs twice); a folder with neither (killed while being
created) is moved to `aborted/` and the cell starts afresh.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from graph.batch.cell import CellJob, CellOutcome, read_summary
from graph.batch.manifest import Cell, CellResult, Manifest, write_manifest
from record.workspace import unique_path

POLL_S = 1.0


def result_from_summary(summary: dict) -> CellResult:
    fields = CellResult.model_fields
    return CellResult(**{k: v for k, v in summary.items() if k in fields})


def cell_args(cell: Cell, manifest: Manifest, batch_dir: Path, memory_url: str | None) -> list[str] | None:
    """graph.run's arguments for the cell's next attempt, or None when its run already
    finished (then the cell is marked done from its summary.json)."""
    run_dir = batch_dir / cell.run_dir
    common = ["--runs-dir", str(batch_dir), "--quiet"] + (["--memory-url", memory_url] if memory_url else [])
    if read_summary(run_dir) is not None:
        return None
    if (run_dir / "config.json").exists() and (run_dir / "checkpoint.sqlite").exists():
        return ["--resume", cell.id, *common]
    if run_dir.exists():  # killed while being created: keep what is there, start afresh
        aside = unique_path(batch_dir / "aborted" / cell.id)
        aside.parent.mkdir(exist_ok=True)
        shutil.move(str(run_dir), aside)
    s = manifest.settings
    args = ["--game", cell.game, "--obs", cell.obs, "--protocol", cell.protocol, "--run-id", cell.id,
            "--seed", str(s.seed + cell.repeat - 1), "--model", s.model, *common]  # fmt: skip
    if s.budget:
        args += ["--budget", str(s.budget)]
    if s.brains:
        args += ["--brains", s.brains]
    return args


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _record(cell: Cell, outcome: CellOutcome) -> None:
    cell.finished = _now()
    cell.wall_seconds = round(cell.wall_seconds + outcome.wall_seconds, 1)
    if outcome.ok:
        cell.state, cell.error, cell.result = "done", None, result_from_summary(outcome.summary)
    else:
        cell.state, cell.error = "failed", outcome.error


def _done_line(cell: Cell) -> str:
    from graph.display import fmt_number

    r = cell.result
    if cell.state == "failed":
        return f"cell {cell.id} failed: {cell.error}"
    return (f"cell {cell.id} done: best {fmt_number(r.best_score)} · holdout {r.holdout or '-'} · "
            f"env steps {fmt_number(r.env_steps)} · {fmt_number(r.wall_seconds)} s")  # fmt: skip


def run_batch(batch_dir: Path, manifest: Manifest, executor, view, env: dict[str, str], memory_url: str | None) -> Manifest:
    """Run every cell that is not done, `executor.slots` at a time; the manifest is written
    after every change, so a kill -9 at any moment loses nothing."""
    batch_dir = Path(batch_dir).resolve()
    queue = [c for c in manifest.cells if c.state != "done"]
    running: set[str] = set()
    view.start()
    try:
        while queue or running:
            while queue and len(running) < executor.slots:
                cell = queue.pop(0)
                args = cell_args(cell, manifest, batch_dir, memory_url)
                if args is None:  # finished before the batch could record it
                    summary = read_summary(batch_dir / cell.run_dir)
                    cell.state, cell.error, cell.result = "done", None, result_from_summary(summary)
                    write_manifest(batch_dir, manifest)
                    view.event(f"cell {cell.id} had finished: recorded from its summary.json")
                    continue
                cell.state, cell.attempts, cell.started, cell.error = "running", cell.attempts + 1, _now(), None
                write_manifest(batch_dir, manifest)
                executor.submit(CellJob(cell.id, args, str(batch_dir / cell.run_dir), str(batch_dir / "logs" / f"{cell.id}.log"), env))
                view.event(f"cell {cell.id} {'resumed' if args[0] == '--resume' else 'started'} (attempt {cell.attempts})")
                running.add(cell.id)
            for outcome in executor.wait(timeout=POLL_S):
                cell = manifest.cell(outcome.cell_id)
                running.discard(cell.id)
                _record(cell, outcome)
                write_manifest(batch_dir, manifest)
                view.event(_done_line(cell))
            view.tick()
    finally:
        view.stop()
    return manifest
