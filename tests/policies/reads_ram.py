"""Reads RAM: fine in ram mode, refused in vision mode."""


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        return int(obs.ram[0]) % 2  # NOOP or FIRE
