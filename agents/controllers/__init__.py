"""Controller structures the builtin policy-writer can write, as readable code.

A controller is generated from (features, params): each optional feature is a block of
code that exists in policy.py only when enabled, so the simplifier can remove a feature by
regenerating without it, and the file a person reads is exactly the logic that runs.

Every controller is a module with the same interface:

    NAME: str
    PARAMS: dict[name, (default, low, high, meaning)]   the named constants of policy.py
    INT_PARAMS: set[str]                                 which of them are integers
    FEATURES: dict[name, description]                    optional code blocks
    DIRECTIONS: dict[failure kind, [(name, hypothesis, change)]]  what the critic may propose
    suits(facts) -> bool                                 does the probe say this game fits?
    initial_features(facts) -> set[str]
    param_used(name, features) -> bool                   disabled features drop their params
    write_policy(params, features, facts, direction) -> str   the source of policy.py
    order_failures(kinds, findings, hs_dir) -> kinds     optional: reorder the critic's
                                                         failure kinds (most telling first)
    initial_params(facts, baseline) -> dict              optional: first parameters from the
                                                         facts and the pattern baseline's winner
    ACTION_PARAMS: set[str]                              optional: parameters that are action
                                                         indices (Optuna picks among the
                                                         game's distinct actions)
    SELF_CONTAINED: bool                                 optional: policy.py reads the frame
                                                         itself (no detectors.py), so it can be
                                                         tried as a challenger to any structure
    RANDOM_FEATURES: set[str]                            optional: features that make the
                                                         policy draw random numbers (its score
                                                         varies by seed even where the game
                                                         does not)
    ROBUSTNESS_FEATURES: set[str]                        optional: features that only act when
                                                         the game differs from the one recorded
                                                         (re-synchronising, recovering): where
                                                         every seed is the same game the
                                                         simplifier cannot judge them, so keeps
                                                         them

and owns its detectors (the detector-writer calls these):

    facts_from_probe(report, obs_mode, base, protocol name) -> dict   its keys of the facts
    write_detectors(facts, obs_mode) -> str              the source of detectors.py
    DETECTOR_TEST: str                                   hs/tests/test_detectors.py
    fixture_actions(facts) -> [action]                   what the pinning rollout plays
    pin_detectors(detectors, observations, facts) -> (arrays, files)   what the pins hold

Controllers live in one package per environment family (atari/), which lists them in its
CONTROLLERS and names its FACTS module (facts_from_probe(report, obs_mode, protocol): what
the detector-writer derives from that family's probe). Adding a controller is its module
plus one line in its family's CONTROLLERS; adding a family's controllers is its package
plus one line in FAMILIES here.

A change is {"params": {name: delta | ("scale", f) | ("set", v)}, "features": {"+f", "-f"}}
and may carry "search": env steps, for controllers whose policy is built on a search.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# environment family -> its controllers' package
FAMILIES = {
    "atari": "agents.controllers.atari",
}


def _family(name: str) -> ModuleType:
    try:
        return importlib.import_module(FAMILIES[name])
    except KeyError:
        raise KeyError(f"no controllers for the {name!r} family; known: {', '.join(FAMILIES)}") from None


# Every controller by name, in each family's order (names are unique across families).
CONTROLLER_MODULES = {name: module for family in FAMILIES for name, module in _family(family).CONTROLLERS.items()}


def facts_module(family: str) -> ModuleType:
    """The module that turns a family's probe report into the facts its controllers read."""
    return importlib.import_module(_family(family).FACTS)


def get_controller(name: str) -> ModuleType:
    if name not in CONTROLLER_MODULES:
        raise KeyError(f"no controller named {name!r}; known: {', '.join(CONTROLLER_MODULES)}")
    return importlib.import_module(CONTROLLER_MODULES[name])


def available(family: str = "atari") -> dict[str, ModuleType]:
    """A family's controllers whose modules exist (a controller in development may be absent)."""
    found = {}
    for name in _family(family).CONTROLLERS:
        try:
            found[name] = get_controller(name)
        except ModuleNotFoundError:
            continue
    return found


def suitable_controllers(facts: dict, family: str = "atari") -> list[str]:
    """The family's controllers that suit what the probe found, in the family's order (its
    last, a structure that suits every game, is the fallback)."""
    return [name for name, module in available(family).items() if module.suits(facts)]


# Dev episodes of a policy that draws at random, even where every seed is the same game (hl).
RANDOM_POLICY_DEV_EPISODES = 3


def dev_episodes_for(candidate: dict, dev_episodes: int, seeds_differ: bool) -> int:
    """Dev episodes to judge a candidate on (its evaluation and each parameter-search trial):
    the run's, or RANDOM_POLICY_DEV_EPISODES for a policy that draws at random where every seed
    is the same game (one episode would be one lucky or unlucky draw, and a search or decide
    would keep it on that)."""
    if not seeds_differ and plays_at_random(candidate):
        return max(dev_episodes, RANDOM_POLICY_DEV_EPISODES)
    return dev_episodes


def acting_features(controller: ModuleType, features: set[str], seeds_differ: bool) -> set[str]:
    """The features whose effect an evaluation can see: all of them where seeds differ; where
    every seed is the same game (hl), all but the structure's ROBUSTNESS_FEATURES, which only
    act when the game differs from the one recorded (the simplifier keeps them, a parameter
    search leaves their parameters alone)."""
    return set(features) if seeds_differ else set(features) - getattr(controller, "ROBUSTNESS_FEATURES", set())


def plays_at_random(candidate: dict) -> bool:
    """Whether a candidate's policy draws random numbers (a builtin structure with one of its
    RANDOM_FEATURES on): one episode of it says little even where every seed is the same game."""
    name = candidate.get("controller")
    if name not in CONTROLLER_MODULES:
        return False
    return bool(set(candidate.get("features") or ()) & getattr(get_controller(name), "RANDOM_FEATURES", set()))


def default_params(controller: ModuleType) -> dict:
    return {name: spec[0] for name, spec in controller.PARAMS.items()}


def structure_facts(facts: dict, name: str) -> dict:
    """The facts a structure writes its policy from: the run's, plus its own when it is a
    challenger (facts["challengers"][name]) rather than the structure the probe chose."""
    return {**facts, **(facts.get("challengers") or {}).get(name, {})}


def starting_params(controller: ModuleType, facts: dict, baseline: dict | None) -> dict:
    """A structure's first parameters: its defaults, and what it takes from the facts and the
    pattern baseline's winner (initial_params, optional)."""
    own = controller.initial_params(facts, baseline) if hasattr(controller, "initial_params") else {}
    return {**default_params(controller), **own}


def apply_change(controller: ModuleType, params: dict, features: set[str], change: dict) -> tuple[dict, set[str]]:
    """Apply a direction's change to (params, features), clamped to the parameter ranges."""
    params, features = dict(params), set(features)
    for name, delta in change.get("params", {}).items():
        default, low, high, _ = controller.PARAMS[name]
        value = params.get(name, default)
        if isinstance(delta, (tuple, list)):  # ("scale", f) or ("set", v); JSON turns tuples into lists
            value = value * delta[1] if delta[0] == "scale" else delta[1]
        else:
            value = value + delta
        value = min(high, max(low, value))
        params[name] = int(round(value)) if name in controller.INT_PARAMS else round(float(value), 2)
    for flag in change.get("features", set()):
        (features.add if flag[0] == "+" else features.discard)(flag[1:])
    return params, features


def effective(controller: ModuleType, params: dict, features: set[str], facts: dict | None = None) -> tuple:
    """What the generated code depends on: parameters of disabled features do not count, nor
    what a controller's optional `plays_as(params, features, facts)` says its code never
    reaches (the pattern's fixed actions under uniform random play)."""
    if hasattr(controller, "plays_as"):
        params, features = controller.plays_as(params, features, facts)
    used = ((k, v) for k, v in params.items() if controller.param_used(k, features))
    return tuple(sorted(features)), tuple(sorted(used))
