"""The shooter controller (align-and-fire): the player moves along one axis, FIRE sends a shot
away from it, targets are elsewhere on the screen. Pick a target, move under it (leading a
moving target by its velocity times the shot's travel time), fire when aligned, and stay out
from under incoming shots.

The module follows the controller interface of agents/controllers/__init__.py. Everything
game-specific comes from the probe: which colours are targets (moving object types that
keep away from the player's line) and which are projectiles (small types that reach it),
the side the targets are on, the shot's speed, the player's RAM byte.
"""

from __future__ import annotations

import textwrap

import numpy as np

from agents.controllers.atari.facts import steers_both_ways
from agents.controllers.atari.pins import GENERIC_DETECTOR_TEST as DETECTOR_TEST
from agents.controllers.atari.pins import fixture_actions, pin_detectors

__all__ = ["DETECTOR_TEST", "fixture_actions", "pin_detectors"]  # the detector hooks (generic pins)

NAME = "shooter"

FEATURES = {
    "lead_target": "aim where a moving target will be when the shot arrives (its velocity times the shot's travel time)",
    "dodge": "step out from under projectiles coming towards the player's line, and do not walk under them",
    "stall_breaker": "after a long time without reward, switch to the next-best target in turn",
    "avoid_cover": "do not aim or fire where scenery (a shield) lies between the player and the targets",
    "hide_under_cover": "when a projectile threatens the player, also take shelter under scenery that stops it",
}

PARAMS = {
    # name: (default, low, high, what it means)
    "deadband": (1.0, 0.0, 6.0, "px of aim error tolerated before moving"),
    "aim_offset": (0.0, -6.0, 6.0, "px along the player's axis between its reading and where its shot leaves"),
    "fire_window": (3.0, 0.0, 10.0, "px of aim error within which it fires"),
    "fire_every": (2, 1, 30, "steps between FIRE presses (2 = press, release, press ...)"),
    "prefer_near": (0.5, 0.0, 3.0, "cost of a target's distance from the player's line, per px, against the walk to it"),
    "stickiness": (12.0, 0.0, 40.0, "px of cost bonus for keeping the current target (stops dithering)"),
    "lead": (1.0, 0.0, 2.0, "how much of the predicted target motion to aim for (1 = full prediction)"),
    "velocity_window": (4, 1, 16, "steps over which a target's velocity is smoothed"),
    "danger_distance": (40.0, 8.0, 120.0, "px from the player's line within which an incoming shot is a threat"),
    "danger_width": (7.0, 2.0, 16.0, "px along the player's axis that an incoming shot threatens on each side"),
    "threat_memory": (12, 2, 40, "steps an incoming shot counts as a threat after it was last seen"),
    "stall_steps": (1500, 200, 6000, "steps without reward before the stall breaker switches targets"),
    "cover_margin": (1.0, 0.0, 6.0, "px beside scenery where a shot still counts as blocked"),
}

INT_PARAMS = {"fire_every", "velocity_window", "stall_steps", "threat_memory"}

# failure kind -> candidate directions: (name, hypothesis, change), tried in order by the
# replay-critic (see agents/controllers/__init__.py for the change format).
DIRECTIONS = {
    "lost": [
        ("dodge incoming shots", "the player is hit by projectiles it stands under", {"features": {"+dodge"}}),
        ("look further ahead for incoming shots", "the player starts dodging too late",
         {"params": {"danger_distance": ("scale", 1.5)}}),
        ("keep a wider berth from incoming shots", "shots clip the player's edge", {"params": {"danger_width": 3.0}}),
        ("remember incoming shots longer", "the player steps back under a shot it can no longer see",
         {"params": {"threat_memory": ("scale", 2.0)}}),
        ("look less far ahead for incoming shots", "the player flees shots that would miss and never settles to fire",
         {"params": {"danger_distance": ("scale", 0.67)}}),
        ("prefer targets nearer the player's line", "the nearest enemies reach the player: shoot them first",
         {"params": {"prefer_near": 0.5}}),
        ("lead moving targets", "shots miss moving targets and enemies survive to hit the player",
         {"features": {"+lead_target"}}),
        ("fire more often", "too few shots: enemies survive", {"params": {"fire_every": -1}}),
    ],
    "stall": [
        ("add a stall breaker that switches targets", "the player keeps aiming at a target its shots cannot reach",
         {"features": {"+stall_breaker"}}),
        ("lead moving targets", "shots pass behind moving targets", {"features": {"+lead_target"}}),
        ("lead moving targets less", "the prediction overshoots", {"params": {"lead": -0.25}}),
        ("fire with a wider window", "the player waits for a perfect alignment that never comes",
         {"params": {"fire_window": 2.0}}),
        ("break stalls sooner", "the stall breaker waits too long", {"params": {"stall_steps": ("scale", 0.5)}}),
        ("keep targets longer", "the player dithers between targets", {"params": {"stickiness": 10.0}}),
    ],
    "serve": [
        ("fire more often", "nothing happens: shots are needed to start or keep the game going",
         {"params": {"fire_every": ("set", 1)}}),
        ("add a stall breaker that switches targets", "the player waits under a target it cannot hit",
         {"features": {"+stall_breaker"}}),
    ],
}  # fmt: skip


def suits(facts: dict) -> bool:
    """A player moving along one axis, a fire action that does something, and a formation of
    moving things that keep away from the player's line (several of a type at a time)."""
    return (sum(facts.get("moves", [True, True])) == 1 and bool(facts.get("fire_acts")) and bool(facts.get("formation"))
            and steers_both_ways(facts))  # fmt: skip


def initial_features(facts: dict) -> set[str]:
    return {"lead_target", "avoid_cover", "dodge"}


def param_used(name: str, features: set[str]) -> bool:
    """Whether policy.py uses parameter `name` with these features (disabled features drop theirs)."""
    if name in ("lead", "velocity_window"):
        return "lead_target" in features
    if name in ("danger_distance", "danger_width", "threat_memory"):
        return "dodge" in features
    if name == "stall_steps":
        return "stall_breaker" in features
    if name == "cover_margin":
        return "avoid_cover" in features
    return True


# ============================================================================================
# Facts from the probe
# ============================================================================================


def _gap(obj, other: int, line: float) -> float:
    lo, hi = (obj.x_range, obj.y_range)[other]
    return 0.0 if lo <= line <= hi else float(min(abs(line - lo), abs(line - hi)))


def _pack(colour) -> int:
    return (int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2])


def facts_from_probe(report, obs_mode: str, base: dict, protocol: str | None = None) -> dict:
    """Targets, projectiles, the side the shots fly to, the field, the shot speed, the
    move-and-fire actions and (ram mode) the player's RAM byte."""
    axis = base["move_axis"]
    other = 1 - axis
    line = float(base["player_line"])
    player = report.player
    along_size, across_size = (player.width, player.height) if axis == 0 else (player.height, player.width)
    limit = 210 if axis == 0 else 160  # frame size across
    # Targets keep away from the player's line; projectiles are small and reach it.
    small = [o for o in report.objects if o.area <= 16 and min(o.width, o.height) <= 2]
    shots = [o for o in small if _gap(o, other, line) <= across_size]
    shot_keys = {_pack(o.colour) for o in shots}
    shots += [o for o in small if o not in shots and _pack(o.colour) in shot_keys]  # same colour, not seen reach the line
    targets = [o for o in report.objects if _gap(o, other, line) > across_size and o not in shots]
    centres = [np.mean((o.x_range, o.y_range)[other]) for o in targets] or [0.0]
    sign = -1 if np.mean(centres) < line else 1
    half = across_size / 2 + 1
    band = [int(np.floor(line - half)), int(np.ceil(line + half)) + 1]
    reach = [(o.x_range, o.y_range)[other] for o in targets]
    size = max([max(o.width, o.height) for o in targets] or [8])
    if sign < 0:
        field = [max(0, int(min([r[0] for r in reach] or [0]) - size)), band[0]]
        near = int(max([r[1] for r in reach] or [field[0]]) + size / 2 + 1)  # targets were never seen nearer
    else:
        field = [band[1], min(limit, int(max([r[1] for r in reach] or [limit]) + size + 1))]
        near = int(min([r[0] for r in reach] or [field[1]]) - size / 2 - 1)
    colours = sorted({_pack(o.colour) for o in targets})
    shot_colours = sorted({_pack(o.colour) for o in shots})
    moving = [o.mean_speed for o in shots if o.mean_speed > 0]
    lo, hi = (player.x_range, player.y_range)[axis]
    names = base["action_names"]
    effects = {e.index: e for e in report.actions}

    def with_fire(move: int | None) -> int | None:
        """The action that moves like `move` and fires (RIGHT -> RIGHTFIRE), if the probe saw it move so."""
        if move is None:
            return None
        for e in report.actions:
            if e.index != move and e.direction == effects[move].direction and (e.spawns_object or e.name == names[move] + "FIRE"):
                return e.index
        return None

    acts = base["actions"]
    facts = dict(
        shoot_sign=sign, player_band=band, field=field, near_line=near, target_colours=colours, shot_colours=shot_colours,
        targets_seen=[o.name for o in targets], shots_seen=[o.name for o in shots],
        background=_pack(report.background_colour or [0, 0, 0]),
        shot_speed=round(float(max(moving)) if moving else 4.0, 2),
        shot_size=[int(max([o.width for o in shots] or [2])) + 1, int(max([o.height for o in shots] or [12])) + 4],
        move_limits=[float(lo - along_size / 2), float(hi + along_size / 2)],
        fire_moves=dict(increase=with_fire(acts["increase"]), decrease=with_fire(acts["decrease"])),
    )  # fmt: skip
    if obs_mode == "ram":
        label = "player_x" if axis == 0 else "player_y"
        fits = [f for f in report.ram_fits.get(label, []) if f.lag == 0 and abs(f.r) >= 0.9]
        f = fits[0] if fits else None
        facts["ram"] = dict(player=None if f is None else dict(address=f.address, a=round(f.a, 4), b=round(f.b, 3), r=round(f.r, 4)))
    return facts


# ============================================================================================
# detectors.py
# ============================================================================================


def write_detectors(facts: dict, obs_mode: str) -> str:
    """The source of detectors.py: the player from RAM (ram mode, where the probe found its
    byte) or its colour in its band; targets and projectiles from colour masks, segmented by
    row and column projections (numpy only, no per-pixel Python)."""
    axis = facts["move_axis"]
    player = facts["player"]
    along, across = ("x", "y") if axis == 0 else ("y", "x")
    ram_player = (facts.get("ram") or {}).get("player") if obs_mode == "ram" else None
    hexes = lambda keys: "[" + ", ".join(f"0x{k:06x}" for k in keys) + "]"  # noqa: E731
    head = f'''"""Detectors for the shooter policy ({obs_mode} mode), written from the probe report.

Coordinates: "along" is the player's axis of movement ({along}), "across" the other one ({across}),
in pixels of the 210x160 frame.

read_player(obs): the player's along coordinate, or None when it is not visible.
read_targets(obs): [[along centre, across front, half width], ...] for every group of target
    pixels; the front is the edge nearest the player's line (what a shot meets first).
read_shots(obs): [[along, across], ...] centres of small projectiles in the field (both the
    player's own shots and incoming ones; the policy tells them apart by their motion).
read_cover(obs): [[first, last], ...] along ranges where scenery (any colour but the
    background's, the targets', the shots' and the player's) lies between the player's band
    and the nearest targets: shields that stop the player's shots and the incoming ones.
"""

import numpy as np

AXIS = {axis}  # 0: the player moves along x (rows are "across"), 1: along y
PLAYER_LINE = {facts["player_line"]!r}  # the player's across coordinate
SIGN = {facts["shoot_sign"]}  # the player's shots fly towards {"smaller" if facts["shoot_sign"] < 0 else "larger"} across coordinates
FIELD = {tuple(facts["field"])!r}  # across range searched for targets and shots (the player's band excluded)
NEAR = {facts["near_line"]!r}  # across coordinate: targets were never seen nearer the player's line than this
PLAYER_BAND = {tuple(facts["player_band"])!r}  # across range the player occupies
TARGET_COLOURS = np.array({hexes(facts["target_colours"])}, dtype=np.int32)  # 0xRRGGBB of {", ".join(facts["targets_seen"])}
SHOT_COLOURS = np.array({hexes(facts["shot_colours"])}, dtype=np.int32)  # 0xRRGGBB of {", ".join(facts["shots_seen"]) or "no projectile type seen"}
SHOT_SIZE = {tuple(facts["shot_size"])!r}  # (along, across) px: a shot-coloured group bigger than this is not a shot
PLAYER_COLOUR = 0x{_pack(player["colour"]):06x}
BACKGROUND = 0x{facts["background"]:06x}
GAP_ACROSS, GAP_ALONG = 3, 2  # px of empty space that still joins pixels into one group (interlaced sprites)

_cache = [None, None]  # (obs, masks): the read_* functions share one segmentation per frame


def _masks(obs):
    """(target, shot, other) masks of the field as (across, along) arrays. "other" is any
    colour the probe did not see moving (not background, player, target or shot colours):
    beyond NEAR it counts as a target (enemies change colour between waves), nearer the
    player's line small groups of it are projectiles and big ones are cover."""
    if _cache[0] is not obs:
        rgb = obs.rgb
        region = rgb[FIELD[0]:FIELD[1]] if AXIS == 0 else rgb[:, FIELD[0]:FIELD[1]].transpose(1, 0, 2)
        region = region.astype(np.int32)
        keys = (region[..., 0] << 16) | (region[..., 1] << 8) | region[..., 2]
        target, shot = _mask(keys, TARGET_COLOURS), _mask(keys, SHOT_COLOURS)
        other = (keys != BACKGROUND) & (keys != PLAYER_COLOUR) & ~target & ~shot
        _cache[0], _cache[1] = obs, (target, shot, other)
    return _cache[1]


def _mask(keys, colours):
    mask = np.zeros(keys.shape, dtype=bool)
    for colour in colours:
        mask |= keys == colour
    return mask


def _runs(index, gap):
    """(first, last) of runs of sorted indices, gaps up to `gap` joined."""
    breaks = np.flatnonzero(np.diff(index) > gap + 1)
    return zip(index[np.r_[0, breaks + 1]].tolist(), index[np.r_[breaks, index.size - 1]].tolist())


def _groups(mask):
    """Boxes (along0, along1, across0, across1) of pixel groups: bands of rows, then runs of
    columns inside each band."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    boxes = []
    for r0, r1 in _runs(rows, GAP_ACROSS):
        cols = np.flatnonzero(mask[r0:r1 + 1].any(axis=0))
        for c0, c1 in _runs(cols, GAP_ALONG):
            boxes.append((c0, c1, r0 + FIELD[0], r1 + FIELD[0]))
    return boxes


def _split(other):
    """`other` beyond NEAR (far from the player's line) and nearer it."""
    cut = min(max(NEAR - FIELD[0], 0), other.shape[0])
    far, near = other.copy(), other.copy()
    if SIGN < 0:
        far[cut:], near[:cut] = False, False
    else:
        far[:cut], near[cut:] = False, False
    return far, near


def _small(box):
    a0, a1, c0, c1 = box
    return a1 - a0 + 1 <= SHOT_SIZE[0] and c1 - c0 + 1 <= SHOT_SIZE[1]


def read_targets(obs):
    target, _, other = _masks(obs)
    far, _ = _split(other)
    out = []
    for a0, a1, c0, c1 in _groups(target | far):
        front = c1 if SIGN < 0 else c0
        out.append([(a0 + a1) / 2, float(front), (a1 - a0 + 1) / 2])
    return out


def read_cover(obs):
    target, _, other = _masks(obs)
    _, near = _split(other)
    rows = np.flatnonzero(target.any(axis=1))
    if rows.size:  # only what lies between the nearest targets and the player
        if SIGN < 0:
            near[:rows[-1] + 1] = False
        else:
            near[rows[0]:] = False
    cols = sorted({{c for box in _groups(near) if not _small(box) for c in range(box[0], box[1] + 1)}})
    return [[a, b] for a, b in _runs(np.array(cols), 1)] if cols else []


def read_shots(obs):
    _, shot, other = _masks(obs)
    _, near = _split(other)
    boxes = [b for b in _groups(shot) if _small(b)] + [b for b in _groups(near) if _small(b)]
    return [[(a0 + a1) / 2, (c0 + c1) / 2] for a0, a1, c0, c1 in boxes]
'''
    if ram_player:
        p = ram_player
        return head + f'''
PLAYER = ({p["address"]}, {p["a"]}, {p["b"]})  # address, a, b: along pixel = a * ram + b (r = {p["r"]})


def read_player(obs):
    address, a, b = PLAYER
    return a * float(obs.ram[address]) + b
'''
    return head + '''
GAP = 4  # px: a sprite drawn with holes is still one player


def read_player(obs):
    """The centre of the longest run of the player's colour in its band (a shot of the same
    colour beside it is shorter)."""
    rgb = obs.rgb
    band = rgb[PLAYER_BAND[0]:PLAYER_BAND[1]] if AXIS == 0 else rgb[:, PLAYER_BAND[0]:PLAYER_BAND[1]].transpose(1, 0, 2)
    colour = ((PLAYER_COLOUR >> 16) & 255, (PLAYER_COLOUR >> 8) & 255, PLAYER_COLOUR & 255)
    hits = np.flatnonzero(((band[..., 0] == colour[0]) & (band[..., 1] == colour[1]) & (band[..., 2] == colour[2])).any(axis=0))
    if hits.size == 0:
        return None
    first, last = max(_runs(hits, GAP), key=lambda run: run[1] - run[0])
    return (first + last) / 2
'''


# ============================================================================================
# policy.py
# ============================================================================================


def _fmt(value) -> str:
    return repr(round(value, 3)) if isinstance(value, float) else repr(value)


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the shooter controller."""
    features = set(features)
    axis_name = "x (left/right)" if facts["move_axis"] == 0 else "y (up/down)"
    flies = ("up" if facts["shoot_sign"] < 0 else "down") if facts["move_axis"] == 0 else ("left" if facts["shoot_sign"] < 0 else "right")
    words = [
        f"Shooter controller (align and fire). The player moves along {axis_name}; its shots fly",
        f"{flies} across the field. Each step it picks a target from detectors.py: the one with the",
        "lowest cost = the walk to it + `prefer_near` x its distance from the player's line, the current",
        "target `stickiness` px cheaper. It moves under the target and fires when within",
        "`fire_window` px, pressing FIRE at most every `fire_every` steps.",
    ]
    if "lead_target" in features:
        words += ["Moving targets are led: the aim is their velocity (smoothed over `velocity_window` steps)",
                  "times the shot's travel time, scaled by `lead`."]  # fmt: skip
    if "dodge" in features:
        words += ["Projectiles coming towards the player's line within `danger_distance` px are threats: a threat",
                  "within `danger_width` px of the player sends it to the nearest safe spot, and it never walks",
                  "under one."]  # fmt: skip
    if "avoid_cover" in features:
        words += ["Targets behind scenery (a shield, within `cover_margin` px) are skipped, and it does not fire",
                  "into scenery."]  # fmt: skip
    if "hide_under_cover" in features:
        words += ["Under threat, a spot under scenery (which stops the projectile) is as good as a clear one."]
    if "stall_breaker" in features:
        words += ["After `stall_steps` steps without reward it switches to the next-best target in turn."]
    words += ["With no target in sight it goes back to the middle of its range.", "", f"Last change: {direction}"]
    doc = "\n".join(words)
    param_lines = "\n".join(
        f"    {name!r}: {_fmt(params.get(name, PARAMS[name][0]))},  # {PARAMS[name][3]}" for name in PARAMS
        if param_used(name, features)
    )
    acts, fire_moves = facts["actions"], facts.get("fire_moves") or {}
    lo, hi = facts["move_limits"]

    lead = "target[0]"
    if "lead_target" in features:
        lead = """target[0] + P["lead"] * velocity * abs(target[1] - PLAYER_LINE) / SHOT_SPEED"""
    rank = "0"
    if "stall_breaker" in features:
        rank = """(obs.step - self.last_reward_step) // P["stall_steps"]"""
    dodge_call, dodge_def = "", ""
    shelter = ""
    if "hide_under_cover" in features:
        shelter = """
            spots += [(a + b) / 2 for a, b in cover]  # scenery stops the projectile"""
    if "dodge" in features:
        dodge_call = """
        threats = self.threats(read_shots(obs))
        danger = [t for t in threats if abs(t - player) <= P["danger_width"]]
        if danger:
            # Under an incoming shot: go to the nearest spot clear of every threat.
            spots = [t + s * (P["danger_width"] + 2) for t in threats for s in (-1, 1)]
            spots = [s for s in spots if LOW <= s <= HIGH and all(abs(s - t) > P["danger_width"] for t in threats)]{shelter}
            if spots:
                aim = min(spots, key=lambda s: abs(s - player))
        elif threats:
            # Do not walk under a threat on the way to the aim: wait beside it instead.
            step = 2 if aim > player else -2
            if any(abs(player + step - t) <= P["danger_width"] for t in threats):
                aim = player""".replace("{shelter}", shelter)
        dodge_def = '''

    def threats(self, shots):
        """Along coordinates of projectiles coming towards the player's line within
        `danger_distance` px. A shot is incoming if, in one of the last few frames (projectiles
        often flicker), a shot in the same lane was further from the line; a shot seen for the
        first time counts only if it appeared far from the player (the player's own shots
        appear next to it). A threat seen in the last `threat_memory` steps still counts: shots
        flicker, and one inside the player's band is not read at all."""
        now = [(a, (c - PLAYER_LINE) * SIGN) for a, c in shots]  # distance from the line, far side > 0
        incoming = []
        for a, d in now:
            if d <= 0 or d > P["danger_distance"]:
                continue
            before = [d0 for past in self.shot_history for a0, d0 in past if abs(a0 - a) <= 3 and abs(d0 - d) <= 24]
            if (before and max(before) > d) or (not before and d > NEW_SHOT_GAP):
                incoming.append(a)
        self.shot_history = (self.shot_history + [now])[-4:]
        self.recent_threats = (self.recent_threats + [incoming])[-P["threat_memory"]:]
        return sorted({a for seen in self.recent_threats for a in seen})'''


    cover_read, blocked, fire_ok = "", "", ""
    if "avoid_cover" in features or "hide_under_cover" in features:
        cover_read = """
        cover = read_cover(obs)"""
    if "avoid_cover" in features:
        blocked = """
        # Scenery between the player and a target stops the shot: such targets cost extra.
        for a, b in self.cover:
            cost = cost + 1000.0 * ((targets[:, 0] >= a - P["cover_margin"]) & (targets[:, 0] <= b + P["cover_margin"]))"""
        fire_ok = """ and not any(a - P["cover_margin"] <= player <= b + P["cover_margin"] for a, b in cover)"""
    fire_inc = fire_moves.get("increase")
    fire_dec = fire_moves.get("decrease")
    move_fire = ""
    if fire_inc is not None and fire_dec is not None:
        move_fire = f"INCREASE_FIRE, DECREASE_FIRE = {fire_inc}, {fire_dec}  # move and fire in one action\n"
        fire_pick = "{INCREASE: INCREASE_FIRE, DECREASE: DECREASE_FIRE, NOOP: FIRE}[move]"
    else:
        fire_pick = "FIRE if move == NOOP else move"
    names = ["read_cover"] if cover_read else []
    names += ["read_player"] + (["read_shots"] if "dodge" in features else []) + ["read_targets"]
    imports = ", ".join(names)
    keep_cover = """
        self.cover = cover""" if "avoid_cover" in features else ""
    across_size = facts["player"]["height"] if facts["move_axis"] == 0 else facts["player"]["width"]

    code = f'''"""{doc}
"""

import numpy as np

from detectors import PLAYER_LINE, {imports}

P = {{
{param_lines}
}}

INCREASE, DECREASE, NOOP, FIRE = {acts["increase"]}, {acts["decrease"]}, {acts["noop"]}, {acts["fire"]}
{move_fire}SIGN = {facts["shoot_sign"]}  # the player's shots fly towards {"smaller" if facts["shoot_sign"] < 0 else "larger"} across coordinates
SHOT_SPEED = {facts["shot_speed"]!r}  # px per step of a shot across the field (measured by the probe)
LOW, HIGH = {float(lo)!r}, {float(hi)!r}  # along range the player was seen to reach
CENTRE = (LOW + HIGH) / 2
NEW_SHOT_GAP = {float(2 * across_size)!r}  # px from the line: a new shot nearer than this is the player's own


class Policy:
    def reset(self, seed):
        self.targets = np.zeros((0, 3))  # last step's targets
        self.velocity = np.zeros(0)  # their smoothed along velocities
        self.current = None  # (along, across) of the chosen target last step
        self.shot_history = []  # shots of the last few steps: (along, distance from the line)
        self.recent_threats = []  # incoming shots of the last few steps
        self.last_fire = -1000
        self.last_reward_step = 0
        self.cover = []  # along ranges of scenery between the player and the targets

    def act(self, obs):
        if obs.last_reward:
            self.last_reward_step = obs.step
        targets = np.array(read_targets(obs), dtype=float).reshape(-1, 3)
        self.track(targets)
        player = read_player(obs)
        if player is None:
            return NOOP  # not on screen (hit, between lives)
        player += P["aim_offset"]{cover_read}{keep_cover}
        aim, aligned = CENTRE, False
        if len(targets):
            k = self.choose(targets, player, {rank})
            target, velocity = targets[k], self.velocity[k]
            aim = float(np.clip({lead}, LOW, HIGH))
            self.current = (target[0], target[1])
            aligned = abs(aim - player) <= P["fire_window"]{fire_ok}
        else:
            self.current = None{dodge_call}
        error = aim - player
        move = INCREASE if error > P["deadband"] else DECREASE if error < -P["deadband"] else NOOP
        if aligned and obs.step - self.last_fire >= P["fire_every"]:
            self.last_fire = obs.step
            return {fire_pick}
        return move

    def track(self, targets):
        """Match each target to the nearest one of the last step; smooth its along velocity."""
        velocity = np.zeros(len(targets))
        if len(targets) and len(self.targets):
            gap = np.abs(targets[:, None, 0] - self.targets[None, :, 0]) + np.abs(targets[:, None, 1] - self.targets[None, :, 1])
            j = gap.argmin(axis=1)
            near = gap[np.arange(len(targets)), j] <= 12
            step = targets[:, 0] - self.targets[j, 0]
            {"alpha = 1.0 / P['velocity_window']" if "lead_target" in features else "alpha = 1.0"}
            velocity = np.where(near, (1 - alpha) * self.velocity[j] + alpha * step, 0.0)
        self.targets, self.velocity = targets, velocity

    def choose(self, targets, player, rank):
        """Index of the target to shoot: the cheapest walk plus distance from the line; the
        `rank`-th cheapest when the stall breaker asks for another one."""
        cost = np.abs(targets[:, 0] - player) + P["prefer_near"] * np.abs(targets[:, 1] - PLAYER_LINE){blocked}
        if self.current is not None:
            same = np.abs(targets[:, 0] - self.current[0]) + np.abs(targets[:, 1] - self.current[1]) <= 8
            cost = cost - P["stickiness"] * same
        order = np.argsort(cost, kind="stable")
        return int(order[rank % len(order)]){dodge_def}
'''
    return textwrap.dedent(code)
