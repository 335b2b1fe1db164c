"""ram/vision separation: a vision policy never receives RAM; ram mode sees both."""

import json

from conftest import policy
from evaluation.evaluate import evaluate
from evaluation.rollout import load_trace


def test_vision_policy_cannot_read_ram(run_dir):
    record = evaluate(policy("reads_ram"), "pong", run_dir, obs_mode="vision", episodes=1, max_frames=300)
    assert record.status == "failed" and record.failure_kind == "exception"
    assert "not available in vision mode" in record.failure


def test_ram_policy_reads_ram(run_dir):
    record = evaluate(policy("reads_ram"), "pong", run_dir, obs_mode="ram", episodes=1, max_frames=300)
    assert record.status == "ok"


def test_what_the_policy_sees(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "seen"
    monkeypatch.setenv("HL_TEST_OUT", str(out))
    for mode in ("ram", "vision"):
        record = evaluate(policy("sees"), "breakout", run_dir, obs_mode=mode, episodes=1, max_frames=50)
        assert record.status == "ok"
        seen = json.loads((tmp_path / "seen.0.json").read_text())
        assert seen[0]["rgb_shape"] == [210, 160, 3] and seen[0]["rgb_dtype"] == "uint8"
        assert seen[0]["lives"] == 5 and [s["step"] for s in seen] == [0, 1, 2]
        assert seen[0]["has_ram"] == (mode == "ram")
        assert seen[0]["ram_len"] == (128 if mode == "ram" else None)
        trace = load_trace(run_dir / record.artifacts["traces"] / "0.npz")
        assert ("ram" in trace) == (mode == "ram")  # vision traces carry no RAM either
        assert len(trace["actions"]) == record.lengths[0] == 50
