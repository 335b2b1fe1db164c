"""The reactive controller: keep doing what earns points, and react to the things around the
player: step toward rewards, wait (or step back) when a threat is in the way.

The probe types each kind of object by what touching it did during its random play
(probe/atari/contacts.py: a reward followed, a life or points were lost, nothing) and by how
it moves. Threats are the things whose touch cost something and the moving things not
known to reward; rewards are the things whose touch scored. Each step the policy finds the
player by its colour, looks for threat pixels in a box ahead of where it is going
(`look_ahead` pixels along the move, `side_margin` beside it) and, with `collect`, heads for
the nearest reward pixel. The move it makes when nothing calls is `goal_action`: the pattern
baseline's winner when that was a move (hold UP in a crossing game), so the structure starts
from what already earns.

It reads the frame itself (both obs modes have it), so it needs no detectors.py and can be
tried as a challenger whatever structure the detector-writer pinned (SELF_CONTAINED). That
suits crossing, collecting, maze, fighting and dodging games: a player that moves, and
things around it that matter.
"""

from __future__ import annotations

import numpy as np

from agents.controllers.atari.pins import GENERIC_DETECTOR_TEST as DETECTOR_TEST
from agents.controllers.atari.pins import pin_detectors

__all__ = ["DETECTOR_TEST", "pin_detectors"]  # the detector hooks (generic pins)

NAME = "reactive"
SELF_CONTAINED = True  # policy.py reads the frame itself: no detectors.py of its own

FEATURES = {
    "dodge": "wait when a threat is in the box ahead of the move",
    "retreat": "step back instead of waiting when a threat is that close",
    "collect": "head for the nearest reward instead of the goal move",
}

PARAMS = {
    # name: (default, low, high, what it means)
    "goal_action": (0, 0, 17, "the action played when nothing calls (index into the game's actions)"),
    "wait_action": (0, 0, 17, "the action played while a threat blocks the way (index into the game's actions)"),
    "look_ahead": (16, 2, 80, "pixels ahead of the player, along its move, where a threat makes it wait"),
    "side_margin": (8, 0, 60, "pixels beside the player's path that count as in the way"),
}

INT_PARAMS = {"goal_action", "wait_action", "look_ahead", "side_margin"}
ACTION_PARAMS = {"goal_action", "wait_action"}  # action indices: tuned as choices among the game's distinct actions

MOVING = 0.1  # px per env step: an object type that moves at least this fast (probe mean) is a mover
TEXTURE = 12  # instances per frame: a type seen this many times at once is a texture (markings), not a thing

# failure kind -> candidate directions (agents/controllers/__init__.py has the change format).
DIRECTIONS = {
    "lost": [
        ("dodge threats in the way", "the player walks into things that cost it",
         {"features": {"+dodge"}}),
        ("look further ahead", "threats reach the player before it reacts",
         {"params": {"look_ahead": ("scale", 1.5)}}),
        ("widen the side margin", "threats come from the side of the path",
         {"params": {"side_margin": 8}}),
        ("step back from threats", "waiting in place still gets the player hit",
         {"features": {"+retreat"}}),
    ],
    "stall": [
        ("collect rewards", "the goal move alone stops earning: head for the things that score",
         {"features": {"+collect"}}),
        ("narrow the side margin", "the player waits for threats that would miss it",
         {"params": {"side_margin": -4}}),
        ("look less far ahead", "the player waits too early",
         {"params": {"look_ahead": ("scale", 0.6)}}),
    ],
    "score": [
        ("collect rewards", "the goal move does not earn: head for the things that score",
         {"features": {"+collect"}}),
        ("dodge threats in the way", "the player loses what it earns to the things it meets",
         {"features": {"+dodge"}}),
    ],
}  # fmt: skip


def suits(facts: dict) -> bool:
    """A player the actions move, and things on screen besides it."""
    return facts.get("player") is not None and any(facts.get("moves", [])) and bool(facts.get("objects"))


def initial_features(facts: dict) -> set[str]:
    """Dodging from the start when there are threats; collecting waits for the critic (a
    reward type from a few random touches can be a coincidence, and chasing it costs the goal)."""
    return {"dodge"} if facts.get("threat_colours") else set()


def initial_params(facts: dict, baseline: dict | None) -> dict:
    """The goal is the baseline's winning action (what already earns), the wait NOOP."""
    won = ((baseline or {}).get("params") or {}).get("first_action")
    noop = facts["actions"]["noop"]
    return {"goal_action": won if won is not None else noop, "wait_action": noop}


def param_used(name: str, features: set[str]) -> bool:
    if name in ("look_ahead", "side_margin"):
        return bool({"dodge", "retreat"} & features)
    if name == "wait_action":
        return "dodge" in features
    return True


def _pack(colour) -> int:
    return (int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2])


def facts_from_probe(report, obs_mode: str, base: dict, protocol: str | None = None) -> dict:
    """The player's colour and where it goes, the threat and reward colours the probe's
    contact typing found, the playfield and the moves."""
    player = report.player
    if player is None or not any(base["moves"]):
        raise ValueError("the probe found no player the actions move")
    mine = _pack(player.colour)
    background = _pack(report.background_colour or [0, 0, 0])
    others = [o for o in report.objects if _pack(o.colour) not in (mine, background) and o.instances_per_frame < TEXTURE]
    threats = [o for o in others if o.contact == "harm" or (o.mean_speed >= MOVING and o.contact != "reward")]
    rewards = [o for o in others if o.contact == "reward" and o not in threats]
    pad_x, pad_y = player.width + 4, player.height + 4
    box = [max(0, int(player.x_range[0] - pad_x)), max(0, int(player.y_range[0] - pad_y)),
           min(160, int(player.x_range[1] + pad_x) + 1), min(210, int(player.y_range[1] + pad_y) + 1)]  # fmt: skip
    field = report.playfield
    m = base["movement"]
    return dict(
        player_colour=mine, player_size=[float(player.width), float(player.height)], player_box=box,
        field=[field.left, field.top, field.right + 1, field.bottom + 1] if field else [0, 0, 160, 210],
        threat_colours=sorted({_pack(o.colour) for o in threats}), reward_colours=sorted({_pack(o.colour) for o in rewards}),
        typed=[dict(name=o.name, contact=o.contact, speed=o.mean_speed, threat=o in threats, reward=o in rewards) for o in others],
        steps={str(m[k]): d for k, d in (("left", [-1, 0]), ("right", [1, 0]), ("up", [0, -1]), ("down", [0, 1])) if m.get(k) is not None},
    )  # fmt: skip


def fixture_actions(facts: dict) -> list[int]:
    """Actions the recording rollout plays at random: all of the game's."""
    return list(range(len(facts["action_names"])))


def write_detectors(facts: dict, obs_mode: str) -> str:
    return f'''"""Detectors for the policy ({obs_mode} mode): none. The reactive controller finds the player
and the things around it by colour in the frame itself (policy.py)."""
'''


def describe(params: dict, features: set[str], names: list[str]) -> str:
    goal = names[int(params["goal_action"]) % len(names)]
    parts = [f"play {goal}"]
    if "collect" in features:
        parts.append("head for rewards")
    if "dodge" in features:
        wait = names[int(params["wait_action"]) % len(names)]
        parts.append(f"{'step back' if 'retreat' in features else wait} when a threat is within "
                     f"{params['look_ahead']} px ahead ({params['side_margin']} px aside)")  # fmt: skip
    return ", ".join(parts)


def write_policy(params: dict, features: set[str], facts: dict, direction: str) -> str:
    """The source of policy.py for the reactive controller."""
    names = list(facts["action_names"])
    n = len(names)
    p = {name: params.get(name, spec[0]) for name, spec in PARAMS.items()}
    p["goal_action"], p["wait_action"] = int(p["goal_action"]) % n, int(p["wait_action"]) % n
    param_lines = "\n".join(f"    {name!r}: {p[name]!r},  # {PARAMS[name][3]}" for name in PARAMS if param_used(name, features))
    hexes = lambda keys: "[" + ", ".join(f"0x{k:06x}" for k in keys) + "]"  # noqa: E731
    typed = "\n".join(f"#   {t['name']}: touching it gave {t['contact']}, moves {t['speed']:.2f} px/step"
                      + (" -> threat" if t["threat"] else " -> reward" if t["reward"] else "") for t in facts["typed"]) or "#   (none)"  # fmt: skip
    steps = {int(a): tuple(d) for a, d in facts["steps"].items()}
    collect = dodge = ""
    if "collect" in features:
        collect = """
        rewards = find(rgb, REWARD_COLOURS, FIELD)
        if len(rewards):  # the nearest reward pixel, by the moves that close the larger gap first
            gap = rewards - np.array(player)
            dx, dy = gap[np.abs(gap).sum(axis=1).argmin()]
            move = toward(dx, dy, move)"""
    if "dodge" in features:
        back = "back(move)" if "retreat" in features else 'P["wait_action"]'
        dodge = f"""
        if self.threatened(rgb, player, STEPS.get(move)):
            move = {back}"""
    back_fn = '''

def back(move):
    """The move opposite `move` (wait when there is none)."""
    d = STEPS.get(move)
    opposite = [a for a, e in STEPS.items() if d is not None and e == (-d[0], -d[1])]
    return opposite[0] if opposite else P["wait_action"]''' if "retreat" in features else ""
    return f'''"""Reactive controller: {describe(p, features, names)}.

Each step: find the player by its colour; {"head for the nearest reward, else " if "collect" in features else ""}play the
goal action; {"wait when a threat is in the box ahead of the move." if "dodge" in features else "nothing else is watched."}
What the probe saw touching things do (probe.md), and the types that follow from it:
{typed}

Last change: {direction}
"""

import numpy as np

P = {{
{param_lines}
}}

ACTION_NAMES = {dict(enumerate(names))!r}  # for the reader: what each action index does
PLAYER_COLOUR = 0x{facts["player_colour"]:06x}
PLAYER_W, PLAYER_H = {facts["player_size"][0]!r}, {facts["player_size"][1]!r}
PLAYER_BOX = {tuple(facts["player_box"])!r}  # x0, y0, x1, y1: where the probe saw the player (with a margin)
FIELD = {tuple(facts["field"])!r}  # x0, y0, x1, y1: the playfield
THREAT_COLOURS = np.array({hexes(facts["threat_colours"])})  # moving things, or things whose touch cost
REWARD_COLOURS = np.array({hexes(facts["reward_colours"])})  # things whose touch scored
STEPS = {steps!r}  # move action -> (dx, dy) it moves the player by (sign only)


def colours(rgb):
    """HWC uint8 -> one int per pixel (0xRRGGBB)."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def find(rgb, palette, box):
    """(x, y) of every pixel inside `box` with a colour in `palette`."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if not len(palette) or x1 <= x0 or y1 <= y0:
        return np.zeros((0, 2))
    ys, xs = np.nonzero(np.isin(colours(rgb[y0:y1, x0:x1]), palette))
    return np.stack([xs + x0, ys + y0], axis=1).astype(float)


def toward(dx, dy, default):
    """The move that closes the larger of the two gaps (the default when no move does)."""
    for want in sorted(((abs(dx), (int(np.sign(dx)), 0)), (abs(dy), (0, int(np.sign(dy))))), reverse=True):
        for action, d in STEPS.items():
            if want[0] > 1 and d == want[1]:
                return action
    return default{back_fn}


class Policy:
    def reset(self, seed):
        self.last = None  # where the player was last seen

    def act(self, obs):
        rgb = obs.rgb
        found = find(rgb, np.array([PLAYER_COLOUR]), PLAYER_BOX)
        if len(found):
            self.last = tuple(found.mean(axis=0))
        player = self.last
        move = P["goal_action"]
        if player is None:
            return move{collect}{dodge}
        return move

    def threatened(self, rgb, player, step):
        """A threat pixel in the box ahead of `step` (all round the player when it stands)."""
        x, y = player
        half_w, half_h = PLAYER_W / 2, PLAYER_H / 2
        ahead, side = P["look_ahead"], P["side_margin"]
        if step is None or step == (0, 0):
            box = (x - half_w - side, y - half_h - side, x + half_w + side, y + half_h + side)
        elif step[0] == 0:  # moving along y
            y_edge = y + step[1] * half_h
            box = (x - half_w - side, min(y_edge, y_edge + step[1] * ahead), x + half_w + side, max(y_edge, y_edge + step[1] * ahead))
        else:  # moving along x
            x_edge = x + step[0] * half_w
            box = (min(x_edge, x_edge + step[0] * ahead), y - half_h - side, max(x_edge, x_edge + step[0] * ahead), y + half_h + side)
        box = (max(0, box[0]), max(0, box[1]), min(160, box[2] + 1), min(210, box[3] + 1))
        return len(find(rgb, THREAT_COLOURS, box)) > 0
'''
