"""`python -m tools.evaluate`: evaluate a policy file from the command line.

    python -m tools.evaluate --game pong --policy examples/pong_ram.py --obs ram --episodes 3
    python -m tools.evaluate --list

N episodes on named seeds, in sandboxed workers, recorded in a fresh run folder's ledger
with traces, contact sheets of failures and optional video (evaluation.evaluate does the
work; this file is the argument parsing, the progress bar and the results table).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import time
from pathlib import Path

from envs.base import EnvSpec, UnknownEnvError, UnknownProtocolError
from envs.registry import families, family_of, obs_mode_names, protocol_names, resolve_env
from envs.seeds import SPLIT_BASES, SeedSplitError, split_seeds
from evaluation.evaluate import evaluate
from evaluation.sandbox import SandboxLimits
from record.ledger import TrialRecord
from record.meter import BudgetExhausted, StepMeter
from record.workspace import DEFAULT_RUNS_DIR, RunFolderError, create_run_dir
from tools.cli import OneLineParser, positive_float, positive_int, run_command


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m tools.evaluate", description="Evaluate a policy file on a game.")
    p.add_argument("--game", help="game name as you would type it: pong, montezuma, space-invaders, Breakout-v5")
    p.add_argument("--policy", help="path to a policy file defining class Policy")
    p.add_argument("--obs", choices=obs_mode_names(), default=None, help="Atari: ram (RAM and RGB, the default) or vision (RGB only)")
    p.add_argument("--episodes", type=positive_int, default=3, help="episodes to play, one seed each (default 3)")
    p.add_argument("--split", choices=list(SPLIT_BASES), default="dev",
                   help="which seeds: dev (0, 1, ...), holdout (from 1,000,000) or audit (from 2,000,000); default dev")  # fmt: skip
    p.add_argument("--protocol", choices=protocol_names(), default=None, help="evaluation protocol: the family's default (Atari: hl, single frames, no sticky actions) or another preset (Atari: ale-v5)")
    p.add_argument("--max-frames", type=positive_int, help="cap each episode at N emulator frames")
    p.add_argument("--budget", type=positive_int, help="stop after N env steps in total")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: min(2, episodes))")
    p.add_argument("--video", nargs="?", const=True, type=Path, metavar="PATH",
                   help="record the first episode as an H.264 mp4 in the run folder's videos/ (and copy it to PATH)")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR,
                   help=f"where the evaluation's run folder (ledger, traces, sheets, video) is made (default: {DEFAULT_RUNS_DIR})")  # fmt: skip
    p.add_argument("--stall-timeout", type=positive_float, default=120.0, help="seconds without progress = hung")
    p.add_argument("--json", action="store_true", help="also print the results as one line of JSON, the last line of stdout (for scripts)")
    p.add_argument("--list", action="store_true", help="list the games (Atari57) with their action meanings")
    return p


def print_game_list(console) -> None:
    from rich.table import Table

    for family in families():
        title = "Atari57 (any other ALE game EnvPool ships resolves too, without HNS)" if family.name == "atari" else family.name
        table = Table(title=title)
        for col in ("game", "task id", "random", "human", "actions"):
            table.add_column(col)
        for spec in family.specs():
            meanings = family.action_meanings(spec)
            actions = " ".join(f"{i}:{a}" for i, a in enumerate(meanings)) if meanings else str(family.action_space(spec))
            table.add_row(spec.name, spec.task_id, _num(spec.random_score), _num(spec.human_score), actions)
        console.print(table)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _main(argv))


def _main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args = build_parser().parse_args(argv)
    out = Console(soft_wrap=True)
    err = Console(stderr=True)
    if args.list:
        print_game_list(out)
        return 0

    def fail(message: str, code: int = 2) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return code

    if not args.game or not args.policy:
        return fail("--game and --policy are required (or --list)")
    try:
        spec = resolve_env(args.game)
        family = family_of(spec)
        args.obs = args.obs or family.default_obs_mode
        args.protocol = family.get_protocol(args.protocol).name
        if args.obs not in family.obs_modes:
            return fail(f"unknown obs mode {args.obs!r} for {family.name}; choose one of: {', '.join(family.obs_modes)}")
        if isinstance(args.video, Path) and args.video.exists():
            return fail(f"{args.video} already exists; not overwriting it")
        policy = Path(args.policy)
        if not policy.is_file():
            return fail(f"policy file not found: {policy}")
        seeds = split_seeds(args.split, args.episodes)
        run_dir = create_run_dir(args.runs_dir, spec.slug, args.obs, run_id=f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")
    except (UnknownEnvError, SeedSplitError, RunFolderError, UnknownProtocolError) as e:
        return fail(str(e))

    meter = StepMeter(budget=args.budget)
    record = _run_with_progress(args, spec, policy, run_dir, seeds, meter, err)
    if record is None:
        return 1

    video_out = None
    if record.artifacts.get("video"):
        video_out = str(run_dir / record.artifacts["video"])
        if isinstance(args.video, Path):
            args.video.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(video_out, args.video)
            video_out = str(args.video)
    _print_results(out, record, run_dir, spec, video_out)
    if args.json:
        summary = dict(
            game=spec.name, policy=str(policy), obs=args.obs, protocol=record.protocol, split=record.split,
            status=record.status, failure=record.failure, trial=record.trial, seeds=record.seeds,
            episodes=record.episodes, scores=record.scores, score_mean=record.score_mean,
            score_min=record.score_min, score_max=record.score_max, score_std=record.score_std,
            lengths=record.lengths, env_steps=record.env_steps, frames=record.frames,
            wall_seconds=record.wall_seconds, hns=spec.hns(record.score_mean) if record.score_mean is not None else None,
            run_dir=str(run_dir), video=video_out,
        )  # fmt: skip
        print(json.dumps(summary))
    return 0 if record.status in ("ok", "budget_stop") else 1


def _run_with_progress(args, spec, policy, run_dir, seeds, meter, err) -> TrialRecord | None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
        TextColumn("{task.fields[steps]:>10,} steps"), TextColumn("{task.fields[rate]:>7,.0f} steps/s"),
        TextColumn("score {task.fields[score]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    ]  # fmt: skip
    started = time.perf_counter()
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(f"{spec.name} {args.obs} {args.protocol}", total=len(seeds), steps=0, rate=0.0, score="-")

        def update(p: dict) -> None:
            scores = p["scores"]
            score = f"{sum(scores) / len(scores):.1f}" if scores else "-"
            rate = p["steps"] / max(1e-9, time.perf_counter() - started)
            bar.update(task, completed=p["episodes_done"], steps=p["steps"], rate=rate, score=score)

        try:
            return evaluate(
                policy, spec, run_dir, obs_mode=args.obs, protocol=args.protocol, episodes=len(seeds), seeds=seeds,
                max_frames=args.max_frames, workers=args.workers, meter=meter,
                video_seeds=(seeds[0],) if args.video else (), limits=SandboxLimits(stall_seconds=args.stall_timeout),
                on_progress=update,
            )  # fmt: skip
        except BudgetExhausted as e:
            err.print(f"[bold red]error:[/] {e}")
            return None


def _print_results(out, record: TrialRecord, run_dir: Path, spec: EnvSpec, video: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"{spec.name} · {record.obs_mode} · {record.protocol} · {record.split} seeds")
    for col in ("seed", "score", "length (steps)", "lives lost", "wall s", "end"):
        table.add_column(col, justify="right")
    complete = iter(record.scores)
    rows = zip(record.seeds, record.lengths, record.failures, record.episode_seconds, record.truncated)
    for seed, length, lost, seconds, trunc in rows:
        score = "-" if trunc == "budget" else f"{next(complete):g}"
        table.add_row(str(seed), score, f"{length:,}", str(lost), f"{seconds:.1f}", trunc or "game over")
    out.print(table)
    if record.status == "failed":
        out.print(f"[bold red]failed trial[/] ({record.failure_kind}): {record.failure}", highlight=False)
    if record.status == "budget_stop":
        out.print("[yellow]budget spent: episodes cut short are not scored[/]")
    if record.score_mean is not None:
        hns = spec.hns(record.score_mean)
        out.print(
            f"score mean {record.score_mean:g}  min {record.score_min:g}  max {record.score_max:g}  "
            f"std {record.score_std:.2f}" + (f"  HNS {hns:.2f}" if hns is not None else "")
        )
    rate = record.env_steps / record.wall_seconds if record.wall_seconds else 0
    out.print(f"{record.env_steps:,} env steps, {record.frames:,} frames, {record.wall_seconds:.1f} s ({rate:,.0f} steps/s)")
    out.print(f"run folder: {run_dir}")
    if video:
        out.print(f"video: {video}")


if __name__ == "__main__":
    sys.exit(main())
