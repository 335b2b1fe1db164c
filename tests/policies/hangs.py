"""Hangs forever on step 200 (an infinite loop in policy code)."""


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        while obs.step == 200:
            pass
        return 0
