"""The pattern structure and the baseline's candidates: a probe that found no player, or no
RAM byte a structure needs, still gives facts and a structure (never a dead end); the
generated pattern policies play what their docstrings say. Fast: no emulator (the baseline
on the meter runs in every graph.run test)."""

from __future__ import annotations

import types

import pytest

from agents.baseline import allowance, patterns
from agents.controllers.atari import pattern, screen_route
from agents.controllers.atari.facts import facts_from_probe
from probe.atari import ActionEffect, MovementLabels, ObjectInfo, ProbeReport

NAMES = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN"]


def _object(name, xs, ys):
    return ObjectInfo(name=name, colour=[200, 72, 72], colour_hex="#c84848", width=8.0, height=10.0, area=80.0,
                      instances_per_frame=1.0, visible_fraction=1.0, mean_speed=1.5, speed_p95=3.0, x_range=xs, y_range=ys)  # fmt: skip


def _report(player: bool, obs_mode: str = "ram") -> ProbeReport:
    """A probe of a game where the player walks on both axes (or of one with no player found),
    with no RAM byte fitted to anything; FIRE acts like NOOP in it."""
    return ProbeReport(
        game="Maze", task_id="Maze-v5", protocol="hl", obs_mode=obs_mode, seed=0, config={}, action_names=NAMES,
        hold_steps=32, ram_analysis=True, movement=MovementLabels(up=2, right=3, left=4, down=5, fire=1),
        actions=[ActionEffect(index=i, name=n, equivalent_to=0 if n == "FIRE" else None) for i, n in enumerate(NAMES)],
        player=_object("player", [20.0, 140.0], [30.0, 180.0]) if player else None,
        player_moves_x=player, player_moves_y=player, objects=[],
    )  # fmt: skip


def _policy(source: str, steps: int = 12):
    module = types.ModuleType("pattern_policy")
    exec(compile(source, "policy.py", "exec"), module.__dict__)
    policy = module.Policy()
    policy.reset(0)
    return [policy.act(None) for _ in range(steps)]


@pytest.mark.parametrize("player, obs_mode, passed_over", [
    (False, "ram", []),  # no player: only the screen route and the pattern suit
    (True, "ram", ["route: the probe found no RAM byte for the player's x and y (|r| >= 0.9)"]),
    (True, "vision", ["route: the route controller reads positions from RAM: use --obs ram"]),
])  # fmt: skip
def test_a_probe_that_found_too_little_for_a_structure_falls_back_to_the_screen_route(player, obs_mode, passed_over):
    facts = facts_from_probe(_report(player, obs_mode), obs_mode, "hl")
    # The screen route reads nothing the probe must find (the screen and the score); the
    # pattern, which reads nothing at all, is the baseline every run plays first.
    assert facts["controller"] == "screen_route" and facts["unsuited"] == passed_over
    assert facts["distinct_actions"] == [0, 2, 3, 4, 5]  # FIRE did what NOOP did
    for structure in (pattern, screen_route):
        assert structure.fixture_actions(facts) == list(range(len(NAMES)))
        assert "def read_" not in structure.write_detectors(facts, obs_mode)  # nothing to read, nothing pinned


def test_pattern_policies_play_what_they_say():
    facts = {"action_names": NAMES}
    held = pattern.write_policy({"first_action": 3}, set(), facts, "test")
    assert "Pattern controller: hold RIGHT throughout." in held and "hold_second" not in held
    assert _policy(held) == [3] * 12
    params = dict(first_action=4, hold_first=3, second_action=1, hold_second=2)
    alternating = pattern.write_policy(params, {"alternate"}, facts, "test")
    assert "hold LEFT for 3 steps, then FIRE for 2 steps, and repeat" in alternating
    assert _policy(alternating) == [4, 4, 4, 1, 1] * 2 + [4, 4]
    assert pattern.clamp({"first_action": 20}, facts)["first_action"] == 20 % len(NAMES)  # any game's action set


def test_the_baseline_tries_each_distinct_action_then_alternations_within_a_share_of_the_budget():
    facts = facts_from_probe(_report(True), "ram", "hl")
    found = patterns(facts)
    held = [p["first_action"] for p, features in found if not features]
    assert held == facts["distinct_actions"]
    alternating = lambda found: [(p["first_action"], p["second_action"]) for p, f in found if f == {"alternate"}]  # noqa: E731
    assert alternating(found) == [(4, 3), (2, 5)]  # opposite moves; FIRE did what NOOP did, so no move with FIRE
    facts["distinct_actions"].insert(1, 1)  # a FIRE that does something of its own: each move with FIRE too
    assert alternating(patterns(facts)) == [(4, 3), (2, 5), (4, 1), (3, 1), (2, 1), (5, 1)]
    assert [allowance(b) for b in (10_000, 200_000, 1_000_000, 10_000_000)] == [4_000, 20_000, 50_000, 50_000]
    randoms = lambda found: [p.get("jitter_hold", 1) for p, f in found if f == {"jitter"}]  # noqa: E731
    assert randoms(found) == [1, 6]  # every frame, and ten actions a second as the published random agent
    assert randoms(patterns(facts, frame_skip=4)) == [1, 2]  # the same 6 frames in steps of 4 frames


def test_random_play_holds_each_drawn_action_for_jitter_hold_steps():
    facts = {"action_names": NAMES, "distinct_actions": [0, 2, 3, 4]}
    params = {"first_action": 0, "jitter": 1.0, "jitter_hold": 3}
    code = pattern.write_policy(params, {"jitter"}, facts, "test")
    assert "play random distinct actions, each held for 3 steps" in code
    played = _policy(code, steps=30)
    runs = [played[i : i + 3] for i in range(0, 30, 3)]
    assert all(len(set(r)) == 1 for r in runs) and len({r[0] for r in runs}) > 1  # held in threes, and random
    assert set(played) <= {0, 2, 3, 4}
    assert _policy(code, steps=30) == played  # the episode's seed: the same steps every replay


def test_among_equal_scores_the_baseline_keeps_random_play():
    from agents.baseline import rank

    noop, up = ({"first_action": 0}, set()), ({"first_action": 2}, set())
    every_step = ({"first_action": 0, "jitter": 1.0}, {"jitter"})
    held = ({"first_action": 0, "jitter": 1.0, "jitter_hold": 6}, {"jitter"})
    # A look too short to score: random play, held as the published agent played, goes on.
    order = [p for p, _ in rank([(noop, 0.0), (up, 0.0), (every_step, 0.0), (held, 0.0)])]
    assert order == [held, every_step, noop, up]
    # A score decides before anything else, and a failed look comes last.
    order = [p for p, _ in rank([(noop, 0.0), (held, None), (up, 3.0), (every_step, -1.0)])]
    assert order == [up, noop, every_step, held]


def test_a_fixed_pattern_that_tied_random_play_is_kept_to_be_played_in_full():
    from agents.baseline import rank, tied_fixed_pattern

    noop, up = ({"first_action": 0}, set()), ({"first_action": 2}, set())
    held = ({"first_action": 0, "jitter": 1.0, "jitter_hold": 6}, {"jitter"})
    # Every look scored 0 (IceHockey): random play wins the tie, NOOP is played in full beside it.
    assert tied_fixed_pattern(rank([(up, 0.0), (held, 0.0), (noop, 0.0)])) == {"params": {"first_action": 2}, "features": []}
    # Random play won on score, or a fixed pattern won: nothing to play again.
    assert tied_fixed_pattern(rank([(noop, 0.0), (held, 1.0)])) is None
    assert tied_fixed_pattern(rank([(noop, 2.0), (held, 1.0)])) is None
    assert tied_fixed_pattern(rank([(noop, None), (held, None)])) is None


def test_when_every_short_look_ties_the_halving_keeps_a_fixed_pattern_to_play_in_full():
    """The real halving over an 18-action game's patterns, every look scoring 0: random play
    wins, and the last rounds are random play against random play, so the tie is the one of the
    last round that still had a fixed pattern. (A scoring function stands in for the
    evaluations: the halving's own logic is under test; the looks' evaluations are the
    evaluation harness's, tested with real EnvPool elsewhere.)"""
    from agents.baseline import halve

    facts = {"action_names": ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
                              "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE"],
             "movement": {"left": 4, "right": 3, "up": 2, "down": 5}, "actions": {"fire": 1}}  # fmt: skip
    found = patterns(facts)
    rounds = 5
    alive, history, tied = halve(found, rounds, lambda r, alive: [(p, 0.0) for p in alive])
    assert "jitter" in alive[0][1] and all("jitter" in features for (_, features), _ in history[-1])
    assert tied == {"params": {"first_action": 0}, "features": []}  # hold NOOP, the first fixed pattern
    # A fixed pattern that lost its last look is not played again.
    scored = lambda r, alive: [(p, -1.0 if not p[1] and r >= 2 else 0.0) for p in alive]  # noqa: E731
    assert halve(found, rounds, scored)[2] is None
    # The budget ran out in the first round: what was seen is judged.
    assert halve(found, rounds, lambda r, alive: [(p, 0.0) for p in alive[:3]] if r == 0 else [])[0] == [found[0], found[1]]


def test_a_direction_that_changes_only_the_fixed_actions_of_random_play_changes_nothing():
    from agents.roles.replay_critic import changes_what_is_seen

    random_play = {**pattern.clamp({"jitter": 1.0, "jitter_hold": 6}, {"action_names": ["NOOP", "FIRE", "UP"]})}
    alternate = {"features": {"+alternate"}, "params": {"second_action": ("set", 1)}}
    assert not changes_what_is_seen(pattern, random_play, {"jitter"}, alternate, seeds_differ=False)
    assert not changes_what_is_seen(pattern, random_play, {"jitter"}, {"params": {"hold_first": ("scale", 2.0)}}, False)
    # Below a jitter of 1 the held actions are played, and the same directions change the game.
    sometimes = {**random_play, "jitter": 0.5}
    assert changes_what_is_seen(pattern, sometimes, {"jitter"}, alternate, seeds_differ=False)
    assert changes_what_is_seen(pattern, random_play, {"jitter"}, {"params": {"jitter": ("set", 0.5)}}, False)


def test_random_play_that_always_shoots_draws_only_the_actions_that_fire():
    names = ["NOOP", "FIRE", "UP", "RIGHT", "UPFIRE", "RIGHTFIRE"]
    facts = {"action_names": names, "distinct_actions": [0, 1, 2, 3, 4, 5]}
    code = pattern.write_policy({"first_action": 0, "jitter": 1.0}, {"jitter", "fire_only"}, facts, "test")
    assert "play a random firing action every step" in code
    played = _policy(code, steps=60)
    assert set(played) <= {1, 4, 5} and len(set(played)) > 1
    # The baseline tries it where some actions fire and some do not; a game where every
    # distinct action fires (or none does) has nothing to restrict.
    assert ({"first_action": 0, "jitter": 1.0}, {"jitter", "fire_only"}) in patterns(facts)
    assert not any("fire_only" in f for _, f in patterns({**facts, "distinct_actions": [1, 4, 5]}))
    # Without random steps the feature draws nothing: a direction adding it changes nothing.
    from agents.roles.replay_critic import changes_what_is_seen

    held = pattern.clamp({"first_action": 3}, facts)
    assert not changes_what_is_seen(pattern, held, set(), {"features": {"+fire_only"}}, seeds_differ=False)
    assert changes_what_is_seen(pattern, {**held, "jitter": 1.0}, {"jitter"}, {"features": {"+fire_only"}}, False)
    # In a game where every distinct action fires there is nothing to restrict.
    all_fire = {**facts, "distinct_actions": [1, 4, 5]}
    assert changes_what_is_seen(pattern, {**held, "jitter": 1.0}, {"jitter"}, {"features": {"+fire_only"}}, False, facts)
    assert not changes_what_is_seen(pattern, {**held, "jitter": 1.0}, {"jitter"}, {"features": {"+fire_only"}}, False, all_fire)


def test_random_play_over_the_full_action_set_where_the_probe_merged_actions():
    """Bowling: the probe saw FIRE act like NOOP and UPFIRE like UP, so random play among the
    distinct actions never bowls; the baseline also plays random over all six actions."""
    from agents.roles.replay_critic import changes_what_is_seen

    names = ["NOOP", "FIRE", "UP", "DOWN", "UPFIRE", "DOWNFIRE"]
    merged = {"action_names": names, "distinct_actions": [0, 2, 3]}
    every = ({"first_action": 0, "jitter": 1.0, "jitter_hold": 6}, {"jitter", "all_actions"})
    assert every in patterns(merged)
    assert not any("all_actions" in f for _, f in patterns({**merged, "distinct_actions": list(range(6))}))
    code = pattern.write_policy(*every, merged, "test")
    assert "play random actions of the full set, each held for 6 steps" in code
    played = _policy(code, steps=300)
    assert set(played) == set(range(6))  # FIRE and the firing moves too
    # With fire_only: the firing actions of the full set (none of them is distinct here).
    firing = _policy(pattern.write_policy(every[0], every[1] | {"fire_only"}, merged, "test"), steps=300)
    assert set(firing) == {1, 4, 5}
    # A critic direction adds it to random play; where every action is distinct it changes nothing.
    random_play = pattern.clamp(every[0], merged)
    add = {"features": {"+all_actions"}}
    assert changes_what_is_seen(pattern, random_play, {"jitter"}, add, False, merged)
    assert not changes_what_is_seen(pattern, random_play, {"jitter"}, add, False, {**merged, "distinct_actions": list(range(6))})
