"""Evaluate a policy file: N episodes on named seeds, in sandboxed workers, recorded in a
run folder's ledger with traces, contact sheets of failures and optional video.

    python -m tools.evaluate --game pong --policy examples/pong_ram.py --obs ram --episodes 3

Used as a library by the graph (`evaluate(...)`) and as a command by people.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from envs.games import GameSpec, UnknownGameError, atari57, resolve_game
from envs.observation import OBS_MODES
from envs.protocols import PROTOCOLS, UnknownProtocolError, get_protocol
from envs.seeds import SPLIT_BASES, SeedSplitError, require_tuning_split, split_of, split_seeds
from tools.cli import OneLineParser, run_command
from tools.ledger import Ledger, TrialRecord, plot_sample_efficiency, score_stats, write_summary
from tools.meter import BudgetExhausted, StepMeter
from tools.sandbox import SandboxLimits, read_step_counter, run_jobs
from tools.workspace import DEFAULT_RUNS_DIR, RunFolderError, create_run_dir, policy_hash, unique_path

MAX_EPISODES_PER_WORKER = 32  # one EnvPool batch per worker; bounds worker memory


class EvaluationError(ValueError):
    """Bad request (unknown game, bad seeds, missing policy...): one line, no traceback."""


def _distribute(seeds: list[int], workers: int) -> list[list[int]]:
    workers = max(1, min(workers, len(seeds)))
    return [seeds[k::workers] for k in range(workers) if seeds[k::workers]]


def evaluate(
    policy_path: str | Path,
    game: str | GameSpec,
    run_dir: str | Path,
    obs_mode: str = "ram",
    protocol: str = "hl",
    split: str = "dev",
    episodes: int = 3,
    seeds: list[int] | None = None,
    max_frames: int | None = None,
    workers: int | None = None,
    meter: StepMeter | None = None,
    video_seeds: tuple[int, ...] = (),
    role: str = "user",
    kind: str = "evaluation",
    change_summary: str = "",
    for_tuning: bool = False,
    use_reserve: bool = False,
    limits: SandboxLimits = SandboxLimits(),
    on_progress: Callable[[dict], None] | None = None,
    tokens: int = 0,
    cost_usd: float = 0.0,
) -> TrialRecord:
    """Evaluate `policy_path` and append one row to `run_dir/trials.jsonl`.

    Seeds are `seeds` if given, else the first `episodes` seeds of `split`. With
    for_tuning=True, holdout and audit seeds are refused. Every env step taken is charged to
    `meter`; when its budget runs out mid-evaluation, episodes are cut and the row says
    status "budget_stop". A policy that raises, hangs, returns a bad action or runs out of
    memory gives a row with status "failed" and the reason; nothing is raised for it.
    on_progress receives {"steps", "episodes_done", "episodes", "scores"} as work proceeds.
    """
    started = time.perf_counter()
    spec = game if isinstance(game, GameSpec) else resolve_game(game)
    proto = get_protocol(protocol).with_frame_cap(max_frames)
    policy_path = Path(policy_path).resolve()
    if not policy_path.is_file():
        raise EvaluationError(f"policy file not found: {policy_path}")
    if obs_mode not in OBS_MODES:
        raise EvaluationError(f"unknown obs mode {obs_mode!r}; choose one of: {', '.join(OBS_MODES)}")
    seeds = list(seeds) if seeds else split_seeds(split, episodes)
    split_name = ",".join(sorted({split_of(s) for s in seeds}))
    if for_tuning:
        require_tuning_split(seeds)
    meter = meter or StepMeter()
    allowance = meter.allowance(use_reserve=use_reserve)  # raises BudgetExhausted before any work starts

    run_dir = Path(run_dir).resolve()  # workers run in a temp cwd: hand them absolute paths
    digest = policy_hash(policy_path)
    eval_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}-{secrets.token_hex(2)}"
    trace_dir = run_dir / "traces" / eval_id

    workers = workers or min(2, len(seeds))
    groups = []
    for group in _distribute(seeds, workers):
        for i in range(0, len(group), MAX_EPISODES_PER_WORKER):
            groups.append(group[i : i + MAX_EPISODES_PER_WORKER])
    jobs = []
    for index, group in enumerate(groups):
        share = None if allowance is None else (allowance * len(group)) // len(seeds)
        jobs.append(
            dict(
                policy_path=str(policy_path),
                task_id=spec.task_id,
                protocol=proto.model_dump(),
                obs_mode=obs_mode,
                seeds=group,
                step_allowance=share,
                trace_dir=str(trace_dir),
                video_seeds=[s for s in video_seeds if s in group],
                counter_path=str(trace_dir / f"steps-{index}.counter"),
            )
        )

    progress = {i: {"steps": 0, "episodes": []} for i in range(len(jobs))}

    def job_progress(index: int, message: dict) -> None:
        progress[index] = message
        if on_progress:
            done = [e for p in progress.values() for e in p["episodes"]]
            on_progress(
                dict(
                    steps=sum(p["steps"] for p in progress.values()),
                    episodes_done=len(done),
                    episodes=len(seeds),
                    scores=[e["score"] for e in done],
                )
            )

    # Run at most `workers` sandboxes at once.
    outcomes = []
    for start in range(0, len(jobs), workers):
        wave = jobs[start : start + workers]
        offset = start
        outcomes += run_jobs(wave, limits, on_progress=lambda i, m, o=offset: job_progress(o + i, m))

    steps = sum(o.steps for o in outcomes)
    reset_frames = proto.frame_skip if proto.use_fire_reset else 0
    frames = steps * proto.frame_skip + reset_frames * len(seeds)
    meter.charge(steps, frames, kind)

    episodes_done = sorted((e for o in outcomes for e in o.episodes), key=lambda e: seeds.index(e["seed"]))
    failed = [o for o in outcomes if o.status == "failed"]
    complete = [e for e in episodes_done if e["truncated"] != "budget"]
    status = "failed" if failed else ("budget_stop" if len(complete) < len(seeds) else "ok")

    artifacts = {"traces": str(trace_dir.relative_to(run_dir))}
    for e in episodes_done:
        if e.get("video"):
            video = unique_path(run_dir / "videos" / f"{eval_id}-seed{e['seed']}.mp4")
            shutil.move(str(trace_dir / e["video"]), video)
            e["video"] = str(video.relative_to(run_dir))
            artifacts.setdefault("video", e["video"])
    sheet = _failure_sheet(run_dir, trace_dir, eval_id, episodes_done)
    if sheet:
        artifacts["sheet"] = str(sheet.relative_to(run_dir))

    first_failure = failed[0] if failed else None
    ledger = Ledger(run_dir / "trials.jsonl")
    record = ledger.append(
        run_id=run_dir.name,
        game=spec.name,
        role=role,
        kind=kind,
        status=status,
        policy_path=str(policy_path),
        policy_hash=digest,
        protocol=proto.name,
        protocol_settings=proto.model_dump(),
        obs_mode=obs_mode,
        split=split_name,
        seeds=seeds,
        episodes=len(seeds),
        env_steps=steps,
        frames=frames,
        scores=[e["score"] for e in complete],
        lengths=[e["length"] for e in episodes_done],
        lives_lost=[e["lives_lost"] for e in episodes_done],
        truncated=[e["truncated"] for e in episodes_done],
        episode_seconds=[round(e["wall_seconds"], 3) for e in episodes_done],
        wall_seconds=round(time.perf_counter() - started, 3),
        change_summary=change_summary,
        tokens=tokens,
        cost_usd=round(cost_usd, 6),
        failure_kind=first_failure.failure_kind if first_failure else None,
        failure=first_failure.failure if first_failure else None,
        traceback=(first_failure.traceback or first_failure.log_tail or None) if first_failure else None,
        artifacts=artifacts,
        **score_stats([e["score"] for e in complete]),
    )
    refresh_reports(run_dir, title=f"{spec.name} · {obs_mode} · {proto.name}")
    return record


def reconcile_interrupted(run_dir: str | Path) -> list[TrialRecord]:
    """Count the steps of evaluations (and route searches) a kill cut short before their
    ledger row was written.

    Each evaluation worker keeps its step count in `traces/<eval>/steps-<i>.counter`, each
    search call in `search/call-<n>/steps-0.counter`; a folder no ledger row names is an
    interrupted one, answered with an "invalid" row carrying its steps, so cumulative totals
    stay honest."""
    run_dir = Path(run_dir)
    ledger = Ledger(run_dir / "trials.jsonl")
    records = ledger.records()
    named = {v for r in records for v in r.artifacts.values()}
    added = []
    folders = sorted((run_dir / "traces").glob("*/")) + sorted((run_dir / "search").glob("call*/"))
    for trace_dir in folders:
        rel = str(trace_dir.relative_to(run_dir))
        counters = list(trace_dir.glob("steps-*.counter"))
        if rel in named or not counters:
            continue
        steps = sum(read_step_counter(c) for c in counters)
        last = records[-1] if records else None
        frame_skip = last.protocol_settings.get("frame_skip", 1) if last else 1
        added.append(ledger.append(
            run_id=run_dir.name, game=last.game if last else run_dir.parent.parent.name,
            protocol=last.protocol if last else "unknown", obs_mode=last.obs_mode if last else run_dir.parent.name, role="ledger",
            kind="invalid", status="invalid", env_steps=steps, frames=steps * frame_skip, failure_kind="interrupted",
            failure=f"{'search' if rel.startswith('search') else 'evaluation'} {trace_dir.name} was interrupted before "
                    "its row was written; its steps are counted",
            artifacts={"counter" if rel.startswith("search") else "traces": rel},
        ))  # fmt: skip
    return added


def refresh_reports(run_dir: Path, title: str = "") -> None:
    """Regenerate summary.csv and sample_efficiency.png from the ledger."""
    records = Ledger(run_dir / "trials.jsonl").records()
    write_summary(records, run_dir / "summary.csv")
    plot_sample_efficiency(records, run_dir / "sample_efficiency.png", title=title)


def _failure_sheet(run_dir: Path, trace_dir: Path, eval_id: str, episodes: list[dict]) -> Path | None:
    """One contact sheet of the frames before each life lost, from the first episode that has any."""
    from tools.rollout import load_trace
    from tools.video import sheet_for_moments

    for e in episodes:
        if not e.get("trace") or not (trace_dir / e["trace"]).exists():
            continue
        moments = load_trace(trace_dir / e["trace"])["moments"]
        if moments:
            path = unique_path(run_dir / "sheets" / f"{eval_id}-seed{e['seed']}.png")
            for m in moments:
                m["label"] = f"seed {e['seed']}: {m['label']}"
            return sheet_for_moments(moments, path, title=f"seed {e['seed']}: frames before each life lost")
    return None


# ---------------------------------------------------------------- command line


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1 or value != float(text):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m tools.evaluate", description="Evaluate a policy file on an Atari game.")
    p.add_argument("--game", help="game name as you would type it: pong, montezuma, space-invaders, Breakout-v5")
    p.add_argument("--policy", help="path to a policy file defining class Policy")
    p.add_argument("--obs", choices=OBS_MODES, default="ram", help="ram: RAM and RGB; vision: RGB only")
    p.add_argument("--episodes", type=_positive_int, default=3)
    p.add_argument("--split", choices=list(SPLIT_BASES), default="dev")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="hl")
    p.add_argument("--max-frames", type=_positive_int, help="cap each episode at N emulator frames")
    p.add_argument("--budget", type=_positive_int, help="stop after N env steps in total")
    p.add_argument("--workers", type=_positive_int, help="worker processes (default: min(2, episodes))")
    p.add_argument("--video", nargs="?", const=True, type=Path, metavar="PATH",
                   help="record the first episode as an H.264 mp4 in the run folder's videos/ (and copy it to PATH)")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    p.add_argument("--stall-timeout", type=_positive_float, default=120.0, help="seconds without progress = hung")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--list", action="store_true", help="list the Atari57 games with their action meanings")
    return p


def print_game_list(console) -> None:
    from rich.table import Table

    table = Table(title="Atari57 (any other ALE game EnvPool ships resolves too, without HNS)")
    for col in ("game", "task id", "random", "human", "actions"):
        table.add_column(col)
    for spec in sorted(atari57().values(), key=lambda s: s.name):
        table.add_row(spec.name, spec.task_id, f"{spec.random_score:g}", f"{spec.human_score:g}",
                      " ".join(f"{i}:{a}" for i, a in enumerate(spec.action_meanings())))  # fmt: skip
    console.print(table)


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
        spec = resolve_game(args.game)
        if isinstance(args.video, Path) and args.video.exists():
            return fail(f"{args.video} already exists; not overwriting it")
        policy = Path(args.policy)
        if not policy.is_file():
            return fail(f"policy file not found: {policy}")
        seeds = split_seeds(args.split, args.episodes)
        run_dir = create_run_dir(args.runs_dir, spec.slug, args.obs, run_id=f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")
    except (UnknownGameError, SeedSplitError, RunFolderError, UnknownProtocolError) as e:
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


def _print_results(out, record: TrialRecord, run_dir: Path, spec: GameSpec, video: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"{spec.name} · {record.obs_mode} · {record.protocol} · {record.split} seeds")
    for col in ("seed", "score", "length (steps)", "lives lost", "wall s", "end"):
        table.add_column(col, justify="right")
    complete = iter(record.scores)
    rows = zip(record.seeds, record.lengths, record.lives_lost, record.episode_seconds, record.truncated)
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
