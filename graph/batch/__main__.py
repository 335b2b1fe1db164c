"""`python -m graph.batch`: one `graph.run` per cell (game × obs × protocol × repeat), on a
local process pool or a Ray cluster, resumable, with the suite's scoreboard at the end.

    python -m graph.batch --games atari5 --budget 200000
    python -m graph.batch --games pong,breakout --obs ram,vision --repeats 3 --runs-dir runs/pb
    python -m graph.batch --games atari57 --ray auto          # a Ray cluster, or a local instance
    python -m graph.batch --resume runs/pb                    # continue a killed batch

The batch folder holds batch.json (every cell's settings, state and result), the run folders
(<game>/<obs>/<cell id>/), logs/ (each cell's output), the shared memory (memory/) and the
scoreboard (suite.md, suite.csv, suite_curve.png, suite.html).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from envs.base import UnknownEnvError, UnknownProtocolError
from envs.registry import family_of, resolve_games, suite_names
from graph.batch.manifest import BatchSettings, Cell, Manifest, ManifestError, cell_id, read_manifest, write_manifest
from record.workspace import DEFAULT_RUNS_DIR
from tools.cli import OneLineParser, env_steps, positive_int, run_command

# The run settings that come from HL_* variables; a batch records them and every cell runs with
# them (resumed cells too). HL_EVAL_WORKERS is the batch's own (--cpus-per-cell).
BATCH_OWN_KNOBS = ("HL_EVAL_WORKERS",)
EXIT_FAILED_CELLS = 3


class UsageError(ValueError):
    """Bad input: one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m graph.batch", description="Run graph.run over a suite of games (one run per game × obs × "
                      "protocol × repeat) on a local pool or a Ray cluster, resumable, with a scoreboard at the end.",
                      epilog="examples:\n" + "\n".join("  " + line.strip() for line in __doc__.split("\n\n")[1].splitlines()),
                      formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--games", help=f"a suite ({', '.join(suite_names())}) or games separated by commas: pong,breakout,montezuma")
    p.add_argument("--obs", default=None, help="observation modes separated by commas, e.g. ram,vision (default: each family's)")
    p.add_argument("--protocol", default=None, help="protocols separated by commas, e.g. hl,ale-v5 (default: each family's)")
    p.add_argument("--budget", type=env_steps, default=None, help="env steps per run, every step counted (default: graph.run's, 1e6)")
    p.add_argument("--repeats", type=positive_int, default=1, help="runs per game, obs mode and protocol (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of repeat 1; repeat k runs with seed + k - 1 (default 0)")
    p.add_argument("--model", default="auto", help="as graph.run's --model: builtin, a chat model name, or auto (default)")
    p.add_argument("--brains", default=None, help="as graph.run's --brains, e.g. policy_writer=llm")
    p.add_argument("--runs-dir", type=Path, default=None,
                   help="the batch folder (default: runs/batch-<time>); running the same command on it again resumes it")
    p.add_argument("--resume", type=Path, metavar="BATCH", help="continue the batch in this folder with its own settings")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="cells at a time on the local pool (default: this machine's CPUs / --cpus-per-cell)")
    p.add_argument("--cpus-per-cell", type=positive_int, default=1,
                   help="CPUs each run gets: its evaluation workers, and the CPUs a Ray task asks for (default 1)")
    p.add_argument("--ray", metavar="auto|ADDRESS", default=None,
                   help="run each cell as a Ray task: auto (the cluster this machine is in, else a local instance) or "
                        "HOST:PORT / ray://HOST:PORT; the batch folder must be at the same path on every node")
    p.add_argument("--memory-url", default=os.environ.get("HL_MEMORY_URL"),
                   help="Chroma server every cell shares (a cluster needs one); default: one store in the batch folder")
    p.add_argument("--tensorboard", action="store_true", help="also export every run's ledger as TensorBoard scalars (BATCH/tensorboard)")
    p.add_argument("--quiet", action="store_true", help="plain lines even in a terminal")
    return p


def batch_settings(args) -> BatchSettings:
    """The batch's settings from the flags, checked before anything is written: every game,
    obs mode, protocol and the budget (each cell must afford a holdout), and the model."""
    from graph.run import _check_family_support, check_model
    from runtime.budget import BudgetTooSmall, plan_budget
    from runtime.config import KNOBS, RunConfig, first_error

    if not args.games:
        raise UsageError("--games is required (or --resume BATCH)")
    specs, suite = resolve_games(args.games)
    families = {family_of(spec).name: family_of(spec) for spec in specs}
    obs = _list(args.obs) or list(dict.fromkeys(f.default_obs_mode for f in families.values()))
    protocols = _list(args.protocol) or list(dict.fromkeys(f.default_protocol for f in families.values()))
    knobs = {env: os.environ[env] for env, _ in KNOBS.values() if env in os.environ and env not in BATCH_OWN_KNOBS}
    from agents.brains import resolve_brains

    try:
        model, brains = resolve_brains(args.model, args.brains)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for spec in specs:
        family = family_of(spec)
        _check_family_support(family.name)
        for mode in obs:
            if mode not in family.obs_modes:
                raise UsageError(f"obs mode {mode!r} is not one of {family.name}'s: {', '.join(family.obs_modes)}")
            for protocol in protocols:
                try:
                    cfg = RunConfig(game=spec.name, obs_mode=mode, protocol=protocol, budget=args.budget or 1_000_000)
                    plan_budget(cfg, family.get_protocol(cfg.protocol))
                except BudgetTooSmall as err:
                    raise UsageError(f"{spec.name}, {protocol}: {err}") from None
                except ValueError as err:
                    raise UsageError(first_error(err)) from None
    check_model(RunConfig(game=specs[0].name, model=model, brains=brains))  # one request, before any folder
    return BatchSettings(games=[s.name for s in specs], suite=suite, obs=obs, protocols=protocols, budget=args.budget,
                         repeats=args.repeats, model=args.model, brains=args.brains, seed=args.seed, knobs=knobs)  # fmt: skip


def _list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def plan_cells(settings: BatchSettings) -> list[Cell]:
    """Repeat 1 of every game first, then repeat 2, ...: later repeats start from what the
    earlier ones put in memory."""
    from envs.registry import resolve_env

    cells = []
    for repeat in range(1, settings.repeats + 1):
        for game in settings.games:
            slug = resolve_env(game).slug
            for obs in settings.obs:
                for protocol in settings.protocols:
                    cid = cell_id(slug, obs, protocol, repeat)
                    cells.append(Cell(id=cid, game=game, obs=obs, protocol=protocol, repeat=repeat, run_dir=f"{slug}/{obs}/{cid}"))
    return cells


def open_batch(args) -> tuple[Path, Manifest]:
    """The batch folder and its manifest: a new one, or the one there when it is the same batch."""
    if args.resume is not None:
        manifest = read_manifest(args.resume)
        if manifest is None:
            raise UsageError(f"{args.resume} is not a batch folder (no batch.json)")
        return args.resume, manifest
    settings = batch_settings(args)
    batch_dir = args.runs_dir or DEFAULT_RUNS_DIR / f"batch-{time.strftime('%Y%m%d-%H%M%S')}"
    existing = read_manifest(batch_dir) if batch_dir.exists() else None
    if existing is not None:
        if not existing.settings.same_batch(settings):
            raise UsageError(f"{batch_dir} holds another batch ({_describe(existing.settings)}); run that command again, "
                             f"use --resume {batch_dir}, or pick another --runs-dir")  # fmt: skip
        return batch_dir, existing
    if batch_dir.exists() and any(batch_dir.iterdir()):
        raise UsageError(f"{batch_dir} is not empty and has no batch.json (another command's folder?); pick another --runs-dir")
    batch_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(settings=settings, cells=plan_cells(settings))
    write_manifest(batch_dir, manifest)
    return batch_dir, manifest


def _describe(s: BatchSettings) -> str:
    games = s.suite or ",".join(s.games)
    return (f"games {games}, obs {','.join(s.obs)}, protocol {','.join(s.protocols)}, budget {s.budget or 'default'}, "
            f"repeats {s.repeats}, model {s.model}" + (f", knobs {s.knobs}" if s.knobs else ""))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agents.llm.session import ModelConfigError
    from graph.batch.executors import ExecutorError

    return run_command(lambda: _main(args), usage_errors=(UsageError, UnknownEnvError, UnknownProtocolError, ManifestError,
                                                         ExecutorError, ModelConfigError),
                       interrupted="interrupted; continue with the same command or --resume BATCH")  # fmt: skip


def _main(args) -> int:
    from filelock import FileLock, Timeout

    from graph.batch.executors import check_ray, make_executor
    from graph.batch.progress import BatchStatus, make_view
    from graph.batch.runner import run_batch

    started = time.time()
    if args.ray:
        check_ray(args.ray)
    batch_dir, manifest = open_batch(args)
    lock = FileLock(batch_dir / "batch.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"another graph.batch is running on {batch_dir}") from None
    with lock:
        executor = make_executor(args.ray, args.workers or max(1, (os.cpu_count() or 1) // args.cpus_per_cell), args.cpus_per_cell)
        env = {**manifest.settings.knobs, "HL_EVAL_WORKERS": str(args.cpus_per_cell)}
        status = BatchStatus(batch_dir, manifest, manifest.settings.budget or 1_000_000, started)
        view = make_view(status, args.quiet)
        print(f"batch {batch_dir}: {len(manifest.cells)} cells ({_describe(manifest.settings)}) on the {executor.name}, "
              f"{executor.slots} at a time", flush=True)  # fmt: skip
        try:
            run_batch(batch_dir, manifest, executor, view, env, args.memory_url)
        finally:
            executor.shutdown()
        return finish_batch(batch_dir, manifest, args.tensorboard, started)


def finish_batch(batch_dir: Path, manifest: Manifest, tensorboard: bool, started: float) -> int:
    """The scoreboard (and the TensorBoard export), then one line per failed cell."""
    from graph.report.scoreboard import write_scoreboard
    from graph.report.suite_page import write_suite

    paths = write_scoreboard(batch_dir)
    paths["page"] = write_suite(batch_dir)
    if tensorboard:
        from graph.report.tensorboard import export_tensorboard

        paths["tensorboard"] = export_tensorboard(batch_dir)
    counts = manifest.counts()
    print(f"batch done in {time.time() - started:,.0f} s: {counts['done']} cells done, {counts['failed']} failed", flush=True)
    for cell in manifest.cells:
        if cell.state == "failed":
            print(f"failed: {cell.id}: {cell.error}", flush=True)
    for name, path in paths.items():
        print(f"{name}: {path}", flush=True)
    return EXIT_FAILED_CELLS if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
