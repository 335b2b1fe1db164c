"""Pins for detectors of controllers without their own (shooter, route): every read_*
function of detectors.py must return, on frames recorded when it was written, what it
returned then (hs/tests/test_detectors.py, fixtures.npz, readings.json)."""

from __future__ import annotations

import json

import numpy as np


def fixture_actions(facts: dict) -> list[int]:
    """Actions the recording rollout plays at random: the player's moves."""
    return [a for a in facts["movement"].values() if a is not None]


def pin_detectors(detectors, observations: list, facts: dict) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays for fixtures.npz: none beyond the frames, {"readings.json": every reading})."""
    readings = [readings_of(detectors, obs) for obs in observations]
    return {}, {"readings.json": json.dumps(readings)}


def readings_of(det, obs) -> dict:
    """What every read_* function of a detectors module returns for one observation."""
    names = sorted(n for n in dir(det) if n.startswith("read_") and callable(getattr(det, n)))
    return {n: json.loads(json.dumps(getattr(det, n)(obs), default=float)) for n in names}



GENERIC_DETECTOR_TEST = '''"""Pins detectors.py to frames recorded when it was written (run: python -m pytest hs/tests):
every read_* function must return what it returned on those frames."""

from pathlib import Path
import json
import sys

import numpy as np

HS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HS))

import detectors  # noqa: E402
from envs.atari.observation import Observation  # noqa: E402


def Obs(rgb, ram):
    """The harness's own Observation of a recorded frame (HWC), so the detectors read what the policy reads."""
    return Observation(np.transpose(rgb, (2, 0, 1)), ram, 0, 0, 0.0)


def _plain(value):
    """Readings as JSON would store them (tuples become lists, numpy numbers floats)."""
    return json.loads(json.dumps(value, default=float))


def test_detectors_reproduce_recorded_outputs():
    data = np.load(HS / "tests" / "fixtures.npz")
    expected = json.loads((HS / "tests" / "readings.json").read_text())
    ram = data["ram"] if "ram" in data.files else None
    assert len(expected) == len(data["rgb"]) >= 10
    for i, readings in enumerate(expected):
        obs = Obs(data["rgb"][i], ram[i] if ram is not None else None)
        for name, value in readings.items():
            got = _plain(getattr(detectors, name)(obs))
            assert np.allclose(np.array(got, dtype=float), np.array(value, dtype=float), equal_nan=True), (i, name, got, value)
'''


