"""decide's accept rule: under hl a higher mean wins; under ale-v5 (sticky actions, seeds
differ) a candidate must beat the best on the same dev seeds by more than the noise."""

from __future__ import annotations

from types import SimpleNamespace

from envs.registry import get_family
from graph.nodes import clearly_better
from record.ledger import Ledger, score_stats


def _ctx(tmp_path, protocol: str, rows: list[list[float]]):
    ledger = Ledger(tmp_path / "trials.jsonl")
    for scores in rows:
        ledger.append(run_id="r", game="Pong", protocol=protocol, obs_mode="ram", role="evaluate", split="dev",
                      seeds=list(range(len(scores))), scores=scores, **score_stats(scores))  # fmt: skip
    return SimpleNamespace(family=get_family("atari"), config=SimpleNamespace(protocol=protocol), ledger=ledger)


def _eval(trial: int, scores: list[float]) -> dict:
    return dict(trial=trial, status="ok", score_mean=sum(scores) / len(scores))


def test_under_sticky_actions_a_candidate_must_clear_the_noise(tmp_path):
    best_scores, lucky, steady = [10.0, 2.0, 6.0], [4.0, 12.0, 5.0], [11.0, 3.0, 7.5]
    ctx = _ctx(tmp_path, "ale-v5", [best_scores, lucky, steady])
    best = dict(score=6.0, trial=0)
    ok, why = clearly_better(ctx, _eval(1, lucky), best)  # a higher mean (7) from seeds that swung both ways
    assert not ok and why.startswith("within noise: +1 per seed over 3 common seeds")
    assert clearly_better(ctx, _eval(2, steady), best) == (True, "")  # better on every seed
    assert clearly_better(ctx, _eval(2, steady), None) == (True, "")  # nothing to beat yet
    assert clearly_better(ctx, _eval(0, best_scores), best) == (False, "score 6 vs best 6")


def test_under_hl_the_higher_mean_wins(tmp_path):
    ctx = _ctx(tmp_path, "hl", [[10.0, 2.0, 6.0], [4.0, 12.0, 5.0]])
    assert clearly_better(ctx, _eval(1, [4.0, 12.0, 5.0]), dict(score=6.0, trial=0)) == (True, "")


def test_a_policy_that_plays_at_random_gets_several_dev_episodes_even_under_hl(tmp_path):
    """Under hl one episode says all of a deterministic policy, but a random one (the pattern
    with jitter) is one draw: the evaluate node plays it on 3 dev seeds. Real EnvPool, tiny
    episodes."""
    from agents.controllers.atari import pattern
    from envs.atari.games import resolve_game
    from agents.controllers import RANDOM_POLICY_DEV_EPISODES
    from graph.nodes import evaluate
    from record.meter import StepMeter
    from runtime.config import RunConfig
    from runtime.context import RunContext

    facts = {"action_names": ["NOOP", "FIRE", "RIGHT", "LEFT"], "distinct_actions": [0, 1, 2, 3]}
    seeds_played = {}
    for name, features, protocol in [("random", {"jitter"}, "hl"), ("held", set(), "hl"), ("random", {"jitter"}, "ale-v5")]:
        run_dir = tmp_path / f"{name}-{protocol}"
        (run_dir / "hs").mkdir(parents=True)
        params = {"first_action": 2, "jitter": 1.0} if features else {"first_action": 2}
        (run_dir / "hs" / "policy.py").write_text(pattern.write_policy(params, features, facts, "test"))
        config = RunConfig(game="Breakout", runs_dir=tmp_path, protocol=protocol, eval_max_frames=400, robustness_episodes=0)
        ctx = RunContext(config, resolve_game("breakout"), run_dir, StepMeter(50_000))
        candidate = {"controller": "pattern", "features": sorted(features), "params": params, "direction": name}
        update = evaluate({"candidate": candidate}, ctx)
        assert update["evaluation"]["status"] == "ok"
        seeds_played[(name, protocol)] = len(Ledger(run_dir / "trials.jsonl").records()[-1].seeds)
    assert seeds_played == {("random", "hl"): RANDOM_POLICY_DEV_EPISODES, ("held", "hl"): 1, ("random", "ale-v5"): 3}


def test_a_plateaued_best_hands_a_second_turn_to_the_runner_up_structure():
    """decide's bookkeeping for structure switches: each structure's best candidate, accepted
    or not, and the runner-up (not the best's own, not the baseline, once each)."""
    from graph.nodes import _runner_up, _structure_best

    state = {}
    for name, score in [("pattern", 21.0), ("intercept", 0.0), ("reactive", 22.0), ("screen_route", 15.0), ("reactive", 20.0)]:
        state["structure_best"] = _structure_best(state, {"controller": name, "params": {"p": score}, "features": []}, score)
    assert {n: e["score"] for n, e in state["structure_best"].items()} == {"pattern": 21, "intercept": 0, "reactive": 22, "screen_route": 15}
    assert state["structure_best"]["reactive"]["params"] == {"p": 22.0}  # the best candidate's, not the last's
    best = {"policy": {"controller": "reactive"}}
    assert _runner_up(state, best) == "screen_route"
    assert _runner_up({**state, "structures_switched": ["screen_route"]}, best) == "intercept"
    assert _runner_up({**state, "structures_switched": ["screen_route", "intercept"]}, best) is None
    # Against the baseline: a structure that could not beat blind play gets no second turn
    # (Freeway: hold UP 21, intercept 0).
    with_floor = {**state, "baseline": {"score": 21.0}}
    assert _runner_up(with_floor, best) is None
    with_floor["baseline"] = {"score": 10.0}
    assert _runner_up(with_floor, best) == "screen_route"
    assert _runner_up({**with_floor, "structures_switched": ["screen_route"]}, best) is None
    assert _structure_best(state, {"controller": "intercept"}, None) == state["structure_best"]  # a crash scores nothing


def test_after_a_challenger_lost_the_critic_reads_the_bests_episodes(tmp_path):
    """A challenger of another structure that lost leaves the best's structure to go on: the
    critic diagnoses the best's last evaluation, so the policy-writer gets a direction it can
    apply (KungFuMaster at 200k: the reactive challenger's diagnosis was dropped and the route
    was tuned instead of searched further). Real EnvPool, tiny episodes."""
    from agents.controllers.atari import pattern
    from agents.roles.replay_critic import replay_critic
    from envs.atari.games import resolve_game
    from graph.nodes import evaluate
    from record.meter import StepMeter
    from runtime.config import RunConfig
    from runtime.context import RunContext

    facts = {"action_names": ["NOOP", "FIRE", "RIGHT", "LEFT"], "distinct_actions": [0, 1, 2, 3], "controller": "intercept"}
    (tmp_path / "hs").mkdir()
    config = RunConfig(game="Breakout", runs_dir=tmp_path, eval_max_frames=400, robustness_episodes=0)
    ctx = RunContext(config, resolve_game("breakout"), tmp_path, StepMeter(50_000))
    trials = []
    for name, params in [("pattern", {"first_action": 1}), ("reactive", {"first_action": 0})]:
        (tmp_path / "hs" / "policy.py").write_text(pattern.write_policy(params, set(), facts, name))
        candidate = {"controller": name, "features": [], "params": params, "direction": f"{name} first look"}
        trials.append(evaluate({"candidate": candidate}, ctx)["evaluation"]["trial"])
    best = {"score": 0.0, "trial": trials[0], "policy": {"controller": "pattern", "params": {"first_action": 1}, "features": []}}
    state = {"run_id": "r", "best": best, "detectors": facts, "new_best": False, "iteration": 2,
             "candidate": {"controller": "reactive", "features": [], "params": {}, "direction": "reactive first look"},
             "evaluation": {"status": "ok", "trial": trials[1], "score_mean": 0.0}}  # fmt: skip
    diagnosis = replay_critic(state, ctx)["diagnosis"]
    assert diagnosis["controller"] == "pattern" and diagnosis["evidence"].startswith(f"trial {trials[0]},")
    # The critic runs before decide: a candidate of another structure that beats the best's
    # score may become the best, so it is diagnosed in its own terms (Alien: the first screen
    # route, 1,840 against the baseline's 227, must get its "search for a longer route").
    state["best"] = {**best, "score": -1.0}
    diagnosis = replay_critic(state, ctx)["diagnosis"]
    assert diagnosis["controller"] == "reactive" and diagnosis["evidence"].startswith(f"trial {trials[1]},")
