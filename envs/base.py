"""The environment-family interface: everything the rest of the workbench knows of environments.

A family (Atari today; MuJoCo locomotion next; any other EnvPool family later) is one
package under envs/ holding one `EnvFamily` object, registered in envs/registry.py. The
rollout loop, the sandbox, the ledger, the meter, memory, reports and the graph talk to
environments only through this interface, so they know no family.

A family says
- how names resolve (`resolve`, `close_matches`, `specs` for listings),
- which protocols it has (named presets such as Atari's `hl` and `ale-v5`) and which
  observation modes (Atari: `ram`, `vision`; a proprioceptive family: `state`),
- how to make a batch of envs under a protocol (`make_env`: an EnvPool gymnasium batch),
- its action space (`ActionSpace`: discrete indices or a continuous box),
- how to read one env of a batch during an episode (`StepView`): what the policy is
  given, the frame a video or contact sheet shows, what a per-step trace keeps, and the
  family's failure counter (lives under Atari, falls for a robot).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class UnknownEnvError(ValueError):
    """Raised with a one-line message naming the closest matches."""


class UnknownProtocolError(ValueError):
    pass


class InvalidAction(ValueError):
    """A policy returned something that is not an action of the env's action space."""


class ActionSpace(BaseModel):
    """Discrete (`n` actions, ints 0..n-1) or a continuous box (`low`..`high`, one float
    per dimension)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["discrete", "box"]
    n: int | None = None
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    @classmethod
    def of(cls, space) -> "ActionSpace":
        """The action space of a made env (a gymnasium Discrete or Box space)."""
        if hasattr(space, "n"):
            return cls(kind="discrete", n=int(space.n))
        return cls(kind="box", low=tuple(map(float, space.low)), high=tuple(map(float, space.high)))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one env's action: () for discrete, (dims,) for a box."""
        return () if self.kind == "discrete" else (len(self.low),)

    @property
    def dtype(self):
        return np.int32 if self.kind == "discrete" else np.float32

    def batch(self, size: int) -> np.ndarray:
        """An empty action array for `size` envs, as EnvPool's step takes it."""
        return np.empty((size, *self.shape), dtype=self.dtype)

    def check(self, value) -> int | np.ndarray:
        """The action as the env takes it; InvalidAction (with the reason) if it is not one."""
        if self.kind == "discrete":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise InvalidAction(f"invalid action {value!r} ({type(value).__name__}); act() must return an int")
            action = int(value)
            if not 0 <= action < self.n:
                raise InvalidAction(f"invalid action {action}; valid actions are 0..{self.n - 1}")
            return action
        try:
            action = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidAction(f"invalid action {value!r}; act() must return {len(self.low)} floats") from None
        if action.shape != self.shape or not np.all(np.isfinite(action)):
            raise InvalidAction(f"invalid action of shape {action.shape}; act() must return {len(self.low)} finite floats")
        # Out-of-range values are clipped, as Gymnasium's box-action environments do.
        return np.clip(action, self.low, self.high)


class EnvProtocol(BaseModel):
    """A named evaluation protocol: how episodes are played and capped. Recorded by name and
    settings in every ledger row. Families subclass it with their own settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    frame_skip: int = Field(default=1, ge=1)  # simulator frames per env step
    max_episode_frames: int = Field(ge=1)

    @property
    def max_episode_steps(self) -> int:
        """The cap in env steps (what EnvPool's `max_episode_steps` means)."""
        return max(1, self.max_episode_frames // self.frame_skip)

    @property
    def reset_frames(self) -> int:
        """Simulator frames a reset takes beyond the first observation (Atari's fire reset)."""
        return 0

    @property
    def video_fps(self) -> int:
        """Frames per second of a replay at the env's real speed (60 simulator frames a second)."""
        return max(1, 60 // self.frame_skip)

    def with_frame_cap(self, max_frames: int | None) -> "EnvProtocol":
        """The same protocol with a shorter episode cap (for quick checks and tests)."""
        if max_frames is None:
            return self
        return self.model_copy(update={"max_episode_frames": int(max_frames)})

    def envpool_kwargs(self) -> dict:
        """Keyword arguments for `envpool.make`, including the step cap."""
        return dict(frame_skip=self.frame_skip, max_episode_steps=self.max_episode_steps)


class EnvSpec(BaseModel):
    """One environment of a family, resolved from the name a person typed."""

    model_config = ConfigDict(frozen=True)

    family: str  # the registered family's name ("atari")
    name: str  # display name ("MontezumaRevenge")
    task_id: str  # EnvPool task id ("MontezumaRevenge-v5")
    slug: str  # folder-friendly name ("montezuma_revenge")
    random_score: float | None = None
    human_score: float | None = None
    max_score: float | None = None  # a score nothing can beat (the run may stop there)

    def hns(self, score: float) -> float | None:
        """Human-normalised score: (score - random) / (human - random), when both are known."""
        if self.random_score is None or self.human_score is None:
            return None
        return (score - self.random_score) / (self.human_score - self.random_score)


class StepView(ABC):
    """How one family reads one env of an EnvPool batch while an episode runs.

    `obs` and `info` are what the batch's reset/step returned; `row` is the env's row in
    them. Made per evaluation, for one spec, protocol and observation mode."""

    #: names of the per-step arrays `trace_arrays` adds to an episode trace (e.g. ("ram",))
    trace_keys: tuple[str, ...] = ()

    @abstractmethod
    def observation(self, obs, info, row: int, step: int, last_reward: float) -> Any:
        """What the policy's act() receives."""

    @abstractmethod
    def failures_left(self, info, row: int) -> int:
        """The family's failure counter: a drop is one failure (a life lost, a fall)."""

    def frame(self, obs, info, row: int) -> np.ndarray | None:
        """An H×W×3 uint8 picture of the env now (for videos and contact sheets), or None."""
        return None

    def trace_arrays(self, obs, info, row: int) -> dict[str, np.ndarray]:
        """Per-step data an episode trace keeps besides actions, rewards and failures."""
        return {}

    def progress_state(self, obs, info, row: int) -> np.ndarray | None:
        """The env's internal state as a flat array, for the harness's stall watch (a stall
        rule's `watch` indexes it: Atari RAM bytes, a robot's state), or None. Never shown
        to the policy."""
        return None


class EnvFamily(ABC):
    """One environment family. See the module docstring and docs/adding-an-environment-family.md."""

    name: str
    obs_modes: tuple[str, ...]
    default_obs_mode: str
    protocols: dict[str, EnvProtocol]
    default_protocol: str
    failure_name: str = "failure"  # what one drop of failures_left is called ("life lost", "fall")

    # -- names
    @abstractmethod
    def resolve(self, name: str) -> EnvSpec | None:
        """The spec a typed name means in this family, or None if it names none of its envs."""

    def close_matches(self, name: str) -> list[str]:
        """Display names close to a name no family resolved (for the error message)."""
        return []

    @abstractmethod
    def specs(self) -> list[EnvSpec]:
        """The envs this family lists (`--list`)."""

    def suites(self) -> dict[str, list[str]]:
        """Named sets of its envs that `graph.batch --games NAME` runs (e.g. atari57)."""
        return {}

    # -- protocols
    def get_protocol(self, name: str | None) -> EnvProtocol:
        name = name or self.default_protocol
        try:
            return self.protocols[name]
        except KeyError:
            raise UnknownProtocolError(
                f"unknown protocol {name!r} for {self.name}; choose one of: {', '.join(self.protocols)}"
            ) from None

    @abstractmethod
    def protocol_from_settings(self, settings: dict) -> EnvProtocol:
        """Rebuild a protocol from its recorded settings (a worker gets them as JSON)."""

    def default_episodes(self, protocol: str, split: str) -> int:
        """Episodes per dev evaluation (split "dev") or holdout report (split "holdout")."""
        return 3 if split == "dev" else 10

    def robustness_protocol(self, protocol: str) -> str | None:
        """The protocol a policy learned under `protocol` is also checked on at the end of a
        run, on holdout seeds: one where seeds differ, when `protocol` plays every seed the same
        (a score there can be memorisation). None when `protocol` already varies."""
        return None

    # -- envs
    @abstractmethod
    def action_space(self, spec: EnvSpec) -> ActionSpace:
        """The action space policies act in."""

    def action_meanings(self, spec: EnvSpec) -> list[str] | None:
        """Names of discrete actions in index order (None for a continuous box)."""
        return None

    @abstractmethod
    def make_env(self, spec: EnvSpec, protocol: EnvProtocol, seeds: list[int], num_threads: int = 1):
        """An EnvPool batch (gymnasium API): one env per seed, each seeded with its own seed."""

    @abstractmethod
    def step_view(self, spec: EnvSpec, protocol: EnvProtocol, obs_mode: str) -> StepView:
        """How the rollout reads this family's envs (see StepView)."""
