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
