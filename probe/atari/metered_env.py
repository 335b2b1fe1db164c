"""The metered EnvPool batch: identical envs whose every step is charged as "probe"."""

from __future__ import annotations

import numpy as np

from envs.atari import make_env
from envs.atari.games import GameSpec
from envs.atari.protocols import Protocol
from record.meter import StepMeter


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
        self.last_rewards = np.zeros(n)  # the rewards of the last step (what touching things did)

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
        frames, rewards, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int32))
        self.last_rewards = np.asarray(rewards, dtype=float)
        self.done = np.asarray(terminated) | np.asarray(truncated)
        self._charge(self.n, self.n * self.frame_skip + int(fresh.sum()) * self.reset_frames)
        self.counts["envpool_steps"] += self.n
        return frames, info["ram"], info["lives"], fresh

    def _charge(self, steps: int, frames: int) -> None:
        self.meter.charge(steps, frames, "probe")
        self.counts["env_frames"] += frames

    def close(self) -> None:
        self.env.close()
