"""What a run tells memory about its best policy, whichever node raised the best (decide,
or the simplifier when a smaller policy also scores higher)."""

from __future__ import annotations

from memory.store import best_policy_key
from runtime.context import RunContext


def remember_best_policy(ctx: RunContext, run_id: str, policy: dict, score: float) -> None:
    """Keep the best policy structure as a game fact, unless memory already knows a better one."""
    if ctx.memory is None:
        return
    key = best_policy_key(ctx.config.protocol)
    known = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode).get(key)
    if known is None or known.value.get("score", float("-inf")) < score:
        value = {**policy, "score": score, "protocol": ctx.config.protocol}
        if policy.get("controller") == "route" and (ctx.hs.path / "route.py").exists():
            # The route is data the policy cannot run without (found by a search of this run).
            value["route_source"] = ctx.hs.read("route.py")
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, run_id, key, value)
