"""The intercept controller (paddle-and-ball games): predict where the ball will cross the
player's line (straight flight with wall bounces), move the player there along its axis.

The module follows the controller interface of agents/controllers/__init__.py.
"""

from __future__ import annotations

from agents.controllers.atari.facts import steers_both_ways
from agents.controllers.atari.intercept_detectors import DETECTOR_TEST, fixture_actions, pin_detectors, write_detectors

__all__ = ["DETECTOR_TEST", "fixture_actions", "pin_detectors", "write_detectors"]  # the detector hooks

NAME = "intercept"

FEATURES = {
    "brake": "predict the player's own motion (fitted online) and stop early so it comes to rest on the aim",
    "fire_to_serve": "press FIRE when no ball has been seen for a while (launches the ball)",
    "stall_breaker": "shift the aim point when no reward came for a long time (breaks periodic ball paths)",
    "return_to_centre": "go back to the middle of the field while the ball moves away",
}

PARAMS = {
    # name: (default, low, high, what it means)
    "deadband": (2.0, 0.0, 8.0, "px of aim error tolerated before moving"),
    "aim_offset": (0.0, -12.0, 12.0, "px along the player's axis where the ball should meet the player, from its centre"),
    "lead": (1.0, 0.0, 2.0, "how much of the predicted travel to aim for (1 = full prediction, 0 = track the ball)"),
    "velocity_window": (2, 1, 6, "steps over which the ball's velocity is measured"),
    "fire_delay": (8, 1, 60, "steps without a visible ball before pressing FIRE"),
    "stall_steps": (1500, 200, 6000, "steps without reward before the aim is shifted"),
    "stall_offset": (6.0, 1.0, 16.0, "px the aim is shifted by while stalled (sign alternates)"),
    "settle_frames": (12, 4, 32, "emulator frames the player may keep moving after a press (how far ahead its motion is predicted)"),
}

INT_PARAMS = {"velocity_window", "fire_delay", "stall_steps", "settle_frames"}

# failure kind -> candidate directions: (name, hypothesis, change), tried in order by the
# replay-critic. A change is {"params": {name: delta | ("scale", f) | ("set", v)},
# "features": {"+name" | "-name"}}.
DIRECTIONS = {
    "lost": [
        ("lead the ball less", "the player overshoots fast balls: the prediction runs ahead", {"params": {"lead": -0.25}}),
        ("lead the ball more", "the player arrives late: aim further along the ball's path", {"params": {"lead": 0.25}}),
        ("tighten the deadband", "the player stops short of the ball", {"params": {"deadband": -1.0}}),
        ("widen the deadband", "the player jitters around the aim point and loses position", {"params": {"deadband": 1.5}}),
        ("expect the player to coast longer", "the player overshoots: it keeps moving after a release for longer than "
         "the motion model looks ahead", {"params": {"settle_frames": 4}}),
        ("expect the player to stop sooner", "the player stops short: the motion model looks too far ahead",
         {"params": {"settle_frames": -4}}),
        ("aim above the player's centre", "edge hits send the ball back steeper", {"params": {"aim_offset": -3.0}}),
        ("aim below the player's centre", "edge hits on the other side send the ball back steeper", {"params": {"aim_offset": 3.0}}),
        ("smooth the ball velocity over more steps", "the velocity estimate is noisy", {"params": {"velocity_window": 1}}),
        ("react to the ball velocity faster", "the velocity estimate lags behind bounces", {"params": {"velocity_window": -1}}),
        ("predict the player's own motion and brake early", "the player overshoots the aim: it lags behind the "
         "controls and coasts after a release", {"features": {"+brake"}}),
    ],
    "stall": [
        ("add a stall breaker that shifts the aim", "the ball is in a periodic path that scores nothing",
         {"features": {"+stall_breaker"}}),
        ("break stalls sooner", "the stall breaker waits too long", {"params": {"stall_steps": ("scale", 0.5)}}),
        ("shift the aim further when stalled", "the shift is too small to change the ball's path",
         {"params": {"stall_offset": 4.0}}),
    ],
    "serve": [
        ("serve with FIRE when no ball is in play", "the game waits for FIRE after a life is lost",
         {"features": {"+fire_to_serve"}}),
    ],
}  # fmt: skip


def suits(facts: dict) -> bool:
    """A player moving along one axis only (a paddle) and a ball that reaches its line, and no
    formation of several moving things at a time away from that line (that is a shooter,
    whose projectiles reach the line too)."""
    return (facts.get("ball") is not None and sum(facts.get("moves", [True])) == 1 and not facts.get("formation")
            and steers_both_ways(facts))  # fmt: skip


def facts_from_probe(report, obs_mode: str, base: dict, protocol: str | None = None) -> dict:
    """Hook for the detector-writer: the emulator frames per env step (the motion model looks
    ahead in frames) and, in ram mode, the RAM readers of the player and the ball."""
    from agents.controllers.atari.facts import fit_dict, ram_fit
    from envs.atari.protocols import get_protocol

    facts = {"frame_skip": get_protocol(protocol or report.protocol).frame_skip}
    if obs_mode == "ram":
        label = "player_x" if base["move_axis"] == 0 else "player_y"
        ball = base["ball"]["name"] if base["ball"] else None
        facts["ram"] = dict(
            player=fit_dict(ram_fit(report, label)),
            ball_x=fit_dict(ram_fit(report, f"{ball}_x")) if ball else None,
            ball_y=fit_dict(ram_fit(report, f"{ball}_y")) if ball else None,
        )
    return facts


def initial_features(facts: dict) -> set[str]:
    features = {"return_to_centre"}
    if facts.get("frame_skip", 1) > 1:
        # Several frames per step: the player travels (and coasts) far within one step, so it
        # must stop early. At one frame per step plain deadband steering lands on the aim.
        features.add("brake")
    if facts["actions"].get("fire") is not None:
        features.add("fire_to_serve")  # games that need FIRE to serve show it in the probe
    return features


def _fmt(value) -> str:
    return repr(round(value, 3)) if isinstance(value, float) else repr(value)


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the intercept controller."""
    features = set(features)
    axis = facts["move_axis"]
    axis_name = "x (left/right)" if axis == 0 else "y (up/down)"
    frame_skip = int(facts.get("frame_skip", 1))
    words = [
        f"Intercept controller. The player moves along {axis_name}; the ball's position comes from",
        "detectors.py. Each step the ball's velocity is measured over the last few steps; when the",
        "ball is heading for the player's line, its crossing point is predicted (straight flight,",
        "bouncing off the field's walls) and the player moves there, `aim_offset` px off its centre.",
        "When the ball moves away the player "
        + ("returns to the middle of the field." if "return_to_centre" in features else "follows the ball."),
    ]
    if "brake" in features:
        words += [
            "The player need not stop when the button is released (it may lag behind the controls and",
            f"coast; an env step is {frame_skip} emulator frame{'s' if frame_skip > 1 else ''} here). A motion model fitted online predicts",
            "where it comes to rest after each possible move (press now, then release), looking",
            "`settle_frames` frames ahead; the move whose resting point is nearest the aim is taken.",
        ]
    if "fire_to_serve" in features:
        words.append("With no ball in sight for `fire_delay` steps it presses FIRE to serve.")
    if "stall_breaker" in features:
        words.append("After `stall_steps` steps without reward it shifts its aim by `stall_offset` px,")
        words.append("alternating sides, to knock the ball out of a repeating path.")
    words.append("")
    words.append(f"Last change: {direction}")
    param_lines = "\n".join(
        f"    {name!r}: {_fmt(params.get(name, PARAMS[name][0]))},  # {PARAMS[name][3]}" for name in PARAMS
        if param_used(name, features)
    )
    acts = facts["actions"]
    has_fire = acts.get("fire") is not None and "fire_to_serve" in features
    brake = "brake" in features

    serve = ""
    if has_fire:
        serve = """
            if self.unseen >= P["fire_delay"]:
                self.unseen = 0
                return self.press(player, FIRE)"""
    stall = ""
    if "stall_breaker" in features:
        stall = """
        # No reward for a long time: the ball is probably in a loop; shift the aim to break it.
        if obs.step - self.last_reward_step > P["stall_steps"]:
            periods = (obs.step - self.last_reward_step) // P["stall_steps"]
            target += P["stall_offset"] * (1 if periods % 2 else -1)"""
    if brake:
        steer = """
        if self.motion.ready():
            # Where the player comes to rest after each move (press now, then release).
            rest = {move: player + self.motion.still_to_go(player, move) for move in (-1, 0, 1)}
            if abs(rest[0] - target) > P["deadband"]:
                move = min((-1, 0, 1), key=lambda m: abs(rest[m] - target))
                return self.press(player, {-1: DECREASE, 0: NOOP, 1: INCREASE}[move])
            return self.press(player, NOOP)"""
    else:
        steer = ""
    code = '''"""__DOC__
"""

__NUMPY__from detectors import BOUNDS, PLAYER_LINE, read_ball, read_player

P = {
__PARAMS__
}

AXIS = __AXIS__  # the player's axis of movement: 0 = x, 1 = y
OTHER = 1 - AXIS  # the axis along which the ball approaches the player
INCREASE, DECREASE, NOOP = __INC__, __DEC__, __NOOP__
__FIRE__LOW, HIGH = BOUNDS[AXIS]  # walls the ball bounces off along the player's axis
CENTRE = (LOW + HIGH) / 2
__MOTION_CONSTS__

def fold(coord, low, high):
    """Where a straight flight to `coord` ends up after bouncing between low and high."""
    span = high - low
    if span <= 0:
        return coord
    t = (coord - low) % (2 * span)
    return low + (t if t <= span else 2 * span - t)
__MOTION_CLASS__

class Policy:
    def reset(self, seed):
        self.history = []  # recent ball positions, newest last
        self.unseen = 0
        self.target = CENTRE
        self.last_reward_step = 0__MOTION_RESET__

    def act(self, obs):
        if obs.last_reward:
            self.last_reward_step = obs.step
        player = read_player(obs)
        ball = read_ball(obs)
        if ball is None:
            self.history.clear()
            self.unseen += 1__SERVE__
            # A ball hidden for a moment (behind the paddle, flicker) keeps the last aim.
            target = self.target if self.unseen <= 6 else CENTRE
        else:
            self.unseen = 0
            self.history = (self.history + [ball])[-(P["velocity_window"] + 1):]
            target = self.predict(ball)
        self.target = target
        target += P["aim_offset"]__STALL__
        if player is None:
            return self.press(player, NOOP)__STEER__
        error = target - player
        if error > P["deadband"]:
            return self.press(player, INCREASE)
        if error < -P["deadband"]:
            return self.press(player, DECREASE)
        return self.press(player, NOOP)

    def press(self, player, action):
        """Return `action`__PRESS_DOC__."""__PRESS__
        return action

    def predict(self, ball):
        """The player-axis coordinate where the ball will cross the player's line."""
        if len(self.history) < 2:
            return ball[AXIS]
        steps = len(self.history) - 1
        velocity = [(ball[i] - self.history[0][i]) / steps for i in (0, 1)]
        distance = PLAYER_LINE - ball[OTHER]
        if velocity[OTHER] == 0 or distance / velocity[OTHER] < 0:
            return __AWAY__  # the ball is moving away from the player's line
        travel = velocity[AXIS] * distance / velocity[OTHER]
        return fold(ball[AXIS] + P["lead"] * travel, LOW, HIGH)
'''
    motion_consts = f"""FRAME_SKIP = {frame_skip}  # emulator frames per env step (the protocol's frame skip)
# Steps the motion model looks ahead: the frames the player may keep moving, in env steps.
HORIZON = max(1, round(P["settle_frames"] / FRAME_SKIP))
""" if brake else ""
    subs = {
        "__DOC__": "\n".join(words),
        "__NUMPY__": "import numpy as np\n\n" if brake else "",
        "__PARAMS__": param_lines,
        "__AXIS__": str(axis),
        "__INC__": str(acts["increase"]), "__DEC__": str(acts["decrease"]), "__NOOP__": str(acts["noop"]),
        "__FIRE__": f"FIRE = {acts['fire']}\n" if has_fire else "",
        "__MOTION_CONSTS__": motion_consts,
        "__MOTION_CLASS__": _MOTION_CLASS if brake else "",
        "__MOTION_RESET__": "\n        self.motion = Motion()  # the player's response to our moves" if brake else "",
        "__SERVE__": serve, "__STALL__": stall, "__STEER__": steer,
        "__PRESS_DOC__": ", telling the motion model which way it pushes the player" if brake else "",
        "__PRESS__": "\n        self.motion.record(player, {INCREASE: 1, DECREASE: -1}.get(action, 0))" if brake else "",
        "__AWAY__": "CENTRE" if "return_to_centre" in features else "ball[AXIS]",
    }  # fmt: skip
    for key, value in subs.items():
        code = code.replace(key, value)
    return code


_MOTION_CLASS = '''

class Motion:
    """How far the player will still move, learned from its own history: a least-squares fit
    of its displacement over the next HORIZON steps on the moves it was given (those of the
    next HORIZON steps, and of the last HORIZON: it may react late and coast) and its last two
    speeds. Steps with the player unseen or pressed against a wall are left out of the fit."""

    def __init__(self):
        self.xx = np.eye(2 * HORIZON + 2) * 1e-3  # the normal equations' running sums (a little ridge)
        self.xy = np.zeros(2 * HORIZON + 2)
        self.weights = None
        self.samples = 0
        self.positions, self.moves = [], []  # per step: the player's reading and its move (-1, 0, +1)
        self.low, self.high = np.inf, -np.inf  # the extremes the player reached (its walls)

    def features(self, future, past, here, before, before2):
        """future: moves from now on (oldest first); past: the last HORIZON moves (newest first)."""
        return np.array(list(future) + list(past) + [here - before, before - before2])

    def record(self, player, move):
        self.positions = (self.positions + [np.nan if player is None else float(player)])[-(2 * HORIZON + 3):]
        self.moves = (self.moves + [move])[-(2 * HORIZON + 3):]
        if player is not None:
            self.low, self.high = min(self.low, player), max(self.high, player)
        t = len(self.positions) - 1 - HORIZON  # the step whose outcome is known now
        if t < max(HORIZON, 2):
            return
        pos = self.positions
        window = np.array(pos[t - 2:])
        if np.isnan(window).any() or window.min() <= self.low or window.max() >= self.high:
            return
        x = self.features(self.moves[t:t + HORIZON], self.moves[t - HORIZON:t][::-1], pos[t], pos[t - 1], pos[t - 2])
        self.xx += np.outer(x, x)
        self.xy += x * (pos[-1] - pos[t])
        self.samples += 1
        if self.samples % 16 == 0:
            self.weights = np.linalg.solve(self.xx, self.xy)

    def ready(self):
        return self.weights is not None and self.samples >= 8 * len(self.xy)

    def still_to_go(self, player, move):
        """Predicted displacement over the next HORIZON steps if `move` is pressed now, then none."""
        pos = self.positions
        if len(pos) < HORIZON + 2 or np.isnan(pos[-2:]).any():
            return 0.0
        x = self.features([move] + [0] * (HORIZON - 1), self.moves[-HORIZON:][::-1], player, pos[-1], pos[-2])
        return float(x @ self.weights)
'''


def param_used(name: str, features: set[str]) -> bool:
    """Whether policy.py uses parameter `name` with these features (disabled features drop theirs)."""
    if name == "fire_delay":
        return "fire_to_serve" in features
    if name in ("stall_steps", "stall_offset"):
        return "stall_breaker" in features
    if name == "settle_frames":
        return "brake" in features
    return True
