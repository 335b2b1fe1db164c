"""The one way to build an ale-py emulator (where emulator states must be cloned and
restored, or RAM poked, which EnvPool cannot do).

ale-py defaults to sticky actions 0.25; an emulator built here has none and runs one
frame per `act`, so a caller decides frame skip and stickiness itself and every frame it
runs is one it counts. Its steps are not EnvPool's: callers charge them to the run's meter
and say in their ledger row which emulator took them.
"""

from __future__ import annotations

import functools


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
