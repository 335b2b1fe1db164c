"""Every run's ledger as TensorBoard scalars: one event-file folder per run under
`BATCH/tensorboard/<run_id>/`, written with tensorboardX (no torch, no tensorflow).

    export_tensorboard("runs/pb")          # then: tensorboard --logdir runs/pb/tensorboard

Scalars, each at the env steps the ledger row ends at (`cumulative_env_steps`) and at the
row's own wall time:
- `score/dev`: each ok dev trial's mean score;
- `score/best`: the running best of those;
- `hns/best`: its human-normalised score, for Atari57 games;
- `score/holdout`: the best policy on holdout seeds (the run's finish rows);
- `budget/env_steps`: env steps used after each ledger row, at step = the row's trial index
  (with TensorBoard's wall-time axis: env steps against time).

The ledger stays the source: exporting again replaces the run's event files (only files named
`events.out.tfevents.*` in that run's folder are removed, nothing else), so nothing is doubled.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from record.ledger import is_robustness

EVENT_PREFIX = "events.out.tfevents."


def _walltime(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except (TypeError, ValueError):
        return None


def _scalars(records: list, spec) -> list[tuple[str, float, int, float | None]]:
    """(tag, value, step, walltime) for every scalar of a run, in ledger order."""
    out, best = [], None
    for r in records:
        wall = _walltime(r.timestamp)
        scored = r.status == "ok" and r.score_mean is not None
        if scored and is_robustness(r):
            out.append((f"score/holdout_{r.protocol}", r.score_mean, r.cumulative_env_steps, wall))
        elif scored and r.role == "finish":
            out.append(("score/holdout", r.score_mean, r.cumulative_env_steps, wall))
        elif scored and r.split != "holdout":
            best = r.score_mean if best is None else max(best, r.score_mean)
            out.append(("score/dev", r.score_mean, r.cumulative_env_steps, wall))
            out.append(("score/best", best, r.cumulative_env_steps, wall))
            hns = spec.hns(best) if spec is not None else None
            if hns is not None:
                out.append(("hns/best", hns, r.cumulative_env_steps, wall))
        out.append(("budget/env_steps", float(r.cumulative_env_steps), r.trial, wall))
    return out


def _fresh_folder(folder: Path) -> Path:
    """The run's event folder with its earlier event files removed (ours; anything else stays)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(EVENT_PREFIX + "*"):
        if old.is_file():
            old.unlink()
    return folder


def export_run(run_dir: Path, folder: Path) -> int:
    """Write one run's scalars into `folder`; returns how many were written."""
    from tensorboardX import SummaryWriter

    from graph.report.scoreboard import spec_of
    from graph.trace import read_ledger

    records, _ = read_ledger(run_dir)
    spec = spec_of(records[0].game) if records else None
    scalars = _scalars(records, spec)
    writer = SummaryWriter(logdir=str(_fresh_folder(folder)), flush_secs=3600)
    try:
        for tag, value, step, wall in scalars:
            writer.add_scalar(tag, float(value), global_step=int(step), walltime=wall)
    finally:
        writer.close()
    return len(scalars)


def export_tensorboard(batch_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """One event-file folder per run (<out_dir>/<run_id>/, out_dir default BATCH/tensorboard);
    returns out_dir. Runs without a ledger (pending cells) have nothing to export."""
    from graph.report.scoreboard import find_runs

    batch_dir = Path(batch_dir)
    out = Path(out_dir) if out_dir else batch_dir / "tensorboard"
    out.mkdir(parents=True, exist_ok=True)
    seen = set()
    for run_dir in find_runs(batch_dir):
        if out.resolve() in run_dir.resolve().parents:
            continue
        name = run_dir.name if run_dir.name not in seen else f"{run_dir.parent.parent.name}.{run_dir.parent.name}.{run_dir.name}"
        seen.add(name)
        export_run(run_dir, out / name)
    return out
