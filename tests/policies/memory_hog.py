"""Allocates 64 GB on step 10."""
import numpy as np


class Policy:
    def reset(self, seed):
        self.hoard = None

    def act(self, obs):
        if obs.step == 10:
            self.hoard = np.ones(8 * 2**30)  # 64 GB of float64
        return 0
