"""Screen cells: the cell-archive search (tools/explore.py) on any game, with no RAM map.

The route search needs the player's position (and room) from RAM bytes the probe found; many
games give none (the probe finds no byte that tracks the player, or no player at all). Here a
cell is what Go-Explore started with: the screen shrunk to a few blocks of coarse brightness,
plus the score so far. Two moments that look alike at that scale are the same place; a new
look is somewhere new. The scale is picked per game by a short calibration (random play: the
coarsest grid on which the screen changes often enough). Nothing here knows any game.

`screen_cell(rgb)` is the one definition of a cell: the search computes it from ale-py's
screen, and the screen-route policy (agents/controllers/atari/screen_route.py) copies this
function's source into the policy it writes and computes it from `obs.rgb`, so both see the
same cells.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

# Grids the search may use, coarsest first: (rows, cols, grey levels). Each divides the
# 104 x 80 half-resolution screen into equal blocks.
GRIDS = ((8, 10, 8), (8, 10, 16), (13, 16, 8), (13, 16, 16), (26, 20, 16), (26, 40, 32), (52, 40, 32))
CALIBRATION_FRAMES = 3_000  # random play from the reset that picks the grid (counted as search steps)
FRAMES_PER_CELL = 30  # ... the coarsest grid that shows a new cell per this many frames of it wins
HOLD_FRAMES = 8  # each random action of the calibration is held this long


def screen_cell(rgb, rows: int = 8, cols: int = 10, levels: int = 8) -> int:
    """The cell of a 210x160x3 frame: every other pixel of the top 208 rows, summed over the
    colour channels, averaged in rows x cols blocks, quantised to `levels` grey levels; a
    32-bit checksum of those levels (equal screens at this scale, equal numbers)."""
    small = rgb[:208:2, :160:2].astype(np.uint16).sum(axis=2)  # 104 x 80, 0..765
    blocks = small.reshape(rows, 104 // rows, cols, 80 // cols).mean(axis=(1, 3))
    return zlib.crc32((blocks * levels // 766).astype(np.uint8).tobytes())


@dataclass(frozen=True)
class ScreenCells:
    """How the emulator's screen (plus the score so far) becomes a cell key, for the search.
    It has no positions to record: the route is followed by its cells (StepRecord.cell)."""

    rows: int = 8
    cols: int = 10
    levels: int = 8
    objects: tuple = ()  # no RAM object readers

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.rows, self.cols, self.levels

    def calibrate(self, emu, seed: int) -> tuple["ScreenCells", int]:
        """The coarsest grid of GRIDS on which random play from the reset shows a new cell every
        FRAMES_PER_CELL frames (a screen that hardly changes at one scale, a bowling alley, gets
        a finer one; a busy screen keeps the coarse one). Returns it and the env steps played
        (the caller charges them). Seeded: a continued search picks the same grid."""
        rng = np.random.default_rng(seed)
        steps = CALIBRATION_FRAMES // emu.frame_skip
        hold = max(1, HOLD_FRAMES // emu.frame_skip)
        before = emu.steps
        emu.reset()
        screens = []
        for t in range(steps):
            if t % hold == 0:
                action = int(rng.integers(len(emu.actions)))
            emu.step(action)
            if emu.ale.game_over():
                emu.reset()
            screens.append(emu.screen())
        wanted = steps * emu.frame_skip / FRAMES_PER_CELL
        grid = next((g for g in GRIDS if len({screen_cell(s, *g) for s in screens}) >= wanted), GRIDS[-1])
        return ScreenCells(*grid), emu.steps - before

    def key_of(self, emu, score: float) -> tuple:
        return (int(score), self.cell_of(emu))

    def cell_of(self, emu) -> int:
        return screen_cell(emu.screen(), self.rows, self.cols, self.levels)

    def position(self, ram: np.ndarray) -> tuple[int, float, float]:
        return 0, 0.0, 0.0

    def object_positions(self, ram: np.ndarray) -> list[float]:
        return []
