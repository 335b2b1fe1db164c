"""RAM perturbation (ale-py): which bytes redraw the layout?"""

from __future__ import annotations

import numpy as np

from envs.atari.emulator import make_ale
from envs.atari.games import GameSpec
from probe.atari.metered_env import BudgetCut
from probe.atari.segmentation import pack_rgb
from record.meter import StepMeter


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
    ale = make_ale(game.rom, seed)  # looked up here at call time, so tests can wrap it
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
