"""The one way to build an ale-py emulator (where emulator states must be cloned and
restored, or RAM poked, which EnvPool cannot do).

ale-py defaults to sticky actions 0.25; an emulator built here has none and runs one
frame per `act`, so a caller decides frame skip and stickiness itself and every frame it
runs is one it counts. Its steps are not EnvPool's: callers charge them to the run's meter
and say in their ledger row which emulator took them.

`Emulator` steps it the way EnvPool steps an env (frame skip, the reset frame), so a route
found in it replays in the evaluation harness.
"""

from __future__ import annotations

import functools

import numpy as np

from envs.atari.games import GameSpec
from envs.atari.protocols import Protocol


def make_ale(rom: str, seed: int = 0):
    """A fresh ale-py emulator for `rom`: frame_skip 1, no sticky actions, seeded."""
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", int(seed))
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.loadROM(roms.get_rom_path(rom))
    return ale


@functools.cache
def action_meanings(rom: str) -> list[str]:
    """Minimal-action-set names, in the order EnvPool's action ints index them."""
    return [action.name for action in make_ale(rom).getMinimalActionSet()]


class Emulator:
    """ale-py stepped like EnvPool: one env step = one action held for frame_skip frames."""

    def __init__(self, spec: GameSpec, protocol: Protocol, seed: int = 0):
        self.ale = make_ale(spec.rom, seed)
        self.actions = list(self.ale.getMinimalActionSet())
        self.frame_skip = protocol.frame_skip
        names = [a.name for a in self.actions]
        # EnvPool's reset plays one frame after reset_game(): FIRE with fire reset, else NOOP.
        self.reset_action = names.index("FIRE") if protocol.use_fire_reset and "FIRE" in names else 0
        self.steps = 0  # env steps taken (charged by the caller)
        self.frames = 0  # emulator frames run
        self.start = None  # the state after the first reset, which every later reset restores
        self.start_screen = None  # ... and its screen: restoreState does not redraw it
        self.screen_now = None  # the screen while it is the restored start's, else None

    def reset(self) -> None:
        """reset_game() + the reset frame, counted as one env step. Only the first reset after
        loading the ROM is EnvPool's (each evaluation env is fresh): in some games a second
        reset_game() keeps part of the RAM (BeamRider: 33 bytes, KungFuMaster: 7), and a route
        found from there does not replay. So later resets restore the first one's state."""
        if self.start is None:
            self.ale.reset_game()
            self.ale.act(self.actions[self.reset_action])
            self.start, self.start_screen = self.clone(), self.ale.getScreenRGB()
        else:
            self.restore(self.start)
        self.screen_now = self.start_screen
        self.steps += 1
        self.frames += 1

    def screen(self) -> np.ndarray:
        """The RGB screen of the current frame (after a reset: the first reset's)."""
        return self.screen_now if self.screen_now is not None else self.ale.getScreenRGB()

    def step(self, action: int) -> float:
        self.screen_now = None
        reward = 0.0
        for _ in range(self.frame_skip):
            reward += self.ale.act(self.actions[action])
        self.steps += 1
        self.frames += self.frame_skip
        return reward

    def ram(self) -> np.ndarray:
        return self.ale.getRAM()

    def lives(self) -> int:
        return self.ale.lives()

    def clone(self):
        return self.ale.cloneState(include_rng=True)

    def restore(self, state) -> None:
        self.ale.restoreState(state)
