"""The Atari facts: what the detector-writer derives from a probe report, the typed contract
between the probe, the detectors and the controllers (it is the graph state's `detectors`
entry, and memory's `detector_facts`).

`base_facts` holds what every controller reads (the player, its axis and actions, the
moving objects); the chosen controller adds its own keys (`facts_from_probe` of its
module). `facts_from_probe` returns both, checked against AtariFacts: a key no one
declared is an error, not a silent extra.
"""

from __future__ import annotations

import numpy as np
from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic validates typing's TypedDict only on Python >= 3.12

from agents.controllers import get_controller, suitable_controllers
from probe.atari import ObjectInfo, ProbeReport


class ObjectFacts(TypedDict, total=False):
    name: str
    colour: list[int]
    width: float
    height: float
    x_range: list[float]
    y_range: list[float]
    per_frame: float  # instances seen per frame
    speed: float  # mean px per step
    contact: str  # what touching it did in the probe's play: reward | harm | nothing | unknown


class ActionIds(TypedDict):
    increase: int | None  # moves the player towards larger coordinates on its axis
    decrease: int | None
    noop: int
    fire: int | None


class RamReader(TypedDict, total=False):
    """pixel = a * ram[address] + b (r: the probe's correlation)."""

    address: int | None
    a: float
    b: float
    r: float | None
    name: str  # for an object's reader
    axis: str  # "x" | "y"
    constant: bool  # no RAM byte: b is the coordinate the probe always saw


@with_config(ConfigDict(extra="forbid"))  # a key no one declared is an error
class AtariFacts(TypedDict, total=False):
    # Every controller (base_facts).
    controller: str  # the structure chosen from these facts (agents/controllers/)
    unsuited: list[str]  # structures that suited the facts but whose own facts the probe lacked, and why
    move_axis: int  # 0: the player moves along x, 1: along y
    moves: list[bool]  # [moves along x, moves along y]
    movement: dict[str, int | None]  # probe.atari.MovementLabels: left/right/up/down/fire/noop -> action
    action_names: list[str]
    distinct_actions: list[int]  # one action of each group the probe saw act identically
    actions: ActionIds
    player_line: float  # the player's coordinate on the other axis
    player: ObjectFacts | None  # None: the probe found no player the actions move (blind facts)
    ball: ObjectFacts | None  # the moving object that reaches the player's line
    bounds: list[list[float]]  # [[x0, x1], [y0, y1]] where the ball was seen
    fire_acts: bool  # FIRE does something (spawns an object or differs from NOOP)
    objects: list[ObjectFacts]
    formation: list[str]  # object types seen several at a time away from the player's line
    # RAM bytes of the moving things besides the player: while none changes and no reward
    # comes, the game makes no progress (evaluation.rollout.StallRule's watch)
    progress_watch: list[int]
    # intercept
    frame_skip: int  # emulator frames per env step (the motion model looks ahead in frames)
    ram: dict  # RAM readers: {"player", "ball_x", "ball_y"} (intercept, shooter) or the route's map
    # shooter
    shoot_sign: int  # -1: shots fly towards smaller across coordinates, 1: larger
    player_band: list[int]
    field: list[int]
    near_line: int
    target_colours: list[int]
    shot_colours: list[int]
    targets_seen: list[str]
    shots_seen: list[str]
    background: int
    shot_speed: float
    shot_size: list[int]
    move_limits: list[float]
    fire_moves: dict[str, int | None]
    # reactive
    player_colour: int
    player_size: list[float]
    player_box: list[int]
    threat_colours: list[int]
    reward_colours: list[int]
    typed: list[dict]  # each object type: name, contact, speed, threat, reward
    steps: dict[str, list[int]]  # move action -> [dx, dy]
    # Structures that read the frame themselves (SELF_CONTAINED), suited and with their facts,
    # besides the chosen one: the policy-writer tries each as a challenger. name -> own facts.
    challengers: dict[str, dict]


CHECK = TypeAdapter(AtariFacts)


MIN_R = 0.9  # a RAM byte must track the image position at least this well


def ram_fit(report: ProbeReport, label: str):
    fits = [f for f in report.ram_fits.get(label, []) if f.lag == 0 and abs(f.r) >= MIN_R]
    return fits[0] if fits else None


def choose_ball(report: ProbeReport, axis: int, player_line: float) -> ObjectInfo | None:
    """The moving object that reaches the player's line: the one a paddle must intercept."""
    other = 1 - axis
    best, best_gap = None, None
    for obj in report.objects:
        lo, hi = (obj.x_range, obj.y_range)[other]
        gap = 0.0 if lo <= player_line <= hi else min(abs(player_line - lo), abs(player_line - hi))
        if obj.width * obj.height > 64:  # too big to be a ball
            continue
        if best is None or gap < best_gap or (gap == best_gap and obj.mean_speed > best.mean_speed):
            best, best_gap = obj, gap
    return best


def base_facts(report: ProbeReport) -> AtariFacts:
    """What every controller needs: axis, actions, the player line, the ball, bounds, the
    moving objects. A probe that found no player the actions move gives the blind facts (the
    actions and the moving objects only): the pattern structure still plays on them."""
    names = report.action_names
    m = report.movement
    fire = m.fire if m.fire is not None else (names.index("FIRE") if "FIRE" in names else None)
    noop = names.index("NOOP") if "NOOP" in names else 0
    # Actions that differ from every lower one (the probe saw identical frames for the others).
    distinct = [e.index for e in report.actions if e.equivalent_to is None or e.equivalent_to > e.index]
    facts = dict(movement=report.movement.model_dump(), action_names=list(names), distinct_actions=distinct or list(range(len(names))),
                 moves=[bool(report.player_moves_x), bool(report.player_moves_y)], progress_watch=progress_watch(report),
                 objects=[dict(json_obj(o), per_frame=round(o.instances_per_frame, 2), speed=round(o.mean_speed, 2),
                               contact=o.contact) for o in report.objects])  # fmt: skip
    if report.player is None or not any(facts["moves"]):
        return dict(facts, move_axis=0, moves=[False, False], player=None, player_line=0.0, ball=None,
                    bounds=[[0, 159], [0, 209]], formation=[], fire_acts=False,
                    actions=dict(increase=None, decrease=None, noop=noop, fire=fire))  # fmt: skip
    axis = 0 if report.player_moves_x else 1
    increase, decrease = (m.right, m.left) if axis == 0 else (m.down, m.up)
    player = report.player
    player_line = float(np.mean(player.y_range if axis == 0 else player.x_range))
    ball = choose_ball(report, axis, player_line)
    facts.update(
        move_axis=axis, actions=dict(increase=increase, decrease=decrease, noop=noop, fire=fire),
        player_line=player_line, player=json_obj(player), ball=json_obj(ball) if ball else None,
        bounds=[list(ball.x_range), list(ball.y_range)] if ball else [[0, 159], [0, 209]],
    )  # fmt: skip
    # What tells shooters from paddle games: a fire action that does something, and moving
    # object types seen several at a time that stay away from the player's line (a formation).
    fire_effect = next((e for e in report.actions if e.index == fire), None)
    facts["fire_acts"] = bool(fire_effect is not None and (fire_effect.spawns_object or not (
        fire_effect.is_noop or fire_effect.equivalent_to == noop)))
    facts["formation"] = [o["name"] for o in facts["objects"] if o["per_frame"] >= 1.5
                          and line_gap(o, axis, player_line) > (player.height if axis == 0 else player.width)]  # fmt: skip
    return facts


def progress_watch(report: ProbeReport) -> list[int]:
    """RAM bytes that track a moving object other than the player. The player is left out:
    a policy that jiggles it while the game waits (no ball in play) makes no progress."""
    return sorted({fits[0].address for label, fits in report.ram_fits.items()
                   if fits and not label.startswith("player") and ram_fit(report, label)})  # fmt: skip


def facts_from_probe(report: ProbeReport, obs_mode: str, protocol: str | None = None) -> AtariFacts:
    """The base facts plus the chosen controller's own. `protocol` is the run's (default: the
    probe's; a probe recalled from memory may come from a run under another protocol).

    The controller is the first (in the family's order) that suits the facts and whose own
    facts the probe can supply: one that needs a RAM byte the probe did not find gives way to
    the next, down to the pattern structure, which suits every game. `unsuited` says why each
    structure before the chosen one was passed over. Every later structure that suits, reads
    the frame itself (SELF_CONTAINED) and finds its facts is a challenger: its own facts go
    under `challengers`, and the policy-writer gives it one look after the chosen one."""
    facts = base_facts(report)
    unsuited, chosen, challengers = [], None, {}
    for name in suitable_controllers(facts):
        controller = get_controller(name)
        if chosen is not None and not getattr(controller, "SELF_CONTAINED", False):
            continue  # a challenger must not need the detectors the chosen structure pinned
        try:
            own = controller.facts_from_probe(report, obs_mode, facts, protocol)
        except ValueError as why:  # the probe lacks what this structure reads
            if chosen is None:
                unsuited.append(f"{name}: {why}")
            continue
        if chosen is None:
            chosen = {**own, "controller": name}
        elif name != "pattern":  # the baseline already plays the pattern structure
            challengers[name] = own
    if chosen is None:
        raise AssertionError("the pattern structure suits every game")  # unreachable: pattern.suits is True
    return CHECK.validate_python({**facts, **chosen, "unsuited": unsuited, "challengers": challengers})


def kind_of_game(facts: dict) -> str:
    """What kind of game the facts describe, in the probe's terms (never its name): how the
    player moves, a ball, a formation, a fire that acts, threats and rewards the contact
    typing found. Memory counts which structure won on each kind (runtime/remember.py)."""
    moves = facts.get("moves") or [False, False]
    axes = "xy" if all(moves) else "x" if moves[0] else "y" if moves[1] else "none"
    objects = facts.get("objects") or []
    threats = any(o.get("contact") == "harm" or (o.get("speed", 0) >= 0.1 and o.get("contact") != "reward") for o in objects)
    parts = [f"moves {axes}", "ball" if facts.get("ball") else "no ball", "formation" if facts.get("formation") else "no formation",
             "fire acts" if facts.get("fire_acts") else "no fire", "threats" if threats else "no threats",
             "rewards" if any(o.get("contact") == "reward" for o in objects) else "no rewards"]  # fmt: skip
    return ", ".join(parts)


def steers_both_ways(facts: dict) -> bool:
    """The probe found the action that moves the player each way along its axis (a structure
    that steers needs both; a game whose probe saw only one gets another structure)."""
    actions = facts.get("actions") or {}
    return actions.get("increase") is not None and actions.get("decrease") is not None


def line_gap(obj: dict, axis: int, player_line: float) -> float:
    """How close (px) an object type's centre came to the player's line (0: it reached it)."""
    lo, hi = obj["y_range"] if axis == 0 else obj["x_range"]
    return 0.0 if lo <= player_line <= hi else float(min(abs(player_line - lo), abs(player_line - hi)))


def json_obj(obj: ObjectInfo) -> dict:
    return dict(name=obj.name, colour=obj.colour, width=obj.width, height=obj.height,
                x_range=list(obj.x_range), y_range=list(obj.y_range))  # fmt: skip


def fit_dict(fit) -> dict | None:
    return None if fit is None else dict(address=fit.address, a=round(fit.a, 4), b=round(fit.b, 3), r=round(fit.r, 4))


