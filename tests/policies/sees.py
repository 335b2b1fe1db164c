"""Records what it sees into a file named by the HL_TEST_OUT variable (a harmless name)."""
import json
import os
import sys


class Policy:
    def reset(self, seed):
        self.out = os.environ["HL_TEST_OUT"]
        self.seed = seed
        self.log = []

    def act(self, obs):
        if obs.step < 3:
            self.log.append(
                dict(
                    seed=self.seed,
                    step=obs.step,
                    rgb_shape=list(obs.rgb.shape),
                    rgb_dtype=str(obs.rgb.dtype),
                    has_ram="ram" in obs,
                    ram_len=len(obs.ram) if "ram" in obs else None,
                    lives=obs.lives,
                    cwd=os.getcwd(),
                    env_names=sorted(os.environ),
                    parent=os.getppid(),
                    argv0=sys.argv[0],
                    path_head=sys.path[:2],  # the policy's folder (rollout puts it first), then the cwd
                )
            )
        if obs.step == 3:
            with open(f"{self.out}.{self.seed}.json", "w") as f:
                json.dump(self.log, f)
        return 0
