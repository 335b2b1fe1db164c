"""One step meter counts every env step; a budget stops work cleanly when spent."""

import pytest

from conftest import policy
from evaluation.evaluate import evaluate
from record.ledger import Ledger
from record.meter import BudgetExhausted, StepMeter


def test_budget_stops_evaluation_exactly(run_dir):
    meter = StepMeter(budget=3000)
    first = evaluate(policy("noop"), "pong", run_dir, episodes=2, max_frames=1000, meter=meter)
    assert first.status == "ok" and first.env_steps == 2000
    second = evaluate(policy("noop"), "pong", run_dir, episodes=2, max_frames=1000, meter=meter)
    assert second.status == "budget_stop"
    assert second.env_steps == 1000 and meter.used_steps == 3000 and meter.exhausted
    assert second.truncated == ["budget", "budget"]
    assert second.scores == []  # cut episodes are not scored
    with pytest.raises(BudgetExhausted):
        evaluate(policy("noop"), "pong", run_dir, episodes=1, max_frames=1000, meter=meter)
    rows = Ledger(run_dir / "trials.jsonl").records()
    assert len(rows) == 2 and rows[-1].cumulative_env_steps == 3000


def test_a_finish_evaluation_the_budget_may_cut_plays_its_episodes_in_turn(run_dir):
    """1,000 steps left for two episodes of up to 1,000: the finish's evaluations (paid from the
    reserve) play them one after another, so the first finishes and counts and only the second
    is cut (never started: no reset frames either)."""
    meter = StepMeter(budget=3000)
    first = evaluate(policy("noop"), "pong", run_dir, episodes=2, max_frames=1000, meter=meter, use_reserve=True)
    assert first.status == "ok" and first.truncated == ["time_limit", "time_limit"]
    second = evaluate(policy("noop"), "pong", run_dir, episodes=2, max_frames=1000, meter=meter, use_reserve=True)
    assert second.status == "budget_stop" and second.env_steps == 1000 and meter.exhausted
    assert second.truncated == ["time_limit", "budget"] and second.lengths == [1000, 0]
    assert len(second.scores) == 1  # a cut episode is not scored
    assert second.frames == first.frames // 2


def test_meter_counts_steps_by_kind():
    meter = StepMeter(budget=100)
    assert meter.allowance(30) == 30
    meter.charge(30, 30, "probe")
    meter.charge(50, 200, "evaluation")
    assert meter.remaining == 20 and meter.allowance() == 20 and meter.allowance(70) == 20
    assert dict(meter.steps_by_kind) == {"probe": 30, "evaluation": 50}
    assert meter.used_frames == 230


# -- The budget plan (runtime/budget.py): a run never promises a holdout it cannot pay -------


def _config(budget, **knobs):
    from runtime.config import RunConfig

    return RunConfig(game="pong", budget=budget, **knobs)


def test_a_small_budget_caps_episodes_and_holds_the_holdout_from_the_start():
    from envs.atari.protocols import get_protocol
    from runtime.budget import MIN_DEV_EVALUATIONS, plan_budget

    # hl: 1 dev episode, a holdout of 1 (every seed is the same game), probe up to 30,000
    # steps (no robustness check here: the next test has it)
    cfg = _config(120_000, robustness_episodes=0)
    assert cfg.dev_episodes == 1 and cfg.holdout_episodes == 1
    plan = plan_budget(cfg, get_protocol("hl"))
    assert plan.capped and plan.episode_frames == 12_000 < get_protocol("hl").max_episode_frames
    # The probe, the minimum number of dev evaluations and the holdout all fit, at the cap.
    assert cfg.probe_budget + (MIN_DEV_EVALUATIONS * cfg.dev_episodes + 1) * plan.episode_steps <= 120_000
    assert plan.initial_reserve == 12_000
    assert "capped at 12,000 frames" in plan.note(get_protocol("hl"))

    roomy = plan_budget(_config(1_000_000, robustness_episodes=0), get_protocol("hl"))
    assert not roomy.capped and roomy.episode_frames == 108_000 and roomy.initial_reserve == 108_000
    # Under ale-v5 an env step is 4 frames: the reserve is in env steps.
    sticky = plan_budget(_config(1_000_000, protocol="ale-v5"), get_protocol("ale-v5"))
    assert not sticky.capped and sticky.initial_reserve == 10 * 27_000
    assert sticky.robustness_steps == 0 and not sticky.robustness  # seeds differ already: no robustness check


def test_under_hl_the_budget_also_pays_for_a_holdout_under_ale_v5():
    from envs.atari.protocols import get_protocol
    from runtime.budget import holdout_reserve, plan_budget

    hl = get_protocol("hl")
    cfg = _config(120_000)
    assert cfg.robustness_protocol == "ale-v5" and cfg.robustness_episodes == 10
    plan = plan_budget(cfg, hl)
    # 90,000 steps after the probe for 6 dev episodes, 1 holdout episode and 10 ale-v5 episodes
    # of a quarter of the steps each: 9,473 steps an episode, rounded down to 9,000 frames.
    assert plan.episode_frames == 9_000 and plan.robustness_steps == 10 * 2_250
    assert plan.initial_reserve == 9_000 + 10 * 2_250
    assert "10 episodes under ale-v5" in plan.note(hl)
    # Once a best policy has played 8,000-step episodes: the same play time, in each protocol's steps.
    assert holdout_reserve(_config(1_000_000), hl, [8_000]) == 10_000 + 10 * 2_500
    assert _config(120_000, robustness_episodes=0).robustness_protocol is None  # HL_ROBUSTNESS_EPISODES=0 turns it off


def test_a_budget_that_cannot_pay_for_a_holdout_is_refused():
    from envs.atari.protocols import get_protocol
    from runtime.budget import BudgetTooSmall, plan_budget

    with pytest.raises(BudgetTooSmall, match=r"too small.*use --budget 44,000 or more"):
        plan_budget(_config(40_000, robustness_episodes=0), get_protocol("hl"))
    # The ale-v5 episodes of the robustness check are paid for too: 2.5 more hl episodes' worth.
    with pytest.raises(BudgetTooSmall, match=r"holdout of 1 and 10 episodes under ale-v5 .*use --budget 49,000 or more"):
        plan_budget(_config(40_000), get_protocol("hl"))


def test_the_reserve_follows_the_best_policys_episodes():
    from envs.atari.protocols import get_protocol
    from runtime.budget import holdout_reserve

    cfg = _config(1_000_000, robustness_episodes=0)  # the robustness check's share: the test above
    cfg = cfg.model_copy(update={"holdout_episodes": 3})  # HL_HOLDOUT_EPISODES=3
    assert holdout_reserve(cfg, get_protocol("hl"), [8_000]) == 3 * 10_000  # its longest, with a 25% margin
    assert holdout_reserve(cfg, get_protocol("hl"), [100_000]) == 3 * 108_000  # never past the episode cap
    capped = cfg.model_copy(update={"eval_max_frames": 12_000})
    assert holdout_reserve(capped, get_protocol("hl"), [11_000]) == 3 * 12_000


def test_the_stop_reason_says_what_the_rest_of_the_budget_is_for():
    from types import SimpleNamespace

    from graph.nodes import budget_spent

    meter = StepMeter(budget=120_000, used_steps=84_000)
    meter.reserved = 36_000
    ctx = SimpleNamespace(meter=meter, config=SimpleNamespace(holdout_episodes=3, robustness_protocol=None))
    assert budget_spent(ctx, best=None) == "budget spent: no policy scored, so there is no holdout to run"
    assert "36,000 env steps left for the holdout of the best policy (3 episodes)" in budget_spent(ctx, best={"score": 9})
    ctx.config = SimpleNamespace(holdout_episodes=3, robustness_protocol="ale-v5", robustness_episodes=10)
    assert "left for the holdout of the best policy (3 episodes and 10 under ale-v5)" in budget_spent(ctx, best={"score": 9})


def test_a_node_that_finds_the_budget_spent_ends_the_run_instead_of_crashing(tmp_path):
    # Bowling at 200k: the simplifier's ablation took the last free steps, then the policy-writer
    # asked for a search allowance and the meter raised; the run died with an internal error.
    from types import SimpleNamespace

    from graph.build import traced
    from record.tracing import Tracer

    meter = StepMeter(budget=120_000, used_steps=84_000)
    meter.reserved = 36_000
    ctx = SimpleNamespace(meter=meter, display=None, tracer=Tracer(tmp_path / "trace.jsonl"),
                          config=SimpleNamespace(holdout_episodes=3, robustness_protocol=None))  # fmt: skip

    def wants_a_search(state, ctx):
        ctx.meter.allowance(5_000)  # raises: everything left is held for the holdout
        raise AssertionError("unreachable")

    update = traced("policy_writer", wants_a_search, ctx)({"best": {"score": 20}, "evaluation": {"score_mean": 20}})
    assert update["evaluation"] is None  # decide must not judge the last iteration's evaluation again
    assert update["stop_reason"].startswith("budget spent: 36,000 env steps left for the holdout")
    assert meter.used_steps == 84_000


def test_a_check_the_budget_cut_reports_the_episodes_that_finished():
    from graph.finish import _holdout_line

    best = {"score": 10.0}
    cut = dict(status="budget_stop", score_mean=4.0, scores=[3.0, 5.0], episodes=10)
    assert _holdout_line(cut, best) == "4 over 2 of 10 holdout episodes (the budget ran out)"
    assert _holdout_line({**cut, "scores": [], "score_mean": None}, best).startswith("none: cut by the budget")
    assert _holdout_line({**cut, "status": "ok", "episodes": 2}, best) == "4 over 2 holdout episodes"
