"""An episode that makes no progress is cut by the evaluation (evaluation.rollout.StallRule),
recorded as a stall with its evidence, and diagnosed from that evidence: the game waiting
for a serve must not eat the budget, and the critic must say what the trace shows."""

import numpy as np

from conftest import policy
from agents.roles.replay_critic import failure_kinds
from evaluation.evaluate import evaluate
from evaluation.rollout import StallRule, load_trace
from record.ledger import Ledger
from tools.diagnose import analyse_trial

# Breakout's ball position lives in RAM bytes 99 (x) and 101 (y). A policy that never
# presses FIRE loses the ball served at reset and then waits forever: nothing moves.
BALL_BYTES = (99, 101)
CAP = 30_000


def _noop(run_dir, stall):
    return evaluate(policy("noop"), "breakout", run_dir, episodes=1, max_frames=CAP, stall=stall)


def test_an_episode_without_progress_is_cut_and_its_evidence_recorded(run_dir):
    uncut = _noop(run_dir, stall=None)
    assert uncut.truncated == ["time_limit"] and uncut.env_steps == CAP  # what happens without the rule

    rule = StallRule(frames=1200, watch=BALL_BYTES)
    cut = _noop(run_dir, stall=rule)
    assert cut.truncated == ["stall"] and cut.status == "ok" and cut.score_mean == 0
    evidence = cut.stalls[0]
    # Cut exactly `frames` steps (frame skip 1 under hl) after the ball last moved.
    assert evidence["steps"] == 1200 and cut.lengths[0] == evidence["since_step"] + 1200 < CAP
    assert cut.env_steps == cut.lengths[0]  # only the steps played are charged
    assert set(evidence["watched"]) == {"99", "101"}
    assert evidence["actions"] == {"NOOP": 1200}
    assert cut.stall_rule == {"frames": 1200, "watch": list(BALL_BYTES)}
    # The trace agrees: the ball bytes never change after the stall began.
    trace = load_trace(run_dir / cut.artifacts["traces"] / f"{cut.seeds[0]}.npz")  # ram mode: RAM per step
    ram = trace["ram"][evidence["since_step"] :]
    assert (ram[:, list(BALL_BYTES)] == ram[0, list(BALL_BYTES)]).all()
    rows = Ledger(run_dir / "trials.jsonl").records()
    assert rows[-1].stalls == cut.stalls and rows[-1].cumulative_env_steps == CAP + cut.env_steps


def test_moving_tracked_objects_are_progress(run_dir):
    """A ball in play is progress even when no reward comes for longer than the rule's frames."""
    record = evaluate(policy("random_policy"), "breakout", run_dir, episodes=1, max_frames=4000,
                      stall=StallRule(frames=200, watch=BALL_BYTES))  # fmt: skip
    lengths_cut_early = [s["since_step"] for s in record.stalls if s]
    # Whatever happened, a cut is only ever made after 200 still steps, never while the ball flew.
    trace = load_trace(run_dir / record.artifacts["traces"] / f"{record.seeds[0]}.npz")
    for since in lengths_cut_early:
        still = trace["ram"][since:, list(BALL_BYTES)]
        assert (still == still[0]).all() and len(still) == 200


def test_the_critic_diagnoses_a_stall_cut_from_its_evidence(run_dir):
    cut = _noop(run_dir, stall=StallRule(frames=1200, watch=BALL_BYTES))
    findings = analyse_trial(run_dir, cut)
    assert findings and findings[0].stall == cut.stalls[0]
    kinds = failure_kinds(findings[0], features=set())
    kind, what = kinds[0]
    assert kind == "serve"  # nothing in play, not a ball "in a periodic path"
    assert "stood still" in what and "NOOP ×1200" in what and "periodic" not in what
    assert not any("periodic" in w for _, w in kinds)
    assert np.isfinite(findings[0].score)
