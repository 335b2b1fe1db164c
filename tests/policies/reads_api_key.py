"""Tries to read an API key from its environment."""
import os


class Policy:
    def reset(self, seed):
        self.key = os.environ["OPENAI_API_KEY"]

    def act(self, obs):
        return 0
