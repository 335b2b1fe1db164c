"""Once a route follower's (route, screen_route) route is over: what it plays (the `play_on`
feature) and how the critic reads an episode that got there (`route_over_first`).

A route is the best trajectory a search found, often a few thousand steps of an episode that
goes on much longer. After it the follower plays random distinct actions, each held
`after_hold` frames, or holds one action (`after_action`, a choice the parameter search
makes among the game's distinct actions). Random play is the default: starting from the
pattern baseline's held action instead (the winner of short looks from the game's start)
was tried on an Atari57 sweep and came out about even on twelve games re-run without it
(ChopperCommand 1,600 -> 2,700, Defender 4,850 -> 5,500, MsPacman 930 -> 1,060 against
NameThisGame 3,840 -> 3,620, SpaceInvaders 1,910 -> 1,515; docs/results.md).
"""

from __future__ import annotations

PLAY_ON = "when the route is over, play random distinct actions held a few frames (or hold `after_action`), instead of standing still"

PLAY_ON_PARAMS = {
    "after_action": (-1, -1, 17, "the action held after the route (-1: random distinct actions, each held `after_hold` frames)"),
    "after_hold": (6, 1, 64, "frames each random action is held after the route"),
}


# A critic direction for either follower: a held action the parameter search picked may earn
# less than random play where the game goes next.
PLAY_AT_RANDOM = ("play at random after the route", "the action held after the route earns less than random play would",
                  {"params": {"after_action": ("set", -1)}})  # fmt: skip


def plays_as(params: dict, features: set[str], facts: dict | None = None) -> tuple[dict, set[str]]:
    """Holding one action, the random play's hold never acts (controllers' `effective`)."""
    if "play_on" in features and params.get("after_action", -1) >= 0:
        return {k: v for k, v in params.items() if k != "after_hold"}, features
    return params, features


def words(params: dict, names: list[str]) -> str:
    """The docstring line for play_on."""
    held = held_action(params, names)
    if held is not None:
        return f"When the route is over it holds {names[held]} (`after_action`)."
    return "When the route is over it plays random distinct actions, each held for `after_hold` frames."


def held_action(params: dict, names: list[str]) -> int | None:
    """The action index held after the route, or None for random play."""
    action = params.get("after_action", -1)
    return action % len(names) if action >= 0 else None


def route_over_first(kinds: list[tuple[str, str]], findings, score: float | None) -> list[tuple[str, str]]:
    """An episode that scored all the route scores followed the route to its end, whatever
    ended it afterwards (the frame cap, or lives lost standing still): the route is what falls
    short (search further), not the following. Otherwise the critic's order stands."""
    if score is not None and findings.score >= score:
        after = ", then stood until the frame cap" if findings.timeout else ", and what came after it scored nothing more"
        return [("timeout", f"the route is over: the policy scored all {score:g} of the route{after}")] + [
            k for k in kinds if k[0] != "timeout"
        ]
    return kinds
