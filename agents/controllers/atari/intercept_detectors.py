"""The intercept controller's detectors: read_player(obs) -> coordinate along the player's
axis, read_ball(obs) -> (x, y) or None, PLAYER_LINE, BOUNDS.

ram mode: RAM readers (pixel = a * ram[address] + b, the probe's regressions).
vision mode: colour segmentation inside the region where the probe saw each object.
The pins (hs/tests): the readings on recorded frames, and (in ram mode too) agreement
between the player's RAM reading and an independent image reading.
"""

from __future__ import annotations

import numpy as np


def fixture_actions(facts: dict) -> list[int]:
    """Actions the recording rollout plays at random: the paddle's moves (and FIRE, NOOP)."""
    return [a for a in facts["actions"].values() if a is not None]


def pin_detectors(detectors, observations: list, facts: dict) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays for fixtures.npz, other files for hs/tests/) from the recorded observations."""
    colour = np.array(facts["player"]["colour"])
    players, balls, image_players = [], [], []
    for obs in observations:
        player, ball = detectors.read_player(obs), detectors.read_ball(obs)
        players.append(np.nan if player is None else player)
        balls.append((np.nan, np.nan) if ball is None else ball)
        image_players.append(_image_player(obs.rgb, colour, facts))
    arrays = dict(player=np.array(players, dtype=float), ball=np.array(balls, dtype=float),
                  image_player=np.array(image_players, dtype=float))  # fmt: skip
    return arrays, {}


def _image_player(rgb: np.ndarray, colour: np.ndarray, facts: dict) -> float:
    """The player's centre along its axis from pixels of its colour near its line."""
    axis, line = facts["move_axis"], facts["player_line"]
    half = (facts["player"]["height"] if axis == 0 else facts["player"]["width"]) / 2 + 1
    lo, hi = int(line - half), int(np.ceil(line + half)) + 1
    region = rgb[lo:hi, :] if axis == 0 else rgb[:, lo:hi]
    mask = (region == colour).all(axis=-1)
    hits = np.nonzero(mask.any(axis=0 if axis == 0 else 1))[0]
    return float(hits[0] + hits[-1]) / 2 if hits.size else np.nan



def write_detectors(facts: dict, obs_mode: str) -> str:
    """The source of detectors.py: read_player(obs) and read_ball(obs)."""
    axis = facts["move_axis"]
    ball, player = facts["ball"], facts["player"]
    bounds = facts["bounds"]
    head = f'''"""Detectors for the policy ({obs_mode} mode), written from the probe report.

read_player(obs): the player's coordinate along its axis ({"x" if axis == 0 else "y"}), pixels.
read_ball(obs): the ball's (x, y) centre in pixels, or None when it is not in play.
"""

import numpy as np

PLAYER_LINE = {facts["player_line"]!r}  # the player's fixed coordinate on the other axis
BOUNDS = ({tuple(bounds[0])!r}, {tuple(bounds[1])!r})  # (x range, y range) where the ball was seen
'''
    if obs_mode == "ram" and facts.get("ram", {}).get("player"):
        ram = facts["ram"]
        p = ram["player"]
        lines = [head, f"PLAYER = ({p['address']}, {p['a']}, {p['b']})  # address, a, b: pixel = a * ram + b (r = {p['r']})"]
        if ram.get("ball_x") and ram.get("ball_y"):
            bx, by = ram["ball_x"], ram["ball_y"]
            lines.append(f"BALL_X = ({bx['address']}, {bx['a']}, {bx['b']})  # r = {bx['r']}")
            lines.append(f"BALL_Y = ({by['address']}, {by['a']}, {by['b']})  # r = {by['r']}")
        lines.append('''
MARGIN = 4  # px outside the seen range still counts as in play


def read_player(obs):
    address, a, b = PLAYER
    return a * float(obs.ram[address]) + b
''')
        if ram.get("ball_x") and ram.get("ball_y"):
            lines.append('''
def read_ball(obs):
    x = BALL_X[1] * float(obs.ram[BALL_X[0]]) + BALL_X[2]
    y = BALL_Y[1] * float(obs.ram[BALL_Y[0]]) + BALL_Y[2]
    (x0, x1), (y0, y1) = BOUNDS
    if not (x0 - MARGIN <= x <= x1 + MARGIN and y0 - MARGIN <= y <= y1 + MARGIN):
        return None  # parked outside the field: not in play
    return (x, y)
''')
        else:
            lines.append("\n\ndef read_ball(obs):\n    return None  # the probe found no RAM byte for the ball\n")
        return "\n".join(lines)

    # vision: colour masks inside the bands where the probe saw each object
    pr, pc = player["colour"], ball["colour"] if ball else None
    band = (player["y_range"] if axis == 0 else player["x_range"])
    half = (player["height"] if axis == 0 else player["width"]) / 2 + 1
    code = head + f'''
PLAYER_COLOUR = {tuple(pr)!r}
PLAYER_BAND = ({int(band[0] - half)}, {int(np.ceil(band[1] + half)) + 1})  # {"rows" if axis == 0 else "columns"} the player occupies
BALL_COLOUR = {tuple(pc) if pc else None!r}
BALL_WIDTH = {ball["width"] if ball else 1!r}
FIELD = ({int(bounds[1][0] - 3)}, {int(bounds[1][1] + 4)}, {int(bounds[0][0] - 3)}, {int(bounds[0][1] + 4)})  # rows, columns where the ball moves


def _mask(rgb, colour, rows, cols):
    region = rgb[rows[0]:rows[1], cols[0]:cols[1]]
    return (region[..., 0] == colour[0]) & (region[..., 1] == colour[1]) & (region[..., 2] == colour[2])


GAP = 4


def _longest_run(hits):
    """(first, last) of the longest run of indices (gaps up to GAP allowed: sprites can be
    drawn with holes): the player, not a ball beside it."""
    if hits.size == 0:
        return None
    breaks = np.nonzero(np.diff(hits) > GAP + 1)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [hits.size - 1]])
    k = int(np.argmax(ends - starts))
    return int(hits[starts[k]]), int(hits[ends[k]])


def _player_span(rgb):
    rows, cols = ({"PLAYER_BAND, (0, rgb.shape[1])" if axis == 0 else "(0, rgb.shape[0]), PLAYER_BAND"})
    mask = _mask(rgb, PLAYER_COLOUR, rows, cols)
    return _longest_run(np.nonzero(mask.any(axis={0 if axis == 0 else 1}))[0])


def read_player(obs):
    span = _player_span(obs.rgb)
    if span is None:
        return None
    return (span[0] + span[1]) / 2


def read_ball(obs):
    if BALL_COLOUR is None:
        return None
    rgb = obs.rgb
    top, bottom, left, right = FIELD
    mask = _mask(rgb, BALL_COLOUR, (max(0, top), bottom), (max(0, left), right))
    {_PADDLE_MASK[axis] if ball and tuple(ball["colour"]) == tuple(pr) else "pass"}
    # Rows full of the ball's colour are walls, not the ball.
    mask[mask.sum(axis=1) > 3 * BALL_WIDTH + 2, :] = False
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return (float(xs.mean()) + max(0, left), float(ys.mean()) + max(0, top))
'''
    return code


# The ball shares the player's colour (Breakout): the player's band also holds static
# scenery of that colour (wall stripes), so the whole band is blanked for the ball; the
# policy keeps its last aim while the ball is hidden there.
_PADDLE_MASK = {
    0: "mask[max(0, PLAYER_BAND[0] - max(0, top)):max(0, PLAYER_BAND[1] - max(0, top)), :] = False",
    1: "mask[:, max(0, PLAYER_BAND[0] - max(0, left)):max(0, PLAYER_BAND[1] - max(0, left))] = False",
}

DETECTOR_TEST = '''"""Pins detectors.py to frames recorded when it was written (run: python -m pytest hs/tests)."""

from pathlib import Path
import sys

import numpy as np

HS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HS))

import detectors  # noqa: E402
from envs.atari.observation import Observation  # noqa: E402


def Obs(rgb, ram):
    """The harness's own Observation of a recorded frame (HWC), so the detectors read what the policy reads."""
    return Observation(np.transpose(rgb, (2, 0, 1)), ram, 0, 0, 0.0)


def _load():
    data = np.load(HS / "tests" / "fixtures.npz")
    return {k: data[k] for k in data.files}


def test_detectors_reproduce_recorded_outputs():
    f = _load()
    ram = f.get("ram")
    for i in range(len(f["rgb"])):
        obs = Obs(f["rgb"][i], ram[i] if ram is not None else None)
        player = detectors.read_player(obs)
        assert (player is None) == bool(np.isnan(f["player"][i]))
        if player is not None:
            assert abs(player - f["player"][i]) < 1e-6
        ball = detectors.read_ball(obs)
        assert (ball is None) == bool(np.isnan(f["ball"][i, 0]))
        if ball is not None:
            assert np.allclose(ball, f["ball"][i], atol=1e-6)


def test_detectors_agree_with_the_image():
    """Where segmentation saw the player, the detector's reading is within a few pixels: over
    all those frames, or over those with the player away from the ends of its range (a player
    pressed against a wall may be drawn clipped, and the random rollout often pins it there)."""
    f = _load()
    image = f["image_player"]
    seen = ~np.isnan(image)
    assert seen.sum() >= 10, "too few frames show the player"
    inside = seen & (image > np.nanmin(image) + 1) & (image < np.nanmax(image) - 1)
    medians = [np.nanmedian(np.abs(f["player"][frames] - image[frames])) for frames in (seen, inside) if frames.sum() >= 5]
    assert min(medians) <= 4.0, f"median player error {min(medians):.1f} px"
'''


