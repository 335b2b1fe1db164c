"""Always NOOP: the cheapest valid policy."""


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        return 0
