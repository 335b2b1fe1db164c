"""Evaluate a policy file: N episodes on named seeds, in sandboxed workers, recorded in a
run folder's ledger with traces, contact sheets of failures and optional video.

The library behind the graph's evaluations (through runtime.steps) and the
`python -m tools.evaluate` command.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Callable

from envs.base import EnvProtocol, EnvSpec
from envs.registry import family_of, resolve_env
from envs.seeds import require_tuning_split, split_of, split_seeds
from evaluation.rollout import StallRule
from evaluation.sandbox import SandboxLimits, WorkerOutcome, read_step_counter, run_jobs
from record.ledger import Ledger, TrialRecord, plot_sample_efficiency, score_stats, write_summary
from record.meter import StepMeter
from record.workspace import policy_hash, unique_path

MAX_EPISODES_PER_WORKER = 32  # one EnvPool batch per worker; bounds worker memory


class EvaluationError(ValueError):
    """Bad request (unknown game, bad seeds, missing policy...): one line, no traceback."""


def _distribute(seeds: list[int], workers: int) -> list[list[int]]:
    workers = max(1, min(workers, len(seeds)))
    return [seeds[k::workers] for k in range(workers) if seeds[k::workers]]


def evaluate(
    policy_path: str | Path,
    game: str | EnvSpec,
    run_dir: str | Path,
    obs_mode: str | None = None,
    protocol: str | None = None,
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
    stall: StallRule | None = None,
    on_progress: Callable[[dict], None] | None = None,
    tokens: int = 0,
    cost_usd: float = 0.0,
) -> TrialRecord:
    """Evaluate `policy_path` and append one row to `run_dir/trials.jsonl`.

    `game` is any name a family resolves (or its spec); obs_mode and protocol default to
    the family's. Seeds are `seeds` if given, else the first `episodes` seeds of `split`.
    With for_tuning=True, holdout and audit seeds are refused. Every env step taken is
    charged to `meter`; when its budget runs out mid-evaluation, episodes are cut and the
    row says status "budget_stop". A policy that raises, hangs, returns a bad action or runs
    out of memory gives a row with status "failed" and the reason; nothing is raised for it.
    With `stall`, an episode that makes no progress is cut (evaluation.rollout.StallRule);
    the rule and each cut's evidence are in the row (`stall_rule`, `stalls`).
    on_progress receives {"steps", "episodes_done", "episodes", "scores"} as work proceeds.
    """
    started = time.perf_counter()
    spec = game if isinstance(game, EnvSpec) else resolve_env(game)
    family = family_of(spec)
    proto = family.get_protocol(protocol).with_frame_cap(max_frames)
    obs_mode = obs_mode or family.default_obs_mode
    policy_path = Path(policy_path).resolve()
    if not policy_path.is_file():
        raise EvaluationError(f"policy file not found: {policy_path}")
    if obs_mode not in family.obs_modes:
        raise EvaluationError(f"unknown obs mode {obs_mode!r}; choose one of: {', '.join(family.obs_modes)}")
    seeds = list(seeds) if seeds else split_seeds(split, episodes)
    if for_tuning:
        require_tuning_split(seeds)
    meter = meter or StepMeter()
    allowance = meter.allowance(use_reserve=use_reserve)  # raises BudgetExhausted before any work starts

    run_dir = Path(run_dir).resolve()  # workers run in a temp cwd: hand them absolute paths
    digest = policy_hash(policy_path)
    eval_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}-{secrets.token_hex(2)}"
    trace_dir = run_dir / "traces" / eval_id
    workers = workers or min(2, len(seeds))
    # A finish evaluation (paid from the reserve) that the budget may cut before every episode
    # reaches the cap plays its episodes one after another in one worker, so those that finish
    # count (rollout.run_episodes_in_turn). A cut dev evaluation has no score either way.
    in_turn = use_reserve and allowance is not None and allowance < len(seeds) * proto.max_episode_steps
    workers = 1 if in_turn else workers
    jobs = _jobs(policy_path, spec, proto, obs_mode, seeds, allowance, trace_dir, video_seeds, workers, stall, in_turn)
    outcomes = _run(jobs, workers, len(seeds), limits, on_progress)

    steps = sum(o.steps for o in outcomes)
    episodes_done = sorted((e for o in outcomes for e in o.episodes), key=lambda e: seeds.index(e["seed"]))
    never_reset = sum(1 for e in episodes_done if in_turn and e["length"] == 0 and e["truncated"] == "budget")
    frames = steps * proto.frame_skip + proto.reset_frames * (len(seeds) - never_reset)
    meter.charge(steps, frames, kind)
    failed = [o for o in outcomes if o.status == "failed"]
    complete = [e for e in episodes_done if e["truncated"] != "budget"]
    status = "failed" if failed else ("budget_stop" if len(complete) < len(seeds) else "ok")
    artifacts = _artifacts(run_dir, trace_dir, eval_id, episodes_done, family.failure_name)

    first_failure = failed[0] if failed else None
    record = Ledger(run_dir / "trials.jsonl").append(
        run_id=run_dir.name, game=spec.name, family=spec.family, role=role, kind=kind, status=status,
        policy_path=str(policy_path), policy_hash=digest, protocol=proto.name, protocol_settings=proto.model_dump(),
        obs_mode=obs_mode, split=",".join(sorted({split_of(s) for s in seeds})), seeds=seeds, episodes=len(seeds),
        env_steps=steps, frames=frames, scores=[e["score"] for e in complete],
        lengths=[e["length"] for e in episodes_done], failures=[e["failures"] for e in episodes_done],
        truncated=[e["truncated"] for e in episodes_done], stall_rule=stall.to_dict() if stall else None,
        stalls=[e.get("stall") for e in episodes_done],
        episode_seconds=[round(e["wall_seconds"], 3) for e in episodes_done],
        wall_seconds=round(time.perf_counter() - started, 3), change_summary=change_summary, tokens=tokens,
        cost_usd=round(cost_usd, 6), artifacts=artifacts, **_failure_fields(first_failure),
        **score_stats([e["score"] for e in complete]),
    )  # fmt: skip
    if kind != "baseline":  # a pattern baseline's thirty short looks would redraw the plot thirty times
        refresh_reports(run_dir, title=f"{spec.name} · {obs_mode} · {proto.name}")
    return record


def _jobs(policy_path: Path, spec: EnvSpec, protocol: EnvProtocol, obs_mode: str, seeds: list[int],
          allowance: int | None, trace_dir: Path, video_seeds, workers: int, stall: StallRule | None,
          in_turn: bool = False) -> list[dict]:  # fmt: skip
    """One worker job per group of seeds, each with its share of the step allowance (in turn:
    one job, its seeds played one after another)."""
    groups = [list(seeds)] if in_turn else [group[i : i + MAX_EPISODES_PER_WORKER] for group in _distribute(seeds, workers)
                                              for i in range(0, len(group), MAX_EPISODES_PER_WORKER)]  # fmt: skip
    return [
        dict(
            policy_path=str(policy_path),
            family=spec.family,
            env=spec.task_id,
            protocol=protocol.model_dump(),
            obs_mode=obs_mode,
            seeds=group,
            step_allowance=None if allowance is None else (allowance * len(group)) // len(seeds),
            trace_dir=str(trace_dir),
            video_seeds=[s for s in video_seeds if s in group],
            counter_path=str(trace_dir / f"steps-{index}.counter"),
            stall=stall.to_dict() if stall else None,
            in_turn=in_turn,
        )
        for index, group in enumerate(groups)
    ]


def _run(jobs: list[dict], workers: int, episodes: int, limits: SandboxLimits, on_progress) -> list[WorkerOutcome]:
    """Run the jobs, at most `workers` sandboxes at once, reporting combined progress."""
    progress = {i: {"steps": 0, "episodes": []} for i in range(len(jobs))}

    def job_progress(index: int, message: dict) -> None:
        progress[index] = message
        if on_progress:
            done = [e for p in progress.values() for e in p["episodes"]]
            on_progress(dict(steps=sum(p["steps"] for p in progress.values()), episodes_done=len(done),
                             episodes=episodes, scores=[e["score"] for e in done]))  # fmt: skip

    outcomes = []
    for start in range(0, len(jobs), workers):
        outcomes += run_jobs(jobs[start : start + workers], limits, on_progress=lambda i, m, o=start: job_progress(o + i, m))
    return outcomes


def _artifacts(run_dir: Path, trace_dir: Path, eval_id: str, episodes: list[dict], failure_name: str) -> dict[str, str]:
    """Traces folder, videos moved under videos/, the failure contact sheet: paths relative to the run."""
    artifacts = {"traces": str(trace_dir.relative_to(run_dir))}
    for e in episodes:
        if e.get("video"):
            video = unique_path(run_dir / "videos" / f"{eval_id}-seed{e['seed']}.mp4")
            shutil.move(str(trace_dir / e["video"]), video)
            e["video"] = str(video.relative_to(run_dir))
            artifacts.setdefault("video", e["video"])
    sheet = _failure_sheet(run_dir, trace_dir, eval_id, episodes, failure_name)
    if sheet:
        artifacts["sheet"] = str(sheet.relative_to(run_dir))
    return artifacts


def _failure_fields(outcome: WorkerOutcome | None) -> dict:
    if outcome is None:
        return dict(failure_kind=None, failure=None, traceback=None)
    return dict(failure_kind=outcome.failure_kind, failure=outcome.failure,
                traceback=outcome.traceback or outcome.log_tail or None)  # fmt: skip


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
            family=last.family if last else "atari", protocol=last.protocol if last else "unknown", obs_mode=last.obs_mode if last else run_dir.parent.name, role="ledger",
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


def _failure_sheet(run_dir: Path, trace_dir: Path, eval_id: str, episodes: list[dict], failure_name: str) -> Path | None:
    """One contact sheet of the frames before each failure moment (a life or point lost, a long
    stretch without reward), from the first episode that has any."""
    from evaluation.rollout import load_trace
    from record.video import sheet_for_moments

    for e in episodes:
        if not e.get("trace") or not (trace_dir / e["trace"]).exists():
            continue
        moments = load_trace(trace_dir / e["trace"])["moments"]
        if moments:
            path = unique_path(run_dir / "sheets" / f"{eval_id}-seed{e['seed']}.png")
            for m in moments:
                m["label"] = f"seed {e['seed']}: {m['label']}"
            return sheet_for_moments(moments, path, title=f"seed {e['seed']}: frames before each failure ({failure_name}, point lost, no reward)")
    return None
