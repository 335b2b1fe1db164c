"""Environment families: the interface (envs/base.py), the registry, and a second family
(tests/families/pendulum.py: continuous actions, proprioceptive observations, no lives)
evaluated through the very same sandbox, rollout, ledger and meter as Atari."""

from __future__ import annotations

import numpy as np
import pytest

from envs.base import ActionSpace, InvalidAction
from envs.registry import family_of, get_family, resolve_env
from evaluation.evaluate import evaluate
from evaluation.rollout import load_trace
from record.ledger import Ledger
from record.meter import StepMeter
from record.workspace import create_run_dir

SWING = '''
import numpy as np


class Policy:
    """Push with the angular velocity (pumps energy in); a box action of one float."""

    def reset(self, seed):
        self.seen = 0

    def act(self, obs):
        self.seen += 1
        return np.array([2.0 if obs.state[2] >= 0 else -2.0], dtype=np.float32)
'''

WRONG_SHAPE = '''
class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        return [0.0, 0.0]
'''


@pytest.fixture
def pendulum(monkeypatch):
    monkeypatch.setenv("HL_FAMILIES", "pendulum=tests.families.pendulum:PENDULUM")
    return resolve_env("pendulum")


def test_atari_resolves_through_the_registry():
    spec = resolve_env("space-invaders")
    assert (spec.family, spec.task_id) == ("atari", "SpaceInvaders-v5")
    family = family_of(spec)
    assert family.get_protocol(None).name == "hl" and family.default_obs_mode == "ram"
    assert family.action_space(spec) == ActionSpace(kind="discrete", n=6)


def test_an_unknown_family_or_a_bad_registration_is_one_line(monkeypatch):
    with pytest.raises(ValueError, match="unknown environment family 'nope'"):
        get_family("nope")
    monkeypatch.setenv("HL_FAMILIES", "broken")
    with pytest.raises(ValueError, match="not name=module:object"):
        get_family("atari")


def test_box_actions_are_checked_and_clipped():
    space = ActionSpace(kind="box", low=(-2.0,), high=(2.0,))
    assert space.check([5.0]).tolist() == [2.0]
    assert space.batch(3).shape == (3, 1) and space.batch(3).dtype == np.float32
    for bad in ([0.0, 1.0], [float("nan")], "left"):
        with pytest.raises(InvalidAction):
            space.check(bad)
    with pytest.raises(InvalidAction, match="valid actions are 0..3"):
        ActionSpace(kind="discrete", n=4).check(7)


def test_a_second_family_runs_through_the_same_harness(pendulum, tmp_path):
    """Continuous actions, a state vector, no lives: the sandbox plays it, the ledger records
    it under its family, the meter counts every step, the trace keeps the family's data."""
    policy = tmp_path / "swing.py"
    policy.write_text(SWING)
    run_dir = create_run_dir(tmp_path / "runs", pendulum.slug, "state", "test-run")
    meter = StepMeter(budget=10_000)
    record = evaluate(policy, pendulum, run_dir, seeds=[0, 1], meter=meter)
    assert record.status == "ok", record.failure
    assert (record.family, record.obs_mode, record.protocol) == ("pendulum", "state", "classic")
    assert record.lengths == [200, 200] and record.truncated == ["time_limit", "time_limit"]
    assert record.env_steps == meter.used_steps == 400 and record.frames == 400
    assert record.failures == [0, 0] and all(s < 0 for s in record.scores)
    assert Ledger(run_dir / "trials.jsonl").records()[-1].family == "pendulum"
    trace = load_trace(run_dir / record.artifacts["traces"] / "0.npz")
    assert trace["actions"].shape == (200, 1) and trace["actions"].dtype == np.float32
    assert trace["state"].shape == (200, 3) and trace["moments"] == []  # no frames: no contact sheets
    assert "sheet" not in record.artifacts


def test_a_wrong_box_action_is_a_failed_trial(pendulum, tmp_path):
    policy = tmp_path / "wrong.py"
    policy.write_text(WRONG_SHAPE)
    run_dir = create_run_dir(tmp_path / "runs", pendulum.slug, "state", "test-run")
    record = evaluate(policy, pendulum, run_dir, seeds=[0])
    assert record.status == "failed" and record.failure_kind == "invalid_action"
    assert "invalid action of shape (2,)" in record.failure


def test_the_evaluate_command_takes_the_family_defaults(pendulum, tmp_path):
    import json
    import subprocess
    import sys

    policy = tmp_path / "swing.py"
    policy.write_text(SWING)
    proc = subprocess.run([sys.executable, "-m", "tools.evaluate", "--game", "pendulum", "--policy", str(policy),
                           "--episodes", "1", "--runs-dir", str(tmp_path / "runs"), "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["obs"], summary["protocol"], summary["env_steps"]) == ("state", "classic", 200)


def test_the_learning_loop_refuses_a_family_without_probe_and_controllers(pendulum, tmp_path):
    """One line, exit 2, and no run folder: graph.run needs the family's probe and controllers."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "graph.run", "--game", "pendulum", "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: the learning loop does not support the pendulum family yet (it has no probe and no controllers; "
        "see docs/adding-an-environment-family.md); python -m tools.evaluate runs its policies"
    ]
    assert not (tmp_path / "runs").exists()
