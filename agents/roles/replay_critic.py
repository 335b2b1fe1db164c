"""replay-critic: read the traces of the last evaluation, find the failure moments, and write
a diagnosis: what failed, evidence (steps, contact sheet), hypothesis, proposed direction.

Directions are named, concrete parameter or feature changes of the current controller
(each controller module lists its own, agents/controllers/). A
direction already rejected (in this run, or in memory from earlier runs on this game) is
not proposed again unless the failure it addressed got worse since (new evidence).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from agents.controllers import CONTROLLER_MODULES, acting_features, apply_change, effective, get_controller
from agents.registry import register
from runtime.context import RunContext
from runtime.context import seeds_differ as runs_differ
from runtime.state import HLState, NodeUpdate
from runtime.steps import trial_row
from tools.diagnose import EpisodeFindings, analyse_trial, describe_stall


def failure_kinds(f: EpisodeFindings, features: set[str], floor: float | None = None) -> list[tuple[str, str]]:
    """Every failure an episode shows, as (kind, what happened), the most telling first:
    serve (nothing happens for most of a timed-out episode, or the evaluation cut it because
    the tracked objects stood still: nothing in play), stall (a periodic loop, a long stretch
    without reward, or a cut on the reward alone), lost (lives or points lost, or the game
    ended with lives left), timeout (the frame cap was hit), and last the symptom they
    explain, score (no points, or fewer than `floor`, the blind pattern baseline's score),
    which is a failure even when nothing else shows. ("none", ...) when there is nothing."""
    kinds = []
    lost = f.lives_lost + f.points_lost
    if f.stall:  # the evaluation's own evidence, from the watched state: what the trace shows
        kinds.append(("serve" if f.stall.get("watched") else "stall", describe_stall(f.stall)))
    if f.timeout and f.longest_stall > 0.5 * f.length and lost == 0 and "fire_to_serve" not in features:
        kinds.append(("serve", f"nothing happens for {f.longest_stall} steps from step {f.stall_start}: no ball in play"))
    # A long stretch without reward is a failure whether or not the episode ran to the cap
    # (a game without lives ends on a clock): past 2,000 steps and half the episode.
    if f.loop_period is not None or (f.longest_stall > 2000 and (f.timeout or f.longest_stall > 0.5 * f.length)):
        kinds.append(("stall", f"periodic loop: RAM repeats every {f.loop_period} steps" if f.loop_period
                      else f"reward stall of {f.longest_stall} steps from step {f.stall_start}"))  # fmt: skip
    if lost or f.game_over_with_lives:
        steps = [m.step for m in f.moments if m.kind in ("life_lost", "point_lost")][:8]
        what = f"{f.lives_lost} lives and {f.points_lost} points lost (at steps {steps})"
        if f.game_over_with_lives:
            what += f"; the game ended at step {f.length} with lives left"
        kinds.append(("lost", what))
    if f.timeout:
        kinds.append(("timeout", f"the episode hit the frame cap at step {f.length} with score {f.score:g}"))
    if f.score <= 0:
        kinds.append(("score", f"the episode scored {f.score:g}: no points in {f.length} steps"))
    elif floor is not None and f.score < floor:
        kinds.append(("score", f"the episode scored {f.score:g}, below the blind pattern baseline's {floor:g}"))
    return kinds or [("none", "no failure found in the traces")]


def _already_rejected(ctx: RunContext, state: HLState, direction: str) -> bool:
    tried = [h for h in state.get("history", []) if h["direction"] == direction and h["outcome"] == "rejected"]
    if tried:
        return True
    if ctx.memory is not None:
        # A direction rejected by an earlier run on this game (or a near paraphrase of it).
        return ctx.memory.was_rejected(ctx.game.name, ctx.config.obs_mode, direction) is not None
    return False


# -- LLM brain ---------------------------------------------------------------------------------


class CriticReport(BaseModel):
    """The diagnosis of the last evaluation."""

    failure: Literal["score", "lost", "stall", "serve", "timeout", "crash", "none"]
    what: str = Field(description="what failed, concretely")
    evidence: str = Field(description="trial, seed, steps, contact sheet")
    hypothesis: str = Field(description="why it failed")
    direction: str = Field(description="one concrete change for the policy-writer (empty if none)")


def finish_report(report: CriticReport, state: dict, ctx: RunContext) -> NodeUpdate:
    evaluation = state.get("evaluation") or {}
    row = trial_row(ctx, evaluation.get("trial"))
    diagnosis = dict(failure=report.failure, what=report.what, evidence=report.evidence, hypothesis=report.hypothesis,
                     direction=report.direction, params={}, sheet=row.artifacts.get("sheet") if row else None)  # fmt: skip
    if ctx.memory is not None and report.failure != "none":
        ctx.memory.add_failure(ctx.game.name, ctx.config.obs_mode, state["run_id"], report.what, evidence=report.evidence,
                               trial=evaluation.get("trial"))  # fmt: skip
    _write_note(ctx, state, diagnosis)
    return {"diagnosis": diagnosis, "trace_summary": f"{report.failure}: {report.direction or 'no direction'}"}


# -- builtin brain -------------------------------------------------------------------------------


@register("replay_critic", tools=["diagnose_last_evaluation", "view_contact_sheet", "view_frames", "read_file", "query_memory", "add_memory"],
          report=CriticReport, finish=finish_report)  # fmt: skip
def replay_critic(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Find failure moments in the last evaluation's traces and propose a direction."""
    evaluation = state.get("evaluation")
    best = state.get("best") or {}
    candidate = state.get("candidate") or {}
    policy = best.get("policy") or candidate
    if evaluation and candidate.get("controller") and candidate.get("controller") != policy.get("controller"):
        # A candidate of another structure (the first structure after the baseline, a
        # challenger, a second turn). decide runs after the critic, so: a score that cannot
        # beat the best's loses, the best's structure goes on, and the best's own episodes say
        # what to change next (a diagnosis of the loser's is a change the policy-writer cannot
        # apply); otherwise it may become the best and is diagnosed in its own terms.
        score = evaluation.get("score_mean") if evaluation["status"] == "ok" else None
        if best.get("trial") is not None and score is not None and score <= best["score"]:
            evaluation = {"status": "ok", "trial": best["trial"]}
        else:
            policy = candidate
    if not evaluation:
        return {"diagnosis": None}
    if evaluation["status"] == "failed":
        diagnosis = dict(failure="crash", what=f"the candidate failed: {evaluation.get('failure')}",
                         evidence=f"trial {evaluation['trial']}", hypothesis="the change broke the policy",
                         direction="", params={}, sheet=None)  # fmt: skip
        return {"diagnosis": diagnosis, "trace_summary": diagnosis["what"]}

    row = trial_row(ctx, evaluation["trial"])
    findings = analyse_trial(ctx.run_dir, row)
    if not findings:
        return {"diagnosis": None}
    # The worst episode says most (under hl they are all the same game).
    f = min(findings, key=lambda e: e.score)
    name = policy.get("controller") or state["detectors"]["controller"]
    # A policy an LLM wrote has no catalogue of named changes: the diagnosis stands alone.
    controller = get_controller(name) if name in CONTROLLER_MODULES else None
    params, features = policy.get("params", {}), set(policy.get("features", []))
    kinds = failure_kinds(f, features, floor=(state.get("baseline") or {}).get("score"))
    if controller is not None and hasattr(controller, "order_failures"):
        kinds = controller.order_failures(kinds, f, ctx.hs.path)  # the controller knows what its failures mean

    direction, hypothesis, change = "", "", {}
    seeds_differ = runs_differ(ctx)
    under_judgement = (state.get("candidate") or {}).get("direction")
    # The most telling failure first; when its directions are all tried, the next one's.
    kind, what = kinds[0]
    for failure, description in kinds if controller else []:
        for candidate, why, candidate_change in controller.DIRECTIONS.get(failure, []):
            if candidate == under_judgement or _already_rejected(ctx, state, candidate):
                continue  # decide is judging it right now, or it was rejected before
            if not changes_what_is_seen(controller, params, features, candidate_change, seeds_differ, state["detectors"]):
                continue  # feature present, parameter at its limit, or under hl a re-sync's
            direction, hypothesis, change = candidate, why, candidate_change
            kind, what = failure, description
            break
        if direction:
            break

    sheet = row.artifacts.get("sheet")
    evidence = f"trial {evaluation['trial']}, seed {f.seed}: score {f.score:g} in {f.length} steps; {what}"
    if sheet:
        evidence += f"; contact sheet {sheet}"
    diagnosis = dict(failure=kind, what=what, evidence=evidence, hypothesis=hypothesis or "no untried direction left",
                     direction=direction, params=json.loads(json.dumps(change, default=sorted)), sheet=sheet,
                     controller=name if controller else None)  # fmt: skip
    if ctx.memory is not None and kind != "none":
        ctx.memory.add_failure(ctx.game.name, ctx.config.obs_mode, state["run_id"], what, evidence=evidence,
                               trial=evaluation["trial"])  # fmt: skip
    _write_note(ctx, state, diagnosis)
    return {"diagnosis": diagnosis, "trace_summary": f"{kind}: {direction or 'no new direction'}"}


def changes_what_is_seen(controller, params: dict, features: set[str], change: dict, seeds_differ: bool,
                         facts: dict | None = None) -> bool:  # fmt: skip
    """Whether a direction's change could show in an evaluation: a search always can; a feature
    or parameter change only if the code it generates differs in what acts (where every seed
    is the same game, a structure's ROBUSTNESS_FEATURES never act; `facts`, the game's, say
    more: a pattern's fire_only in a game where no action fires)."""
    if change.get("search"):
        return True
    seen = lambda p, f: effective(controller, p, acting_features(controller, f, seeds_differ), facts)  # noqa: E731
    return seen(*apply_change(controller, params, features, change)) != seen(params, features)


def _write_note(ctx: RunContext, state: HLState, diagnosis: dict) -> None:
    folder = ctx.run_dir / "diagnoses"
    folder.mkdir(exist_ok=True)
    path = folder / f"iteration-{state.get('iteration', 0):03d}.md"
    if path.exists():
        return  # written before a resume: the diagnosis is deterministic, keep the first
    path.write_text(
        f"# Diagnosis, iteration {state.get('iteration', 0)}\n\n"
        f"- **What failed:** {diagnosis['what']}\n- **Evidence:** {diagnosis['evidence']}\n"
        f"- **Hypothesis:** {diagnosis['hypothesis']}\n- **Direction:** {diagnosis['direction'] or '(none: tune parameters)'}\n"
    )
