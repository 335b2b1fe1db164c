"""Speed of cultivated policies: the best policy of finished runs, evaluated in the sandboxed
harness on one core, against raw EnvPool stepping with the same settings, same run.

    python bench/policy_speed.py runs/pong/vision/RUN runs/breakout/vision/RUN [--frames 20000]

For each run folder: its hs/policy.py (detectors and all) plays one dev episode of at most
`--frames` frames in one worker process (`evaluation.evaluate.evaluate`: worker spawn, env
creation, one policy call per step, traces), then one process steps an EnvPool with the same
protocol for as many env steps with a constant action. Prints env steps/s of both and their
ratio. The target for vision policies is >= 1,000 env steps/s on one core; the published
pure-Python vision policy of the Heuristic Learning experiments ran at ~58 (a figure from the
article, not measured here). Steps this benchmark takes are its own, not charged to the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.eval_throughput import raw_envpool  # noqa: E402
from envs.atari.games import resolve_game  # noqa: E402
from envs.atari.protocols import get_protocol  # noqa: E402
from evaluation.evaluate import evaluate  # noqa: E402
from record.workspace import create_run_dir  # noqa: E402


def measure(run: Path, frames: int, scratch: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    spec = resolve_game(config["game"])
    protocol = get_protocol(config["protocol"])
    out = create_run_dir(scratch, spec.slug, config["obs_mode"], run_id=f"speed-{run.name}")
    record = evaluate(run / "hs" / "policy.py", spec, out, obs_mode=config["obs_mode"], protocol=protocol.name,
                      episodes=1, max_frames=frames, workers=1, change_summary="speed benchmark")  # fmt: skip
    if record.status != "ok":
        raise SystemExit(f"{run}: the policy failed: {record.failure}")
    harness = record.env_steps / record.wall_seconds
    capped = protocol.with_frame_cap(frames)
    raw, _ = raw_envpool(spec.task_id, capped, [[0]], record.env_steps)
    return dict(run=run.name, game=spec.name, obs=config["obs_mode"], protocol=protocol.name, steps=record.env_steps, score=record.score_mean, harness=harness, raw=raw)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of finished graph.run runs")
    parser.add_argument("--frames", type=int, default=20_000, help="frame cap of the timed episode")
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "hs" / "policy.py").exists() or not (run / "config.json").exists():
            raise SystemExit(f"{run}: not a run folder (needs config.json and hs/policy.py)")

    console = Console(width=150)
    table = Table(title=f"policy speed, one worker, one episode of at most {args.frames:,} frames")
    for col in ("game", "obs", "protocol", "run", "env steps", "score", "harness steps/s", "raw EnvPool steps/s", "ratio"):
        table.add_column(col, justify="right" if col not in ("game", "obs", "protocol", "run") else "left")
    with tempfile.TemporaryDirectory() as scratch:
        for run in args.runs:
            m = measure(run, args.frames, Path(scratch))
            console.print(f"{m['game']} {m['obs']}: {m['harness']:,.0f} env steps/s (raw {m['raw']:,.0f})")
            table.add_row(m["game"], m["obs"], m["protocol"], m["run"], f"{m['steps']:,}", f"{m['score']:g}",
                          f"{m['harness']:,.0f}", f"{m['raw']:,.0f}", f"{m['harness'] / m['raw']:.2f}×")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
