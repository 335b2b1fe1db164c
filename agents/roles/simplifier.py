"""simplifier: after a new best, shrink the heuristic system. Each optional feature of the
controller is removed in turn; the smaller policy is kept (committed) only if its dev-seed
score holds. What remains is exactly the logic the best score needs.

LLM brain: the model removes code it finds unused and ends with a SimplifierReport; the
smaller version is kept only if the dev score holds (the builtin's rule)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.controllers import CONTROLLER_MODULES, acting_features, get_controller
from agents.registry import register
from agents.roles.policy_writer import write_candidate
from record.workspace import policy_hash
from runtime.context import RunContext
from runtime.context import seeds_differ as runs_differ
from runtime.remember import remember_best_policy
from runtime.state import HLState, NodeUpdate
from runtime.steps import evaluate_candidate


class SimplifierReport(BaseModel):
    """What was removed."""

    removed: list[str] = Field(description="features, branches or parameters removed")
    rationale: str


def finish_report(report: SimplifierReport, state: dict, ctx: RunContext) -> NodeUpdate:
    """Keep the model's smaller version only if the dev score holds (the builtin's rule)."""
    best = dict(state["best"])
    if not ctx.hs.dirty():
        return {"best": best, "new_best": False, "trace_summary": "nothing removed"}
    direction = f"simplify: remove {', '.join(report.removed) or 'code'} (score must hold)"
    result = evaluate_candidate(ctx, ctx.hs.path / "policy.py", role="simplifier", change_summary=direction)
    if result is None or result["status"] != "ok" or result["score_mean"] < best["score"]:
        ctx.hs.rollback()
        return {"best": best, "new_best": False, "trace_summary": f"kept the best version: {direction} lost score"}
    commit = ctx.hs.commit(f"{direction}\n\n{report.rationale}\n\nscore {result['score_mean']:g} holds (trial {result['trial']})")
    policy = {**best["policy"], "controller": "llm"}
    best.update(commit=commit, policy_hash=policy_hash(ctx.hs.path / "policy.py"), policy=policy,
                score=max(best["score"], result["score_mean"]), trial=result["trial"])  # fmt: skip
    return {"best": best, "new_best": False, "trace_summary": f"removed {', '.join(report.removed)}"}


def removable(ctx: RunContext, policy: dict) -> list[str]:
    """The features the simplifier tries to remove, in order. Where every seed is the same game
    (hl), a feature that only acts when the game differs from the recorded one (the structure's
    ROBUSTNESS_FEATURES) always holds the score there: it is kept, and its evaluation not paid."""
    name, features = policy.get("controller"), set(policy["features"])
    if name not in CONTROLLER_MODULES:
        return sorted(features)
    return sorted(acting_features(get_controller(name), features, runs_differ(ctx)))


@register("simplifier", tools=["read_file", "write_file", "patch_file", "evaluate_policy"], report=SimplifierReport,
          finish=finish_report)  # fmt: skip
def simplifier(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Remove features whose removal keeps the best dev score; commit the smaller policy."""
    best = dict(state["best"])
    policy = dict(best["policy"])
    facts = state["detectors"]
    removed = []
    for feature in removable(ctx, policy):
        features = set(policy["features"]) - {feature}
        direction = f"simplify: remove {feature} (score must hold)"
        candidate = write_candidate(ctx, facts, policy["params"], features, direction, "simplifier", policy.get("controller"))
        result = evaluate_candidate(ctx, ctx.hs.path / "policy.py", role="simplifier", change_summary=direction)
        if result is None:
            ctx.hs.rollback()
            break
        if result["status"] == "ok" and result["score_mean"] >= best["score"]:
            commit = ctx.hs.commit(f"Remove {feature}: the dev score holds at {result['score_mean']:g} without it")
            policy = {**policy, "features": candidate["features"]}
            if result["score_mean"] > best["score"]:
                best["env_steps"] = ctx.meter.used_steps
                remember_best_policy(ctx, state["run_id"], policy, result["score_mean"])  # memory keeps the best
            best.update(commit=commit, policy_hash=candidate["policy_hash"], policy=policy, score=result["score_mean"],
                        trial=result["trial"])  # fmt: skip
            removed.append(feature)
        else:
            ctx.hs.rollback()
    summary = f"removed {', '.join(removed)}" if removed else "nothing removable"
    return {"best": best, "new_best": False, "trace_summary": summary}
