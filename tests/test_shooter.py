"""The shooter controller (agents/controllers/shooter.py): which games choose it, and that the
code it writes runs in the real harness, fires and moves, and beats doing nothing and random
play on Space Invaders (protocol hl: every episode is the same game, so the comparison is exact).

Probe reports come from tests/fixtures/probes/ (recorded by the real prober; see its README),
so no probe steps are spent here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.controllers import default_params, get_controller
from agents.controllers.atari.facts import facts_from_probe
from agents.controllers.atari.pins import readings_of
from tests.conftest import policy
from probe.atari import ProbeReport

PROBES = Path(__file__).resolve().parent / "fixtures" / "probes"
CAP = 3000  # frames per test episode (hl: frame_skip 1, so also env steps)


def facts_of(game: str, obs_mode: str = "ram") -> dict:
    report = ProbeReport.model_validate_json((PROBES / f"{game}.json").read_text())
    return facts_from_probe(report, obs_mode)


def test_shooters_choose_shooter_and_paddle_games_intercept():
    assert facts_of("spaceinvaders")["controller"] == "shooter"
    assert facts_of("pong")["controller"] == "intercept"
    assert facts_of("breakout")["controller"] == "intercept"


def test_space_invaders_facts_come_from_the_probe():
    facts = facts_of("spaceinvaders")
    assert facts["move_axis"] == 0 and facts["shoot_sign"] == -1  # moves along x, shoots up
    assert facts["target_colours"] and facts["shot_colours"]
    assert not set(facts["target_colours"]) & set(facts["shot_colours"])
    assert facts["field"][0] < facts["near_line"] < facts["field"][1] <= facts["player_band"][0]
    assert facts["ram"]["player"] is not None  # the probe's player byte
    names = facts["action_names"]
    assert "FIRE" in names[facts["fire_moves"]["increase"]] and "FIRE" in names[facts["fire_moves"]["decrease"]]


def _write_hs(folder: Path, facts: dict, obs_mode: str, features: set[str] | None = None) -> Path:
    shooter = get_controller("shooter")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "detectors.py").write_text(shooter.write_detectors(facts, obs_mode))
    features = shooter.initial_features(facts) if features is None else features
    (folder / "policy.py").write_text(shooter.write_policy(default_params(shooter), features, facts, "test"))
    return folder / "policy.py"


def _evaluate(path: Path, run_dir: Path, obs_mode: str):
    from evaluation.evaluate import evaluate

    return evaluate(path, "spaceinvaders", run_dir, obs_mode=obs_mode, episodes=1, max_frames=CAP, workers=1)


@pytest.mark.parametrize("obs_mode", ["ram", "vision"])
def test_generated_policy_fires_moves_and_beats_noop_and_random(tmp_path, obs_mode):
    from evaluation.rollout import load_trace
    from record.workspace import create_run_dir

    facts = facts_of("spaceinvaders", obs_mode)
    run_dir = create_run_dir(tmp_path / "runs", "space_invaders", obs_mode, run_id="shooter-test")
    ours = _evaluate(_write_hs(tmp_path / "hs", facts, obs_mode), run_dir, obs_mode)
    assert ours.status == "ok", ours.failure
    trace = next((run_dir / ours.artifacts["traces"]).glob("*.npz"))
    actions = set(load_trace(trace)["actions"].tolist())
    acts, fire_moves = facts["actions"], facts["fire_moves"]
    assert acts["increase"] in actions | {fire_moves["increase"]} and acts["decrease"] in actions | {fire_moves["decrease"]}
    assert actions & {acts["fire"], fire_moves["increase"], fire_moves["decrease"]}, "it never fired"
    noop = _evaluate(policy("noop"), run_dir, obs_mode)
    random = _evaluate(policy("random_policy"), run_dir, obs_mode)
    assert ours.score_mean > max(noop.score_mean, random.score_mean), (ours.scores, noop.scores, random.scores)


def _load(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_vision_detectors_read_the_formation_and_their_readings_are_json(tmp_path):
    """The policy acts on 600 recorded frames; every read_* output is JSON. (Speed is a
    benchmark, not a test: bench/policy_speed.py.)"""
    from envs.atari.games import resolve_game
    from envs.atari.observation import Observation
    from envs.atari.protocols import get_protocol
    from envs.atari import make_env

    facts = facts_of("spaceinvaders", "vision")
    hs = _write_hs(tmp_path / "hs", facts, "vision").parent
    sys.path.insert(0, str(hs))
    try:
        det = _load(hs, "detectors")
        pol = _load(hs, "policy")
        env = make_env(resolve_game("spaceinvaders").task_id, get_protocol("hl"), [0])
        frames, _ = env.reset()
        observations = []
        for t in range(600):
            frames, _, _, _, _ = env.step(np.array([[0, 1, 2, 3][t // 50 % 4]], dtype=np.int32))
            observations.append(Observation(frames[0].copy(), None, 3, t, 0.0))
        env.close()
        agent = pol.Policy()
        agent.reset(0)
        actions = [agent.act(obs) for obs in observations]
        readings = readings_of(det, observations[-1])
    finally:
        sys.path.remove(str(hs))
        for name in ("detectors", "policy"):
            sys.modules.pop(name, None)
    assert all(0 <= a < len(facts["action_names"]) for a in actions)
    assert set(readings) >= {"read_player", "read_targets", "read_shots", "read_cover"}
    assert json.loads(json.dumps(readings)) == readings
    assert readings["read_player"] is not None and len(readings["read_targets"]) >= 6  # a formation of invaders
