"""Uniformly random actions from a seeded generator (the random-agent baseline)."""
import numpy as np


class Policy:
    def reset(self, seed):
        self.rng = np.random.default_rng(seed)
        self.num_actions = 4  # overwritten below once we know the game

    def act(self, obs):
        return int(self.rng.integers(0, 4))
