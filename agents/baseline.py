"""The pattern baseline: before any structure, the best blind pattern of actions.

Every distinct action held throughout, uniform random play (every step, each action held
for a few frames as the published random agent played, among the actions that fire, and over
the full action set when the probe saw some act alike), the player's opposite moves
alternated, and each move interleaved with FIRE, are played briefly on the meter (episodes cut at a short cap, the same
dev seed for all: common random numbers, so the comparison is of the patterns, not of the
seeds) and halved round after round with a doubling cap (successive halving): a wrong
pattern costs a few hundred steps, the good ones are looked at longer. The winner becomes the
run's first policy (agents/controllers/atari/pattern.py); any structure must beat it to be
accepted, so a run always ends with an evaluated policy, and one that reads the game shows
what reading it is worth.
"""

from __future__ import annotations

import math
from typing import Callable

from agents.controllers import get_controller
from envs.seeds import split_seeds
from runtime import steps
from runtime.context import RunContext

SHARE = 10  # the baseline may take 1/SHARE of the run's budget ...
LIMITS = (4_000, 50_000)  # ... within these env steps
MIN_STEPS = 200  # the shortest look at a pattern (env steps)
RANDOM_HOLD_FRAMES = 6  # the published random agent chose an action every 6 frames (10 a second)


def patterns(facts: dict, frame_skip: int = 1) -> list[tuple[dict, set[str]]]:
    """The candidate patterns as (pattern.py's parameters, features): each distinct action
    held, random play, then the alternations."""
    found = [({"first_action": a}, set()) for a in facts.get("distinct_actions") or range(len(facts["action_names"]))]
    # Uniform random play, the published floor: every step, and (as the published random
    # agent did, ten actions a second) each action held for RANDOM_HOLD_FRAMES.
    found.append(({"first_action": 0, "jitter": 1.0}, {"jitter"}))
    held = math.ceil(RANDOM_HOLD_FRAMES / frame_skip)
    if held > 1:
        found.append(({"first_action": 0, "jitter": 1.0, "jitter_hold": held}, {"jitter"}))
    # Random play that always shoots (BattleZone: 3,333 over 3 seeds against 2,333 for all actions).
    pattern = get_controller("pattern")
    if pattern.firing_actions(facts):
        found.append(({"first_action": 0, "jitter": 1.0}, {"jitter", "fire_only"}))
    # Random play over the full action set, the published random agent's, where the probe saw
    # some actions act alike: one may act only in states it did not see. Bowling's FIRE looked
    # like NOOP and UPFIRE like UP; random play among NOOP, UP and DOWN never bowls (0 in
    # 17,000 frames), over all six actions it scores (10 in 6,000 frames, ale-py, seed 0).
    every = ({"first_action": 0, "jitter": 1.0, "jitter_hold": held}, {"jitter", "all_actions"})
    if pattern.plays_as(*every, facts)[1] != {"jitter"}:
        found.append(every)
    alternate = lambda a, hold_a, b, hold_b: (dict(first_action=a, hold_first=hold_a, second_action=b, hold_second=hold_b),  # noqa: E731
                                              {"alternate"})  # fmt: skip
    m = facts.get("movement") or {}
    for a, b in ((m.get("left"), m.get("right")), (m.get("up"), m.get("down"))):
        if a is not None and b is not None:
            found.append(alternate(a, 8, b, 8))
    fire = (facts.get("actions") or {}).get("fire")
    if fire is not None and fire in (facts.get("distinct_actions") or [fire]):  # FIRE does something of its own
        for move in dict.fromkeys(m.get(k) for k in ("left", "right", "up", "down")):
            if move is not None and move != fire:
                found.append(alternate(move, 4, fire, 1))
    return found


def allowance(budget: int) -> int:
    """Env steps the baseline may take from a run of `budget`."""
    return min(max(budget // SHARE, LIMITS[0]), LIMITS[1])


def rank(results: list[tuple[tuple[dict, set[str]], float | None]]) -> list:
    """((params, features), score) pairs, best first. Among equal scores random play comes
    first, the published random agent's (actions held) before every-step: when a short look
    scores nothing at all (CrazyClimber: every pattern 0 in 357 frames, where the random agent
    makes 10,781 in a game), random play is the pattern that scores once episodes are long,
    and it is the floor the run is measured against. Then the order of `patterns()`."""
    random_features = get_controller("pattern").RANDOM_FEATURES

    def key(ps):
        (params, features), score = ps
        return (-math.inf if score is None else score, bool(features & random_features), params.get("jitter_hold", 1))

    return sorted(results, key=key, reverse=True)  # stable: equal keys keep their order


def tied_fixed_pattern(ranked: list) -> dict | None:
    """When random play leads a round only by the tie rule (`rank`): the best fixed pattern
    that scored the same, as {"params", "features"}; else None. A tie in short looks says
    nothing about whole games: IceHockey's every look scored 0, random play then scored -12.3
    over whole games where "hold NOOP" scores 0, so the fixed pattern is played in full too,
    and decide keeps the better."""
    random_features = get_controller("pattern").RANDOM_FEATURES
    (_, winner_features), winner_score = ranked[0]
    if winner_score is None or not winner_features & random_features:
        return None
    for (params, features), score in ranked[1:]:
        if score == winner_score and not features & random_features:
            return dict(params=params, features=sorted(features))
    return None


def halve(alive: list, rounds: int, look: Callable[[int, list], list]) -> tuple[list, list, dict | None]:
    """Successive halving: round r scores the patterns still in (`look(r, alive)` -> [(pattern,
    score)], fewer when the budget ran out) and keeps the better half (`rank`). Returns (the
    patterns left, best first; each round's ranked results; the fixed pattern that tied random
    play in the last round that still had one, `tied_fixed_pattern`: when every look ties,
    the last rounds are random play against random play)."""
    random_features = get_controller("pattern").RANDOM_FEATURES
    history, with_fixed = [], None
    for r in range(rounds):
        results = look(r, alive)
        if not results:
            break
        ranked = rank(results)
        history.append(ranked)
        if any(not features & random_features for (_, features), _ in ranked):
            with_fixed = ranked
        alive = [p for p, _ in ranked[: max(1, math.ceil(len(ranked) / 2))]]
        if len(alive) == 1:
            break
    return alive, history, tied_fixed_pattern(with_fixed) if with_fixed else None


def run_baseline(ctx: RunContext, facts: dict) -> dict:
    """Successive halving over `patterns(facts)`; every look is a ledger row of kind
    "baseline". Returns {"params", "features": the winner's, "rounds": [[(description, score), ...]],
    "env_steps": what it took, "patterns": how many, "tied": a fixed pattern to play in full
    beside random play (`halve`)}."""
    pattern = get_controller("pattern")
    names = facts["action_names"]
    alive = patterns(facts, ctx.protocol.frame_skip)
    total = allowance(ctx.config.budget)
    rounds = max(1, math.ceil(math.log2(len(alive))))
    seeds = split_seeds("dev", 1)
    folder = ctx.run_dir / "baseline"
    before = ctx.meter.used_steps

    def look(r: int, alive: list) -> list:
        # Each round has total / rounds steps, shared by the patterns still in.
        cap = max(MIN_STEPS, total // rounds // len(alive)) * ctx.protocol.frame_skip
        results = []
        for params, features in alive:
            code = pattern.write_policy(params, features, facts, "pattern baseline")
            path = folder / "-".join([*(f"{k}{v}" for k, v in sorted(params.items())), *sorted(features - {"jitter"})]) / "policy.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            result = steps.evaluate_candidate(ctx, path, role="policy_writer", kind="baseline", seeds=seeds, max_frames=cap,
                                              change_summary=f"pattern baseline, round {r + 1}: {pattern.describe(pattern.clamp(params, facts), features, names)}")  # fmt: skip
            if result is None:
                break  # the budget is spent: judge what was seen
            results.append(((params, features), result["score_mean"] if result["status"] == "ok" else None))
        return results

    alive, history, tied = halve(alive, rounds, look)
    params, features = alive[0]
    if tied:
        tied["params"] = pattern.clamp(tied["params"], facts)
    rounds_seen = [[(pattern.describe(pattern.clamp(p, facts), f, names), s) for (p, f), s in ranked] for ranked in history]
    return dict(params=pattern.clamp(params, facts), features=sorted(features), rounds=rounds_seen, tied=tied,
                env_steps=ctx.meter.used_steps - before, patterns=len(patterns(facts, ctx.protocol.frame_skip)))  # fmt: skip
