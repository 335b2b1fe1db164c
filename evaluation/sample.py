"""A short rollout of random actions whose observations pin a heuristic system's detectors
to real frames (hs/tests). Trusted code: no policy runs here, so no sandbox; the steps go on
the meter it is given (runtime.steps.sample_observations charges the run and writes the row).
"""

from __future__ import annotations

import numpy as np

from envs.base import ActionSpace, EnvProtocol, EnvSpec
from envs.registry import family_of
from record.meter import StepMeter

EVERY = 10  # keep every 10th observation
HOLD = 8  # steps each random action is held


def play_random(spec: EnvSpec, protocol: EnvProtocol, obs_mode: str, seed: int, actions: list, meter: StepMeter) -> list:
    """Play `meter.allowance()` steps of random choices from `actions` in one env seeded with
    `seed` (restarting when an episode ends) and return every EVERY-th observation, exactly
    as a policy would get it."""
    family = family_of(spec)
    steps = meter.allowance()
    env = family.make_env(spec, protocol, [seed])
    view = family.step_view(spec, protocol, obs_mode)
    space = ActionSpace.of(env.action_space)
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    kept = []
    batch = space.batch(1)  # the one env's action, as EnvPool takes it
    batch[0] = actions[0]
    for t in range(steps):
        if t % EVERY == 0:
            kept.append(view.observation(obs, info, 0, t, 0.0))
        if t % HOLD == 0:
            batch[0] = int(rng.choice(actions))
        obs, _, terminated, truncated, info = env.step(batch)
        if terminated[0] or truncated[0]:
            obs, info = env.reset()
    env.close()
    meter.charge(steps, steps * protocol.frame_skip, "probe")
    return kept
