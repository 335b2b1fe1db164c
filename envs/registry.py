"""The registered environment families. Adding a family is its package under envs/ plus one
line in FAMILIES (see docs/adding-an-environment-family.md).

    resolve_env("montezuma")    -> GameSpec (atari)
    family_of(spec).make_env(spec, protocol, seeds)
"""

from __future__ import annotations

import functools
import importlib
import os

from envs.base import EnvFamily, EnvSpec, UnknownEnvError

# family name -> "module:object". Tried in this order when a name is resolved.
FAMILIES = {
    "atari": "envs.atari:ATARI",
}


def registered() -> dict[str, str]:
    """FAMILIES plus those named in HL_FAMILIES ("name=module:object,..."): a family kept
    outside this repository (its module importable), also seen by the evaluation workers."""
    return _with_extra(os.environ.get("HL_FAMILIES", ""))


@functools.cache
def _with_extra(spec: str) -> dict[str, str]:
    # Cached by the variable's value: every ledger row read looks its family up.
    extra = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, target = item.partition("=")
        if not name or ":" not in target:
            raise UnknownEnvError(f"HL_FAMILIES entry {item!r} is not name=module:object")
        extra[name] = target
    return {**FAMILIES, **extra}


def get_family(name: str) -> EnvFamily:
    """The family object registered under `name`."""
    families_ = registered()
    if name not in families_:
        raise UnknownEnvError(f"unknown environment family {name!r}; known: {', '.join(families_)}")
    return _load(families_[name])


@functools.cache
def _load(target: str) -> EnvFamily:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def families() -> list[EnvFamily]:
    return [get_family(name) for name in registered()]


def family_of(spec: EnvSpec) -> EnvFamily:
    return get_family(spec.family)


def resolve_env(name: str) -> EnvSpec:
    """The environment a typed name means, in the first family that knows it; UnknownEnvError
    (one line, with the closest names) when none does."""
    for family in families():
        spec = family.resolve(name)
        if spec is not None:
            return spec
    close = [match for family in families() for match in family.close_matches(name)][:4]
    raise UnknownEnvError(f"unknown game {name!r}" + (f"; closest: {', '.join(close)}" if close else "") + " (see --list)")


def suite_names() -> list[str]:
    """Every family's named suites (graph.batch --games NAME)."""
    return [name for family in families() for name in family.suites()]


def resolve_games(text: str) -> tuple[list[EnvSpec], str | None]:
    """The envs `--games` means: a suite name ("atari57") or names separated by commas
    ("pong,breakout"); with the suite's name, if it was one. UnknownEnvError (one line) when
    a name resolves to nothing."""
    key = text.strip().lower()
    for family in families():
        if key in family.suites():
            return [resolve_env(name) for name in family.suites()[key]], key
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UnknownEnvError(f"no games in {text!r}; give a suite ({', '.join(suite_names())}) or names like pong,breakout")
    specs = []
    for name in names:
        try:
            spec = resolve_env(name)
        except UnknownEnvError as err:
            raise UnknownEnvError(f"{err}; suites: {', '.join(suite_names())}") from None
        if spec not in specs:
            specs.append(spec)
    return specs, None


def obs_mode_names() -> list[str]:
    """Every family's observation modes (the CLI's choices; a family checks its own)."""
    return list(dict.fromkeys(mode for family in families() for mode in family.obs_modes))


def protocol_names() -> list[str]:
    """Every family's protocol names (the CLI's choices; a family checks its own)."""
    return list(dict.fromkeys(name for family in families() for name in family.protocols))
