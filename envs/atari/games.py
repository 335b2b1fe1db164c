"""Game registry: resolve the names people type to EnvPool task ids, with HNS metadata.

`resolve_game("montezuma")`, `resolve_game("space-invaders")`, `resolve_game("Breakout-v5")`
and `resolve_game("ALE/Pong-v5")` all work. Atari57 games carry the random and human scores
from `envs/atari/data/atari57_reference.csv`; other ALE games that EnvPool ships resolve too but
have no human-normalised score.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from pathlib import Path

from envs.base import EnvSpec, UnknownEnvError

REFERENCE_CSV = Path(__file__).parent / "data" / "atari57_reference.csv"

# Scores that end the game: nothing above them exists, so a run can stop there.
KNOWN_MAXIMA = {"Pong": 21.0, "Breakout": 864.0}


class UnknownGameError(UnknownEnvError):
    """Raised with a one-line message naming the closest matches."""


class GameSpec(EnvSpec):
    """An Atari game: `name` is CamelCase as in the Atari57 table ("MontezumaRevenge"),
    `slug` the ALE ROM id ("montezuma_revenge")."""

    family: str = "atari"
    rom: str  # ALE ROM id, for ale-py
    hl_ram_best_score: float | None = None
    hl_vision_best_score: float | None = None

    @property
    def in_atari57(self) -> bool:
        return self.human_score is not None

    def action_meanings(self) -> list[str]:
        """Names of the minimal action set, in the order the policy's action ints use."""
        from envs.atari.emulator import action_meanings

        return action_meanings(self.rom)


def _normalise(name: str) -> str:
    name = name.strip()
    name = re.sub(r"^ALE/", "", name, flags=re.IGNORECASE)
    name = re.sub(r"-v\d+$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"(NoFrameskip|Deterministic)$", "", name)
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _float_or_none(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


@functools.cache
def _ale_roms() -> dict[str, str]:
    """Every ALE ROM EnvPool ships, normalised name -> ROM id ("montezuma_revenge")."""
    from envs.envpool_import import import_envpool

    import_envpool()  # first: `envpool.atari.registration` alone would import the whole package
    from envpool.atari.registration import atari_game_list

    return {rom.replace("_", ""): rom for rom in atari_game_list}


def _camel(rom: str) -> str:
    # EnvPool's own rule for task ids: "montezuma_revenge" -> "MontezumaRevenge".
    return "".join(part.capitalize() for part in rom.split("_"))


@functools.cache
def atari57() -> dict[str, GameSpec]:
    """The 57 games of the Atari57 benchmark, keyed by normalised name."""
    games: dict[str, GameSpec] = {}
    with open(REFERENCE_CSV, newline="") as f:
        for row in csv.DictReader(f):
            key = _normalise(row["game"])
            games[key] = GameSpec(
                name=row["game"],
                task_id=f"{row['game']}-v5",
                rom=_ale_roms()[key],
                slug=_ale_roms()[key],
                max_score=KNOWN_MAXIMA.get(row["game"]),
                random_score=_float_or_none(row["random_score"]),
                human_score=_float_or_none(row["human_score"]),
                hl_ram_best_score=_float_or_none(row["hl_ram_best_score"]),
                hl_vision_best_score=_float_or_none(row["hl_vision_best_score"]),
            )
    return games


def find_game(name: str) -> GameSpec | None:
    """The game a typed name means, or None."""
    key = _normalise(name)
    games = atari57()
    if key in games:
        return games[key]
    roms = _ale_roms()
    if key in roms:
        rom = roms[key]
        return GameSpec(name=_camel(rom), task_id=f"{_camel(rom)}-v5", rom=rom, slug=rom)
    if key:
        prefixed = [k for k in games if k.startswith(key)]
        if len(prefixed) == 1:
            return games[prefixed[0]]
    return None


def close_game_names(name: str) -> list[str]:
    """Up to four game names close to a name that resolves to none."""
    key = _normalise(name)
    candidates = {k: _camel(rom) for k, rom in _ale_roms().items()}
    candidates.update({k: spec.name for k, spec in atari57().items()})
    close = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    close += [k for k in candidates if key and k.startswith(key) and k not in close]
    return [candidates[k] for k in close[:4]]


def resolve_game(name: str) -> GameSpec:
    """Resolve a typed game name; raise UnknownGameError with the closest matches."""
    spec = find_game(name)
    if spec is None:
        hint = ", ".join(close_game_names(name))
        raise UnknownGameError(f"unknown game {name!r}" + (f"; closest: {hint}" if hint else "") + " (see --list)")
    return spec
