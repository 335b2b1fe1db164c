"""Atari, the first environment family: the ALE games EnvPool ships, with full RGB frames
and RAM, under the `hl` and `ale-v5` protocols.

- games.py: names as people type them -> GameSpec (HNS metadata for Atari57)
- protocols.py: the `hl` and `ale-v5` presets
- observation.py: the Observation an Atari policy gets (rgb, ram in ram mode, lives)
- emulator.py: the one ale-py builder (clone/restore and RAM pokes, for probes and searches), and an ale-py emulator stepped like EnvPool
"""

from __future__ import annotations

import numpy as np

from envs.atari.games import GameSpec, atari57, close_game_names, find_game
from envs.atari.observation import OBS_MODES, Observation
from envs.atari.protocols import PROTOCOLS, Protocol
from envs.base import ActionSpace, EnvFamily, EnvSpec, StepView


def make_env(task_id: str, protocol: Protocol, seeds: list[int], num_threads: int = 1):
    """An EnvPool batch of one Atari game: one env per seed, each seeded with its own seed."""
    from envs.envpool_import import import_envpool

    return import_envpool().make(
        task_id,
        env_type="gymnasium",
        num_envs=len(seeds),
        env_seed=list(seeds),
        num_threads=num_threads,
        **protocol.envpool_kwargs(),
    )


class AtariStepView(StepView):
    """EnvPool hands Atari frames channels-first, RAM as info["ram"], lives as info["lives"]."""

    def __init__(self, obs_mode: str):
        self.with_ram = obs_mode == "ram"
        self.trace_keys = ("ram",) if self.with_ram else ()

    def observation(self, obs, info, row: int, step: int, last_reward: float) -> Observation:
        ram = info["ram"][row] if self.with_ram else None
        return Observation(obs[row], ram, int(info["lives"][row]), step, last_reward)

    def failures_left(self, info, row: int) -> int:
        return int(info["lives"][row])

    def frame(self, obs, info, row: int) -> np.ndarray:
        return obs[row].transpose(1, 2, 0)  # a view, not a copy

    def trace_arrays(self, obs, info, row: int) -> dict[str, np.ndarray]:
        return {"ram": info["ram"][row]} if self.with_ram else {}

    def progress_state(self, obs, info, row: int) -> np.ndarray:
        return info["ram"][row]  # EnvPool reports RAM in every obs mode


# Subsets of Atari57 that predict its median score (Aitchison, Sweetser and Hutter, "Atari-5",
# ICML 2023): five games, and ten with five more.
SUBSETS = {
    "atari5": ["BattleZone", "DoubleDunk", "NameThisGame", "Phoenix", "Qbert"],
    "atari10": ["BattleZone", "DoubleDunk", "NameThisGame", "Phoenix", "Qbert",
                "Amidar", "Bowling", "Frostbite", "KungFuMaster", "Riverraid"],
}  # fmt: skip


class AtariFamily(EnvFamily):
    name = "atari"
    obs_modes = OBS_MODES
    default_obs_mode = "ram"
    protocols = PROTOCOLS
    default_protocol = "hl"
    failure_name = "life lost"

    def resolve(self, name: str) -> GameSpec | None:
        return find_game(name)

    def close_matches(self, name: str) -> list[str]:
        return close_game_names(name)

    def specs(self) -> list[EnvSpec]:
        return sorted(atari57().values(), key=lambda s: s.name)

    def suites(self) -> dict[str, list[str]]:
        return {"atari57": [spec.name for spec in self.specs()], **SUBSETS}

    def protocol_from_settings(self, settings: dict) -> Protocol:
        return Protocol(**settings)

    def default_episodes(self, protocol: str, split: str) -> int:
        # Under hl every seed plays the same game, so one episode says it all, dev and holdout
        # alike (the robustness check's 10 ale-v5 episodes are where seeds differ); under
        # ale-v5 (sticky actions) seeds differ: 3 and 10.
        if protocol == "hl":
            return 1
        return 3 if split == "dev" else 10

    def robustness_protocol(self, protocol: str) -> str | None:
        # Without sticky actions every seed is the same game: a route replayed step by step
        # scores there and nowhere else. The Machado et al. protocol shows whether it holds.
        return "ale-v5" if self.get_protocol(protocol).repeat_action_probability == 0 else None

    def action_space(self, spec: GameSpec) -> ActionSpace:
        return ActionSpace(kind="discrete", n=len(spec.action_meanings()))

    def action_meanings(self, spec: GameSpec) -> list[str]:
        return spec.action_meanings()

    def make_env(self, spec: GameSpec, protocol: Protocol, seeds: list[int], num_threads: int = 1):
        return make_env(spec.task_id, protocol, seeds, num_threads)

    def step_view(self, spec: GameSpec, protocol: Protocol, obs_mode: str) -> AtariStepView:
        return AtariStepView(obs_mode)


ATARI = AtariFamily()
