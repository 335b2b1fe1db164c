"""The screen-route controller (any game, sparse or dense rewards): follow the best trajectory
a cell-archive search found, where a cell is the screen shrunk to a few blocks of grey
(tools/screen_cells.py) plus the score, so no RAM map of the player is needed.

The route structure (route.py) needs the player's position from RAM; many games give the
probe none, or no player at all. This one needs nothing from the probe: the search remembers
every distinct small screen it reached and explores on from the promising ones (higher score,
seldom chosen), and the best trajectory becomes data (`hs/screen_route.py`: the action of each
env step and the screen cell seen before it). The policy shrinks each frame the same way and
plays the action of the route step it is at; with `resync`, a screen that is not the one
recorded at the expected step sends it to the nearest step that shows this screen, so a game
running a step late or early (a sticky action) is followed from where it is. After the route
(`play_on`) it plays random held actions, or holds one (`after_action`), instead of standing
still (route_end.py).

Under `hl` every episode is the same game, so the route replays exactly: its score is the
search's, and it is memorisation. The run's robustness check (ale-v5 holdout seeds) shows
what is left of it when the game varies.

The module follows the controller interface of agents/controllers/__init__.py, plus the
search hooks the policy-writer calls: ROUTE_FILE, SEARCH_FOLDER, search_cells(facts),
write_route_module(result, facts).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from agents.controllers.atari import route_end
from agents.controllers.atari.pins import GENERIC_DETECTOR_TEST as DETECTOR_TEST
from agents.controllers.atari.pins import fixture_actions, pin_detectors
from agents.controllers.atari.route_end import route_over_first
from tools.screen_cells import ScreenCells, screen_cell

__all__ = ["DETECTOR_TEST", "fixture_actions", "pin_detectors"]  # the detector hooks (generic pins)

NAME = "screen_route"
SELF_CONTAINED = True  # reads the frame itself: a challenger to any structure
ROUTE_FILE = "screen_route.py"  # the route as data, next to policy.py
SEARCH_FOLDER = "screen_search"  # the search's archive in the run folder

FEATURES = {
    "resync": "when the screen is not the one recorded at the expected step, go on from the nearest step that shows it",
    "play_on": route_end.PLAY_ON,
}

# Under hl every screen is the one recorded at its step: resync never acts there.
ROBUSTNESS_FEATURES = {"resync"}

PARAMS = {
    # name: (default, low, high, what it means)
    "lookahead": (64, 0, 2000, "frames of route searched ahead of the expected step for the screen seen"),
    "lookback": (32, 0, 2000, "frames of route searched behind the expected step"),
    **route_end.PLAY_ON_PARAMS,
}

INT_PARAMS = {"lookahead", "lookback", "after_action", "after_hold"}
ACTION_PARAMS = {"after_action"}  # action indices: tuned as choices among the game's distinct actions (and -1)

SEARCH_MORE = 1_000_000  # env steps a "search further" direction asks for (the run's allowance clamps it)

DIRECTIONS = {
    "score": [
        ("search for a longer route", "the route scores too little: the search stopped before it found more",
         {"search": SEARCH_MORE}),
    ],
    "lost": [
        ("re-synchronise by the screen", "the game ran a step early or late and the counted actions went wrong",
         {"features": {"+resync"}}),
        ("look further ahead for the screen", "the game runs ahead of the route and no step near the expected one matches",
         {"params": {"lookahead": ("scale", 2.0)}}),
        ("look further back for the screen", "the game falls behind the route and no step near the expected one matches",
         {"params": {"lookback": ("scale", 2.0)}}),
    ],
    "stall": [
        ("play on after the route", "the route is over and the player stands still",
         {"features": {"+play_on"}}),
        ("search for a longer route", "the route ends here: the search did not go further",
         {"search": SEARCH_MORE}),
    ],
    "timeout": [
        ("search for a longer route", "the route is over: the policy scored all of it",
         {"search": SEARCH_MORE}),
        route_end.PLAY_AT_RANDOM,
    ],
}  # fmt: skip


def suits(facts: dict) -> bool:
    """Every game: a screen and a score are all the search needs."""
    return True


def facts_from_probe(report, obs_mode: str, facts: dict, protocol: str | None = None) -> dict:
    """Nothing beyond the base facts: the search reads the screen."""
    return {}


def fixture_actions(facts: dict) -> list[int]:
    """Actions the recording rollout plays at random: all of the game's (it may have no player)."""
    return list(range(len(facts["action_names"])))


def write_detectors(facts: dict, obs_mode: str) -> str:
    return f'''"""Detectors for the policy ({obs_mode} mode): none. The screen-route policy reads the frame
itself (its screen_cell) and follows hs/screen_route.py."""
'''


def initial_features(facts: dict) -> set[str]:
    return {"resync", "play_on"}


plays_as = route_end.plays_as  # what acts after the route (controllers' `effective`)


def param_used(name: str, features: set[str]) -> bool:
    if name in ("lookahead", "lookback"):
        return "resync" in features
    return "play_on" in features


def search_cells(facts: dict) -> ScreenCells:
    """How the search turns a moment into a cell: the screen's."""
    return ScreenCells()


def route_score(hs_dir) -> float | None:
    """The score of the route in hs/screen_route.py (None: no route written yet)."""
    path = Path(hs_dir) / ROUTE_FILE
    found = re.search(r"^SCORE = (.+)$", path.read_text(), re.MULTILINE) if path.exists() else None
    return float(found.group(1)) if found else None


def order_failures(kinds: list[tuple[str, str]], findings, hs_dir) -> list[tuple[str, str]]:
    """Hook for the replay-critic: an episode that scored all the route scores followed it to
    its end, so the route is what falls short (search further), not the following."""
    return route_over_first(kinds, findings, route_score(hs_dir))


# ============================================================================================
# The route as data
# ============================================================================================

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"  # one character per action index (Atari has at most 18)


def write_route_module(result, facts: dict) -> str:
    """The source of hs/screen_route.py: the search's best trajectory, one character per env
    step, and the screen cells where they changed."""
    actions = "".join(DIGITS[a] for a in result.actions)
    lines = [f'    "{actions[i : i + 96]}"' for i in range(0, len(actions), 96)] or ['    ""']
    changes, last = [], None
    for step, rec in enumerate(result.records[: len(result.actions)]):
        if rec.cell != last:
            changes.append((step, rec.cell))
            last = rec.cell
    cells = [", ".join(f"({s}, 0x{c:08x})" for s, c in changes[i : i + 6]) + "," for i in range(0, len(changes), 6)]
    rewards = [i for i in range(1, len(result.records)) if result.records[i].score > result.records[i - 1].score]
    rows, cols, levels = result.cell_shape or ScreenCells().shape
    return "\n".join([
        f'"""The screen route: the best trajectory of a search over screen cells ({result.game}, protocol {result.protocol}).',
        "",
        f"Score {result.score:g} in {len(result.actions):,} env steps of {result.frame_skip} frame(s), found with",
        f"{result.steps_total:,} search steps ({result.cells:,} cells: the screen shrunk to {rows}x{cols} blocks of {levels} grey",
        "levels, the scale a short calibration picked, plus the score; no sticky actions, every step counted).",
        f"The score rose at steps {rewards[:40]}{' ...' if len(rewards) > 40 else ''}.",
        "",
        "ACTIONS has one character per env step, the action index in base 36 ('0'-'9', then 'a'...).",
        "CELLS lists (step, cell) where the screen's cell changed: the cell seen before that step's",
        "action and every step after it until the next entry.",
        '"""',
        "",
        f"FRAME_SKIP = {result.frame_skip}",
        f"CELL_SHAPE = {(rows, cols, levels)!r}  # screen_cell's rows, columns and grey levels",
        f"SCORE = {result.score:g}",
        f"RESET_ACTION = {result.reset_action}",
        "ACTIONS = (",
        *lines,
        ")",
        "CELLS = [",
        *(f"    {line}" for line in cells),
        "]",
        "",
    ])  # fmt: skip


# ============================================================================================
# The policy
# ============================================================================================


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the screen-route controller."""
    names = list(facts["action_names"])
    noop = names.index("NOOP") if "NOOP" in names else 0
    p = {name: params.get(name, spec[0]) for name, spec in PARAMS.items()}
    shown = plays_as(p, features)[0]  # holding an action after the route, its random play's hold is not written
    param_lines = "\n".join(f"    {name!r}: {p[name]!r},  # {PARAMS[name][3]}" for name in PARAMS if name in shown and param_used(name, features))
    words = [
        "Screen-route follower. hs/screen_route.py holds the best trajectory a search over screen",
        "cells found: the action of every env step and the screen's cell before it (the frame",
        "shrunk to CELL_SHAPE blocks and grey levels, `screen_cell` below: the search's own definition).",
        "It plays the action of the route step it is at, one step after another.",
    ]
    resync = ""
    if "resync" in features:
        words += [
            "Each step it shrinks the frame; when that is not the cell recorded at the expected step",
            "(the game runs a step early or late: a sticky action), it goes on from the step with this",
            "cell nearest the expected one, from `lookback` frames behind to `lookahead` ahead; when no",
            "step there shows it, it goes on by the count.",
        ]
        resync = """
            cell = screen_cell(obs.rgb, *CELL_SHAPE)
            if CELL_AT[k] != cell:
                k = nearest(cell, k)"""
    after = """
        return NOOP  # the route is over: stand still"""
    held = route_end.held_action(p, names) if "play_on" in features else None
    if held is not None:
        words.append(route_end.words(p, names))
        after = f"""
        return {held}  # the route is over: hold {names[held]} (after_action)"""
    elif "play_on" in features:
        words.append(route_end.words(p, names))
        after = """
        if self.held == 0:  # the route is over: random distinct actions, each held a while
            self.action, self.held = int(self.rng.choice(DISTINCT)), steps(P["after_hold"])
        self.held -= 1
        return self.action"""
    else:
        words.append("When the route is over it stands still.")
    words += ["", f"Last change: {direction}"]
    doc = "\n".join(words)
    nearest = '''


def nearest(cell, k):
    """The route step showing `cell` nearest step k, within the window (k itself if none)."""
    seen = AT.get(cell, [])
    i = bisect.bisect_left(seen, k)
    near = [s for s in seen[max(0, i - 1) : i + 1] if k - steps(P["lookback"]) <= s <= k + steps(P["lookahead"])]
    return min(near, key=lambda s: abs(s - k)) if near else k''' if "resync" in features else ""
    cell_source = "\n\n" + inspect.getsource(screen_cell).rstrip("\n") if "resync" in features else ""
    cells = """
CELL_AT = [cell for (step, cell), nxt in zip(CELLS, [*CELLS[1:], (len(ROUTE), None)]) for _ in range(step, nxt[0])]
AT = {}  # cell -> the route steps that show it, in order
for _step, _cell in enumerate(CELL_AT):
    AT.setdefault(_cell, []).append(_step)""" if "resync" in features else ""
    imports = "import bisect\nimport math\nimport zlib\n\nimport numpy as np" if "resync" in features else "import math\n\nimport numpy as np"
    return f'''"""{doc}
"""

{imports}

from screen_route import {"ACTIONS, CELL_SHAPE, CELLS, FRAME_SKIP" if "resync" in features else "ACTIONS, FRAME_SKIP"}

P = {{
{param_lines}
}}

ACTION_NAMES = {dict(enumerate(names))!r}  # for the reader: what each action index does
NOOP = {noop}
DISTINCT = {list(facts.get("distinct_actions") or range(len(names)))!r}  # one action of each group the probe saw act differently
ROUTE = [int(c, 36) for c in ACTIONS]  # the action of every route step{cells}


def steps(frames):
    """Frames as env steps of this protocol."""
    return max(1, math.ceil(frames / FRAME_SKIP))
{cell_source}{nearest}


class Policy:
    def reset(self, seed):
        self.next = 0  # the route step expected now
        self.rng = np.random.default_rng(seed)  # the episode's seed: the same steps every replay
        self.action, self.held = NOOP, 0

    def act(self, obs):
        k = self.next
        if k < len(ROUTE):{resync}
            self.next = k + 1
            return ROUTE[k]{after}
'''
