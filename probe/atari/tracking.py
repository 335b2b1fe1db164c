"""The player model and tracking: scenery, following one blob, finding the player."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probe.atari.segmentation import Blobs, find_groups


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
