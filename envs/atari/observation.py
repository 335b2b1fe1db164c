"""What a policy sees each step. The policy contract (DESIGN.md):

    class Policy:
        def reset(self, seed: int) -> None: ...
        def act(self, obs: Observation) -> int: ...

`obs.rgb` is an H×W×3 uint8 frame, `obs.ram` the 128 RAM bytes (ram mode only: in vision
mode the attribute does not exist, so a vision policy cannot read RAM even by accident),
`obs.lives`, `obs.step` (env steps so far this episode) and `obs.last_reward`.
Dict-style access (`obs["rgb"]`) works too.
"""

from __future__ import annotations

import numpy as np

OBS_MODES = ("ram", "vision")


class Observation:
    __slots__ = ("_chw", "_ram", "lives", "step", "last_reward")

    def __init__(self, chw: np.ndarray, ram: np.ndarray | None, lives: int, step: int, last_reward: float):
        self._chw = chw  # EnvPool hands frames channels-first
        self._ram = ram
        self.lives = lives
        self.step = step
        self.last_reward = last_reward

    @property
    def rgb(self) -> np.ndarray:
        # A transposed view, not a copy: copying every frame to HWC order would cost the
        # harness more than the emulator does. np.ascontiguousarray(obs.rgb) if you need one.
        return self._chw.transpose(1, 2, 0)

    @property
    def ram(self) -> np.ndarray:
        if self._ram is None:
            raise AttributeError("obs.ram is not available in vision mode (the policy sees RGB only)")
        return self._ram

    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError as err:
            raise KeyError(str(err)) from None

    def __contains__(self, key: str) -> bool:
        return key in ("rgb", "lives", "step", "last_reward") or (key == "ram" and self._ram is not None)
