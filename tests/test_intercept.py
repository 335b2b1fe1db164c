"""The intercept controller under several frames per step (protocol ale-v5): facts carry the
frame skip, the generated policy is valid Python for every feature set, and its motion
model stops a lagging, coasting, sticky paddle on the aim where plain deadband steering
overshoots. Fast: no emulator."""

from __future__ import annotations

import itertools
import sys
import types

import numpy as np
import pytest

from agents.controllers import default_params
from agents.controllers.atari import intercept
from agents.controllers.atari.facts import facts_from_probe
from probe.atari import MovementLabels, ObjectInfo, ProbeReport


def _object(name, colour, width, height, xs, ys, speed):
    return ObjectInfo(name=name, colour=colour, colour_hex="#000000", width=width, height=height, area=width * height,
                      instances_per_frame=1.0, visible_fraction=1.0, mean_speed=speed, speed_p95=speed,
                      x_range=xs, y_range=ys)  # fmt: skip


def _report(protocol: str = "hl") -> ProbeReport:
    """A Pong-like probe: a paddle moving up/down at the right, a small fast ball."""
    return ProbeReport(
        game="Paddle", task_id="Paddle-v5", protocol=protocol, obs_mode="ram", seed=0, config={},
        action_names=["NOOP", "FIRE", "UP", "DOWN"], hold_steps=32, ram_analysis=False,
        movement=MovementLabels(up=2, down=3, fire=1),
        player=_object("player", [92, 186, 92], 4.0, 16.0, [141.5, 141.5], [36.5, 191.5], 2.0),
        player_moves_y=True,
        objects=[_object("ball", [236, 236, 236], 2.0, 4.0, [20.0, 156.0], [36.0, 190.0], 3.0)],
    )  # fmt: skip


@pytest.mark.parametrize("protocol, frame_skip", [("hl", 1), ("ale-v5", 4)])
def test_facts_carry_the_frame_skip_of_the_run(protocol, frame_skip):
    facts = facts_from_probe(_report(), "vision", protocol)
    assert facts["controller"] == "intercept" and facts["frame_skip"] == frame_skip
    # Without the run's protocol the probe's own counts (probes run under hl).
    assert facts_from_probe(_report("ale-v5"), "vision")["frame_skip"] == 4


def test_brake_is_initial_only_with_several_frames_per_step():
    assert "brake" not in intercept.initial_features(facts_from_probe(_report(), "vision", "hl"))
    assert "brake" in intercept.initial_features(facts_from_probe(_report(), "vision", "ale-v5"))


def test_every_feature_set_writes_valid_readable_code():
    facts = facts_from_probe(_report(), "vision", "ale-v5")
    params = default_params(intercept)
    for n in range(len(intercept.FEATURES) + 1):
        for features in itertools.combinations(intercept.FEATURES, n):
            source = intercept.write_policy(params, set(features), facts, "test")
            compile(source, "policy.py", "exec")
            assert ("settle_frames" in source) == ("brake" in features)
            assert ("class Motion" in source) == ("brake" in features)
    # Every direction names a known parameter or feature.
    for directions in intercept.DIRECTIONS.values():
        for _, _, change in directions:
            assert set(change.get("params", {})) <= set(intercept.PARAMS)
            assert {f[1:] for f in change.get("features", ())} <= set(intercept.FEATURES)


class _Obs:
    def __init__(self, step, player, ball):
        self.step, self.player, self.ball = step, player, ball
        self.last_reward = 0.0
        self.lives = 0


def _load_policy(source: str):
    """Import a generated policy.py against a fake detectors module reading _Obs fields."""
    detectors = types.ModuleType("detectors")
    detectors.BOUNDS = ((0.0, 160.0), (0.0, 200.0))
    detectors.PLAYER_LINE = 150.0
    detectors.read_player = lambda obs: obs.player
    detectors.read_ball = lambda obs: obs.ball
    saved = sys.modules.get("detectors")
    sys.modules["detectors"] = detectors
    try:
        namespace: dict = {}
        exec(compile(source, "policy.py", "exec"), namespace)
    finally:
        if saved is not None:
            sys.modules["detectors"] = saved
        else:
            sys.modules.pop("detectors", None)
    return namespace["Policy"]()


def _steer(features: set[str], seed: int, steps: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """A paddle like Pong's at 4 frames a step: each frame pressed moves a hidden aim 5 px, the
    paddle follows the aim through two lags (it starts late and keeps moving after a release),  and each
    frame repeats the previous frame's move a quarter of the time (sticky actions). The ball
    flies at the paddle's line, crossing it at y = 60 or y = 140 (switching every 40 steps).
    Returns the paddle's positions and the crossing points."""
    facts = facts_from_probe(_report(), "vision", "ale-v5")
    policy = _load_policy(intercept.write_policy(default_params(intercept), features, facts, "test"))
    policy.reset(seed)
    rng = np.random.default_rng(seed)
    aim = middle = position = 100.0
    last_move, positions, targets = 0, [], []
    for t in range(steps):
        target = 60.0 if (t // PERIOD) % 2 == 0 else 140.0
        x = 20.0 + (4 * t) % 120  # flies straight at the player's line (x = 150), hidden while re-served
        ball = (x, target) if x >= 32 else None
        action = policy.act(_Obs(t, position, ball))
        move = {3: 1, 2: -1}.get(action, 0)  # DOWN increases y, UP decreases it
        for _ in range(4):  # frames: each keeps the previous frame's move with probability 0.25
            last_move = last_move if rng.random() < 0.25 else move
            aim = float(np.clip(aim + 5.0 * last_move, 30.0, 190.0))
        middle += 0.6 * (aim - middle)  # two lags in a row: the paddle starts late and coasts
        position += 0.6 * (middle - position)
        positions.append(position)
        targets.append(target)
    return np.array(positions), np.array(targets)


PERIOD = 40


def _overshoot(positions: np.ndarray, targets: np.ndarray, last: int) -> float:
    """Mean of how far the paddle ran past each new crossing point, over the last moves."""
    past = []
    for start in range(len(positions) - last * PERIOD, len(positions), PERIOD):
        window, target = positions[start:start + PERIOD], targets[start]
        direction = np.sign(target - positions[start - 1])
        past.append(max(0.0, float(np.max(direction * (window - target)))))
    return float(np.mean(past))


@pytest.mark.parametrize("seed", [0, 1])
def test_brake_stops_on_the_aim_where_deadband_steering_overshoots(seed):
    # After the first few hundred steps the motion model is fitted: the braking paddle stops
    # near each new crossing point; plain steering runs far past it.
    braking = _overshoot(*_steer({"brake"}, seed), last=10)
    plain = _overshoot(*_steer(set(), seed), last=10)
    assert braking < 0.5 * plain
    assert braking < 8.0  # well within one step's travel (20 px)
