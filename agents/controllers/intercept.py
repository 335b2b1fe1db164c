"""The intercept controller (paddle-and-ball games): predict where the ball will cross the
player's line (straight flight with wall bounces), move the player there along its axis.

The module follows the controller interface of agents/controllers/__init__.py.
"""

from __future__ import annotations

import textwrap

NAME = "intercept"

FEATURES = {
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
}

INT_PARAMS = {"velocity_window", "fire_delay", "stall_steps"}

# failure kind -> candidate directions: (name, hypothesis, change), tried in order by the
# replay-critic. A change is {"params": {name: delta | ("scale", f) | ("set", v)},
# "features": {"+name" | "-name"}}.
DIRECTIONS = {
    "lost": [
        ("lead the ball less", "the player overshoots fast balls: the prediction runs ahead", {"params": {"lead": -0.25}}),
        ("lead the ball more", "the player arrives late: aim further along the ball's path", {"params": {"lead": 0.25}}),
        ("tighten the deadband", "the player stops short of the ball", {"params": {"deadband": -1.0}}),
        ("widen the deadband", "the player jitters around the aim point and loses position", {"params": {"deadband": 1.5}}),
        ("aim above the player's centre", "edge hits send the ball back steeper", {"params": {"aim_offset": -3.0}}),
        ("aim below the player's centre", "edge hits on the other side send the ball back steeper", {"params": {"aim_offset": 3.0}}),
        ("smooth the ball velocity over more steps", "the velocity estimate is noisy", {"params": {"velocity_window": 1}}),
        ("react to the ball velocity faster", "the velocity estimate lags behind bounces", {"params": {"velocity_window": -1}}),
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
    return facts.get("ball") is not None and sum(facts.get("moves", [True])) == 1 and not facts.get("formation")


def initial_features(facts: dict) -> set[str]:
    features = {"return_to_centre"}
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
    words = [
        f"Intercept controller. The player moves along {axis_name}; the ball's position comes from",
        "detectors.py. Each step the ball's velocity is measured over the last few steps; when the",
        "ball is heading for the player's line, its crossing point is predicted (straight flight,",
        "bouncing off the field's walls) and the player moves there, `aim_offset` px off its centre.",
        "When the ball moves away the player "
        + ("returns to the middle of the field." if "return_to_centre" in features else "follows the ball."),
    ]
    if "fire_to_serve" in features:
        words.append("With no ball in sight for `fire_delay` steps it presses FIRE to serve.")
    if "stall_breaker" in features:
        words.append("After `stall_steps` steps without reward it shifts its aim by `stall_offset` px,")
        words.append("alternating sides, to knock the ball out of a repeating path.")
    words.append("")
    words.append(f"Last change: {direction}")
    doc = "\n".join(words)
    param_lines = "\n".join(
        f"    {name!r}: {_fmt(params[name])},  # {PARAMS[name][3]}" for name in PARAMS
        if param_used(name, features)
    )
    acts = facts["actions"]
    fire_line = f"FIRE = {acts['fire']}" if acts.get("fire") is not None and "fire_to_serve" in features else ""

    serve = ""
    if "fire_to_serve" in features and acts.get("fire") is not None:
        serve = """
            if self.unseen >= P["fire_delay"]:
                self.unseen = 0
                return FIRE"""
    stall = ""
    if "stall_breaker" in features:
        stall = """
        # No reward for a long time: the ball is probably in a loop; shift the aim to break it.
        if obs.step - self.last_reward_step > P["stall_steps"]:
            periods = (obs.step - self.last_reward_step) // P["stall_steps"]
            target += P["stall_offset"] * (1 if periods % 2 else -1)"""
    away = "CENTRE" if "return_to_centre" in features else "ball[AXIS]"

    code = f'''"""{doc}
"""

from detectors import BOUNDS, PLAYER_LINE, read_ball, read_player

P = {{
{param_lines}
}}

AXIS = {axis}  # the player's axis of movement: 0 = x, 1 = y
OTHER = 1 - AXIS  # the axis along which the ball approaches the player
INCREASE, DECREASE, NOOP = {acts["increase"]}, {acts["decrease"]}, {acts["noop"]}
{fire_line}
LOW, HIGH = BOUNDS[AXIS]  # walls the ball bounces off along the player's axis
CENTRE = (LOW + HIGH) / 2


def fold(coord, low, high):
    """Where a straight flight to `coord` ends up after bouncing between low and high."""
    span = high - low
    if span <= 0:
        return coord
    t = (coord - low) % (2 * span)
    return low + (t if t <= span else 2 * span - t)


class Policy:
    def reset(self, seed):
        self.history = []  # recent ball positions, newest last
        self.unseen = 0
        self.target = CENTRE
        self.last_reward_step = 0

    def act(self, obs):
        if obs.last_reward:
            self.last_reward_step = obs.step
        player = read_player(obs)
        ball = read_ball(obs)
        if ball is None:
            self.history.clear()
            self.unseen += 1{serve}
            # A ball hidden for a moment (behind the paddle, flicker) keeps the last aim.
            target = self.target if self.unseen <= 6 else CENTRE
        else:
            self.unseen = 0
            self.history = (self.history + [ball])[-(P["velocity_window"] + 1):]
            target = self.predict(ball)
        self.target = target
        target += P["aim_offset"]{stall}
        if player is None:
            return NOOP
        error = target - player
        if error > P["deadband"]:
            return INCREASE
        if error < -P["deadband"]:
            return DECREASE
        return NOOP

    def predict(self, ball):
        """The player-axis coordinate where the ball will cross the player's line."""
        if len(self.history) < 2:
            return ball[AXIS]
        steps = len(self.history) - 1
        velocity = [(ball[i] - self.history[0][i]) / steps for i in (0, 1)]
        distance = PLAYER_LINE - ball[OTHER]
        if velocity[OTHER] == 0 or distance / velocity[OTHER] < 0:
            return {away}  # the ball is moving away from the player's line
        travel = velocity[AXIS] * distance / velocity[OTHER]
        return fold(ball[AXIS] + P["lead"] * travel, LOW, HIGH)
'''
    return textwrap.dedent(code)


def param_used(name: str, features: set[str]) -> bool:
    """Whether policy.py uses parameter `name` with these features (disabled features drop theirs)."""
    if name == "fire_delay":
        return "fire_to_serve" in features
    if name in ("stall_steps", "stall_offset"):
        return "stall_breaker" in features
    return True
