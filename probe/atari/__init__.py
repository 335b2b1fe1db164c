"""The builtin prober: discover a game's structure from controlled rollouts, for any Atari game.

    python -m probe.atari --game breakout --out runs/breakout/probe
    report = probe_game(resolve_game("pong"), Path("out"), StepMeter(budget=30_000))

Nothing here knows any particular game. Everything is measured:

1. **Actions.** Under protocol `hl` every reset is byte-identical, so one EnvPool env per
   action, all with the same seed, are identical copies of the game. The prober finds how
   long the game ignores input (an adaptive warm-up: hold each action from the start and note
   when the frames first diverge), replays that many NOOPs in every copy, then holds a
   different action in each copy for `hold_steps` steps and compares against the NOOP copy:
   who moved where, which actions are visually identical, which make something appear. It
   repeats this from a few more start states: after waiting longer (if some action did
   nothing yet) and after holding the strongest mover along each axis (a player that started
   against a wall, or above a ladder); a start state that costs a life is skipped.
2. **Player.** The colour that the actions *move* (it vanishes from the NOOP copy's pixels and
   appears elsewhere; a launched shot only appears) is the player's colour; its blobs that
   moved give the player's size and home, and the experiments give the axes it can move on.
   A multicoloured sprite is kept whole by grouping same-coloured pixels a row or two apart.
3. **Moving objects.** A rollout of mixed random and held actions; pixels that never changed
   during its first part are scenery, the rest is segmented into one-colour blobs, grouped by
   colour and size into object types, and the types whose blobs move are kept (ball,
   enemies, projectiles); blobs that sat unchanged for a while (score digits) are ignored.
4. **RAM.** Every sampled frame of that rollout is labelled with the player's and each
   object type's pixel position, and each of the 128 RAM bytes (this step and the step
   before) is correlated with each label; the best bytes per label come with a robust linear
   map `pixel = a * ram + b`. The lives byte is the byte that changes exactly when
   `info["lives"]` drops; room/level bytes are rarely-changing, low-cardinality bytes that
   change with whole-screen changes, or, if the rollout never changed rooms, whose
   perturbation (ale-py `setRAM` on a saved state) redraws the screen layout.

Every env step is charged to the StepMeter as kind "probe", including the frames emulated in
ale-py for the perturbation experiment (one step per frame). Budget policy: a meter that is
already spent raises BudgetExhausted before anything runs; a budget that runs out during the
probe never gets exceeded: the probe stops the current phase, skips what is left, and returns
(and writes) a report with `partial=True` and a note saying what was cut.

Outputs in `out_dir` (existing files are never overwritten; FileExistsError up front):
`probe.json` (the ProbeReport), `probe.md` (a human summary), `objects.png` (a frame with the
player and objects boxed), `actions.png` (each action's effect, changes tinted magenta) and,
when the perturbation experiment finds a layout byte, `room.png`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from envs.atari.games import GameSpec, UnknownGameError, resolve_game
from envs.atari.protocols import PROTOCOLS, Protocol, get_protocol
from record.meter import BudgetExhausted, StepMeter
from evaluation.rollout import make_env

OUTPUT_FILES = ("probe.json", "probe.md", "objects.png", "actions.png", "room.png")
MOVE_THRESHOLD = 2.0  # pixels of displacement (relative to NOOP) that count as movement
FIRST_MOVE = 3.0  # the offset at which an action's direction is read


# ============================================================================================
# Report schema
# ============================================================================================


class ProbeConfig(BaseModel):
    """Knobs of the probe (generic; none is tuned for a particular game)."""

    hold_steps: int = Field(32, ge=4, description="steps each action is held in the action experiment")
    max_warmup_steps: int = Field(600, ge=0, description="give up waiting for the game to respond after this")
    record_envs: int = Field(4, ge=1, description="parallel envs in the recording rollout")
    record_steps: int = Field(8000, ge=0, description="env steps of the recording rollout (all envs together)")
    discover_steps: int = Field(240, ge=8, description="steps per env (after warm-up) used to discover object types")
    sample_stride: int = Field(2, ge=1, description="label every n-th frame of the recording")
    rest_steps: int = Field(64, ge=1, description="a blob unchanged this long is resting scenery (a score digit), not an object")
    perturb_ram: bool = Field(True, description="run the ale-py RAM perturbation experiment (ram mode only)")


class ActionEffect(BaseModel):
    """What holding one action does, compared with holding NOOP from the same state."""

    index: int
    name: str
    dx: float | None = Field(None, description="player x displacement vs NOOP after the hold (pixels, + = right)")
    dy: float | None = Field(None, description="player y displacement vs NOOP after the hold (pixels, + = down)")
    max_abs_dx: float | None = Field(None, description="largest |x offset| from the NOOP copy during the hold")
    max_abs_dy: float | None = Field(None, description="largest |y offset| from the NOOP copy during the hold")
    first_move: list[float] | None = Field(None, description="[step, dx, dy]: the offset when it first reached 3 px (before gravity or walls interfere)")
    direction: str = Field("none", description="'left', 'up-right', ... from first_move; 'none' if the player never left the NOOP copy's position")
    returns: bool = Field(False, description="moved, then ended back where the NOOP copy is (a jump)")
    name_matches_direction: bool | None = Field(None, description="whether the action's name describes its measured direction")
    is_noop: bool = Field(False, description="frames identical to the NOOP copy for the whole hold, in every start state")
    equivalent_to: int | None = Field(None, description="lowest other action with identical frames (and RAM in ram mode) in every start state")
    spawns_object: bool = Field(False, description="a new blob appears away from the player (shot, ball launch)")
    ram_only_effect: bool = Field(False, description="frames match NOOP but RAM differs (input latched, no visible effect)")
    ram_bytes_changed: list[int] = Field(default_factory=list, description="RAM bytes that differ from the NOOP copy (ram mode)")


class MovementLabels(BaseModel):
    """Which action index moves the player in each screen direction (None: no such action)."""

    left: int | None = None
    right: int | None = None
    up: int | None = None
    down: int | None = None
    fire: int | None = Field(None, description="lowest action that spawns an object without moving the player")
    jump: int | None = Field(None, description="lowest action that moves the player up and back (returns)")


class ObjectInfo(BaseModel):
    """A kind of blob: one colour, a typical size, and how it moves."""

    name: str
    colour: list[int] = Field(description="RGB")
    colour_hex: str
    width: float
    height: float
    area: float
    instances_per_frame: float = Field(description="mean count per frame when present")
    visible_fraction: float = Field(description="fraction of labelled frames in which it was seen")
    mean_speed: float = Field(description="pixels per env step, mean over tracked moves")
    speed_p95: float = Field(description="95th percentile of pixels per env step")
    x_range: list[float] = Field(description="[min, max] of the centre x seen")
    y_range: list[float] = Field(description="[min, max] of the centre y seen")
    labels: list[str] = Field(default_factory=list, description="position labels regressed against RAM")


class RamFit(BaseModel):
    """RAM byte `address` (read `lag` steps before the frame) predicts `label` as a*ram+b."""

    label: str
    address: int
    r: float = Field(description="Pearson correlation over all frames where the label is visible")
    r_inliers: float = Field(description="Pearson correlation over the frames the robust line fits (see inliers)")
    inliers: float = Field(description="fraction of frames within max(3 px, 3 x median miss) of the robust line")
    a: float
    b: float
    lag: int = Field(description="0: RAM of the same step as the frame; 1: RAM of the step before")
    rmse: float = Field(description="pixels, of the linear map on the inlier frames")
    within_2px: float = Field(description="fraction of fitted frames the linear map predicts within 2 pixels")
    n: int = Field(description="frames used")


class LivesByte(BaseModel):
    """The RAM byte that changes when info['lives'] drops."""

    address: int
    f1: float = Field(description="agreement between the byte's changes and life losses")
    events: int = Field(description="life losses seen")
    consistency: float = Field(description="fraction of steps where the byte equals its usual value for the current lives")
    offset: int | None = Field(None, description="ram - lives when that difference is constant")
    value_by_lives: dict[int, int] = Field(default_factory=dict, description="the byte's usual value for each lives count seen")


class RoomCandidate(BaseModel):
    """A rarely-changing, low-cardinality byte that goes with whole-screen changes."""

    address: int
    n_values: int = Field(description="distinct values seen in the recording")
    changes: int = Field(description="times it changed in the recording")
    screen_change_agreement: float | None = Field(None, description="share of its changes that coincide with whole-screen changes")
    layout_change: float | None = Field(None, description="fraction of edge pixels redrawn when the byte is perturbed (ale-py)")


class Playfield(BaseModel):
    top: int
    bottom: int
    left: int
    right: int


class ProbeReport(BaseModel):
    """Everything the prober found out about one game; see probe.md for the readable version."""

    game: str
    task_id: str
    protocol: str
    obs_mode: str
    seed: int
    config: ProbeConfig
    action_names: list[str]
    warmup_steps: int | None = Field(None, description="NOOP steps before actions change anything on screen")
    hold_steps: int
    actions: list[ActionEffect] = Field(default_factory=list)
    movement: MovementLabels = Field(default_factory=MovementLabels)
    player: ObjectInfo | None = None
    player_moves_x: bool = False
    player_moves_y: bool = False
    objects: list[ObjectInfo] = Field(default_factory=list)
    background_colour: list[int] | None = None
    playfield: Playfield | None = Field(None, description="bounds of where the player and objects were seen")
    changing_region: Playfield | None = Field(None, description="bounds of all pixels that changed during discovery")
    ram_analysis: bool = Field(description="False in vision mode: no RAM was read")
    ram_fits: dict[str, list[RamFit]] = Field(default_factory=dict, description="label -> best RAM bytes, best first")
    lives_start: int | None = None
    lives: LivesByte | None = None
    room_candidates: list[RoomCandidate] = Field(default_factory=list)
    env_steps: int = Field(0, description="all env steps charged to the meter (EnvPool steps + ale-py frames)")
    env_frames: int = 0
    envpool_steps: int = 0
    ale_frames: int = 0
    recorded_steps: int = 0
    labelled_frames: int = 0
    wall_seconds: float = 0.0
    partial: bool = Field(False, description="True if the budget ran out and some phases were cut")
    notes: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)

    def best_ram(self, label: str) -> RamFit | None:
        """The best RAM fit for a label ('player_x', 'obj0_y', ...), or None."""
        fits = self.ram_fits.get(label)
        return fits[0] if fits else None


# ============================================================================================
# Blobs: one-colour connected components, vectorised over horizontal runs
# ============================================================================================


def pack_rgb(frames: np.ndarray, channels_first: bool = True) -> np.ndarray:
    """RGB uint8 frames -> int32 colour keys 0xRRGGBB (drops the channel axis)."""
    f = frames.astype(np.int32, copy=False)
    if channels_first:
        return (f[..., 0, :, :] << 16) | (f[..., 1, :, :] << 8) | f[..., 2, :, :]
    return (f[..., 0] << 16) | (f[..., 1] << 8) | f[..., 2]


def unpack_rgb(key: int) -> list[int]:
    """0xRRGGBB -> [r, g, b]."""
    key = int(key)
    return [(key >> 16) & 255, (key >> 8) & 255, key & 255]


def unpack_keys(keys: np.ndarray) -> np.ndarray:
    """(H, W) colour keys -> (H, W, 3) uint8 RGB."""
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.uint8)


def hex_colour(key: int) -> str:
    return f"#{int(key):06x}"


@dataclass
class Blobs:
    """Connected components of equal colour (8-connected): one entry per blob.

    Coordinates are pixels, x right and y down; boxes are inclusive [x0, x1] x [y0, y1].
    """

    colour: np.ndarray
    area: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    fresh: np.ndarray | None = None  # optional: changed since the previous sample (foreground blobs)

    def __len__(self) -> int:
        return len(self.area)

    @property
    def width(self) -> np.ndarray:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> np.ndarray:
        return self.y1 - self.y0 + 1

    def take(self, index) -> "Blobs":
        fields = [getattr(self, f)[index] for f in ("colour", "area", "cx", "cy", "x0", "x1", "y0", "y1")]
        return Blobs(*fields, fresh=None if self.fresh is None else self.fresh[index])

    @staticmethod
    def empty() -> "Blobs":
        z = np.zeros(0)
        return Blobs(z.astype(np.int64), z, z, z, z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z.astype(np.int64))


def find_blobs(keys: np.ndarray, ignore: np.ndarray | None = None, label_map: bool = False) -> Blobs | tuple[Blobs, np.ndarray]:
    """Segment an (H, W) array of colour keys into one-colour, 8-connected blobs.

    Pixels where `ignore` is True belong to no blob (pass the background, or scenery).
    With label_map=True also returns an (H, W) int array: each pixel's blob index, -1 if none.
    Works on horizontal runs rather than pixels, so a 210x160 frame takes about a millisecond:
    runs are linked to same-colour runs touching them in the next row, and linked runs are
    merged by vectorised min-label propagation with pointer jumping (no scipy needed).
    """
    k = np.where(ignore, -1, keys) if ignore is not None else keys
    valid = k >= 0
    # Work on the smallest window holding every valid pixel (a sprite's mask is tiny).
    rows, cols = np.nonzero(valid.any(axis=1))[0], np.nonzero(valid.any(axis=0))[0]
    if rows.size == 0:
        return (Blobs.empty(), np.full(keys.shape, -1)) if label_map else Blobs.empty()
    r0, c0 = int(rows[0]), int(cols[0])
    window = np.s_[r0 : int(rows[-1]) + 1, c0 : int(cols[-1]) + 1]
    blobs, labels = _label_runs(k[window], valid[window])
    blobs.cx += c0
    blobs.x0 += c0
    blobs.x1 += c0
    blobs.cy += r0
    blobs.y0 += r0
    blobs.y1 += r0
    if not label_map:
        return blobs
    full = np.full(keys.shape, -1)
    full[window] = labels
    return blobs, full


def _label_runs(k: np.ndarray, valid: np.ndarray) -> tuple[Blobs, np.ndarray]:
    """find_blobs on a window: k holds colour keys, -1 where ignored."""
    H, W = k.shape
    start = valid.copy()
    start[:, 1:] &= k[:, 1:] != k[:, :-1]
    n = int(start.sum())
    run_id = np.cumsum(start.ravel()).reshape(H, W) - 1
    ys, xs = np.nonzero(start)
    length = np.bincount(run_id[valid], minlength=n)

    # Links between runs of the same colour in consecutive rows: straight down and diagonal.
    up, down = k[:-1], k[1:]
    rid_up, rid_down = run_id[:-1], run_id[1:]
    src, dst = [], []
    for a_cols, b_cols in ((np.s_[:], np.s_[:]), (np.s_[1:], np.s_[:-1]), (np.s_[:-1], np.s_[1:])):
        linked = (up[:, a_cols] == down[:, b_cols]) & (up[:, a_cols] >= 0)
        src.append(rid_up[:, a_cols][linked])
        dst.append(rid_down[:, b_cols][linked])
    a, b = np.concatenate(src), np.concatenate(dst)  # duplicates are harmless below

    parent = np.arange(n)
    while a.size:
        pa, pb = parent[a], parent[b]
        if np.array_equal(pa, pb):
            break
        low = np.minimum(pa, pb)
        np.minimum.at(parent, pa, low)
        np.minimum.at(parent, pb, low)
        while True:  # pointer jumping: every run points straight at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand

    is_root = parent == np.arange(n)
    roots = np.nonzero(is_root)[0]
    comp = (np.cumsum(is_root) - 1)[parent]  # run -> blob index, blobs ordered by first run
    m = roots.size
    area = np.bincount(comp, weights=length, minlength=m)
    sum_x = np.bincount(comp, weights=length * (xs + (length - 1) / 2), minlength=m)
    sum_y = np.bincount(comp, weights=length * ys, minlength=m)
    x0 = np.full(m, W, dtype=np.int64)
    np.minimum.at(x0, comp, xs)
    x1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(x1, comp, xs + length - 1)
    y0 = np.full(m, H, dtype=np.int64)
    np.minimum.at(y0, comp, ys)
    y1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(y1, comp, ys)
    colour = k[ys[roots], xs[roots]].astype(np.int64)
    blobs = Blobs(colour, area, sum_x / area, sum_y / area, x0, x1, y0, y1)
    return blobs, np.where(valid, comp[run_id], -1)


def find_groups(mask: np.ndarray, colour: int, reach_y: int = 2, reach_x: int = 1) -> Blobs:
    """Blobs of one colour, counting pixels up to `reach_y` rows / `reach_x` columns apart
    as connected. A multicoloured sprite (a character whose red body is cut into bands by a
    yellow belt and face) stays one blob; stats are computed on the real pixels only."""
    grown = mask.copy()
    for d in range(1, reach_y + 1):
        grown[d:] |= mask[:-d]
        grown[:-d] |= mask[d:]
    wide = grown.copy()
    for d in range(1, reach_x + 1):
        wide[:, d:] |= grown[:, :-d]
        wide[:, :-d] |= grown[:, d:]
    groups, labels = find_blobs(wide.astype(np.int32), ignore=~wide, label_map=True)
    if len(groups) == 0:
        return groups
    ys, xs = np.nonzero(mask)
    lab = labels[ys, xs]
    m = len(groups)
    area = np.bincount(lab, minlength=m).astype(np.float64)
    x0 = np.full(m, mask.shape[1], dtype=np.int64)
    np.minimum.at(x0, lab, xs)
    x1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(x1, lab, xs)
    y0 = np.full(m, mask.shape[0], dtype=np.int64)
    np.minimum.at(y0, lab, ys)
    y1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(y1, lab, ys)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(lab, weights=xs, minlength=m) / area
        cy = np.bincount(lab, weights=ys, minlength=m) / area
    keep = area > 0
    return Blobs(np.full(m, colour, dtype=np.int64), area, cx, cy, x0, x1, y0, y1).take(keep)


def mode_colour(keys: np.ndarray) -> int:
    """The most common colour key (the background, for almost every Atari game)."""
    values, counts = np.unique(keys, return_counts=True)
    return int(values[counts.argmax()])


# ============================================================================================
# Metered EnvPool batch
# ============================================================================================


class BudgetCut(Exception):
    """Internal: the next batch step would exceed the meter's budget."""


class MeteredEnv:
    """An EnvPool batch of `n` identical envs (same seed) whose every step is charged as "probe".

    step() refuses (BudgetCut) a batch step that the remaining budget cannot cover, so the
    meter is never overdrawn. An env that finished is reset by EnvPool on its next step; that
    step is charged like any other, and `fresh` marks it so callers can cut the time series.
    """

    def __init__(self, game: GameSpec, protocol: Protocol, n: int, seed: int, meter: StepMeter, counts: dict):
        self.env = make_env(game.task_id, protocol, [seed] * n)
        self.n = n
        self.meter = meter
        self.counts = counts
        self.frame_skip = protocol.frame_skip
        self.reset_frames = protocol.frame_skip if protocol.use_fire_reset else 0
        self.done = np.zeros(n, dtype=bool)

    def reset(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reset every env; returns frames (n,3,210,160), ram (n,128), lives (n,)."""
        frames, info = self.env.reset()
        self._charge(0, self.n * self.reset_frames)
        self.done[:] = False
        return frames, info["ram"], info["lives"]

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One step of every env; returns frames, ram, lives, fresh (True: this env was just reset)."""
        remaining = self.meter.remaining
        if remaining is not None and remaining < self.n:
            raise BudgetCut(f"{remaining} steps left, a batch step needs {self.n}")
        self.meter.allowance(self.n)
        fresh = self.done.copy()
        frames, _, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int32))
        self.done = np.asarray(terminated) | np.asarray(truncated)
        self._charge(self.n, self.n * self.frame_skip + int(fresh.sum()) * self.reset_frames)
        self.counts["envpool_steps"] += self.n
        return frames, info["ram"], info["lives"], fresh

    def _charge(self, steps: int, frames: int) -> None:
        self.meter.charge(steps, frames, "probe")
        self.counts["env_frames"] += frames

    def close(self) -> None:
        self.env.close()


# ============================================================================================
# Player model and tracking
# ============================================================================================


@dataclass
class Scenery:
    """Pixels that kept one colour through a set of frames (walls, bricks, the HUD frame)."""

    static: np.ndarray  # (H, W) colour keys of the first frame
    constant: np.ndarray  # (H, W) True where every frame had that colour

    @staticmethod
    def from_frames(keys: np.ndarray) -> "Scenery":
        """keys: (N, H, W) colour keys."""
        flat = keys.reshape(-1, *keys.shape[-2:])
        return Scenery(flat[0], (flat == flat[0]).all(axis=0))

    def unchanged(self, keys: np.ndarray) -> np.ndarray:
        """True where this frame shows the scenery's own colour."""
        return self.constant & (keys == self.static)


@dataclass
class PlayerModel:
    """How to find the player in a frame: its colour, typical size, home and free axes."""

    colour: int
    area: float
    width: float
    height: float
    home: tuple[float, float]
    moves_x: bool = True
    moves_y: bool = True


class Follower:
    """Keeps hold of one target among candidate blobs: the one nearest its last position.

    While the target is on screen, a candidate further than `max_jump` is refused (it is a
    look-alike; the target is briefly hidden or merged), for up to `patience` refusals. When
    there was no candidate at all last time (the target left the screen: a lost ball, a
    respawn), the nearest candidate is taken whatever the distance; with `trust_unique` so is
    a lone candidate that just changed (a ball served again far from where it was lost, but
    not a score digit that has sat still since it was redrawn). With no known position a
    candidate is taken only when it is the only one.
    """

    def __init__(self, max_jump: float, start: tuple[float, float] | None = None, patience: int = 30, trust_unique: bool = False):
        self.max_jump = max_jump
        self.start = start
        self.patience = patience
        self.trust_unique = trust_unique
        self.reset()

    def reset(self) -> None:
        self.pos = self.start
        self.refused = 0
        self.absent = False

    def pick(self, blobs: Blobs) -> int | None:
        """Index of the target among `blobs`, or None."""
        if len(blobs) == 0:
            self.absent = True
            return None
        if self.pos is None:
            if len(blobs) > 1:
                return None
            best = 0
        else:
            dist = np.hypot(blobs.cx - self.pos[0], blobs.cy - self.pos[1])
            best = int(dist.argmin())
            lone_and_moving = len(blobs) == 1 and (blobs.fresh is None or bool(blobs.fresh[0]))
            trusted = self.absent or (self.trust_unique and lone_and_moving)
            if dist[best] > self.max_jump and not trusted and self.refused < self.patience:
                self.refused += 1
                return None
        self.pos = (float(blobs.cx[best]), float(blobs.cy[best]))
        self.refused = 0
        self.absent = False
        return best


class PlayerTracker:
    """Follows the player blob through a sequence of frames.

    Candidates are groups of the player's colour (find_groups) with a similar area, not scenery
    (some of their pixels differ from the static picture: this rejects a same-coloured wall
    block the player could be confused with). Along an axis the player never moved in the
    action experiment they must sit at the home coordinate (this rejects same-coloured score
    digits and HUD icons). Among them a Follower keeps the one nearest the last position.
    """

    def __init__(self, model: PlayerModel, constrain_axes: bool, max_jump: float, scenery: Scenery | None = None):
        self.model = model
        self.constrain_axes = constrain_axes
        self.scenery = scenery
        self.follower = Follower(max_jump, start=model.home)

    def reset(self) -> None:
        self.follower.reset()

    def candidates(self, keys: np.ndarray) -> Blobs:
        m = self.model
        mask = keys == m.colour
        if not mask.any():
            return Blobs.empty()
        blobs = find_groups(mask, m.colour)
        ok = (blobs.area >= 0.25 * m.area) & (blobs.area <= 2.5 * m.area)  # partly hidden at a wall counts
        if self.scenery is not None:
            moving = mask & ~self.scenery.unchanged(keys)
            ok &= np.array([moving[y0 : y1 + 1, x0 : x1 + 1].any() for x0, x1, y0, y1 in zip(blobs.x0, blobs.x1, blobs.y0, blobs.y1)], dtype=bool)
        if self.constrain_axes and not m.moves_x:
            ok &= np.abs(blobs.cx - m.home[0]) <= max(2.0, 0.5 * m.width)
        if self.constrain_axes and not m.moves_y:
            ok &= np.abs(blobs.cy - m.home[1]) <= max(2.0, 0.5 * m.height)
        return blobs.take(ok)

    def locate(self, keys: np.ndarray) -> Blobs | None:
        """The player's blob in this frame (a one-entry Blobs), or None if not visible."""
        blobs = self.candidates(keys)
        best = self.follower.pick(blobs)
        return None if best is None else blobs.take([best])


# ============================================================================================
# Phase 1: actions
# ============================================================================================


@dataclass
class ActionExperiment:
    """Frames and RAM of every action's copy during the hold (index 0 of time = hold start)."""

    prefix: list[int]  # actions played in every copy before the hold
    frames: np.ndarray  # (A, hold+1, 3, 210, 160) uint8
    rams: np.ndarray  # (A, hold+1, 128) uint8
    lives: np.ndarray  # (A, hold+1) info["lives"]


def find_warmup(env: MeteredEnv, max_steps: int) -> int | None:
    """Steps the game ignores input: hold action i in env i from reset until the frames of
    some env differ from env 0's (NOOP). Returns that step count, or None if they never do."""
    env.reset()
    actions = np.arange(env.n)
    for t in range(max_steps):
        frames, _, _, _ = env.step(actions)
        if (frames != frames[:1]).any():
            return t
    return None


def hold_actions(env: MeteredEnv, prefix: list[int], hold: int) -> ActionExperiment:
    """Play the same `prefix` of actions in every copy, then hold action i in copy i for
    `hold` steps. Frames and RAM are kept for the hold (time 0 = end of the prefix)."""
    frames, rams, lives = env.reset()
    for action in prefix:
        frames, rams, lives, _ = env.step(np.full(env.n, action, dtype=np.int32))
    out_frames = np.empty((env.n, hold + 1) + frames.shape[1:], dtype=np.uint8)
    out_rams = np.empty((env.n, hold + 1, rams.shape[1]), dtype=np.uint8)
    out_lives = np.empty((env.n, hold + 1), dtype=np.int32)
    out_frames[:, 0], out_rams[:, 0], out_lives[:, 0] = frames, rams, lives
    actions = np.arange(env.n)
    for t in range(1, hold + 1):
        frames, rams, lives, _ = env.step(actions)
        out_frames[:, t], out_rams[:, t], out_lives[:, t] = frames, rams, lives
    return ActionExperiment(list(prefix), out_frames, out_rams, out_lives)


def vote_player_colour(exps: list[ActionExperiment], background: int) -> int | None:
    """The colour that the actions move most consistently.

    A moved blob leaves pixels of its colour in the NOOP copy that are gone in the action's
    copy, and puts that colour where it was not: so a colour scores min(appeared, vanished)
    pixels per step. A shot that appears (or a blob destroyed) scores nothing. Each action
    votes with the shares of its scores, so one loud effect cannot outvote several actions
    that move the player. Falls back to all changed colours if nothing moved.
    """
    moved: Counter = Counter()
    changed_any: Counter = Counter()
    for exp in exps:
        noop_keys = pack_rgb(exp.frames[0])
        for a in range(1, exp.frames.shape[0]):
            keys = pack_rgb(exp.frames[a])
            changed = keys != noop_keys
            if not changed.any():
                continue
            appeared = Counter(dict(zip(*np.unique(keys[changed], return_counts=True))))
            vanished = Counter(dict(zip(*np.unique(noop_keys[changed], return_counts=True))))
            for votes, scores in (
                (moved, {c: min(appeared[c], vanished[c]) for c in appeared if c != background}),
                (changed_any, {c: appeared[c] + vanished[c] for c in appeared | vanished if c != background}),
            ):
                total = sum(scores.values())
                for c, n in scores.items():
                    if n and total:
                        votes[int(c)] += n / total
    votes = moved if moved else changed_any
    return votes.most_common(1)[0][0] if votes else None


def action_scenery(exp: ActionExperiment) -> Scenery:
    """Pixels that never changed in any copy during the hold."""
    first = pack_rgb(exp.frames[0, 0])
    constant = np.ones(first.shape, dtype=bool)
    for a in range(exp.frames.shape[0]):
        constant &= (pack_rgb(exp.frames[a]) == first).all(axis=0)
    return Scenery(first, constant)


def seed_player(exp: ActionExperiment, colour: int, scenery: Scenery) -> PlayerModel | None:
    """Size and home of the player.

    Candidates are blobs of the player's colour touching pixels that differ from the NOOP
    copy; each is paired with the nearest similar blob of the NOOP copy, and only the ones
    that moved (a score digit redrawn in place does not) are kept. Size is their median;
    home is the NOOP-copy partner of the earliest mover, found again at the hold start."""
    noop_keys = pack_rgb(exp.frames[0])
    moved, touched = [], []  # (t, area, width, height, partner cx, partner cy)
    for a in range(1, exp.frames.shape[0]):
        keys = pack_rgb(exp.frames[a])
        for t in range(1, keys.shape[0]):
            changed = (keys[t] != noop_keys[t]) & (keys[t] == colour)
            if not changed.any():
                continue
            blobs = find_groups(keys[t] == colour, colour)
            partners = find_groups(noop_keys[t] == colour, colour)
            for i in range(len(blobs)):
                if not changed[blobs.y0[i] : blobs.y1[i] + 1, blobs.x0[i] : blobs.x1[i] + 1].any():
                    continue
                row = [t, blobs.area[i], blobs.width[i], blobs.height[i], blobs.cx[i], blobs.cy[i]]
                similar = (partners.area >= 0.5 * blobs.area[i]) & (partners.area <= 2 * blobs.area[i])
                if similar.any():
                    p = partners.take(similar)
                    dist = np.hypot(p.cx - blobs.cx[i], p.cy - blobs.cy[i])
                    j = int(dist.argmin())
                    row[4:] = [p.cx[j], p.cy[j]]
                    if dist[j] >= 1.0:
                        moved.append(row)
                touched.append(row)
    seen = np.asarray(moved or touched, dtype=np.float64)
    if seen.size == 0:
        return None
    area, width, height = (float(np.median(seen[:, k])) for k in (1, 2, 3))
    first = seen[seen[:, 0].argmin()]
    model = PlayerModel(colour=colour, area=area, width=width, height=height, home=(float(first[4]), float(first[5])))
    # The player may not be drawn yet at the hold start: then keep the partner's position.
    tracker = PlayerTracker(model, constrain_axes=False, max_jump=max(width, height), scenery=scenery)
    blob = tracker.locate(noop_keys[0])
    if blob is not None:
        model.home = (float(blob.cx[0]), float(blob.cy[0]))
    return model


def _direction(dx: float, dy: float, threshold: float = MOVE_THRESHOLD) -> str:
    """'up-left' etc. A component counts if it is >= threshold and not tiny next to the other."""
    big = max(abs(dx), abs(dy))
    parts = []
    if abs(dy) >= threshold and abs(dy) >= 0.25 * big:
        parts.append("up" if dy < 0 else "down")
    if abs(dx) >= threshold and abs(dx) >= 0.25 * big:
        parts.append("left" if dx < 0 else "right")
    return "-".join(parts) or "none"


def _name_matches(name: str, direction: str, returns: bool = False) -> bool | None:
    """Does an ALE action name ('UPRIGHTFIRE') describe the measured direction? None when
    there is nothing to compare (no direction either way, or an undirected jump)."""
    named = {d for d in ("up", "down", "left", "right") if d.upper() in name}
    measured = set(direction.split("-")) - {"none"}
    if not named and (not measured or returns):
        return None
    return named == measured


def track_player(exp: ActionExperiment, model: PlayerModel, scenery: Scenery) -> np.ndarray:
    """Player centre (x, y) in every copy at every hold step: (A, T, 2), NaN when not seen."""
    A, T = exp.frames.shape[:2]
    tracks = np.full((A, T, 2), np.nan)
    for a in range(A):
        keys = pack_rgb(exp.frames[a])
        tracker = PlayerTracker(model, constrain_axes=False, max_jump=3 * max(model.width, model.height) + 8, scenery=scenery)
        for t in range(T):
            blob = tracker.locate(keys[t])
            if blob is not None:
                tracks[a, t] = blob.cx[0], blob.cy[0]
    return tracks


def analyse_actions(
    exp: ActionExperiment, names: list[str], model: PlayerModel | None, tracks: np.ndarray | None, use_ram: bool
) -> tuple[list[ActionEffect], np.ndarray]:
    """Per-action effects of one hold experiment, and the (A, A) matrix of copies whose
    frames (and RAM, in ram mode) were identical throughout."""
    A = exp.frames.shape[0]
    same_frames = np.array([[np.array_equal(exp.frames[i], exp.frames[j]) for j in range(A)] for i in range(A)])
    same = same_frames.copy()
    if use_ram:
        same &= np.array([[np.array_equal(exp.rams[i], exp.rams[j]) for j in range(A)] for i in range(A)])
    noop_keys = pack_rgb(exp.frames[0])
    background = mode_colour(noop_keys[0])
    effects = []
    for a in range(A):
        eff = ActionEffect(index=a, name=names[a] if a < len(names) else str(a))
        eff.is_noop = bool(same_frames[a, 0])
        if use_ram:
            differs = (exp.rams[a] != exp.rams[0]).any(axis=0)
            eff.ram_bytes_changed = [int(i) for i in np.nonzero(differs)[0]]
            eff.ram_only_effect = bool(eff.is_noop and differs.any())
        if a == 0:
            eff.dx = eff.dy = eff.max_abs_dx = eff.max_abs_dy = 0.0
        elif tracks is not None:
            rel = tracks[a] - tracks[0]  # relative to the NOOP copy: autonomous motion cancels
            ok = ~np.isnan(rel).any(axis=1)
            if ok.any():
                last = np.nonzero(ok)[0][-1]
                eff.dx, eff.dy = round(float(rel[last, 0]), 2), round(float(rel[last, 1]), 2)
                eff.max_abs_dx = round(float(np.abs(rel[ok, 0]).max()), 2)
                eff.max_abs_dy = round(float(np.abs(rel[ok, 1]).max()), 2)
                # Direction from the first clear move: walking right off a ledge ends
                # "down-right", but the action is RIGHT.
                moved = np.nonzero(ok & (np.abs(np.nan_to_num(rel)).max(axis=1) >= FIRST_MOVE))[0]
                if moved.size:
                    t = moved[0]
                    eff.first_move = [int(t), round(float(rel[t, 0]), 2), round(float(rel[t, 1]), 2)]
                    eff.direction = _direction(rel[t, 0], rel[t, 1], threshold=min(MOVE_THRESHOLD, FIRST_MOVE))
                    eff.returns = bool(np.hypot(eff.dx, eff.dy) < MOVE_THRESHOLD)
        if a > 0 and not eff.is_noop:
            eff.spawns_object = _spawns(
                pack_rgb(exp.frames[a]), noop_keys, None if tracks is None else tracks[a], None if tracks is None else tracks[0], model, background
            )
        effects.append(eff)
    return effects, same


def _spawns(keys: np.ndarray, noop_keys: np.ndarray, track, noop_track, model: PlayerModel | None, background: int) -> bool:
    """Does a new blob appear away from the player early in the hold?

    Away from the player, look for a colour that appears in the action's copy but vanished
    nowhere in the NOOP copy: a launched shot or ball. A ball merely deflected by a moved
    paddle both appears and vanishes, so it does not count; neither does anything after the
    first half of the hold."""
    pad_x = model.width if model else 0.0
    pad_y = model.height if model else 0.0
    for t in range(1, max(2, keys.shape[0] // 2)):
        changed = keys[t] != noop_keys[t]
        if not changed.any():
            continue
        ys, xs = np.nonzero(changed)
        far = np.ones(xs.size, dtype=bool)
        if track is not None:
            for pos in (track[t], noop_track[t], track[t - 1]):
                if not np.isnan(pos).any():
                    far &= (np.abs(xs - pos[0]) > pad_x) | (np.abs(ys - pos[1]) > pad_y)
        appeared = set(keys[t][ys[far], xs[far]].tolist()) - {background}
        vanished = set(noop_keys[t][ys[far], xs[far]].tolist())
        if appeared - vanished:
            return True
    return False


def merge_effects(states: list[tuple[list[ActionEffect], np.ndarray]]) -> list[ActionEffect]:
    """Combine the action experiments from several start states.

    An action's movement is taken from the state where it moved the player most (from the
    first state the player may be against a wall); it is a no-op only if it was one in every
    state, and equivalent to another action only if they matched in every state."""
    same = np.logical_and.reduce([s for _, s in states])
    merged = []
    for a in range(same.shape[0]):
        versions = [effects[a] for effects, _ in states]
        best = max(versions, key=lambda e: (e.max_abs_dx or 0.0) + (e.max_abs_dy or 0.0)).model_copy()
        best.is_noop = all(e.is_noop for e in versions)
        best.spawns_object = any(e.spawns_object for e in versions)
        best.ram_bytes_changed = sorted({b for e in versions for b in e.ram_bytes_changed})
        best.ram_only_effect = best.is_noop and bool(best.ram_bytes_changed)
        others = [j for j in range(same.shape[0]) if j != a and same[a, j]]
        best.equivalent_to = min(others) if others else None
        best.name_matches_direction = _name_matches(best.name, best.direction, best.returns)
        merged.append(best)
    return merged


def rank_movers(tracks: np.ndarray | None, steps: int, per_axis: int = 2) -> list[list[int]]:
    """For each axis, the actions that moved the player furthest along it in `steps` steps,
    best first, one per distinct outcome (RIGHT and UPRIGHT often do the same thing).
    Holding one that long gives another start state: off the wall the player started
    against, halfway down the ladder it stood above."""
    if tracks is None:
        return []
    t = min(steps, tracks.shape[1] - 1)
    rel = tracks[:, t] - tracks[0, t]  # (A, 2) offsets from the NOOP copy
    ranked = []
    for axis in (0, 1):
        size = np.nan_to_num(np.abs(rel[:, axis]), nan=-1.0)
        picks, outcomes = [], []
        for a in np.argsort(-size, kind="stable"):
            if size[a] < MOVE_THRESHOLD or len(picks) == per_axis:
                break
            if any(np.allclose(rel[a], o, atol=0.5) for o in outcomes):
                continue
            picks.append(int(a))
            outcomes.append(rel[a])
        if picks:
            ranked.append(picks)
    return ranked


def action_phase(
    env: MeteredEnv, names: list[str], config: ProbeConfig, use_ram: bool, report: ProbeReport, notes: list[str]
) -> tuple[list[ActionExperiment], PlayerModel | None, list[ActionEffect]]:
    """Find the warm-up, hold every action from a first state, identify the player, then
    hold every action again from up to two more states (after the strongest mover along
    each axis was held for half a hold, so a player that started against a wall can move
    both ways, and one that started above a ladder is now on it).

    Fills report.warmup_steps, lives_start, background_colour, player_moves_x/y."""
    hold = config.hold_steps
    diverge = find_warmup(env, config.max_warmup_steps)
    if diverge is None:
        notes.append(f"no action changed the screen within {config.max_warmup_steps} steps")
    report.warmup_steps = max(0, (diverge or 0) - 1)
    warmup = [0] * report.warmup_steps
    exps = [hold_actions(env, warmup, hold)]
    report.lives_start = int(exps[0].lives[0, 0])
    background = mode_colour(pack_rgb(exps[0].frames[0, 0]))
    report.background_colour = unpack_rgb(background)

    colour = vote_player_colour(exps, background)
    scenery = action_scenery(exps[0])
    model = seed_player(exps[0], colour, scenery) if colour is not None else None
    tracks = [track_player(exps[0], model, scenery) if model else None]
    states = [analyse_actions(exps[0], names, model, tracks[0], use_ram)]
    tried: set[int] = set()
    try:
        # Some actions are enabled later than others (a jump only after the intro): if any
        # action did nothing, also try every action after waiting one more hold.
        if any(e.is_noop for e in states[0][0][1:]):
            exp = hold_actions(env, warmup + [0] * hold, hold)
            exps.append(exp)
            tracks.append(track_player(exp, model, scenery) if model else None)
            states.append(analyse_actions(exp, names, model, tracks[-1], use_ram))
        for candidates in rank_movers(tracks[0], hold // 2):
            for mover in candidates:
                if mover in tried:
                    break  # this state was already explored for the other axis
                tried.add(mover)
                exp = hold_actions(env, warmup + [mover] * (hold // 2), hold)
                if exp.lives[0, -1] < exps[0].lives[0, 0]:
                    notes.append(f"holding action {mover} for {hold // 2} steps costs a life; that start state was not used")
                    continue  # a dying player responds to nothing: try the next mover
                exps.append(exp)
                tracks.append(track_player(exp, model, scenery))
                states.append(analyse_actions(exp, names, model, tracks[-1], use_ram))
                break
    except BudgetCut as cut:  # keep what the earlier states showed
        report.partial = True
        notes.append(f"budget ran out during the extra action states ({cut})")
    if model is None:
        notes.append("no player found: no action moved a blob")
    else:
        moved = np.concatenate([(t - t[:1]).reshape(-1, 2) for t in tracks if t is not None])
        model.moves_x = bool(np.nanmax(np.abs(moved[:, 0]), initial=0) >= MOVE_THRESHOLD)
        model.moves_y = bool(np.nanmax(np.abs(moved[:, 1]), initial=0) >= MOVE_THRESHOLD)
        report.player_moves_x, report.player_moves_y = model.moves_x, model.moves_y
    return exps, model, merge_effects(states)


def movement_labels(effects: list[ActionEffect]) -> MovementLabels:
    """For each direction, the lowest action moving purely that way and staying moved (else
    the strongest such mover); the lowest launcher; the lowest up-and-back mover (jump)."""
    labels = MovementLabels()
    for d, axis, sign in (("left", "dx", -1), ("right", "dx", 1), ("up", "dy", -1), ("down", "dy", 1)):
        pure = [e.index for e in effects if e.direction == d and not e.returns]
        if pure:
            setattr(labels, d, pure[0])
            continue
        scored = [(sign * getattr(e, axis), e.index) for e in effects if getattr(e, axis) is not None and not e.returns]
        scored = [s for s in scored if s[0] >= MOVE_THRESHOLD]
        if scored:
            setattr(labels, d, max(scored, key=lambda s: (s[0], -s[1]))[1])
    fire = [e.index for e in effects if e.spawns_object and e.direction == "none"]
    labels.fire = fire[0] if fire else None
    jump = [e.index for e in effects if e.returns and e.direction.startswith("up")]
    labels.jump = jump[0] if jump else None
    return labels


# ============================================================================================
# Phase 2: recording rollout, object discovery and labelling
# ============================================================================================


@dataclass
class ObjectType:
    """A kind of moving blob: colour plus a size window."""

    colour: int
    width: float
    height: float
    area: float
    single: bool = True  # usually one instance per frame (label its position) vs a group
    records: list = field(default_factory=list)  # (env, step, xs, ys) sightings
    speeds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # px/step seen in discovery

    def matches(self, blobs: Blobs) -> np.ndarray:
        tol_w, tol_h = max(2.0, 0.34 * self.width), max(2.0, 0.34 * self.height)
        return (
            (blobs.colour == self.colour)
            & (np.abs(blobs.width - self.width) <= tol_w)
            & (np.abs(blobs.height - self.height) <= tol_h)
        )


def action_schedule(num_actions: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Random actions mixed with long holds, so the player both jitters and sweeps its range."""
    out = np.empty(steps, dtype=np.int32)
    t = 0
    while t < steps:
        n = int(rng.integers(16, 65)) if rng.random() < 0.5 else int(rng.integers(1, 7))
        out[t : t + n] = rng.integers(num_actions)
        t += n
    return out


def group_object_types(blobs_per_frame: list[tuple[int, int, Blobs]], min_presence: float, max_types: int = 6) -> list[ObjectType]:
    """Group foreground blobs by colour and size; keep the types that move.

    blobs_per_frame holds (env, step, blobs) in time order per env. A type is kept when it
    is seen in at least `min_presence` of the frames and its blobs move between frames.
    """
    if not blobs_per_frame:
        return []
    counts: Counter = Counter()
    for _, _, b in blobs_per_frame:
        for c, w, h in zip(b.colour.tolist(), b.width.tolist(), b.height.tolist()):
            counts[(c, w, h)] += 1
    types: list[ObjectType] = []
    claimed: set = set()
    for (c, w, h), _ in counts.most_common():
        if (c, w, h) in claimed:
            continue
        t = ObjectType(colour=c, width=w, height=h, area=0.0)
        for key in counts:
            if key[0] == c and key not in claimed and abs(key[1] - w) <= max(2.0, 0.34 * w) and abs(key[2] - h) <= max(2.0, 0.34 * h):
                claimed.add(key)
        types.append(t)

    n_frames = len(blobs_per_frame)
    kept = []
    for t in types:
        areas, n_present = [], 0
        for env, step, b in blobs_per_frame:
            m = t.matches(b)
            if m.any():
                n_present += 1
                idx = np.nonzero(m)[0]
                areas.extend(b.area[idx].tolist())
                t.records.append((env, step, b.cx[idx], b.cy[idx]))
        if n_present < max(3, min_presence * n_frames):
            continue
        speeds = _speeds(t.records)
        # Slow movers (an invader formation) creep a pixel every dozen steps; digits and
        # animations that change in place do not go anywhere: compare sightings 32-64 apart.
        drift = _speeds(t.records, min_gap=32, max_gap=64)
        if not drift.size or np.median(drift) * 48 < 1.0:
            continue  # usually moves less than a pixel in 48 steps: scenery that changes in place
        t.area = float(np.median(areas))
        t.speeds = speeds
        t.single = float(np.median([len(r[2]) for r in t.records])) <= 1
        kept.append(t)
    kept.sort(key=lambda t: -len(t.records))
    return kept[:max_types]


def _speeds(records: list, min_gap: int = 1, max_gap: int = 8) -> np.ndarray:
    """Pixels per step between sightings of the same env `min_gap`..`max_gap` steps apart,
    each blob matched to the nearest blob of the earlier sighting. Records are
    (env, step, xs, ys); envs may be interleaved."""
    out = []
    by_env: dict = {}
    for r in records:
        by_env.setdefault(r[0], []).append(r)
    for rs in by_env.values():
        rs.sort(key=lambda r: r[1])
        steps = np.array([r[1] for r in rs])
        for i, (_, s1, x1, y1) in enumerate(rs):
            j = np.searchsorted(steps, s1 - min_gap, side="right") - 1  # latest sighting >= min_gap earlier
            if j < 0 or j >= i or s1 - steps[j] > max_gap:
                continue
            _, s0, x0, y0 = rs[j]
            d = np.hypot(x1[:, None] - x0[None, :], y1[:, None] - y0[None, :]).min(axis=1)
            out.extend((d / (s1 - s0)).tolist())
    return np.asarray(out)


@dataclass
class Recording:
    """The recording rollout: per-step RAM and lives, labelled positions at sampled steps."""

    rams: np.ndarray  # (envs, T, 128)
    lives: np.ndarray  # (envs, T)
    fresh: np.ndarray  # (envs, T) the env was reset at this step
    screen_change: np.ndarray  # (envs, T) fraction of pixels changed since the previous step
    sample_env: list = field(default_factory=list)
    sample_step: list = field(default_factory=list)
    sample_labels: list = field(default_factory=list)  # dict label -> value per sample
    steps: int = 0  # steps recorded per env
    cut: bool = False


class Labeller:
    """Turns a frame into position labels: the player and every moving object type."""

    def __init__(self, player: PlayerModel | None, background: int, scenery: Scenery, stride: int, envs: int, rest_steps: int):
        self.player = player
        self.background = background
        self.scenery = scenery
        self.types: list[ObjectType] = []
        jump = 3 * max(player.width, player.height) + 8 * stride if player else 0
        self.trackers = [PlayerTracker(player, True, jump, scenery) for _ in range(envs)] if player else []
        self.envs, self.stride = envs, stride
        self.rest_samples = max(1, rest_steps // stride)
        self.prev_keys: list[np.ndarray | None] = [None] * envs
        self.age = [np.zeros(scenery.static.shape, dtype=np.int32) for _ in range(envs)]  # samples unchanged
        self.followers: list[list[Follower]] = []  # [env][type], for single-instance types
        self.player_boxes: list = []  # (env, step, x0, y0, x1, y1) of every player sighting
        self.best_frame: tuple | None = None  # (score, rgb frame, detections)

    def set_types(self, types: list[ObjectType]) -> None:
        """Use these object types from now on; single ones get a Follower per env that
        refuses jumps a few times longer than the type's fastest observed motion."""
        self.types = types
        self.followers = []
        for _ in range(self.envs):
            row = []
            for t in types:
                speed = np.percentile(t.speeds, 95) if t.speeds.size else 4.0
                row.append(Follower(3 * max(t.width, t.height) + 3 * self.stride * max(speed, 1.0) + 8, trust_unique=True))
            self.followers.append(row)

    def reset_env(self, env: int) -> None:
        """An episode restarted in this env: forget where things were."""
        self.prev_keys[env] = None
        self.age[env][:] = 0
        if self.trackers:
            self.trackers[env].reset()
        for f in self.followers[env] if self.followers else []:
            f.reset()

    def foreground(self, env: int, keys: np.ndarray, player_blob: Blobs | None) -> Blobs:
        """Blobs with some pixel that is neither unchanged scenery nor resting (unchanged for
        `rest_steps`, like a score digit that changed once), minus the player's.

        Blobs are segmented on the whole frame (only the background ignored) and then kept or
        dropped whole, so an invader half over its old position is not cut into fragments."""
        prev = self.prev_keys[env]
        age = self.age[env]
        if prev is None:
            age[:] = 0
        else:
            np.copyto(age, np.where(keys == prev, age + 1, 0))
        self.prev_keys[env] = keys
        blobs, labels = find_blobs(keys, ignore=keys == self.background, label_map=True)
        if len(blobs):
            lively = (age < self.rest_samples) & ~self.scenery.unchanged(keys) & (labels >= 0)
            blobs.fresh = np.bincount(labels[lively & (age == 0)], minlength=len(blobs)) > 0
            blobs = blobs.take(np.bincount(labels[lively], minlength=len(blobs)) > 0)
        if player_blob is not None and len(blobs):
            p = player_blob
            pad_x, pad_y = 0.5 * float(p.width[0]), 0.5 * float(p.height[0])
            near = (
                (blobs.x1 >= p.x0[0] - pad_x) & (blobs.x0 <= p.x1[0] + pad_x)
                & (blobs.y1 >= p.y0[0] - pad_y) & (blobs.y0 <= p.y1[0] + pad_y)
            )
            blobs = blobs.take(~near)
        return blobs

    def player_blob(self, env: int, step: int, keys: np.ndarray) -> Blobs | None:
        if not self.trackers:
            return None
        blob = self.trackers[env].locate(keys)
        if blob is not None:
            self.player_boxes.append((env, step, int(blob.x0[0]), int(blob.y0[0]), int(blob.x1[0]), int(blob.y1[0])))
        return blob

    def labels(self, env: int, step: int, player_blob: Blobs | None, blobs: Blobs) -> tuple[dict, list]:
        """Position labels for one frame, and the boxes detected (for the overview picture)."""
        out: dict[str, float] = {}
        boxes = []
        if player_blob is not None:
            # Label only a whole player: the centre of a sprite half hidden behind a wall
            # is not where the game thinks the player is.
            if 0.75 <= player_blob.area[0] / self.player.area <= 1.5:
                out["player_x"], out["player_y"] = float(player_blob.cx[0]), float(player_blob.cy[0])
            boxes.append(("player", player_blob))
        for k, t in enumerate(self.types):
            m = t.matches(blobs)
            if not m.any():
                continue
            found = blobs.take(m)
            if t.single:  # one thing (a ball): follow it, ignore look-alikes (score digits)
                best = self.followers[env][k].pick(found)
                if best is None:
                    continue
                found = found.take([best])
                out[f"obj{k}_x"], out[f"obj{k}_y"] = float(found.cx[0]), float(found.cy[0])
            else:  # a group (a formation): its top-left corner
                out[f"obj{k}_x"], out[f"obj{k}_y"] = float(found.x0.min()), float(found.y0.min())
            t.records.append((env, step, found.cx, found.cy))
            boxes.append((f"obj{k}", found))
        return out, boxes


def record(
    env: MeteredEnv,
    num_actions: int,
    warmup: int,
    player: PlayerModel | None,
    config: ProbeConfig,
    seed: int,
    notes: list[str],
    keep_ram: bool = True,
) -> tuple[Recording, Labeller | None]:
    """Run the recording rollout: discover object types on the first frames, then label
    every `sample_stride`-th frame while logging lives, screen changes and (keep_ram) RAM
    every step. Actions: random ones mixed with long holds (action_schedule), per env."""
    n, stride = env.n, config.sample_stride
    total = max(0, config.record_steps // n)
    rng = np.random.default_rng(seed)
    schedules = np.stack([action_schedule(num_actions, total, rng) for _ in range(n)])
    schedules[:, : min(warmup, total)] = 0  # nothing responds during the warm-up anyway
    rec = Recording(
        rams=np.zeros((n, total, 128), dtype=np.uint8),
        lives=np.zeros((n, total), dtype=np.int32),
        fresh=np.zeros((n, total), dtype=bool),
        screen_change=np.zeros((n, total)),
    )
    discover_end = min(total, warmup + config.discover_steps)
    stored: list[tuple[int, int, np.ndarray, bool]] = []  # (env, step, keys, restarted) during discovery
    labeller: Labeller | None = None
    restarted = np.zeros(n, dtype=bool)  # an episode restarted since the env's last sample

    frames, _, _ = env.reset()
    prev = frames
    try:
        for t in range(total):
            frames, rams, lives, fresh = env.step(schedules[:, t])
            rec.lives[:, t], rec.fresh[:, t] = lives, fresh
            if keep_ram:
                rec.rams[:, t] = rams
            rec.screen_change[:, t] = (frames != prev).any(axis=1).mean(axis=(1, 2))
            prev = frames
            rec.steps = t + 1
            restarted |= fresh
            if t >= warmup and t % stride == 0:
                keys = pack_rgb(frames)
                if labeller is None:
                    stored.extend((e, t, keys[e], bool(restarted[e])) for e in range(n))
                else:
                    for e in range(n):
                        _label_sample(labeller, rec, e, t, keys[e], frames[e], bool(restarted[e]))
                restarted[:] = False
            if t + 1 == discover_end and labeller is None:
                labeller = _discover(stored, player, rec, stride, n, config.rest_steps, notes)
                stored = []
    except BudgetCut as cut:
        rec.cut = True
        notes.append(f"budget ran out during the recording after {rec.steps} steps per env ({cut})")
    if labeller is None and stored:
        labeller = _discover(stored, player, rec, stride, n, config.rest_steps, notes)
    for name in ("rams", "lives", "fresh", "screen_change"):
        setattr(rec, name, getattr(rec, name)[:, : rec.steps])
    return rec, labeller


def _discover(stored, player: PlayerModel | None, rec: Recording, stride: int, envs: int, rest_steps: int, notes: list[str]) -> Labeller | None:
    """Build the labeller from the discovery frames, then label those frames too."""
    if not stored:
        notes.append("no frames for object discovery (recording too short)")
        return None
    scenery = Scenery.from_frames(np.stack([k for _, _, k, _ in stored]))
    background = mode_colour(scenery.static)
    labeller = Labeller(player, background, scenery, stride, envs, rest_steps)
    fg_frames = []
    for e, t, keys, restarted in stored:  # in time order, envs interleaved: trackers stay causal
        if restarted:
            labeller.reset_env(e)
        blob = labeller.player_blob(e, t, keys)
        fg_frames.append((e, t, labeller.foreground(e, keys, blob)))
    types = group_object_types(fg_frames, min_presence=0.05)
    for t in types:
        t.records = []  # re-collected below and during the rest of the recording
    labeller.set_types(types)
    for e in range(envs):
        labeller.reset_env(e)
    labeller.player_boxes.clear()
    for e, t, keys, restarted in stored:
        _label_sample(labeller, rec, e, t, keys, None, restarted)
    return labeller


def _label_sample(labeller: Labeller, rec: Recording, env: int, step: int, keys: np.ndarray, frame: np.ndarray | None, restarted: bool) -> None:
    """Label one frame and log it as a sample of the recording."""
    if restarted:
        labeller.reset_env(env)
    blob = labeller.player_blob(env, step, keys)
    fg = labeller.foreground(env, keys, blob) if labeller.types else Blobs.empty()
    values, boxes = labeller.labels(env, step, blob, fg)
    rec.sample_env.append(env)
    rec.sample_step.append(step)
    rec.sample_labels.append(values)
    # Keep the frame showing the most kinds of things, for objects.png.
    score = len({name for name, _ in boxes})
    if labeller.best_frame is None or score > labeller.best_frame[0]:
        rgb = frame.transpose(1, 2, 0).copy() if frame is not None else unpack_keys(keys)
        labeller.best_frame = (score, rgb, boxes)


# ============================================================================================
# Phase 3: RAM analysis
# ============================================================================================


def pearson(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of X with y (0 where a column is constant)."""
    Xc = X - X.mean(axis=0)
    yc = y - y.mean()
    denom = np.sqrt((Xc**2).sum(axis=0) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Xc.T @ yc) / denom
    return np.nan_to_num(r)


def robust_line(x: np.ndarray, y: np.ndarray, rounds: int = 3) -> tuple[float, float, np.ndarray]:
    """y ~ a*x + b fitted by least squares, then refitted on the frames it predicts within
    max(3 px, 3 x the median miss): a few mislabelled frames (a score digit taken for a
    hidden paddle) must not bend the line. Returns a, b and the inlier mask."""
    inliers = np.ones(x.size, dtype=bool)
    a, b = 0.0, float(np.median(y))
    for _ in range(rounds):
        xs, ys = x[inliers], y[inliers]
        if xs.size < 2 or xs.var() == 0:
            break
        a = float(np.mean((xs - xs.mean()) * (ys - ys.mean())) / xs.var())
        b = float(ys.mean() - a * xs.mean())
        resid = np.abs(a * x + b - y)
        inliers = resid <= max(3.0, 3.0 * float(np.median(resid[inliers])))
    return a, b, inliers


def fit_ram(rec: Recording, top: int = 3, pool: int = 5, min_frames: int = 20) -> dict[str, list[RamFit]]:
    """For every position label, the RAM bytes (lag 0 or 1) that best predict it linearly.

    The `pool` bytes with the highest |Pearson r| per lag are refitted robustly
    (robust_line) and ranked by |r on the inliers| x the inlier fraction."""
    if not rec.sample_step:
        return {}
    env = np.asarray(rec.sample_env)
    step = np.asarray(rec.sample_step)
    ram0 = rec.rams[env, step].astype(np.float64)
    has_prev = (step > 0) & ~rec.fresh[env, step]
    ram1 = rec.rams[env, np.maximum(step - 1, 0)].astype(np.float64)
    names = sorted({k for d in rec.sample_labels for k in d})
    fits: dict[str, list[RamFit]] = {}
    for name in names:
        y = np.array([d.get(name, np.nan) for d in rec.sample_labels])
        visible = ~np.isnan(y)
        if visible.sum() < min_frames:
            continue  # (almost) never seen
        if np.mean(np.abs(y[visible] - np.median(y[visible])) <= 1.5) >= 0.9:
            continue  # does not move along this axis (a few mislabelled frames aside)
        scored = []
        for lag, X, ok in ((0, ram0, visible), (1, ram1, visible & has_prev)):
            if ok.sum() < min_frames:
                continue
            r = pearson(X[ok], y[ok])
            for addr in np.argsort(-np.abs(r))[:pool]:
                x, target = X[ok, addr], y[ok]
                a, b, inl = robust_line(x, target)
                r_in = float(pearson(x[inl, None], target[inl])[0]) if inl.sum() > 2 else 0.0
                resid = np.abs(a * x + b - target)
                fit = RamFit(
                    label=name, address=int(addr), r=round(float(r[addr]), 4), r_inliers=round(r_in, 4),
                    inliers=round(float(inl.mean()), 3), a=round(a, 4), b=round(b, 3), lag=lag,
                    rmse=round(float(np.sqrt(np.mean(resid[inl] ** 2))) if inl.any() else 0.0, 3),
                    within_2px=round(float(np.mean(resid <= 2.0)), 3), n=int(ok.sum()),
                )
                scored.append((round(abs(r_in) * fit.inliers, 3), -lag, fit))
        # Best score first; a lag-0 fit wins ties (it needs no memory of the previous step).
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        seen, best = set(), []
        for _, _, f in scored:
            if f.address not in seen:
                seen.add(f.address)
                best.append(f)
        fits[name] = best[:top]
    return fits


def find_lives_byte(rec: Recording, window: int = 2) -> LivesByte | None:
    """The byte whose changes coincide with drops of info['lives'] (None if no life was lost)."""
    lives, rams, fresh = rec.lives, rec.rams, rec.fresh
    if lives.shape[1] < 2:
        return None
    drop = np.zeros_like(fresh)
    drop[:, 1:] = (lives[:, 1:] < lives[:, :-1]) & ~fresh[:, 1:]
    events = int(drop.sum())
    if events == 0:
        return None
    changed = np.zeros(rams.shape, dtype=bool)
    changed[:, 1:] = (rams[:, 1:] != rams[:, :-1]) & ~fresh[:, 1:, None]
    near = drop.copy()  # steps within `window` of a life loss
    for s in range(1, window + 1):
        near[:, s:] |= drop[:, :-s]
        near[:, :-s] |= drop[:, s:]
    best = None
    for addr in range(rams.shape[2]):
        c = changed[:, :, addr]
        if not c.any():
            continue
        hits = 0
        for e, t in zip(*np.nonzero(drop)):
            hits += bool(c[e, max(0, t - window) : t + window + 1].any())
        recall = hits / events
        precision = (c & near).sum() / c.sum()
        f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
        if best is None or f1 > best[0]:
            best = (f1, addr)
    if best is None or best[0] < 0.5:
        return None
    f1, addr = best
    values = rams[:, :, addr].ravel().astype(int)
    lv = lives.ravel().astype(int)
    usual = {n: Counter(values[lv == n]).most_common(1)[0][0] for n in np.unique(lv)}  # lives -> value
    consistency = float(np.mean([usual[n] == v for n, v in zip(lv, values)]))
    offsets = {int(v) - int(n) for n, v in usual.items()}
    return LivesByte(
        address=int(addr), f1=round(f1, 3), events=events, consistency=round(consistency, 3),
        offset=offsets.pop() if len(offsets) == 1 else None, value_by_lives={int(n): int(v) for n, v in usual.items()},
    )


def passive_room_candidates(rec: Recording, big_change: float = 0.25, window: int = 2, max_values: int = 32) -> tuple[list[RoomCandidate], list[int]]:
    """Rare, low-cardinality bytes and how often their changes meet whole-screen changes.

    Returns (candidates with screen-change evidence, addresses of all rare low-card bytes)."""
    rams, fresh = rec.rams, rec.fresh
    steps = rams.shape[0] * rams.shape[1]
    if rams.shape[1] < 2:
        return [], []
    big = (rec.screen_change >= big_change) & ~fresh
    big_near = big.copy()
    for s in range(1, window + 1):
        big_near[:, s:] |= big[:, :-s]
        big_near[:, :-s] |= big[:, s:]
    changed = np.zeros(rams.shape, dtype=bool)
    changed[:, 1:] = (rams[:, 1:] != rams[:, :-1]) & ~fresh[:, 1:, None]
    rare, out = [], []
    for addr in range(128):
        n_values = len(np.unique(rams[:, :, addr]))
        n_changes = int(changed[:, :, addr].sum())
        if n_values > max_values or n_changes > 0.01 * steps:
            continue
        rare.append(addr)
        if n_changes and big.any():
            agree = float((changed[:, :, addr] & big_near).sum() / n_changes)
            if agree >= 0.5:
                out.append(RoomCandidate(address=addr, n_values=n_values, changes=n_changes, screen_change_agreement=round(agree, 3)))
    out.sort(key=lambda c: -c.screen_change_agreement)
    return out, rare


# --------------------------------------------------------------------------------------------
# RAM perturbation (ale-py): which bytes redraw the layout?
# --------------------------------------------------------------------------------------------


def _make_ale(rom: str, seed: int):
    """A fresh ale-py emulator with no sticky actions (a function so tests can wrap it)."""
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", int(seed))
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(rom))
    return ale


def _edges(rgb: np.ndarray) -> np.ndarray:
    """Pixels whose colour differs from the right or lower neighbour: the screen's layout."""
    k = pack_rgb(rgb, channels_first=False)
    e = np.zeros(k.shape, dtype=bool)
    e[:, 1:] |= k[:, 1:] != k[:, :-1]
    e[1:] |= k[1:] != k[:-1]
    return e


def perturb_layout(game: GameSpec, seed: int, prefix: int, addresses: list[int], meter: StepMeter, counts: dict, settle: int = 3) -> tuple[dict[int, float], list]:
    """Set each byte to its value +-1 on a saved state and measure how much of the screen's
    layout (edge pixels) is redrawn a few frames later. Room and level bytes redraw a lot,
    colour bytes recolour without moving edges, most other bytes change a sprite or nothing.

    Every emulated frame is charged to the meter (as one step and one frame). Returns
    {address: layout change} and (address, frame) examples for the picture."""
    needed = prefix + settle * (1 + 2 * len(addresses))
    remaining = meter.remaining
    if remaining is not None and remaining < needed:
        raise BudgetCut(f"the perturbation experiment needs {needed} frames, {remaining} left")
    meter.allowance(needed)
    ale = _make_ale(game.rom, seed)
    noop = ale.getMinimalActionSet()[0]
    frames_used = 0

    def run(n: int) -> None:
        nonlocal frames_used
        for _ in range(n):
            ale.act(noop)
        frames_used += n

    try:
        ale.reset_game()
        run(prefix)
        state = ale.cloneState()
        run(settle)
        base_rgb = ale.getScreenRGB().copy()
        base = _edges(base_rgb)
        ram = ale.getRAM().copy()
        result, examples = {}, [(-1, base_rgb)]
        for addr in addresses:
            worst, worst_rgb = 0.0, None
            for delta in (1, -1):
                ale.restoreState(state)
                ale.setRAM(addr, (int(ram[addr]) + delta) % 256)
                run(settle)
                rgb = ale.getScreenRGB()
                change = float((_edges(rgb) != base).mean())
                if change > worst:
                    worst, worst_rgb = change, rgb.copy()
            result[addr] = round(worst, 4)
            if worst_rgb is not None:
                examples.append((addr, worst_rgb))
    finally:
        meter.charge(frames_used, frames_used, "probe")
        counts["ale_frames"] += frames_used
        counts["env_frames"] += frames_used
    return result, examples


# ============================================================================================
# Summaries of tracked things
# ============================================================================================


def _object_info(name: str, colour: int, width: float, height: float, area: float, records: list, n_frames: int) -> ObjectInfo:
    """Summarise sightings (env, step, xs, ys) of one kind of blob."""
    xs = np.concatenate([r[2] for r in records]) if records else np.zeros(1)
    ys = np.concatenate([r[3] for r in records]) if records else np.zeros(1)
    speeds = _speeds(records)
    return ObjectInfo(
        name=name,
        colour=unpack_rgb(colour),
        colour_hex=hex_colour(colour),
        width=round(float(width), 1),
        height=round(float(height), 1),
        area=round(float(area), 1),
        instances_per_frame=round(float(np.mean([len(r[2]) for r in records])) if records else 0.0, 2),
        visible_fraction=round(len(records) / max(1, n_frames), 3),
        mean_speed=round(float(speeds.mean()) if speeds.size else 0.0, 3),
        speed_p95=round(float(np.percentile(speeds, 95)) if speeds.size else 0.0, 3),
        x_range=[round(float(xs.min()), 1), round(float(xs.max()), 1)],
        y_range=[round(float(ys.min()), 1), round(float(ys.max()), 1)],
    )


def _bounds(boxes: list[tuple[int, int, int, int]]) -> Playfield | None:
    if not boxes:
        return None
    b = np.asarray(boxes)
    return Playfield(left=int(b[:, 0].min()), top=int(b[:, 1].min()), right=int(b[:, 2].max()), bottom=int(b[:, 3].max()))


# ============================================================================================
# Pictures and the markdown summary
# ============================================================================================

BOX_COLOURS = [(255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0), (0, 255, 0), (255, 255, 255), (128, 128, 255)]


def draw_objects(rgb: np.ndarray, boxes: list, path: Path, scale: int = 3) -> Path:
    """Save the frame enlarged with every detected blob boxed and named."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    names = sorted({name for name, _ in boxes}, key=lambda s: (s != "player", s))
    for name, blobs in boxes:
        colour = BOX_COLOURS[names.index(name) % len(BOX_COLOURS)]
        for i in range(len(blobs)):
            x0, y0 = blobs.x0[i] * scale - 2, blobs.y0[i] * scale - 2
            x1, y1 = (blobs.x1[i] + 1) * scale + 1, (blobs.y1[i] + 1) * scale + 1
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
        draw.text((blobs.x0[0] * scale, max(0, blobs.y0[0] * scale - 14)), name, fill=colour)
    img.save(path)
    return path


def draw_actions(exps: list[ActionExperiment], effects: list[ActionEffect], path: Path) -> Path:
    """Contact sheet: per start state (A, B, ...), each action's last hold frame, with the
    pixels that differ from the NOOP copy's frame tinted magenta."""
    from record.video import contact_sheet

    frames, labels = [], []
    for s, exp in enumerate(exps):
        noop = exp.frames[0, -1].transpose(1, 2, 0)
        for e in effects:
            rgb = exp.frames[e.index, -1].transpose(1, 2, 0).copy()
            changed = (rgb != noop).any(axis=-1)
            rgb[changed] = (rgb[changed] // 2 + np.array([127, 0, 127])).astype(np.uint8)
            frames.append(rgb)
            labels.append(f"{chr(65 + s)}: {e.index} {e.name}")
    warmup = len(exps[0].prefix)
    states = [f"A: after {warmup} NOOPs"]
    for s, exp in enumerate(exps[1:], start=1):
        states.append(f"{chr(65 + s)}: A + {len(exp.prefix) - warmup} x action {exp.prefix[-1]}")  # action 0: waited
    title = f"each action held {exps[0].frames.shape[1] - 1} steps; " + ", ".join(states) + "; magenta = differs from NOOP"
    return contact_sheet(frames, labels, path, columns=min(6, len(effects)), title=title)


def draw_room(examples: list, candidates: list[RoomCandidate], path: Path) -> Path:
    from record.video import contact_sheet

    chosen = {c.address for c in candidates}
    picked = [(a, rgb) for a, rgb in examples if a == -1 or a in chosen]
    labels = ["unperturbed" if a == -1 else f"ram[{a}] +-1" for a, _ in picked]
    return contact_sheet([rgb for _, rgb in picked], labels, path, columns=4, title="RAM perturbation: layout bytes")


def write_markdown(report: ProbeReport, path: Path) -> Path:
    """probe.md: the report for people (and agents) to read."""
    r = report

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:+.1f}"

    def named(i: int | None) -> str:
        return "none" if i is None else f"{i} ({r.action_names[i]})"

    lines = [f"# Probe of {r.game} ({r.task_id})", ""]
    lines.append(
        f"Protocol `{r.protocol}`, obs mode `{r.obs_mode}`, seed {r.seed}. "
        f"**{r.env_steps:,} env steps** ({r.envpool_steps:,} EnvPool steps + {r.ale_frames:,} ale-py frames), "
        f"{r.env_frames:,} frames, {r.wall_seconds:.1f} s." + (" **Partial: the budget ran out.**" if r.partial else "")
    )
    lines += ["", "## Actions", ""]
    lines.append(f"Warm-up: {r.warmup_steps} NOOP steps before input has a visible effect; each action then held {r.hold_steps} steps.")
    lines += ["", "| # | name | effect | dx | dy | max dx | max dy | same as | spawns | RAM bytes changed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in r.actions:
        effect = "no-op" if e.is_noop else e.direction + (" and back" if e.returns else "")
        if e.name_matches_direction is False:
            effect += " (name says otherwise)"
        same = "" if e.equivalent_to is None else f"{e.equivalent_to} {r.action_names[e.equivalent_to]}"
        ram = ", ".join(map(str, e.ram_bytes_changed[:8])) + (" ..." if len(e.ram_bytes_changed) > 8 else "")
        lines.append(f"| {e.index} | {e.name} | {effect} | {fmt(e.dx)} | {fmt(e.dy)} | {fmt(e.max_abs_dx)} | {fmt(e.max_abs_dy)} | {same} | {'yes' if e.spawns_object else ''} | {ram} |")
    m = r.movement
    lines += ["", f"Movement: left = {named(m.left)}, right = {named(m.right)}, up = {named(m.up)}, down = {named(m.down)}, fire = {named(m.fire)}, jump = {named(m.jump)}."]
    lines += ["", "## Player and objects", ""]
    if r.background_colour:
        lines.append(f"Background colour {r.background_colour} (#{bytes(r.background_colour).hex()}).")
    if r.playfield:
        p = r.playfield
        lines.append(f"Playfield (where the player and objects were seen): x {p.left}..{p.right}, y {p.top}..{p.bottom}.")
    if r.changing_region:
        p = r.changing_region
        lines.append(f"Pixels that changed during discovery: x {p.left}..{p.right}, y {p.top}..{p.bottom}.")
    lines += ["", "| name | colour | size (w x h) | area | per frame | visible | speed mean/p95 (px/step) | x range | y range |", "|---|---|---|---|---|---|---|---|---|"]
    for o in ([r.player] if r.player else []) + r.objects:
        lines.append(
            f"| {o.name} | {o.colour} {o.colour_hex} | {o.width:g} x {o.height:g} | {o.area:g} | {o.instances_per_frame:g} | {o.visible_fraction:.0%} | "
            f"{o.mean_speed:.2f} / {o.speed_p95:.2f} | {o.x_range[0]:g}..{o.x_range[1]:g} | {o.y_range[0]:g}..{o.y_range[1]:g} |"
        )
    if r.player:
        lines.append(f"\nThe player moves along x: {r.player_moves_x}, along y: {r.player_moves_y}.")
    lines += ["", "## RAM", ""]
    if not r.ram_analysis:
        lines.append("Vision mode: RAM analysis skipped (no RAM was read).")
    else:
        lines += ["Best bytes per label (pixel = a * ram + b, fitted robustly; lag 1 = RAM of the step before the frame):", "",
                  "| label | address | r | r (inliers) | inliers | a | b | lag | rmse (px) | within 2 px | frames | runners-up |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, fits in r.ram_fits.items():
            f = fits[0]
            others = ", ".join(f"{g.address} ({g.r:+.2f})" for g in fits[1:])
            lines.append(
                f"| {label} | {f.address} (0x{f.address + 0x80:02X}) | {f.r:+.3f} | {f.r_inliers:+.3f} | {f.inliers:.0%} | {f.a:.3f} | {f.b:.2f} | "
                f"{f.lag} | {f.rmse:.2f} | {f.within_2px:.0%} | {f.n} | {others} |"
            )
        if r.lives:
            lv = r.lives
            off = f", value = lives {lv.offset:+d}" if lv.offset is not None else f", values by lives {lv.value_by_lives}"
            lines.append(f"\nLives byte: ram[{lv.address}] (agreement with {lv.events} life losses F1 {lv.f1}, consistency {lv.consistency}{off}).")
        else:
            lines.append(f"\nLives byte: not found (lives at start: {r.lives_start}; no life was lost, or no byte tracked the losses).")
        if r.room_candidates:
            lines.append("\nRoom/level candidates:")
            for c in r.room_candidates:
                lines.append(
                    f"- ram[{c.address}]: {c.n_values} values, {c.changes} changes, "
                    f"screen-change agreement {c.screen_change_agreement}, layout redrawn when perturbed {c.layout_change}"
                )
        else:
            lines.append("\nRoom/level candidates: none.")
    if r.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    if r.images:
        lines += ["", "## Pictures", ""] + [f"![{name}]({name})" for name in r.images]
    path.write_text("\n".join(lines) + "\n")
    return path


# ============================================================================================
# Entry point
# ============================================================================================


def probe_game(
    game: GameSpec,
    out_dir: Path,
    meter: StepMeter,
    obs_mode: str = "ram",
    protocol: Protocol = PROTOCOLS["hl"],
    seed: int = 0,
    config: ProbeConfig | None = None,
) -> ProbeReport:
    """Discover a game's actions, player, moving objects and (in ram mode) RAM layout.

    Writes probe.json, probe.md and pictures into `out_dir` and returns the ProbeReport.
    Every env step is charged to `meter` as "probe" (about 3,000-15,000 steps with the default
    config). Raises BudgetExhausted if the meter is already spent and FileExistsError if
    `out_dir` already holds probe outputs; if the budget runs out midway the report comes
    back with partial=True. In vision mode no RAM is read or reported.
    """
    started = time.perf_counter()
    config = config or ProbeConfig()
    out_dir = Path(out_dir)
    existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite probe outputs in {out_dir}: {', '.join(existing)}")
    if obs_mode not in ("ram", "vision"):
        raise ValueError(f"unknown obs mode {obs_mode!r}")
    meter.allowance()  # raises BudgetExhausted before any work on a spent budget
    use_ram = obs_mode == "ram"
    names = game.action_meanings()
    counts = {"envpool_steps": 0, "ale_frames": 0, "env_frames": 0}
    notes: list[str] = []
    report = ProbeReport(
        game=game.name, task_id=game.task_id, protocol=protocol.name, obs_mode=obs_mode, seed=seed,
        config=config, action_names=names, hold_steps=config.hold_steps, ram_analysis=use_ram,
    )
    exps: list[ActionExperiment] = []
    recording: Recording | None = None
    labeller: Labeller | None = None
    model: PlayerModel | None = None
    perturbation: tuple[dict, list] | None = None

    try:
        # ---- Phase 1: what each action does -------------------------------------------------
        env = MeteredEnv(game, protocol, len(names), seed, meter, counts)
        try:
            exps, model, report.actions = action_phase(env, names, config, use_ram, report, notes)
        finally:
            env.close()
        report.movement = movement_labels(report.actions)

        # ---- Phase 2: recording rollout, objects and labels --------------------------------
        # On a tight budget the recording shrinks so the perturbation experiment still fits.
        record_config = config
        reserve = report.warmup_steps + config.hold_steps + 3 * (1 + 2 * 128) if use_ram and config.perturb_ram else 0
        if meter.remaining is not None and meter.remaining - reserve < config.record_steps:
            steps = max(0, meter.remaining - reserve)
            record_config = config.model_copy(update={"record_steps": steps})
            report.partial = True
            notes.append(f"recording shortened to {steps} steps to fit the budget")
        env = MeteredEnv(game, protocol, config.record_envs, seed, meter, counts)
        try:
            recording, labeller = record(env, len(names), report.warmup_steps, model, record_config, seed, notes, keep_ram=use_ram)
        finally:
            env.close()
        if recording.cut:
            report.partial = True

        # ---- Phase 3: RAM perturbation for layout bytes (needs the recording's rare bytes) -
        if use_ram and config.perturb_ram and recording.steps > 1:
            passive, rare = passive_room_candidates(recording)
            report.room_candidates = passive
            perturbation = perturb_layout(game, seed, report.warmup_steps + config.hold_steps, rare, meter, counts)
    except BudgetCut as cut:
        report.partial = True
        notes.append(f"budget ran out: {cut}; later phases skipped")

    # ---- Summaries (no env steps from here on) ----------------------------------------------
    if labeller is not None:
        summarise_things(report, labeller, model, len(recording.sample_step))
    if recording is not None:
        report.recorded_steps = int(recording.steps * recording.rams.shape[0])
        report.labelled_frames = len(recording.sample_step)
        if use_ram:
            report.ram_fits = fit_ram(recording)
            report.lives = find_lives_byte(recording)
    if perturbation is not None:
        report.room_candidates = _merge_room_candidates(report.room_candidates, perturbation[0], recording)

    report.envpool_steps = counts["envpool_steps"]
    report.ale_frames = counts["ale_frames"]
    report.env_steps = counts["envpool_steps"] + counts["ale_frames"]
    report.env_frames = counts["env_frames"]
    report.notes = notes

    # ---- Outputs -----------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    if labeller is not None and labeller.best_frame is not None:
        draw_objects(labeller.best_frame[1], labeller.best_frame[2], out_dir / "objects.png")
        report.images.append("objects.png")
    if exps and report.actions:
        draw_actions(exps, report.actions, out_dir / "actions.png")
        report.images.append("actions.png")
    if perturbation is not None and any(c.layout_change for c in report.room_candidates):
        draw_room(perturbation[1], report.room_candidates, out_dir / "room.png")
        report.images.append("room.png")
    report.wall_seconds = round(time.perf_counter() - started, 2)
    (out_dir / "probe.json").write_text(report.model_dump_json(indent=2))
    write_markdown(report, out_dir / "probe.md")
    return report


def summarise_things(report: ProbeReport, labeller: Labeller, model: PlayerModel | None, n_samples: int) -> None:
    """Fill report.player, objects, playfield and changing_region from the labelled frames."""
    if model is not None:
        sightings = [(e, t, np.array([(x0 + x1) / 2]), np.array([(y0 + y1) / 2])) for e, t, x0, y0, x1, y1 in labeller.player_boxes]
        report.player = _object_info("player", model.colour, model.width, model.height, model.area, sightings, n_samples)
        report.player.labels = [label for label, moves in (("player_x", model.moves_x), ("player_y", model.moves_y)) if moves]
    for k, t in enumerate(labeller.types):
        info = _object_info(f"obj{k}", t.colour, t.width, t.height, t.area, t.records, n_samples)
        info.labels = [f"obj{k}_x", f"obj{k}_y"]
        report.objects.append(info)
    boxes = [b[2:] for b in labeller.player_boxes]
    report.playfield = _bounds(boxes + _object_boxes(labeller))
    if not labeller.scenery.constant.all():
        ys, xs = np.nonzero(~labeller.scenery.constant)
        report.changing_region = Playfield(left=int(xs.min()), top=int(ys.min()), right=int(xs.max()), bottom=int(ys.max()))


def _object_boxes(labeller: Labeller) -> list[tuple[int, int, int, int]]:
    """Rough boxes of every object sighting (centre +- half the type's size)."""
    boxes = []
    for t in labeller.types:
        for r in t.records:
            for x, y in zip(r[2], r[3]):
                boxes.append((int(x - t.width / 2), int(y - t.height / 2), int(x + t.width / 2), int(y + t.height / 2)))
    return boxes


def _merge_room_candidates(passive: list[RoomCandidate], layout: dict[int, float], rec: Recording | None, min_layout: float = 0.15, top: int = 3) -> list[RoomCandidate]:
    """Room candidates: passive evidence first, then bytes whose perturbation redraws at
    least `min_layout` of the layout's edge pixels (strongest first)."""
    by_addr = {c.address: c for c in passive}
    for addr, change in layout.items():
        if addr in by_addr:
            by_addr[addr].layout_change = change
        elif change >= min_layout and rec is not None:
            values = rec.rams[:, :, addr]
            changes = int(((values[:, 1:] != values[:, :-1]) & ~rec.fresh[:, 1:]).sum())
            by_addr[addr] = RoomCandidate(address=addr, n_values=len(np.unique(values)), changes=changes, layout_change=change)
    out = sorted(by_addr.values(), key=lambda c: (-(c.screen_change_agreement or 0), -(c.layout_change or 0)))
    return out[:top]


# ============================================================================================
# Command line
# ============================================================================================


def main(argv: list[str] | None = None) -> int:
    """Command line: probe one game into --out and print probe.md (exit 2 on bad input)."""
    parser = argparse.ArgumentParser(description="Probe an Atari game: actions, player, objects, RAM.")
    parser.add_argument("--game", required=True)
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not hold earlier probe files)")
    parser.add_argument("--obs", default="ram", choices=("ram", "vision"))
    parser.add_argument("--protocol", default="hl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=30_000)
    parser.add_argument("--record-steps", type=int, default=ProbeConfig().record_steps)
    args = parser.parse_args(argv)
    try:
        game = resolve_game(args.game)
        protocol = get_protocol(args.protocol)
    except (UnknownGameError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    meter = StepMeter(budget=args.budget)
    try:
        probe_game(game, args.out, meter, args.obs, protocol, args.seed, ProbeConfig(record_steps=args.record_steps))
    except (BudgetExhausted, FileExistsError) as err:
        print(err, file=sys.stderr)
        return 2
    print((args.out / "probe.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
