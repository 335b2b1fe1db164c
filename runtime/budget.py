"""The budget plan, made before a run starts: how long an episode may be and what is held
back for the final holdout evaluation, so the run never promises a holdout it cannot pay.

A run spends its budget on a probe, dev evaluations and, at the end, the best policy on
holdout seeds. An episode can last the protocol's whole cap (Atari: 108,000 frames), so a
small budget could go on one dev episode and leave nothing for the holdout. The plan:

- the budget must afford the probe, `MIN_DEV_EVALUATIONS` dev evaluations and a holdout of
  episodes of at least `MIN_EPISODE_FRAMES` frames; if not, the run is refused before it
  starts, saying what budget would do;
- if the protocol's cap is longer than that budget affords, episodes are capped for this
  run (dev and holdout alike; the cap is in every trial's protocol settings and the run
  says so before it starts);
- from the start, a holdout of full-length episodes is held in reserve. Once a best policy
  has scored, the reserve follows its longest dev episode (`holdout_reserve`).

The holdout includes the robustness check: a run under a protocol that plays every seed the
same (Atari's hl) also plays its best policy on holdout seeds under one where seeds differ
(ale-v5), and those episodes are paid for the same way (in that protocol's env steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from envs.base import EnvProtocol
from envs.registry import family_of, resolve_env
from runtime.config import RunConfig

MIN_DEV_EVALUATIONS = 6  # a run that cannot afford a few evaluations cannot learn anything
MIN_EPISODE_FRAMES = 2_000  # half a minute of play: shorter episodes say little about a policy
RESERVE_MARGIN = 1.25  # holdout seeds may play longer than the dev seeds did (sticky actions)


class BudgetTooSmall(ValueError):
    """The budget cannot pay for a probe, a few evaluations and a holdout (one line)."""


@dataclass(frozen=True)
class BudgetPlan:
    episode_frames: int  # the longest episode evaluations play, in simulator frames
    capped: bool  # shorter than the protocol's own cap, because of the budget
    episode_steps: int  # the same in env steps
    holdout_episodes: int
    robustness_steps: int = 0  # env steps of the robustness check's full-length episodes
    robustness: str = ""  # "10 episodes under ale-v5", or "" when there is no such check

    @property
    def initial_reserve(self) -> int:
        """Env steps held for the holdout before any policy has scored: full-length episodes."""
        return self.holdout_episodes * self.episode_steps + self.robustness_steps

    def note(self, protocol: EnvProtocol) -> str:
        """What the plan means, said before the run starts."""
        check = f" and {self.robustness}" if self.robustness else ""
        held = f"{self.initial_reserve:,} env steps held for a holdout of {self.holdout_episodes} episodes{check}"
        if not self.capped:
            return held
        return (f"episodes capped at {self.episode_frames:,} frames (the {protocol.name} cap is "
                f"{protocol.max_episode_frames:,}): the budget pays for {MIN_DEV_EVALUATIONS} dev evaluations and a "
                f"holdout no longer; {held}")  # fmt: skip


def plan_budget(config: RunConfig, protocol: EnvProtocol) -> BudgetPlan:
    """The episode cap and holdout reserve `config.budget` affords (BudgetTooSmall if none)."""
    frame_skip = protocol.frame_skip
    cap_frames = min(protocol.max_episode_frames, config.eval_max_frames or protocol.max_episode_frames)
    # A robustness episode of the same frames costs frame_skip / its frame_skip of one of ours.
    robust_skip = robustness_frame_skip(config)
    robust_share = config.robustness_episodes * frame_skip / robust_skip if robust_skip else 0.0
    episodes = config.dev_episodes * MIN_DEV_EVALUATIONS + config.holdout_episodes + robust_share
    affordable_steps = int(max(0, config.budget - config.probe_budget) // episodes)
    affordable_frames = affordable_steps * frame_skip // 1000 * 1000  # a round number people can read
    if affordable_frames < min(MIN_EPISODE_FRAMES, cap_frames):
        needed = config.probe_budget + math.ceil(episodes * math.ceil(min(MIN_EPISODE_FRAMES, cap_frames) / frame_skip))
        raise BudgetTooSmall(
            f"--budget {config.budget:,} is too small: the probe takes up to {config.probe_budget:,} env steps and "
            f"{MIN_DEV_EVALUATIONS} dev evaluations of {config.dev_episodes} episode(s) plus a holdout of "
            f"{config.holdout_episodes}{_robustness_words(config, ' and ')} need episodes of at least "
            f"{MIN_EPISODE_FRAMES:,} frames; use --budget {needed:,} or more"
        )  # fmt: skip
    frames = min(cap_frames, affordable_frames)
    return BudgetPlan(episode_frames=frames, capped=frames < cap_frames, episode_steps=math.ceil(frames / frame_skip),
                      holdout_episodes=config.holdout_episodes, robustness=_robustness_words(config),
                      robustness_steps=config.robustness_episodes * math.ceil(frames / robust_skip) if robust_skip else 0)  # fmt: skip


def robustness_frame_skip(config: RunConfig) -> int | None:
    """The frame skip of the run's robustness protocol (None: the run has no such check)."""
    name = config.robustness_protocol
    return family_of(resolve_env(config.game)).get_protocol(name).frame_skip if name else None


def _robustness_words(config: RunConfig, before: str = "") -> str:
    name = config.robustness_protocol
    return f"{before}{config.robustness_episodes} episodes under {name}" if name else ""


def episode_cap_steps(config: RunConfig, protocol: EnvProtocol) -> int:
    """The longest episode the run plays, in env steps (the protocol's cap or the run's)."""
    return math.ceil(min(protocol.max_episode_frames, config.eval_max_frames or protocol.max_episode_frames) / protocol.frame_skip)


def holdout_reserve(config: RunConfig, protocol: EnvProtocol, best_lengths: list[int]) -> int:
    """Env steps to hold for the holdout of a best policy whose dev episodes had these lengths:
    its longest, with a margin, never more than full-length episodes (no lengths: full length)."""
    cap_steps = episode_cap_steps(config, protocol)
    longest = max(best_lengths, default=cap_steps)
    holdout = config.holdout_episodes * min(cap_steps, math.ceil(longest * RESERVE_MARGIN))
    robust_skip = robustness_frame_skip(config)
    if not robust_skip:
        return holdout
    # The same play time under the robustness protocol, in its env steps.
    robust_steps = math.ceil(min(cap_steps, math.ceil(longest * RESERVE_MARGIN)) * protocol.frame_skip / robust_skip)
    return holdout + config.robustness_episodes * robust_steps
