"""A second environment family for the tests: classic-control Pendulum through EnvPool, with a
continuous (box) action, a proprioceptive observation and no lives or frames. Registered
for a test through HL_FAMILIES, so the evaluation workers find it too. It exists to show
that evaluation, the sandbox, the ledger and the meter know no family."""

from __future__ import annotations

from envs.base import ActionSpace, EnvFamily, EnvProtocol, EnvSpec, StepView

PENDULUM_SPEC = EnvSpec(family="pendulum", name="Pendulum", task_id="Pendulum-v1", slug="pendulum")


class Observation:
    """What a pendulum policy sees: cos and sin of the angle, and the angular velocity."""

    __slots__ = ("state", "step", "last_reward")

    def __init__(self, state, step: int, last_reward: float):
        self.state, self.step, self.last_reward = state, step, last_reward


class PendulumView(StepView):
    trace_keys = ("state",)

    def observation(self, obs, info, row, step, last_reward):
        return Observation(obs[row], step, last_reward)

    def failures_left(self, info, row):
        return 0  # nothing to lose: the episode runs to its time limit

    def trace_arrays(self, obs, info, row):
        return {"state": obs[row]}


class PendulumFamily(EnvFamily):
    name = "pendulum"
    obs_modes = ("state",)
    default_obs_mode = "state"
    protocols = {"classic": EnvProtocol(name="classic", max_episode_frames=200)}
    default_protocol = "classic"
    failure_name = "fall"

    def resolve(self, name):
        return PENDULUM_SPEC if name.lower().replace("-v1", "") == "pendulum" else None

    def specs(self):
        return [PENDULUM_SPEC]

    def protocol_from_settings(self, settings):
        return EnvProtocol(**settings)

    def action_space(self, spec):
        return ActionSpace(kind="box", low=(-2.0,), high=(2.0,))

    def make_env(self, spec, protocol, seeds, num_threads=1):
        import envpool

        return envpool.make(spec.task_id, env_type="gymnasium", num_envs=len(seeds), env_seed=list(seeds),
                            num_threads=num_threads, max_episode_steps=protocol.max_episode_steps)  # fmt: skip

    def step_view(self, spec, protocol, obs_mode):
        return PendulumView()


PENDULUM = PendulumFamily()
