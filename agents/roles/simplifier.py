"""simplifier: after a new best, shrink the heuristic system. Each optional feature of the
controller is removed in turn; the smaller policy is kept (committed) only if its dev-seed
score holds. What remains is exactly the logic the best score needs."""

from __future__ import annotations

from agents.roles.policy_writer import write_candidate
from agents.registry import register
from runtime.context import RunContext
from graph.nodes import run_evaluation
from graph.state import HLState


@register("simplifier", tools=["read_file", "write_file", "patch_file", "evaluate_policy"])
def simplifier(state: HLState, ctx: RunContext) -> dict:
    """Remove features whose removal keeps the best dev score; commit the smaller policy."""
    best = dict(state["best"])
    policy = dict(best["policy"])
    facts = state["detectors"]
    removed = []
    for feature in sorted(policy["features"]):
        features = set(policy["features"]) - {feature}
        direction = f"simplify: remove {feature} (score must hold)"
        candidate = write_candidate(ctx, facts, policy["params"], features, direction, "simplifier", policy.get("controller"))
        result = run_evaluation(ctx, ctx.hs.path / "policy.py", role="simplifier", change_summary=direction)
        if result is None:
            ctx.hs.rollback()
            break
        if result["status"] == "ok" and result["score_mean"] >= best["score"]:
            commit = ctx.hs.commit(f"Remove {feature}: the dev score holds at {result['score_mean']:g} without it")
            policy = {**policy, "features": candidate["features"]}
            if result["score_mean"] > best["score"]:
                best["env_steps"] = ctx.meter.used_steps
            best.update(commit=commit, policy_hash=candidate["policy_hash"], policy=policy, score=result["score_mean"],
                        trial=result["trial"])  # fmt: skip
            removed.append(feature)
        else:
            ctx.hs.rollback()
    summary = f"removed {', '.join(removed)}" if removed else "nothing removable"
    return {"best": best, "new_best": False, "trace_summary": summary}
