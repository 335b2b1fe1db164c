"""Starts a child process on step 100 (its pid and the child's go to the file HL_TEST_OUT
names), then hangs forever on step 200: killing the worker must take the child along."""
import json
import os
import subprocess


class Policy:
    def reset(self, seed):
        self.seed = seed

    def act(self, obs):
        if obs.step == 100:
            child = subprocess.Popen(["sleep", "300"])
            with open(f"{os.environ['HL_TEST_OUT']}.{self.seed}.json", "w") as f:
                json.dump({"worker": os.getpid(), "child": child.pid}, f)
        while obs.step == 200:
            pass
        return 0
