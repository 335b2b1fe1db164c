"""Pong from pixels: find the ball and our paddle by colour, predict where the ball will
reach our paddle, then steer so the ball meets the paddle's upper edge (edge hits come
back steep and fast; the CPU misses them).

Positions are screen pixels (x right, y down). The court is rows 34..193: the white walls
above and below it hide the ball while it bounces, so a missing ball is expected.
"""

import numpy as np

# --- Segmentation: the red channel alone tells the objects apart ----------------------
COURT_ROWS = slice(34, 194)  # between the walls (the score digits are above)
COURT_TOP = 34
BALL_RED = 236  # the ball is (236, 236, 236); the brown background is 144
PLAYER_RED = 92  # our green paddle is (92, 186, 92)
PLAYER_COLUMNS = slice(140, 144)  # our paddle's 4 columns
PADDLE_HALF = 7.5  # the paddle is 16 rows tall

# --- Court geometry (screen pixels) ---------------------------------------------------
HIT_X = 139.5  # ball centre x when it touches our paddle's face
PADDLE_BACK_X = 146.0  # until the ball passes this it can still be hit
WALL_TOP, WALL_BOTTOM = 31.3, 194.3  # ball centre y where it bounces (inside the walls)
REST_Y = 113.0  # middle of the court: wait here while the ball moves away
MAX_GAP = 8  # steps the ball may stay hidden in a wall before we give up on it

# --- Paddle dynamics (measured with button taps) --------------------------------------
# The paddle is a knob: each frame of UP/DOWN moves a hidden aim point PUSH px, and the
# visible paddle closes half its gap to the aim every other frame, LATENCY frames late.
PUSH = 5.75
LATENCY = 2

# --- Strategy -------------------------------------------------------------------------
HIT_OFFSET = -9.0  # where the ball should meet the paddle, relative to its centre (- = above)
CATCH = 12.0  # never aim where the ball would pass further than this from the paddle centre
FRAME_RATE_GAIN = 0.1  # how fast the frames-per-step estimate follows the ball's speed

NOOP, UP, DOWN = 0, 2, 3  # in Pong, RIGHT moves our paddle up and LEFT moves it down


def find_objects(rgb):
    """Ball centre (x, y) or None, and our paddle's centre y or None, from one frame."""
    red = rgb[COURT_ROWS, :, 0]
    ys, xs = np.nonzero(red == BALL_RED)
    ball = (xs.mean(), ys.mean() + COURT_TOP) if ys.size else None
    rows = np.flatnonzero((red[:, PLAYER_COLUMNS] == PLAYER_RED).any(axis=1))
    if not rows.size:
        return ball, None
    top, bottom = rows[0] + COURT_TOP, rows[-1] + COURT_TOP
    # A paddle pushed into the top wall is clipped there: measure from its bottom instead.
    return ball, (bottom - PADDLE_HALF if top == COURT_TOP else top + PADDLE_HALF)


def fold(y, lo, hi):
    """Where a ball travelling freely to `y` really is after bouncing between lo and hi."""
    span = hi - lo
    y = (y - lo) % (2 * span)
    return lo + (y if y <= span else 2 * span - y)


class Policy:
    def reset(self, seed: int) -> None:
        self.ball = None  # (step, x, y) where we last saw the ball
        self.ball_at_paddle = None  # where it will reach our paddle (None: not coming)
        self.paddle = [None] * 3  # recent paddle centres
        self.moves = [0, 0]  # recent moves (-1 up, +1 down)
        self.frames = 1.0  # emulator frames per env step (1 under hl, 4 under ale-v5)

    def act(self, obs) -> int:
        ball, py = find_objects(obs.rgb)
        if py is None:  # not drawn (first frame): assume it has not moved
            py = self.paddle[-1] if self.paddle[-1] is not None else REST_Y
        self.paddle = self.paddle[1:] + [py]

        # 1. Where will the ball reach our paddle? While it is hidden in a wall, keep the
        #    last prediction (it already accounts for the bounce).
        if ball is not None:
            bx, by = ball
            self.ball_at_paddle = None
            if self.ball is not None and obs.step - self.ball[0] <= MAX_GAP:
                dt = obs.step - self.ball[0]
                vx, vy = (bx - self.ball[1]) / dt, (by - self.ball[2]) / dt
                if 0 < abs(vx) < 20:  # the ball moves 1 px per frame across: its step = frame skip
                    self.frames += FRAME_RATE_GAIN * (abs(vx) - self.frames)
                if 0 < vx < 20 and bx < PADDLE_BACK_X:  # coming at us (big jumps are re-serves)
                    # A straight line to our column, folded back at each wall bounce.
                    self.ball_at_paddle = fold(by + vy * (HIT_X - bx) / vx, WALL_TOP, WALL_BOTTOM)
            self.ball = (obs.step, bx, by)
        elif self.ball is None or obs.step - self.ball[0] > MAX_GAP:
            self.ball_at_paddle = None  # gone for good: the point is over
        ball_at_paddle = self.ball_at_paddle

        # 2. Where will the paddle settle? Each redraw halves the gap to the hidden aim, so
        #    the gap left equals the last redraw's move; add presses not drawn yet.
        skip = max(1, round(self.frames))
        redraws = max(1, skip // 2)  # redraws per env step
        lookback = max(1, 2 // skip)  # env steps spanning one redraw
        aim = py
        if self.paddle[-1 - lookback] is not None:
            aim += (py - self.paddle[-1 - lookback]) / (2**redraws - 1)
        undrawn = self.moves[-1] * min(skip, LATENCY) + self.moves[-2] * max(0, LATENCY - skip)
        aim += PUSH * undrawn

        # 3. Up, stay or down: one step of pushing moves the aim PUSH * skip px. Prefer the
        #    aim that puts the ball nearest HIT_OFFSET among those within CATCH of it; if
        #    none is, get as close to the ball as we can.
        def cost(move):
            y = aim + move * PUSH * skip
            if ball_at_paddle is None:
                return (0, abs(y - REST_Y))
            miss = abs(ball_at_paddle - y)
            return (0, abs(ball_at_paddle - y - HIT_OFFSET)) if miss <= CATCH else (1, miss)

        move = min((0, -1, 1), key=cost)
        self.moves = [self.moves[-1], move]
        return {0: NOOP, -1: UP, 1: DOWN}[move]
