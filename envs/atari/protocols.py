"""Evaluation protocol presets, recorded by name and settings in every trial.

- `hl` matches the published Heuristic Learning experiments: every frame is a step, no
  sticky actions, one no-op, fire reset. Every episode is the same game whatever the seed.
- `ale-v5` is the Machado et al. (2018) evaluation that Gymnasium's `ALE/<Game>-v5` uses:
  frame_skip 4 and sticky actions 0.25, so seeds matter and open-loop play falls apart.

Both cap episodes at 108,000 emulator frames. EnvPool's `max_episode_steps` counts env
steps, not frames, so it is derived from the frame cap and frame_skip here; passing the
frame count straight through would silently cut `hl` episodes at 27,000 frames.
"""

from __future__ import annotations

from pydantic import Field

from envs.base import EnvProtocol, UnknownProtocolError

MAX_EPISODE_FRAMES = 108_000


class Protocol(EnvProtocol):
    """An Atari protocol: EnvPool's ALE settings, all recorded in every trial."""

    repeat_action_probability: float = Field(ge=0.0, le=1.0)
    noop_max: int = Field(ge=1)
    use_fire_reset: bool
    episodic_life: bool = False
    reward_clip: bool = False
    full_action_space: bool = False
    max_episode_frames: int = Field(default=MAX_EPISODE_FRAMES, ge=1)
    img_height: int = 210
    img_width: int = 160
    stack_num: int = 1
    gray_scale: bool = False

    @property
    def reset_frames(self) -> int:
        """EnvPool's fire reset plays one FIRE step (frame_skip frames) after ale-py's reset."""
        return self.frame_skip if self.use_fire_reset else 0

    def envpool_kwargs(self) -> dict:
        """Keyword arguments for `envpool.make`, including the step cap."""
        return dict(
            img_height=self.img_height,
            img_width=self.img_width,
            gray_scale=self.gray_scale,
            stack_num=self.stack_num,
            frame_skip=self.frame_skip,
            noop_max=self.noop_max,
            use_fire_reset=self.use_fire_reset,
            episodic_life=self.episodic_life,
            reward_clip=self.reward_clip,
            repeat_action_probability=self.repeat_action_probability,
            full_action_space=self.full_action_space,
            max_episode_steps=self.max_episode_steps,
        )


PROTOCOLS: dict[str, Protocol] = {
    "hl": Protocol(
        name="hl", frame_skip=1, repeat_action_probability=0.0, noop_max=1, use_fire_reset=True
    ),
    "ale-v5": Protocol(
        name="ale-v5", frame_skip=4, repeat_action_probability=0.25, noop_max=1, use_fire_reset=False
    ),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownProtocolError(
            f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}"
        ) from None
