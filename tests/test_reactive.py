"""The reactive structure and the contact typing it is written from: objects typed by what
touching them did in the probe's play (a synthetic recording), and on a real crossing game
(Freeway, probed for real) a policy that waits for the traffic beats the baseline's "hold UP"."""

from __future__ import annotations

import numpy as np
import pytest

from probe.atari.contacts import type_contacts
from probe.atari.report import ObjectInfo


class _Type:
    """The labeller's object type as type_contacts reads it: size and sightings."""

    def __init__(self, records):
        self.width, self.height, self.records = 4.0, 4.0, records


class _Recording:
    def __init__(self, steps: int):
        self.rewards = np.zeros((1, steps))
        self.lives = np.full((1, steps), 3)
        self.fresh = np.zeros((1, steps), dtype=bool)


def _info(name: str) -> ObjectInfo:
    return ObjectInfo(name=name, colour=[1, 2, 3], colour_hex="#010203", width=4, height=4, area=16, instances_per_frame=1,
                      visible_fraction=1, mean_speed=1, speed_p95=1, x_range=[0, 1], y_range=[0, 1])  # fmt: skip


def test_objects_are_typed_by_what_touching_them_did():
    steps = 2000
    rec = _Recording(steps)
    player = [(0, t, 50, 50, 58, 58) for t in range(0, steps, 10)]  # the player's box every 10 steps
    beside, far = (np.array([62.0]), np.array([54.0])), (np.array([150.0]), np.array([150.0]))
    coin, ghost, cloud, rare = [], [], [], []
    for k, t in enumerate(range(0, steps, 10)):  # every 12th frame a touch of each, in turn
        phase = k % 12
        coin.append((0, t, *(beside if phase == 0 else far)))
        ghost.append((0, t, *(beside if phase == 4 else far)))
        cloud.append((0, t, *(beside if phase == 8 else far)))
        rare.append((0, t, *(beside if k == 3 else far)))
        if phase == 0:
            rec.rewards[0, t + 2] = 10  # a touch of the coin scores
        if phase == 4:
            rec.lives[0, t + 5 :] -= 1  # a touch of the ghost costs a life (shown a few steps later)
    objects = [_info(n) for n in ("coin", "ghost", "cloud", "rare")]
    type_contacts(objects, [_Type(r) for r in (coin, ghost, cloud, rare)], player, rec, frame_skip=4)
    assert [(o.name, o.contact) for o in objects] == [("coin", "reward"), ("ghost", "harm"), ("cloud", "nothing"), ("rare", "unknown")]
    assert objects[0].contacts == 17 and objects[3].contacts == 1


@pytest.fixture(scope="module")
def freeway(tmp_path_factory):
    """Freeway's real probe (ram mode, hl) and its facts."""
    from agents.controllers.atari.facts import facts_from_probe
    from envs.atari.protocols import get_protocol
    from envs.registry import resolve_env
    from probe.atari.run import probe_game
    from record.meter import StepMeter

    out = tmp_path_factory.mktemp("probe")
    report = probe_game(resolve_env("freeway"), out, StepMeter(30_000), obs_mode="ram", protocol=get_protocol("hl"))
    return out, report, facts_from_probe(report, "ram", "hl")


def test_the_reactive_structure_is_a_challenger_with_the_traffic_as_threats(freeway):
    _, report, facts = freeway
    assert "reactive" in facts["challengers"] and facts["controller"] != "reactive"
    own = facts["challengers"]["reactive"]
    movers = {o.name for o in report.objects if o.mean_speed >= 0.1 and o.instances_per_frame < 12 and o.contact != "reward"}
    assert movers and {t["name"] for t in own["typed"] if t["threat"]} == movers  # the cars, not the lane markings
    assert "touching it (touches)" in (freeway[0] / "probe.md").read_text()  # what touching did, for the reader


def test_waiting_for_the_traffic_beats_holding_up(freeway, tmp_path):
    from agents.controllers import structure_facts
    from agents.controllers.atari import pattern, reactive
    from evaluation.evaluate import evaluate

    _, _, facts = freeway
    up = facts["movement"]["up"]
    hold = tmp_path / "hold" / "policy.py"
    hold.parent.mkdir()
    hold.write_text(pattern.write_policy({"first_action": up}, set(), facts, "test"))
    react = tmp_path / "react" / "policy.py"
    react.parent.mkdir()
    params = reactive.initial_params(facts, {"params": {"first_action": up}})
    assert params == {"goal_action": up, "wait_action": facts["actions"]["noop"]}  # the baseline's winner is the goal
    code = reactive.write_policy({**params, "look_ahead": 8, "side_margin": 4}, {"dodge"}, structure_facts(facts, "reactive"), "test")
    assert "Reactive controller: play UP, NOOP when a threat is within 8 px ahead (4 px aside)." in code
    react.write_text(code)
    held = evaluate(hold, "freeway", tmp_path / "runs", episodes=1)
    waited = evaluate(react, "freeway", tmp_path / "runs", episodes=1)
    assert held.status == waited.status == "ok" and held.scores[0] >= 20  # the whole game (2 min 16 s) runs out first
    assert waited.scores[0] > held.scores[0]


def test_the_llm_tools_write_any_available_structure_and_show_the_baseline(freeway, tmp_path):
    import json
    from types import SimpleNamespace

    from agents.llm.tools import ToolRefused, Toolbox

    _, _, facts = freeway
    up = facts["movement"]["up"]
    ctx = SimpleNamespace(hs=SimpleNamespace(path=tmp_path))
    tools = Toolbox(ctx, {"detectors": facts}, "policy_writer")
    listed = json.loads(tools.structures())
    assert list(listed) == [facts["controller"], "reactive", "screen_route", "pattern"]
    assert listed["reactive"]["params"]["look_ahead"]["default"] == 16 and "dodge" in listed["reactive"]["features"]
    with pytest.raises(ToolRefused, match="no pattern baseline"):
        tools.baseline()
    tools.state["baseline"] = {"params": {"first_action": up}, "score": 21.0}
    assert json.loads(tools.baseline())["score"] == 21.0
    doc = tools.write_structure("reactive", params={"look_ahead": 8})
    assert doc.startswith("Reactive controller: play UP, NOOP when a threat is within 8 px ahead")  # the baseline's goal
    assert "'look_ahead': 8," in (tmp_path / "policy.py").read_text()
    with pytest.raises(ToolRefused, match="no structure 'route' for this game; available: "):
        tools.write_structure("route")
    with pytest.raises(ToolRefused, match="reactive has no feature or parameter jump_height"):
        tools.write_structure("reactive", params={"jump_height": 3})
    with pytest.raises(ToolRefused, match="screen_route follows a route a search finds .* call `search_route` first"):
        tools.write_structure("screen_route")  # no route yet: the policy would have nothing to follow
    with pytest.raises(ToolRefused, match="'reactive' is not a searching structure of this game; available: screen_route"):
        tools.search_route("reactive", 10_000)


def test_memory_puts_the_structure_that_won_on_this_kind_of_game_first(freeway, tmp_path):
    from types import SimpleNamespace

    from agents.controllers.atari.facts import kind_of_game
    from agents.roles.policy_writer import structure_order
    from envs.registry import get_family
    from memory import Memory
    from runtime.remember import remember_structures

    _, _, facts = freeway
    kind = kind_of_game(facts)
    assert kind.startswith("moves y, ") and "threats" in kind and "Freeway" not in kind  # probe features, not a name
    with Memory.open(runs_dir=tmp_path) as memory:
        ctx = SimpleNamespace(memory=memory, config=SimpleNamespace(obs_mode="ram"), family=get_family("atari"))
        assert structure_order(ctx, facts) == [facts["controller"], "reactive", "screen_route"]  # nothing remembered: the probe's order
        remember_structures(ctx, "run-1", kind, ["pattern", facts["controller"], "reactive"], "reactive")
        assert structure_order(ctx, facts) == ["reactive", facts["controller"], "screen_route"]  # another game of this kind: reactive first
        remember_structures(ctx, "run-2", "moves xy, no ball, no formation, fire acts, threats, no rewards", ["pattern"], "pattern")
        assert structure_order(ctx, facts) == ["reactive", facts["controller"], "screen_route"]  # another kind's runs change nothing here
        facts = {**facts, "controller": "route"}  # a structure that searches is chosen: no second search
        assert structure_order(ctx, facts) == ["reactive", "route"]
