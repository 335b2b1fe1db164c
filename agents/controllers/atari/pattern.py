"""The pattern controller: play a fixed, repeating sequence of actions, blind to the screen.

Hold one action throughout; or, with the `alternate` feature, hold it for `hold_first` steps,
then another for `hold_second` steps, and repeat. It needs nothing from the probe but the action
names, so it suits every game: it is the baseline every run starts from (the best of a few
such patterns, agents/baseline.py) and the structure a run keeps when the probe finds nothing a
richer structure could read (no player, no ball, no route). A richer structure that cannot
beat it is not accepted.

The module follows the controller interface of agents/controllers/__init__.py; its detectors
read nothing (the pins hold that there is nothing to read).
"""

from __future__ import annotations

from agents.controllers.atari.pins import GENERIC_DETECTOR_TEST as DETECTOR_TEST
from agents.controllers.atari.pins import pin_detectors

__all__ = ["DETECTOR_TEST", "pin_detectors"]  # the detector hooks (generic pins)

NAME = "pattern"

FEATURES = {
    "alternate": "alternate the first action with a second one, each held for a number of steps",
    "jitter": "now and then (probability `jitter`) play a random one of the game's distinct actions instead",
    "fire_only": "draw the random actions only among the distinct actions that fire (a shooter's random play that always shoots)",
    "all_actions": "draw the random actions among all of the game's actions, not one of each group the probe saw act alike",
}

PARAMS = {
    # name: (default, low, high, what it means); actions are indices into the game's action set
    "first_action": (0, 0, 17, "the action held (first, when alternating; index into the game's actions)"),
    "hold_first": (8, 1, 64, "steps the first action is held before the second"),
    "second_action": (0, 0, 17, "the action alternated with the first (index into the game's actions)"),
    "hold_second": (4, 1, 64, "steps the second action is held"),
    "jitter": (0.25, 0.0, 1.0, "probability of a random distinct action on a step (1: uniform random play)"),
    "jitter_hold": (1, 1, 64, "steps a random action is held once drawn (a move often needs a few frames to show)"),
}

INT_PARAMS = {"first_action", "hold_first", "second_action", "hold_second", "jitter_hold"}
RANDOM_FEATURES = {"jitter"}  # seeded by the episode: under hl one episode is one draw of many
ACTION_PARAMS = {"first_action", "second_action"}  # action indices: tuned as choices among the game's distinct actions

# failure kind -> candidate directions (agents/controllers/__init__.py has the change format).
# A blind pattern has few levers: its rhythm. Which actions to play is the baseline's choice.
DIRECTIONS = {
    "score": [
        ("draw random actions only among those that fire", "random play scores little: in a shooter every step could shoot",
         {"features": {"+fire_only"}}),
        ("draw random actions from the full action set",
         "random play scores nothing: an action the probe saw act like another may act in states it did not see",
         {"features": {"+all_actions"}}),
        ("alternate with pauses", "one action held throughout does not earn: the game may need a rhythm",
         {"features": {"+alternate"}, "params": {"second_action": ("set", 0)}}),
    ],
    "lost": [
        ("draw random actions only among those that fire", "random play dies before it scores: shooting every step clears the way",
         {"features": {"+fire_only"}}),
        ("alternate with pauses", "holding one action runs the player into danger: pause between",
         {"features": {"+alternate"}, "params": {"second_action": ("set", 0)}}),
        ("switch actions more often", "holding one action runs the player into danger",
         {"params": {"hold_first": ("scale", 0.5), "hold_second": ("scale", 0.5)}}),
        ("hold each action longer", "the player never gets anywhere: each move is undone by the next",
         {"params": {"hold_first": ("scale", 2.0), "hold_second": ("scale", 2.0)}}),
    ],
    "stall": [
        ("play a random action now and then", "one rhythm gets stuck: random steps shake it loose",
         {"features": {"+jitter"}}),
        ("alternate with a second action", "one action alone reaches a state where nothing more happens",
         {"features": {"+alternate"}, "params": {"second_action": ("set", 1)}}),
        ("hold each action longer", "the pattern is too short to get anywhere",
         {"params": {"hold_first": ("scale", 2.0), "hold_second": ("scale", 2.0)}}),
    ],
}  # fmt: skip


def suits(facts: dict) -> bool:
    """Every game: a pattern needs only the action names."""
    return True


def initial_features(facts: dict) -> set[str]:
    return set()


def param_used(name: str, features: set[str]) -> bool:
    """Only an alternating pattern has a second action and a rhythm; only a jittered one a jitter."""
    if name in ("jitter", "jitter_hold"):
        return "jitter" in features
    return name == "first_action" or "alternate" in features


def plays_as(params: dict, features: set[str], facts: dict | None = None) -> tuple[dict, set[str]]:
    """What the policy plays: a jitter of 1 draws a random action on every step, so the held
    and alternated actions are never reached (a direction that changes them changes nothing;
    BattleZone spent 42k env steps on two such); without random steps nothing is drawn, and
    in a game where no distinct action fires, or every one does, fire_only draws as before;
    where every action is distinct, so does all_actions."""
    draws = {"fire_only", "all_actions"}
    if facts is not None:
        features = acting_draws(features, facts)
    if "jitter" not in features:
        return params, features - draws
    if params.get("jitter", PARAMS["jitter"][0]) >= 1:
        return {k: v for k, v in params.items() if k in ("jitter", "jitter_hold")}, features & ({"jitter"} | draws)
    return params, features


def facts_from_probe(report, obs_mode: str, base: dict, protocol: str | None = None) -> dict:
    """Nothing beyond the base facts (the action names)."""
    return {}


def fixture_actions(facts: dict) -> list[int]:
    """Actions the recording rollout plays at random: all of the game's."""
    return list(range(len(facts["action_names"])))


def write_detectors(facts: dict, obs_mode: str) -> str:
    return f'''"""Detectors for the policy ({obs_mode} mode): none. The pattern controller plays a fixed
sequence of actions and reads nothing from the screen or the RAM."""
'''


def describe(params: dict, features: set[str], names: list[str]) -> str:
    """The pattern in words, e.g. "hold RIGHT for 8 steps, then FIRE for 1 step, and repeat"."""
    first, second = names[params["first_action"]], names[params["second_action"]]
    plural = lambda n: f"{n} step{'s' if n != 1 else ''}"  # noqa: E731
    held = params.get("jitter_hold", 1)
    noun = "firing action" if "fire_only" in features else "distinct action" if "all_actions" not in features else "action"
    of = " of the full set" if "all_actions" in features else ""
    if "jitter" in features and params["jitter"] >= 1:
        return f"play a random {noun}{of} every step" if held <= 1 else f"play random {noun}s{of}, each held for {plural(held)}"
    if "alternate" not in features:
        words = f"hold {first} throughout"
    else:
        words = f"hold {first} for {plural(params['hold_first'])}, then {second} for {plural(params['hold_second'])}, and repeat"
    held = f" (held for {plural(held)})" if held > 1 else ""
    return words + (f", a random {noun}{of}{held} on {params['jitter']:.0%} of steps" if "jitter" in features else "")


def firing_actions(facts: dict, among: list[int] | None = None) -> list[int]:
    """The actions (`among`; default the distinct ones) whose name says they fire (the Atari
    action set names them), when they are some but not all of them; else []."""
    names = facts["action_names"]
    among = list(facts.get("distinct_actions") or range(len(names))) if among is None else among
    firing = [a for a in among if "FIRE" in names[a]]
    return firing if 0 < len(firing) < len(among) else []


def drawn_actions(features: set[str], facts: dict) -> list[int]:
    """The actions random steps are drawn from: one of each group the probe saw act alike, or
    (all_actions) every action, since one may act only in states the probe did not see
    (Bowling's FIRE looked like NOOP to it, and random play without FIRE never bowls);
    fire_only keeps those that fire (when some do and some do not)."""
    names = facts["action_names"]
    among = list(range(len(names))) if "all_actions" in features else list(facts.get("distinct_actions") or range(len(names)))
    return (firing_actions(facts, among) or among) if "fire_only" in features else among


def acting_draws(features: set[str], facts: dict) -> set[str]:
    """`features` without fire_only or all_actions where it draws the same actions as without it."""
    for name in ("fire_only", "all_actions"):
        if drawn_actions(features, facts) == drawn_actions(features - {name}, facts):
            features = features - {name}
    return features


def clamp(params: dict, facts: dict) -> dict:
    """Parameters with the action indices inside this game's action set."""
    n = len(facts["action_names"])
    full = {name: params.get(name, spec[0]) for name, spec in PARAMS.items()}
    full["first_action"] = int(full["first_action"]) % n
    full["second_action"] = int(full["second_action"]) % n
    return full


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the pattern controller."""
    names = list(facts["action_names"])
    p = clamp(params, facts)
    param_lines = "\n".join(f"    {name!r}: {p[name]!r},  # {PARAMS[name][3]}" for name in PARAMS if param_used(name, features))
    actions = ", ".join(f"{i}: {name!r}" for i, name in enumerate(names))
    act = ""
    if "jitter" in features:
        act = """        if self.held > 0:  # a random action drawn earlier, still held
            self.held -= 1
            return self.random_action
        if self.rng.random() < P["jitter"]:  # a random action now and then (seeded: replays exactly)
            self.random_action, self.held = int(self.rng.choice(DISTINCT)), P["jitter_hold"] - 1
            return self.random_action
"""
    if "alternate" in features:
        act += """        period = P["hold_first"] + P["hold_second"]
        phase = self.t % period
        self.t += 1
        return P["first_action"] if phase < P["hold_first"] else P["second_action"]"""
    else:
        act += """        return P["first_action"]"""
    head = f"import numpy as np\n\n" if "jitter" in features else ""
    acting = acting_draws(features, facts)
    which = "every action of the game" if "all_actions" in acting else "one action of each group the probe saw act differently"
    which += ", of those that fire" if "fire_only" in acting else ""
    consts = f"DISTINCT = {drawn_actions(features, facts)!r}  # the random actions: {which}\n" if "jitter" in features else ""
    rng = ("\n        self.rng = np.random.default_rng(seed)  # the episode's seed: the same steps every replay"
           "\n        self.random_action, self.held = 0, 0") if "jitter" in features else ""  # fmt: skip
    return f'''"""Pattern controller: {describe(p, features, names)}.

It does not look at the screen: {"a rhythm of actions with random steps (seeded by the episode)" if "jitter" in features else "a fixed rhythm of actions"}, the
baseline a structure that reads the game must beat.

Last change: {direction}
"""

{head}P = {{
{param_lines}
}}

ACTION_NAMES = {{{actions}}}  # for the reader: what each action index does
{consts}

class Policy:
    def reset(self, seed):
        self.t = 0  # steps since the episode began{rng}

    def act(self, obs):
{act}
'''
