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
