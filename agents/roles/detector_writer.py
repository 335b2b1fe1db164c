"""detector-writer: turn the probe into hs/detectors.py and tests that pin it to frames.

ram mode: RAM readers (pixel = a * ram[address] + b, the probe's regressions).
vision mode: colour segmentation inside the region where the probe saw each object.
Both expose the same interface to the policy: read_player(obs) -> coordinate along the
player's axis, read_ball(obs) -> (x, y) or None, PLAYER_LINE, BOUNDS.

The tests record a short rollout (its steps are charged), store frames, RAM and the
detector outputs in hs/tests/fixtures.npz, and check that the detectors reproduce them and
(in ram mode) that the RAM readers agree with image segmentation.
"""

from __future__ import annotations

import numpy as np

from agents.controllers import choose_controller, get_controller
from agents.registry import register
from runtime.context import RunContext
from graph.state import HLState
from probe.atari import ObjectInfo, ProbeReport

MIN_R = 0.9  # a RAM byte must track the image position at least this well


def _fit(report: ProbeReport, label: str):
    fits = [f for f in report.ram_fits.get(label, []) if f.lag == 0 and abs(f.r) >= MIN_R]
    return fits[0] if fits else None


def choose_ball(report: ProbeReport, axis: int, player_line: float) -> ObjectInfo | None:
    """The moving object that reaches the player's line: the one a paddle must intercept."""
    other = 1 - axis
    best, best_gap = None, None
    for obj in report.objects:
        lo, hi = (obj.x_range, obj.y_range)[other]
        gap = 0.0 if lo <= player_line <= hi else min(abs(player_line - lo), abs(player_line - hi))
        if obj.width * obj.height > 64:  # too big to be a ball
            continue
        if best is None or gap < best_gap or (gap == best_gap and obj.mean_speed > best.mean_speed):
            best, best_gap = obj, gap
    return best


def facts_from_probe(report: ProbeReport, obs_mode: str, protocol: str | None = None) -> dict:
    """What the policy-writer needs: axis, actions, the player line, the ball, bounds.

    `protocol` is the run's (default: the probe's; a probe recalled from memory may come
    from a run under another protocol)."""
    if report.player is None or not (report.player_moves_x or report.player_moves_y):
        raise ValueError("the probe found no player that the actions move")
    axis = 0 if report.player_moves_x else 1
    m = report.movement
    increase, decrease = (m.right, m.left) if axis == 0 else (m.down, m.up)
    names = report.action_names
    fire = m.fire if m.fire is not None else (names.index("FIRE") if "FIRE" in names else None)
    player = report.player
    player_line = float(np.mean(player.y_range if axis == 0 else player.x_range))
    ball = choose_ball(report, axis, player_line)
    facts = dict(
        move_axis=axis, moves=[bool(report.player_moves_x), bool(report.player_moves_y)],
        movement=report.movement.model_dump(), action_names=list(names),
        actions=dict(increase=increase, decrease=decrease, noop=names.index("NOOP") if "NOOP" in names else 0, fire=fire),
        player_line=player_line, player=json_obj(player), ball=json_obj(ball) if ball else None,
        bounds=[list(ball.x_range), list(ball.y_range)] if ball else [[0, 159], [0, 209]],
    )  # fmt: skip
    # What tells shooters from paddle games: a fire action that does something, and moving
    # object types seen several at a time that stay away from the player's line (a formation).
    fire_effect = next((e for e in report.actions if e.index == fire), None)
    facts["fire_acts"] = bool(fire_effect is not None and (fire_effect.spawns_object or not (
        fire_effect.is_noop or fire_effect.equivalent_to == facts["actions"]["noop"])))
    facts["objects"] = [dict(json_obj(o), per_frame=round(o.instances_per_frame, 2), speed=round(o.mean_speed, 2))
                        for o in report.objects]  # fmt: skip
    facts["formation"] = [o["name"] for o in facts["objects"] if o["per_frame"] >= 1.5
                          and line_gap(o, axis, player_line) > (player.height if axis == 0 else player.width)]  # fmt: skip
    facts["controller"] = choose_controller(facts)
    if facts["controller"] != "intercept":
        facts.update(get_controller(facts["controller"]).facts_from_probe(report, obs_mode, facts))
        return facts
    from envs.atari.protocols import get_protocol

    # Emulator frames per env step: the controller's motion model looks ahead in frames.
    facts["frame_skip"] = get_protocol(protocol or report.protocol).frame_skip
    if obs_mode == "ram":
        label = "player_x" if axis == 0 else "player_y"
        facts["ram"] = dict(
            player=_fit_dict(_fit(report, label)),
            ball_x=_fit_dict(_fit(report, f"{ball.name}_x")) if ball else None,
            ball_y=_fit_dict(_fit(report, f"{ball.name}_y")) if ball else None,
        )
    return facts


def line_gap(obj: dict, axis: int, player_line: float) -> float:
    """How close (px) an object type's centre came to the player's line (0: it reached it)."""
    lo, hi = obj["y_range"] if axis == 0 else obj["x_range"]
    return 0.0 if lo <= player_line <= hi else float(min(abs(player_line - lo), abs(player_line - hi)))


def json_obj(obj: ObjectInfo) -> dict:
    return dict(name=obj.name, colour=obj.colour, width=obj.width, height=obj.height,
                x_range=list(obj.x_range), y_range=list(obj.y_range))  # fmt: skip


def _fit_dict(fit) -> dict | None:
    return None if fit is None else dict(address=fit.address, a=round(fit.a, 4), b=round(fit.b, 3), r=round(fit.r, 4))


def write_detectors(facts: dict, obs_mode: str) -> str:
    """The source of detectors.py for the chosen controller (intercept detectors here; other
    controllers write their own)."""
    if facts["controller"] != "intercept":
        return get_controller(facts["controller"]).write_detectors(facts, obs_mode)
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


class Obs:
    def __init__(self, rgb, ram):
        self.rgb, self._ram = rgb, ram

    @property
    def ram(self):
        if self._ram is None:
            raise AttributeError("no RAM in vision mode")
        return self._ram


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


GENERIC_DETECTOR_TEST = '''"""Pins detectors.py to frames recorded when it was written (run: python -m pytest hs/tests):
every read_* function must return what it returned on those frames."""

from pathlib import Path
import json
import sys

import numpy as np

HS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HS))

import detectors  # noqa: E402


class Obs:
    def __init__(self, rgb, ram):
        self.rgb, self._ram = rgb, ram

    @property
    def ram(self):
        if self._ram is None:
            raise AttributeError("no RAM in vision mode")
        return self._ram


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


def readings_of(det, obs) -> dict:
    """What every read_* function of a detectors module returns for one observation."""
    import json

    names = sorted(n for n in dir(det) if n.startswith("read_") and callable(getattr(det, n)))
    return {n: json.loads(json.dumps(getattr(det, n)(obs), default=float)) for n in names}


def record_fixtures(ctx: RunContext, facts: dict, steps: int = 400) -> dict:
    """Play a short rollout (random actions, charged to the meter), keep every 10th frame and
    what the new detectors read from it, plus an independent image reading of the player."""
    import importlib.util
    import sys

    from envs.atari.observation import Observation
    from envs.atari.protocols import get_protocol
    from evaluation.rollout import make_env

    spec = importlib.util.spec_from_file_location("hs_detectors", ctx.hs.path / "detectors.py")
    det = importlib.util.module_from_spec(spec)
    sys.modules.pop("hs_detectors", None)
    spec.loader.exec_module(det)

    allowance = ctx.meter.allowance(steps)
    env = make_env(ctx.game.task_id, get_protocol(ctx.config.protocol), [ctx.config.seed])
    obs, info = env.reset()
    rng = np.random.default_rng(ctx.config.seed)
    intercept = facts["controller"] == "intercept"
    moves = [a for a in (facts["actions"] if intercept else facts["movement"]).values() if a is not None]
    frames, rams, players, balls, image_players, readings = [], [], [], [], [], []
    colour = np.array(facts["player"]["colour"])
    action = moves[0]
    for t in range(allowance):
        if t % 10 == 0:
            # The harness's own Observation, so the detectors see exactly what the policy will.
            o = Observation(obs[0], info["ram"][0].copy() if ctx.config.obs_mode == "ram" else None, 0, t, 0.0)
            frames.append(np.ascontiguousarray(o.rgb))
            rams.append(info["ram"][0].copy())
            if intercept:
                player, ball = det.read_player(o), det.read_ball(o)
                players.append(np.nan if player is None else player)
                balls.append((np.nan, np.nan) if ball is None else ball)
                image_players.append(_image_player(o.rgb, colour, facts))
            else:
                readings.append(readings_of(det, o))
        if t % 8 == 0:
            action = int(rng.choice(moves))
        obs, _, term, trunc, info = env.step(np.array([action], dtype=np.int32))
        if term[0] or trunc[0]:
            obs, info = env.reset()
    env.close()
    ctx.meter.charge(allowance, allowance * get_protocol(ctx.config.protocol).frame_skip, "probe")
    arrays = dict(rgb=np.stack(frames))
    if intercept:
        arrays.update(player=np.array(players, dtype=float), ball=np.array(balls, dtype=float),
                      image_player=np.array(image_players, dtype=float))  # fmt: skip
    else:
        import json

        (ctx.hs.path / "tests").mkdir(exist_ok=True)
        (ctx.hs.path / "tests" / "readings.json").write_text(json.dumps(readings))
    if ctx.config.obs_mode == "ram":
        arrays["ram"] = np.stack(rams)
    (ctx.hs.path / "tests").mkdir(exist_ok=True)
    np.savez_compressed(ctx.hs.path / "tests" / "fixtures.npz", **arrays)
    return dict(steps=allowance, frames=len(frames))


def _image_player(rgb: np.ndarray, colour: np.ndarray, facts: dict) -> float:
    """The player's centre along its axis from pixels of its colour near its line."""
    axis, line = facts["move_axis"], facts["player_line"]
    half = (facts["player"]["height"] if axis == 0 else facts["player"]["width"]) / 2 + 1
    lo, hi = int(line - half), int(np.ceil(line + half)) + 1
    region = rgb[lo:hi, :] if axis == 0 else rgb[:, lo:hi]
    mask = (region == colour).all(axis=-1)
    hits = np.nonzero(mask.any(axis=0 if axis == 0 else 1))[0]
    return float(hits[0] + hits[-1]) / 2 if hits.size else np.nan


@register("detector_writer", tools=["probe_report", "list_files", "read_file", "write_file", "patch_file", "run_hs_tests", "query_memory"])
def detector_writer(state: HLState, ctx: RunContext) -> dict:
    """Write hs/detectors.py from the probe, with tests pinned to recorded frames."""
    from evaluation.sandbox import run_hs_tests

    report = ProbeReport.model_validate_json((ctx.run_dir / state["probe"]["path"]).read_text())
    facts = facts_from_probe(report, ctx.config.obs_mode, ctx.config.protocol)
    ctx.hs.init(f"# Heuristic system for {ctx.game.name} ({ctx.config.obs_mode} mode)\n\n"
                "policy.py (the controller), detectors.py (what it sees), tests/ (pins).\n")  # fmt: skip
    test = DETECTOR_TEST if facts["controller"] == "intercept" else GENERIC_DETECTOR_TEST
    ctx.hs.write({"detectors.py": write_detectors(facts, ctx.config.obs_mode), "tests/test_detectors.py": test})
    frames_before = ctx.meter.used_frames
    recorded = record_fixtures(ctx, facts)
    ctx.ledger.append(
        run_id=ctx.run_dir.name, game=ctx.game.name, role="detector_writer", kind="probe", status="ok",
        protocol=ctx.config.protocol, obs_mode=ctx.config.obs_mode, env_steps=recorded["steps"],
        frames=ctx.meter.used_frames - frames_before, change_summary="record frames that pin the detectors",
    )  # fmt: skip
    tests = run_hs_tests(ctx.hs.path)
    passed = tests.passed
    ctx.hs.commit(f"Detectors from the probe ({ctx.config.obs_mode} mode); tests {'pass' if passed else 'FAIL'}\n\n"
                  f"{tests.summary()}")  # fmt: skip
    if ctx.memory is not None:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "detector_facts", facts)
    summary = f"{facts['controller']} controller; axis {'x' if facts['move_axis'] == 0 else 'y'}, " \
              f"ball {facts['ball']['name'] if facts['ball'] else 'none'}; {recorded['frames']} pinned frames; " \
              f"tests {'pass' if passed else 'fail'}"
    return {"detectors": facts, "trace_summary": summary}
