"""Evaluation throughput: the sandboxed harness versus raw EnvPool stepping, same run.

    python bench/eval_throughput.py [--game breakout] [--frames 30000] [--episodes-per-worker 2]

For each obs mode (ram, vision) and worker count (1, 2):
- harness: `evaluation.evaluate.evaluate` end to end (worker spawn, env creation, the policy
  call per step, traces, ledger), with a trivial policy that reads its observation;
- raw: the same number of processes, each stepping an EnvPool with the same protocol
  settings and the same number of envs, with a constant action and nothing else.
Both play the same number of env steps. Prints env steps/s and the harness/raw ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from envs.atari.games import resolve_game  # noqa: E402
from envs.atari.protocols import get_protocol  # noqa: E402
from envs.seeds import split_seeds  # noqa: E402
from evaluation.evaluate import evaluate  # noqa: E402
from envs.atari import make_env  # noqa: E402
from record.workspace import create_run_dir  # noqa: E402

TRIVIAL_POLICY = '''
class Policy:
    """Reads one byte of what it is given and presses NOOP (never FIRE: the episode runs to the cap)."""

    def __init__(self):
        self.mode = None

    def reset(self, seed):
        pass

    def act(self, obs):
        _ = obs.ram[0] if "ram" in obs else obs.rgb[0, 0, 0]
        return 0
'''


def _raw_worker(task_id, protocol_json, seeds, steps_per_env, out):
    from envs.atari.protocols import Protocol

    env = make_env(task_id, Protocol.model_validate_json(protocol_json), seeds)
    env.reset()
    action = np.zeros(len(seeds), dtype=np.int32)
    start = time.perf_counter()
    for _ in range(steps_per_env):
        env.step(action)
    out.put((len(seeds) * steps_per_env, time.perf_counter() - start))


def raw_envpool(task_id, protocol, seed_groups, steps_per_env) -> float:
    """Aggregate env steps/s of len(seed_groups) processes stepping EnvPool flat out."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(task_id, protocol.model_dump_json(), g, steps_per_env, out))
        for g in seed_groups
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    return sum(r[0] for r in results) / wall, sum(r[0] for r in results) / max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--frames", type=int, default=30_000, help="episode length (frame cap)")
    parser.add_argument("--episodes-per-worker", type=int, default=2)
    args = parser.parse_args()

    spec = resolve_game(args.game)
    protocol = get_protocol("hl").with_frame_cap(args.frames)
    console = Console()
    table = Table(title=f"Evaluation throughput, {spec.task_id}, protocol hl, {args.frames:,}-frame episodes")
    for col in ("obs", "workers", "env steps", "harness steps/s", "raw EnvPool steps/s", "ratio", "raw (stepping only)"):
        table.add_column(col, justify="right")

    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "trivial_policy.py"
        policy.write_text(TRIVIAL_POLICY)
        for obs_mode in ("ram", "vision"):
            for workers in (1, 2):
                seeds = split_seeds("dev", workers * args.episodes_per_worker)
                run_dir = create_run_dir(Path(tmp) / "runs", spec.slug, obs_mode)
                record = evaluate(policy, spec, run_dir, obs_mode=obs_mode, seeds=seeds, max_frames=args.frames,
                                  workers=workers)  # fmt: skip
                assert record.status == "ok", record.failure
                harness = record.env_steps / record.wall_seconds
                groups = [seeds[k::workers] for k in range(workers)]
                raw, raw_stepping = raw_envpool(spec.task_id, protocol, groups, args.frames)
                table.add_row(obs_mode, str(workers), f"{record.env_steps:,}", f"{harness:,.0f}", f"{raw:,.0f}",
                              f"{harness / raw:.2f}×", f"{raw_stepping:,.0f}")  # fmt: skip
                console.print(f"{obs_mode} workers={workers}: harness {harness:,.0f} steps/s, raw {raw:,.0f} steps/s")
    console.print(table)
    console.print(
        "harness = end-to-end evaluate() wall time (spawn, env creation, policy calls, traces, ledger);\n"
        "raw = the same processes and envs stepping EnvPool with a constant action, process start included;\n"
        "raw (stepping only) excludes process start and env creation."
    )


if __name__ == "__main__":
    main()
