"""The route controller (exploration games, sparse rewards): follow, closed-loop, the best
trajectory a cell-archive search (tools/explore.py) found.

The search's trajectory becomes data (`hs/route.py`: one row per env step with the room,
the score so far, the player's position and the action taken, plus the moving objects'
positions). The policy never counts steps to know what to do: each step it reads where the
player is (room, x, y) and how much it has scored, finds the matching point of the route
near where it last was, and plays that point's action. So it re-synchronises after sticky
actions made it run ahead or fall behind, steers back when pushed off the route, picks the
route up again from the respawn point after a life is lost, and (feature `timed_waits`)
waits before hazards until the moving objects are where they were when the route passed.

The module follows the controller interface of agents/controllers/__init__.py, plus:
`write_route_module(result, facts)` (hs/route.py), `write_route_detectors(facts)` (the
RAM readers `read_position`, `read_objects` in hs/detectors.py), and the hooks the
detector-writer calls, `facts_from_probe` and `write_detectors`.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from agents.controllers.atari import route_end
from agents.controllers.atari.route_end import route_over_first
from agents.controllers.atari.pins import GENERIC_DETECTOR_TEST as DETECTOR_TEST
from agents.controllers.atari.pins import fixture_actions, pin_detectors

__all__ = ["DETECTOR_TEST", "fixture_actions", "pin_detectors"]  # the detector hooks (generic pins)

NAME = "route"
ROUTE_FILE = "route.py"  # the route as data, next to policy.py
SEARCH_FOLDER = "search"  # the search's archive in the run folder

FEATURES = {
    "recovery": "when no route point is within reach, walk towards the nearest one in this room instead of playing its action blindly",
    "timed_waits": "before a moving hazard that came close to the player on the route, wait until it is where it was when the route passed",
    "respawn_resync": "after a life is lost, look for the respawn point along the whole route instead of near the last position",
    "unstick": "when the matched route point stops advancing, line up exactly with it (a ladder needs the exact column), then play the following points' actions",
    "play_on": route_end.PLAY_ON,
}

# Under hl the route replays exactly: the player is always where the route was, so none of
# these acts, and a simplifier judging them there would remove what ale-v5 play needs.
ROBUSTNESS_FEATURES = {"recovery", "timed_waits", "respawn_resync", "unstick"}

PARAMS = {
    # name: (default, low, high, what it means)
    "match_radius": (12.0, 2.0, 32.0, "px: route points further than this from the player do not match"),
    "lookahead": (96, 4, 800, "frames of route searched ahead of the current point"),
    "lookback": (32, 0, 400, "frames of route searched behind the current point"),
    "index_weight": (0.25, 0.0, 2.0, "px of position error worth one frame of route time away from the expected point"),
    "recover_axis_px": (2.0, 0.5, 8.0, "px of error along an axis below which recovery does not move along it"),
    "stall_frames": (16, 2, 400, "frames without advancing along the route before the policy lines up with the route point"),
    "align_px": (0.5, 0.0, 2.0, "px of error along an axis tolerated when lining up with the route, per frame of a step"),
    "hazard_radius": (24.0, 4.0, 64.0, "px: an object this close to the player on the route makes a timed waypoint"),
    "wait_lead": (48, 4, 480, "frames of route before the close approach where the policy waits"),
    "hazard_tolerance": (4.0, 1.0, 24.0, "px: the wait ends when each object is this close to its recorded position"),
    "max_wait": (1600, 40, 16000, "frames of waiting after which the policy goes anyway"),
    **route_end.PLAY_ON_PARAMS,
}

INT_PARAMS = {"lookahead", "lookback", "wait_lead", "max_wait", "stall_frames", "after_action", "after_hold"}
ACTION_PARAMS = {"after_action"}  # action indices: tuned as choices among the game's distinct actions (and -1)

DIRECTIONS = {
    "lost": [
        ("wait for hazards at timed waypoints", "the player dies where a moving object crossed the route: its timing differs from the recording",
         {"features": {"+timed_waits"}}),
        ("wait further before the hazard", "the wait point is too close to the hazard to make up for the timing",
         {"params": {"wait_lead": 32}}),
        ("match the hazard's position more tightly", "the wait ends while the object is still out of step",
         {"params": {"hazard_tolerance": -1.5}}),
        ("treat more distant objects as hazards", "deaths happen where objects passed further from the route",
         {"params": {"hazard_radius": 12.0}}),
        ("match route points more tightly", "the policy plays the action of a point it is not really at (a jump from the wrong place)",
         {"params": {"match_radius": -2.0}}),
        ("prefer the expected route point more", "the matcher jumps to the wrong part of the route where it crosses itself",
         {"params": {"index_weight": 0.25}}),
    ],
    "stall": [
        ("line up with the route when stuck", "the route's action does nothing from a pixel or two off (a ladder, a rope)",
         {"features": {"+unstick"}}),
        ("line up sooner", "the player loses time standing where the route's action has no effect",
         {"params": {"stall_frames": ("scale", 0.5)}}),
        ("search further along the route", "the player runs ahead of the point the matcher looks at",
         {"params": {"lookahead": ("scale", 2.0)}}),
        ("steer back to the route", "the player is off the route and the nearest point's action does not bring it back",
         {"features": {"+recovery"}}),
        ("accept route points further away", "no route point matches, so the policy is stuck recovering",
         {"params": {"match_radius": 4.0}}),
        ("wait less at timed waypoints", "the policy waits for an object that never comes back to its recorded place",
         {"params": {"max_wait": ("scale", 0.5), "hazard_tolerance": 2.0}}),
        ("search for a longer route", "the route ends here: the search did not go further",
         {"search": 1_000_000}),
    ],
    "timeout": [
        ("search for a longer route", "the route ends and the player idles: the search did not go further",
         {"search": 1_000_000}),
        ("play on after the route", "the route is over and the player stands still while the game goes on",
         {"features": {"+play_on"}}),
        route_end.PLAY_AT_RANDOM,
    ],
}  # fmt: skip


# ============================================================================================
# Facts
# ============================================================================================


def suits(facts: dict) -> bool:
    """A player that moves on both axes (walks and climbs): a game of places to reach."""
    moves = facts.get("moves")
    if moves is not None:
        return bool(moves[0] and moves[1])
    ram = facts.get("ram") or {}
    return bool(ram.get("player_x") and ram.get("player_y"))


def initial_features(facts: dict) -> set[str]:
    features = {"recovery", "respawn_resync", "unstick", "play_on"}
    if (facts.get("ram") or {}).get("objects"):
        features.add("timed_waits")
    return features


plays_as = route_end.plays_as  # what acts after the route (controllers' `effective`)


def param_used(name: str, features: set[str]) -> bool:
    """Whether policy.py uses parameter `name` with these features."""
    if name == "recover_axis_px":
        return "recovery" in features
    if name in ("stall_frames", "align_px"):
        return "unstick" in features
    if name in ("hazard_radius", "wait_lead", "hazard_tolerance", "max_wait"):
        return "timed_waits" in features
    if name in ("after_action", "after_hold"):
        return "play_on" in features
    return True


def route_score(hs_dir) -> float | None:
    """The score of the route in hs/route.py (None: no route written yet)."""
    path = Path(hs_dir) / "route.py"
    if not path.exists():
        return None
    found = re.search(r"^SCORE = (.+)$", path.read_text(), re.MULTILINE)
    return float(found.group(1)) if found else None


def order_failures(kinds: list[tuple[str, str]], findings, hs_dir) -> list[tuple[str, str]]:
    """Hook for the replay-critic (see route_over_first)."""
    return route_over_first(kinds, findings, route_score(hs_dir))


def search_cells(facts: dict):
    """How the search turns a moment into a cell: the room, the score and the player's place,
    read from RAM by the probe's fits."""
    from tools.explore import CellSpec

    return CellSpec.from_facts(facts)


def facts_from_probe(report, obs_mode: str, facts: dict, protocol: str | None = None) -> dict:
    """Hook for the detector-writer: the RAM facts the route needs (ram mode only)."""
    if obs_mode != "ram":
        raise ValueError("the route controller reads positions from RAM: use --obs ram")
    from tools.explore import route_facts_from_probe

    return route_facts_from_probe(report)


def write_detectors(facts: dict, obs_mode: str) -> str:
    """Hook for the detector-writer."""
    return write_route_detectors(facts)


def _object_groups(facts: dict) -> list[tuple[str, dict, dict]]:
    """(name, x reader or None, y reader or None) per moving object, in facts order."""
    groups: dict[str, dict] = {}
    for o in (facts.get("ram") or {}).get("objects") or []:
        groups.setdefault(o["name"], {})[o["axis"]] = o
    return [(name, axes.get("x"), axes.get("y")) for name, axes in groups.items()]


def write_route_detectors(facts: dict) -> str:
    """The source of detectors.py: RAM readers for the player's room and position and the
    moving objects (screen pixels, x right and y down)."""
    ram = facts["ram"]
    px, py = ram["player_x"], ram["player_y"]
    room = ram.get("room")
    lines = []
    for name, ox, oy in _object_groups(facts):
        def expr(o):
            if o is None:
                return "None"
            if o.get("address") is None:
                return f"{o['b']!r}"  # constant: the only line the probe saw it on
            return f"float({o['a']!r} * ram[{o['address']}] + {o['b']!r})"

        lines.append(f"        ({expr(ox)}, {expr(oy)}),  # {name}")
    objects = "\n".join(lines)
    room_expr = f"int(ram[{room['address']}])" if room else "0"
    room_note = f"ram[{room['address']}]" if room else "none found: always 0"
    return textwrap.dedent(f'''\
        """RAM readers for the route controller (from the probe's regressions, pixel = a * ram + b).

        read_position(obs) -> (room, x, y): room byte ({room_note}), the player's x and y in pixels.
        read_objects(obs) -> [(x, y), ...]: moving objects the player does not control; an axis
        the probe found no RAM byte for is None, or a constant when the probe only ever saw the
        object on one line (true in the probe's room, a guess elsewhere).
        """


        def read_position(obs):
            ram = obs.ram
            room = {room_expr}
            x = {px["a"]!r} * ram[{px["address"]}] + {px["b"]!r}  # player x (r = {px.get("r")})
            y = {py["a"]!r} * ram[{py["address"]}] + {py["b"]!r}  # player y (r = {py.get("r")})
            return room, float(x), float(y)


        def read_objects(obs):
            ram = obs.ram
            return [
        {objects}
            ]
        ''')


# ============================================================================================
# The route as data
# ============================================================================================


def write_route_module(result, facts: dict) -> str:
    """The source of hs/route.py: the search's best trajectory, one row per env step."""
    groups = _object_groups(facts)
    index = {n: i for i, n in enumerate(result.object_names)}

    def coordinate(rec, name, axis, reader):
        if reader is None:
            return None
        if f"{name}_{axis}" in index:
            return rec.objects[index[f"{name}_{axis}"]]
        return reader["b"] if reader.get("address") is None else None  # a constant the search did not record

    def objects_of(rec) -> tuple:
        out = []
        for name, ox, oy in groups:
            out.append(tuple(coordinate(rec, name, axis, o) for axis, o in (("x", ox), ("y", oy))))
        return tuple(out)

    rows = []
    for rec, action in zip(result.records, result.actions):
        rows.append(f"    ({rec.room}, {rec.score:g}, {rec.x:g}, {rec.y:g}, {action}, {objects_of(rec)!r}),")
    rewards = [i for i in range(1, len(result.records)) if result.records[i].score > result.records[i - 1].score]
    rooms = []
    for rec in result.records:
        if not rooms or rooms[-1] != rec.room:
            rooms.append(rec.room)
    header = [
        f'"""The route: the best trajectory of a cell-archive search ({result.game}, protocol {result.protocol}).',
        "",
        f"Score {result.score:g} in {len(result.actions)} env steps of {result.frame_skip} frame(s), found with",
        f"{result.steps_total:,} search steps ({result.cells} cells of {result.cell_px:g} px, no sticky actions).",
        f"Rooms in order: {rooms}. Rewards at steps {rewards}.",
        "",
        "ROUTE has one row per env step: (room, score before the step, player x, player y, action,",
        "objects), positions in screen pixels read by detectors.py before the action was taken;",
        "objects are the moving objects' (x, y) in read_objects order (None: no RAM byte).",
        '"""',
        "",
        f"FRAME_SKIP = {result.frame_skip}",
        f"SCORE = {result.score:g}",
        f"RESET_ACTION = {result.reset_action}",
        f"OBJECT_NAMES = {[name for name, _, _ in groups]!r}",
        "",
        "ROUTE = [",
    ]
    return "\n".join(header + rows + ["]", ""])


# ============================================================================================
# The policy
# ============================================================================================


def _fmt(value) -> str:
    return repr(round(value, 3)) if isinstance(value, float) else repr(value)


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the route controller."""
    features = set(features)
    move = facts.get("movement") or {}
    names = facts.get("action_names") or []
    noop = names.index("NOOP") if "NOOP" in names else 0
    words = [
        "Route follower. hs/route.py holds the best trajectory a cell-archive search found: for",
        "every env step the room, the score so far, the player's position and the action taken.",
        "This policy does not count steps. Each step it reads the room and the player's position",
        "(detectors.py) and adds up its rewards, then looks for the route point that matches: same",
        "room and same score, within `match_radius` px, from `lookback` frames of route behind to",
        "`lookahead` frames ahead of the point it matched last; nearer points win, and each frame of",
        "route time away from the expected next point costs `index_weight` px. It plays that point's action.",
        "Falling behind (a sticky action was lost) matches an earlier point and repeats its action;",
        "running ahead skips points. So a route found without sticky actions survives them.",
    ]
    if "recovery" in features:
        words += [
            "When no point matches, it heads for the nearest route point of this room and score, x first",
            "(walking works anywhere, climbing only on ladders), ignoring errors under `recover_axis_px`.",
        ]
    else:
        words.append("When no point matches, it plays the action of the nearest route point of this room.")
    if "unstick" in features:
        words += [
            "When the matched point has not advanced for `stall_frames` frames (its action does nothing",
            "from where the player is: a ladder needs the exact column), it heads for the next place the",
            "route goes to, x first, to within `align_px` px per frame of a step, for `stall_frames`;",
            "then it plays the actions of the points after it for twice as long, and so on in turn.",
            "Off the route and getting no closer for `stall_frames` frames, it",
            "plays the route's actions from the nearest point on, one more each step.",
        ]
    if "respawn_resync" in features:
        words.append("After a life is lost it looks along the whole route for the point nearest the respawn.")
    if "timed_waits" in features:
        words += [
            "Timed waypoints: where a moving object came within `hazard_radius` px of the player on the",
            "route, the point `wait_lead` frames before is a waypoint. There the policy stands still until",
            "every object is within `hazard_tolerance` px of where it was when the route passed (and moves",
            "the same way), at most `max_wait` frames, then goes on: the hazard is where it was then.",
        ]
    if "play_on" in features:
        words.append(route_end.words(params, names))
    else:
        words.append("When the route is over it stands still.")
    words += ["", f"Last change: {direction}"]
    doc = "\n".join(words)
    shown = plays_as({name: params.get(name, spec[0]) for name, spec in PARAMS.items()}, features)[0]  # holding an action after the route: no hold
    param_lines = "\n".join(f"    {name!r}: {_fmt(params.get(name, PARAMS[name][0]))},  # {PARAMS[name][3]}"
                            for name in PARAMS if param_used(name, features) and name in shown)  # fmt: skip
    moves = (
        f"LEFT, RIGHT, UP, DOWN = {move.get('left')}, {move.get('right')}, {move.get('up')}, {move.get('down')}"
        "  # from the probe's action experiments (None: no such move)"
    )

    timed_setup = timed_reset = timed_read = timed_act = ""
    if "timed_waits" in features:
        timed_setup = '''


def _sign(a, b):
    if a is None or b is None:
        return 0
    return int(a > b) - int(a < b)


def _close(player, obj, radius):
    """An object within `radius` px of the player on every axis the detectors read."""
    gaps = [abs(p - o) for p, o in zip(player, obj) if o is not None]
    return bool(gaps) and max(gaps) <= radius


def _moving(a, b):
    return any(u is not None and v is not None and u != v for u, v in zip(a, b))


def timed_waypoints():
    """Route index -> (objects there, their directions of motion) for each close approach of a
    moving object, taken `wait_lead` frames before it (within the same room and score)."""
    waypoints = {}
    lead, recent = steps(P["wait_lead"]), steps(8)
    last_near = -lead - 1
    for k in range(recent, len(ROUTE)):
        room, score, x, y, _, objects = ROUTE[k]
        near = any(
            _close((x, y), obj, P["hazard_radius"]) and _moving(obj, ROUTE[k - recent][5][i])
            for i, obj in enumerate(objects)
        )
        if near and k - last_near > lead:  # a new close approach
            w = k
            while w > 1 and k - w < lead and ROUTE[w - 1][:2] == (room, score):
                w -= 1
            before = ROUTE[max(0, w - recent)][5]
            directions = [tuple(_sign(a, b) for a, b in zip(obj, old)) for obj, old in zip(ROUTE[w][5], before)]
            waypoints[w] = (ROUTE[w][5], directions)
        if near:
            last_near = k
    return waypoints


TIMED = timed_waypoints()'''
        timed_reset = """
        self.wait_at = None  # the timed waypoint being waited at
        self.waited = 0  # steps waited there
        self.released = set()  # timed waypoints passed since the last re-synchronisation
        self.seen = []  # moving objects' positions over the last 8 frames, oldest first"""
        timed_read = """
        self.seen = (self.seen + [read_objects(obs)])[-(steps(8) + 1) :]"""
        timed_act = """
        # Timed waypoint on the way: stand still until the hazards are where they were when
        # the route passed here (same place, same direction), then go on.
        if self.wait_at is None:
            ahead = range(max(self.index + 1, k - steps(P["wait_lead"])), k + 1)
            self.wait_at = next((w for w in ahead if w in TIMED and w not in self.released), None)
        if self.wait_at is not None:
            if self.in_place(TIMED[self.wait_at]) or self.waited >= steps(P["max_wait"]):
                self.released.add(self.wait_at)
                self.wait_at, self.waited = None, 0
            else:
                self.waited += 1
                return NOOP"""
        in_place = """

    def in_place(self, timed):
        # Every object within hazard_tolerance px of its recorded place, moving the same way
        # (directions over the last 8 frames).
        recorded, directions = timed
        now, before = self.seen[-1], self.seen[0]
        return all(
            (r is None or o is None or abs(o - r) <= P["hazard_tolerance"]) and (d == 0 or _sign(o, b) == d)
            for obj, old, rec, dirs in zip(now, before, recorded, directions)
            for o, b, r, d in zip(obj, old, rec, dirs)
        )"""
    else:
        in_place = ""

    if "recovery" in features:
        off_route = """
            # Off the route: head for the nearest route point of this room and score (x first:
            # walking works anywhere, climbing only on ladders).
            dx, dy = ROUTE[nearest][2] - x, ROUTE[nearest][3] - y
            step_x, step_y = (RIGHT if dx > 0 else LEFT), (DOWN if dy > 0 else UP)  # None: the game has no such move
            if abs(dx) > P["recover_axis_px"] and step_x is not None:
                return step_x
            if abs(dy) > P["recover_axis_px"] and step_y is not None:
                return step_y
            return ROUTE[nearest][4]"""
    else:
        off_route = """
            return ROUTE[nearest][4]  # off the route: play the nearest point's action"""

    unstick = unstick_reset = next_place = off_stuck = gap_reset = ""
    if "unstick" in features:
        unstick_reset = """
        self.stuck = 0  # steps the matched route point has not advanced
        self.gap = math.inf  # distance to the route when last off it"""
        unstick = """
        # Stuck: the point's action does nothing from here. Head for the next place the route
        # goes to (x first: walking works anywhere, climbing only on ladders), then play the
        # actions of the points after this one, one more each step.
        self.stuck = self.stuck + 1 if k <= self.index else 0
        stall = steps(P["stall_frames"])
        if self.stuck >= stall:
            # Cycle: line up for `stall` steps, then play the next 2 * stall points' actions.
            phase = (self.stuck - stall) % (3 * stall)
            self.index = k
            if phase >= stall:
                return ROUTE[min(len(ROUTE) - 1, k + 1 + phase - stall)][4]
            target = self.next_place(k, x, y)
            dx, dy = ROUTE[target][2] - x, ROUTE[target][3] - y
            tolerance = P["align_px"] * FRAME_SKIP
            step_x, step_y = (RIGHT if dx > 0 else LEFT), (DOWN if dy > 0 else UP)
            if abs(dx) > tolerance and step_x is not None:
                return step_x
            if abs(dy) > tolerance and step_y is not None:
                return step_y
            return ROUTE[k][4]"""
        gap_reset = """
        self.gap = math.inf"""
        off_stuck = """
            # Off the route and not getting closer for stall_frames: try the route's own moves
            # from the nearest point, one more each step.
            gap = math.hypot(ROUTE[nearest][2] - x, ROUTE[nearest][3] - y)
            self.stuck = 0 if gap < self.gap - 0.5 else self.stuck + 1
            self.gap = gap
            over = self.stuck - steps(P["stall_frames"])
            if over >= 0:
                return ROUTE[min(len(ROUTE) - 1, nearest + over)][4]"""
        next_place = """

    def next_place(self, k, x, y):
        # The first route point after k away from where the player is (within lookahead).
        for j in range(k + 1, min(len(ROUTE), k + 1 + steps(P["lookahead"]))):
            if ROUTE[j][:2] != ROUTE[k][:2]:
                break
            if max(abs(ROUTE[j][2] - x), abs(ROUTE[j][3] - y)) > P["align_px"] * FRAME_SKIP:
                return j
        return k"""

    resync = ""
    if "respawn_resync" in features:
        resync = """
        if self.lives is not None and obs.lives < self.lives:
            # A life lost: find the respawn point anywhere in this phase of the route.
            self.index, self.anywhere = -1, True""" + (
            "\n            self.wait_at, self.waited, self.released = None, 0, set()" if "timed_waits" in features else ""
        )

    after, after_reset, distinct, random_import = "return NOOP  # the route is over: stand still", "", "", ""
    held = route_end.held_action(params, names) if "play_on" in features else None
    if held is not None:
        after = f"return {held}  # the route is over: hold {names[held]} (after_action)"
    elif "play_on" in features:
        random_import = "\nimport random"
        after = """if self.held == 0:  # the route is over: random distinct actions, each held a while
                self.action, self.held = self.rng.choice(DISTINCT), steps(P["after_hold"])
            self.held -= 1
            return self.action"""
        after_reset = """
        self.rng = random.Random(seed)  # the episode's seed: the same steps every replay
        self.action, self.held = NOOP, 0"""
        distinct = f"\nDISTINCT = {list(facts.get('distinct_actions') or range(len(names)))!r}  # one action of each group the probe saw act differently"

    code = f'''"""{doc}
"""

import bisect
import math{random_import}

from detectors import read_objects, read_position
from route import FRAME_SKIP, ROUTE

P = {{
{param_lines}
}}

NOOP = {noop}{distinct}
{moves}



def steps(frames):
    """Env steps spanning this many frames (the route was found at FRAME_SKIP frames a step)."""
    return max(1, round(frames / FRAME_SKIP))


# Route indices of each (room, score) phase: where the player could be on the route.
PHASES = {{}}
for _k, _row in enumerate(ROUTE):
    PHASES.setdefault((_row[0], _row[1]), []).append(_k){timed_setup}


class Policy:
    def reset(self, seed):
        self.index = -1  # the route point matched last (-1: before the start)
        self.score = 0.0  # rewards collected so far: which phase of the route we are in
        self.lives = None
        self.anywhere = True  # match anywhere in the phase (start, respawn, off the route){unstick_reset}{timed_reset}{after_reset}

    def act(self, obs):
        self.score += obs.last_reward{resync}
        self.lives = obs.lives
        room, x, y = read_position(obs){timed_read}
        if self.index >= len(ROUTE) - 1:
            {after}
        phase = PHASES.get((room, self.score))
        if not phase:
            return NOOP  # this room and score are not on the route
        k = self.match(phase, x, y)
        if k is None:
            nearest = min(self.window(phase), key=lambda j: math.hypot(ROUTE[j][2] - x, ROUTE[j][3] - y))
            self.anywhere = True{off_stuck}{off_route}
        self.anywhere = False{gap_reset}{timed_act}{unstick}
        self.index = k
        return ROUTE[k][4]

    def match(self, phase, x, y):
        """The route point the player is at: within match_radius px, nearest to the player and
        to the expected next point (index_weight px per step away from it); None if none."""
        expected = self.index + 1
        best, best_cost = None, math.inf
        for j in self.window(phase):
            distance = math.hypot(ROUTE[j][2] - x, ROUTE[j][3] - y)
            if distance <= P["match_radius"]:
                cost = distance + P["index_weight"] * FRAME_SKIP * abs(j - expected)
                if cost < best_cost:
                    best, best_cost = j, cost
        return best

    def window(self, phase):
        """The route points to consider: near the last match, or the whole phase."""
        if self.anywhere:
            return phase
        expected = self.index + 1
        lo = bisect.bisect_left(phase, expected - steps(P["lookback"]))
        return phase[lo : bisect.bisect_right(phase, expected + steps(P["lookahead"]))] or phase{in_place}{next_place}
'''
    return code
