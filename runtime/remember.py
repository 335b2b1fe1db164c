"""What a run tells memory about its best policy, whichever node raised the best (decide,
or the simplifier when a smaller policy also scores higher); and, across games, which
structure won on which kind of game (by the probe's features, never by the game's name)."""

from __future__ import annotations

from memory.store import best_policy_key
from runtime.context import RunContext


ANY_GAME = "(any game)"  # the memory's "game" of facts that hold across games


def structures_key(kind: str) -> str:
    """The cross-game fact of the structures tried on games of this kind (a probe signature)."""
    return f"structures:{kind}"


def remember_structures(ctx: RunContext, run_id: str, kind: str, tried: list[str], winner: str | None) -> None:
    """One more run on a game of this kind tried these structures and ended with `winner` best
    (None: no policy): counts, so later runs on other games of the kind try it first."""
    if ctx.memory is None or not tried:
        return
    key = structures_key(kind)
    known = ctx.memory.facts(ANY_GAME, ctx.config.obs_mode).get(key)
    value = known.value if known is not None else {"runs": 0, "tried": {}, "wins": {}}
    value["runs"] += 1
    for name in tried:
        value["tried"][name] = value["tried"].get(name, 0) + 1
    if winner:
        value["wins"][winner] = value["wins"].get(winner, 0) + 1
    ctx.memory.add_fact(ANY_GAME, ctx.config.obs_mode, run_id, key, value)


def remembered_wins(ctx: RunContext, kind: str) -> dict[str, int]:
    """Structure -> runs it won on games of this kind (empty: memory knows none)."""
    known = ctx.memory.facts(ANY_GAME, ctx.config.obs_mode).get(structures_key(kind)) if ctx.memory else None
    return dict(known.value.get("wins", {})) if known is not None else {}


def remember_best_policy(ctx: RunContext, run_id: str, policy: dict, score: float) -> None:
    """Keep the best policy structure as a game fact, unless memory already knows a better one."""
    if ctx.memory is None:
        return
    key = best_policy_key(ctx.config.protocol)
    known = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode).get(key)
    if known is None or known.value.get("score", float("-inf")) < score:
        value = {**policy, "score": score, "protocol": ctx.config.protocol}
        route_file = policy.get("route_file")
        if route_file and (ctx.hs.path / route_file).exists():
            # The route is data the policy cannot run without (found by a search of this run).
            value["route_source"] = ctx.hs.read(route_file)
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, run_id, key, value)
