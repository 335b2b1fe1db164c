"""The one owner of accounting: every env step a role or node takes goes through here, which
charges the run's meter and writes the ledger row. Roles never call `meter.charge` or
`ledger.append` themselves (tests/test_architecture.py holds this).

- `evaluate_candidate`: a policy file on dev seeds, in the sandbox (reusing a recorded
  result of the same code on the same seeds: what makes nodes idempotent on --resume);
- `evaluate_holdout`: the best policy on holdout seeds at the end, from the reserve;
- `evaluate_robustness`: the same under the robustness protocol (Atari: ale-v5 after hl);
- `metered`: any other work that steps envs (a probe, a route search): it gets its own
  meter holding what the run may spend, and one row when it ends, ok or not;
- `sample_observations`: a short random-action rollout whose observations pin detectors;
- `record_interrupted`: steps a killed piece of work took but never reported;
- `record_llm_usage`: model tokens no evaluation row carries (so the ledger sums to the run).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from envs.seeds import split_seeds
from evaluation.evaluate import evaluate, reconcile_interrupted
from evaluation.sample import play_random
from record.ledger import TrialRecord, is_holdout, is_robustness
from record.meter import BudgetExhausted, StepMeter
from record.workspace import policy_hash
from runtime.context import RunContext


def find_trial(ctx: RunContext, policy_hash: str, seeds: list[int], max_frames: int | None = None) -> dict | None:
    """A finished evaluation of this exact policy on these seeds and episode cap, if the
    ledger has one.

    Results are on disk, keyed by policy hash, seeds and cap, before a node returns, so a
    resumed node finds them instead of paying for them twice."""
    cap = ctx.protocol.with_frame_cap(max_frames or ctx.config.eval_max_frames).max_episode_frames
    for r in reversed(ctx.ledger.records()):
        if r.protocol_settings.get("max_episode_frames", cap) != cap:
            continue  # a shorter (or longer) look at the same policy is another result
        # Any role's evaluation of the same code on the same seeds is the same result (the
        # episodes are deterministic given their seeds), so tuning rows are reused too.
        if r.policy_hash == policy_hash and r.seeds == seeds and r.role != "finish" and r.protocol == ctx.config.protocol:
            if r.obs_mode == ctx.config.obs_mode and r.status in ("ok", "failed"):
                return r.model_dump()
    return None


def trial_row(ctx: RunContext, trial: int | None) -> TrialRecord | None:
    """The ledger row of a trial (None if there is none)."""
    return next((r for r in reversed(ctx.ledger.records()) if r.trial == trial), None)


def evaluation_summary(row: dict) -> dict:
    """The part of a ledger row the graph state keeps (runtime.state.Evaluation)."""
    return dict(
        trial=row["trial"],
        status=row["status"],
        score_mean=row["score_mean"],
        score_min=row["score_min"],
        scores=row["scores"],
        env_steps=row["env_steps"],
        traces=row["artifacts"].get("traces", ""),
        policy_hash=row["policy_hash"],
        failure=row.get("failure"),
    )


def evaluate_candidate(ctx: RunContext, policy_path: str | Path, role: str, change_summary: str = "",
                       seeds: list[int] | None = None, kind: str = "evaluation", video: bool = False,
                       max_frames: int | None = None) -> dict | None:  # fmt: skip
    """Evaluate a policy file on dev seeds (reusing a recorded result); None if out of budget.
    `max_frames` caps its episodes (default: the run's cap, HL_EVAL_MAX_FRAMES).

    Tokens a model spent since the last row are carried by this one."""
    seeds = seeds or split_seeds("dev", ctx.config.dev_episodes)
    found = find_trial(ctx, policy_hash(policy_path), seeds, max_frames)
    if found:
        return evaluation_summary(found)
    unbilled = ctx.llm.take_unbilled() if ctx.llm else {"tokens": 0, "cost_usd": 0.0}
    try:
        record = evaluate(
            policy_path, ctx.game, ctx.run_dir, obs_mode=ctx.config.obs_mode, protocol=ctx.config.protocol,
            seeds=seeds, max_frames=max_frames or ctx.config.eval_max_frames, meter=ctx.meter, role=role, kind=kind,
            stall=ctx.stall_rule(),
            workers=min(ctx.config.eval_workers, len(seeds)),
            change_summary=change_summary, for_tuning=True, video_seeds=(seeds[0],) if video else (),
            on_progress=ctx.display.progress if ctx.display else None,
            tokens=unbilled["tokens"], cost_usd=unbilled["cost_usd"],
        )  # fmt: skip
    except BudgetExhausted:
        return None
    if ctx.display:
        ctx.display.trial(record)
    return evaluation_summary(record.model_dump())


def evaluate_holdout(ctx: RunContext, policy_path: str | Path, policy_hash_: str) -> TrialRecord | None:
    """The best policy on holdout seeds, with a video of the first, from the steps held in
    reserve for it. The row of an earlier call (before a resume) is reused. None when no
    budget is left."""
    return _final_evaluation(ctx, policy_path, policy_hash_, is_holdout, ctx.config.protocol, ctx.config.holdout_episodes,
                             "evaluation", "final holdout evaluation of the best policy", video=True)  # fmt: skip


def evaluate_robustness(ctx: RunContext, policy_path: str | Path, policy_hash_: str) -> TrialRecord | None:
    """The best policy on holdout seeds under the robustness protocol (the run's config names
    it; Atari: ale-v5, sticky actions, after a run under hl), from the reserve, after the
    holdout. The row of an earlier call is reused. None when the run has no such check or no
    budget is left."""
    protocol = ctx.config.robustness_protocol
    if protocol is None:
        return None
    return _final_evaluation(ctx, policy_path, policy_hash_, is_robustness, protocol, ctx.config.robustness_episodes,
                             "robustness", f"robustness check: the best policy on holdout seeds under {protocol}")  # fmt: skip


def _final_evaluation(ctx: RunContext, policy_path, policy_hash_: str, same_kind, protocol: str, episodes: int, kind: str,
                      change_summary: str, video: bool = False) -> TrialRecord | None:  # fmt: skip
    """One evaluation of the finish (role "finish", holdout seeds, paid from the reserve)."""
    for r in ctx.ledger.records():
        if same_kind(r) and r.policy_hash == policy_hash_:
            return r  # done before a resume
    if ctx.meter.remaining == 0:
        return None
    seeds = split_seeds("holdout", episodes)
    try:
        return evaluate(policy_path, ctx.game, ctx.run_dir, obs_mode=ctx.config.obs_mode, protocol=protocol, seeds=seeds,
                        max_frames=ctx.config.eval_max_frames, meter=ctx.meter, role="finish", kind=kind,
                        workers=min(ctx.config.eval_workers, len(seeds)), change_summary=change_summary,
                        video_seeds=(seeds[0],) if video else (), use_reserve=True, stall=ctx.stall_rule())  # fmt: skip
    except BudgetExhausted:
        return None


def recover_interrupted(run_dir: Path) -> None:
    """Before a resumed run's meter is built from the ledger: answer every evaluation or
    search a kill cut short with a row carrying its steps."""
    reconcile_interrupted(run_dir)


def count_interrupted(ctx: RunContext) -> None:
    """Count the steps of evaluations and searches a kill cut short (before a node or a
    resumed run starts spending)."""
    added = reconcile_interrupted(ctx.run_dir)
    for row in added:
        ctx.meter.charge(row.env_steps, row.frames, "invalid")


@dataclass
class Work:
    """A piece of metered work: take steps through `meter` (it holds what the run may spend);
    set the row's fields as the work learns them."""

    meter: StepMeter
    protocol: str
    protocol_settings: dict = field(default_factory=dict)
    change_summary: str = ""
    scores: list[float] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    wall_seconds: float | None = None  # default: the time the work took


@contextmanager
def metered(ctx: RunContext, role: str, kind: str, max_steps: int | None = None, change_summary: str = "") -> Iterator[Work]:
    """Run work that steps envs outside the evaluation sandbox (a probe, a search, a recording).

    The work's meter holds min(max_steps, what the run may spend); when the work ends (or
    fails) its steps are charged to the run and one ledger row records them. Raises
    BudgetExhausted before any work starts when nothing is left."""
    allowance = ctx.meter.allowance(max_steps)
    work = Work(meter=StepMeter(budget=allowance), protocol=ctx.config.protocol, change_summary=change_summary)
    started = time.perf_counter()
    failure = None
    try:
        yield work
    except BaseException as err:
        failure = f"{type(err).__name__}: {err}"
        raise
    finally:
        steps, frames = work.meter.used_steps, work.meter.used_frames
        ctx.meter.charge(steps, frames, kind)
        ctx.ledger.append(
            run_id=ctx.run_dir.name, game=ctx.game.name, family=ctx.game.family, role=role, kind=kind,
            status="failed" if failure else "ok", protocol=work.protocol, protocol_settings=work.protocol_settings,
            obs_mode=ctx.config.obs_mode, env_steps=steps, frames=frames, scores=work.scores,
            wall_seconds=round(work.wall_seconds if work.wall_seconds is not None else time.perf_counter() - started, 3),
            change_summary=work.change_summary, artifacts=work.artifacts, failure=failure,
            failure_kind="exception" if failure else None,
        )  # fmt: skip


def sample_observations(ctx: RunContext, actions: list[int], steps: int, role: str, change_summary: str) -> list:
    """Observations of a short rollout of random `actions` (each held 8 steps), every 10th
    step, as the run's policies would see them; charged and recorded as a probe row."""
    with metered(ctx, role, "probe", steps, change_summary) as work:
        return play_random(ctx.game, ctx.protocol, ctx.config.obs_mode, ctx.config.seed, actions, work.meter)


def record_interrupted(ctx: RunContext, role: str, steps: int, failure: str, artifacts: dict[str, str],
                       frames: int | None = None) -> None:  # fmt: skip
    """Steps a killed piece of work took without reporting them (an upper bound the caller
    knows), charged and recorded as an invalid row."""
    frames = steps * ctx.protocol.frame_skip if frames is None else frames
    ctx.meter.charge(steps, frames, "invalid")
    ctx.ledger.append(
        run_id=ctx.run_dir.name, game=ctx.game.name, family=ctx.game.family, role=role, kind="invalid",
        status="invalid", protocol=ctx.config.protocol, obs_mode=ctx.config.obs_mode, env_steps=steps, frames=frames,
        failure_kind="interrupted", failure=failure, artifacts=artifacts,
    )  # fmt: skip


def record_llm_usage(ctx: RunContext, role: str, tokens: int, cost_usd: float) -> None:
    """A row for a role's model calls that no evaluation row carries (no env steps)."""
    ctx.ledger.append(
        run_id=ctx.run_dir.name, game=ctx.game.name, family=ctx.game.family, role=role, kind="llm", status="ok",
        protocol=ctx.config.protocol, obs_mode=ctx.config.obs_mode, tokens=tokens, cost_usd=round(cost_usd, 6),
        change_summary=f"model calls of the {role}",
    )  # fmt: skip
