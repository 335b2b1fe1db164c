"""Kills its own process on step 30, as a segfaulting extension would."""
import os


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        if obs.step == 30:
            os._exit(3)
        return 0
