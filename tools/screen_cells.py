"""Screen cells: the cell-archive search (tools/explore.py) on any game, with no RAM map.

The route search needs the player's position (and room) from RAM bytes the probe found; many
games give none (the probe finds no byte that tracks the player, or no player at all). Here a
cell is what Go-Explore started with: the screen shrunk to a few blocks of coarse brightness,
plus the score so far. Two moments that look alike at that scale are the same place; a new
look is somewhere new. Nothing here knows any game.

`screen_cell(rgb)` is the one definition of a cell: the search computes it from ale-py's
screen, and the screen-route policy (agents/controllers/atari/screen_route.py) copies this
function's source into the policy it writes and computes it from `obs.rgb`, so both see the
same cells.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

ROWS, COLS, LEVELS = 8, 10, 8  # Go-Explore's first downscaling: about 11x8 blocks, 8 grey levels


def screen_cell(rgb) -> int:
    """The cell of a 210x160x3 frame: every other pixel of the top 208 rows, summed over the
    colour channels, averaged in 8x10 blocks, quantised to 8 levels; a 32-bit checksum of
    those 80 levels (equal screens at this scale, equal numbers)."""
    small = rgb[:208:2, :160:2].astype(np.uint16).sum(axis=2)  # 104 x 80, 0..765
    blocks = small.reshape(8, 13, 10, 8).mean(axis=(1, 3))
    return zlib.crc32((blocks * 8 // 766).astype(np.uint8).tobytes())


@dataclass(frozen=True)
class ScreenCells:
    """How the emulator's screen (plus the score so far) becomes a cell key, for the search.
    It has no positions to record: the route is followed by its cells (StepRecord.cell)."""

    rows: int = ROWS
    cols: int = COLS
    levels: int = LEVELS
    objects: tuple = ()  # no RAM object readers

    def key_of(self, emu, score: float) -> tuple:
        return (int(score), self.cell_of(emu))

    def cell_of(self, emu) -> int:
        return screen_cell(emu.ale.getScreenRGB())

    def position(self, ram: np.ndarray) -> tuple[int, float, float]:
        return 0, 0.0, 0.0

    def object_positions(self, ram: np.ndarray) -> list[float]:
        return []
