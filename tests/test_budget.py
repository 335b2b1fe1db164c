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

    cfg = _config(120_000)  # hl: 1 dev episode, a holdout of 3, probe up to 30,000 steps
    plan = plan_budget(cfg, get_protocol("hl"))
    assert plan.capped and plan.episode_frames == 12_000 < get_protocol("hl").max_episode_frames
    # The probe, the minimum number of dev evaluations and the holdout all fit, at the cap.
    assert cfg.probe_budget + (MIN_DEV_EVALUATIONS * cfg.dev_episodes + 3) * plan.episode_steps <= 120_000
    assert plan.initial_reserve == 3 * 12_000
    assert "capped at 12,000 frames" in plan.note(get_protocol("hl"))

    roomy = plan_budget(_config(1_000_000), get_protocol("hl"))
    assert not roomy.capped and roomy.episode_frames == 108_000 and roomy.initial_reserve == 3 * 108_000
    # Under ale-v5 an env step is 4 frames: the reserve is in env steps.
    sticky = plan_budget(_config(1_000_000, protocol="ale-v5"), get_protocol("ale-v5"))
    assert not sticky.capped and sticky.initial_reserve == 10 * 27_000


def test_a_budget_that_cannot_pay_for_a_holdout_is_refused():
    from envs.atari.protocols import get_protocol
    from runtime.budget import BudgetTooSmall, plan_budget

    with pytest.raises(BudgetTooSmall, match=r"too small.*use --budget 44,000 or more"):
        plan_budget(_config(40_000), get_protocol("hl"))


def test_the_reserve_follows_the_best_policys_episodes():
    from envs.atari.protocols import get_protocol
    from runtime.budget import holdout_reserve

    cfg = _config(1_000_000)
    assert holdout_reserve(cfg, get_protocol("hl"), [8_000]) == 3 * 10_000  # its longest, with a 25% margin
    assert holdout_reserve(cfg, get_protocol("hl"), [100_000]) == 3 * 108_000  # never past the episode cap
    capped = cfg.model_copy(update={"eval_max_frames": 12_000})
    assert holdout_reserve(capped, get_protocol("hl"), [11_000]) == 3 * 12_000


def test_the_stop_reason_says_what_the_rest_of_the_budget_is_for():
    from types import SimpleNamespace

    from graph.nodes import _budget_spent

    meter = StepMeter(budget=120_000, used_steps=84_000)
    meter.reserved = 36_000
    ctx = SimpleNamespace(meter=meter, config=SimpleNamespace(holdout_episodes=3))
    assert _budget_spent(ctx, best=None) == "budget spent: no policy scored, so there is no holdout to run"
    assert "36,000 env steps left for the holdout of the best policy (3 episodes)" in _budget_spent(ctx, best={"score": 9})
