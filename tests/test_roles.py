"""Roles come from the registry; a role added as docs/adding-a-role.md says runs in a graph
with its trace entries."""

import pytest
from langgraph.graph import END

from agents.registry import ROLES, get_role, load_roles, register
from envs.atari.games import resolve_game
from graph.build import LAYOUT, build_graph
from runtime.config import RunConfig
from runtime.context import RunContext
from record.tracing import read_trace
from record.meter import StepMeter


def test_the_five_roles_and_the_example_are_registered():
    roles = load_roles()
    assert {"prober", "detector_writer", "policy_writer", "replay_critic", "simplifier", "notes_keeper"} <= set(roles)
    assert get_role("replay_critic").description.startswith("Find failure moments")
    with pytest.raises(KeyError, match="no role named"):
        get_role("oracle")


def test_layout_places_every_registered_role():
    placed = {LAYOUT["start"]} | {n for edge in LAYOUT["edges"] for n in edge} | set(LAYOUT["routes"].values())
    assert set(load_roles()) <= placed


def test_a_new_role_runs_in_a_custom_layout(tmp_path):
    @register("greeter")
    def greeter(state, ctx):
        """Write a greeting into the run folder."""
        (ctx.run_dir / "hello.txt").write_text(f"hello {ctx.game.name}")
        return {"stop_reason": "greeted", "trace_summary": "said hello"}

    try:
        with pytest.raises(ValueError, match="already registered"):
            register("greeter")(lambda s, c: {})
        ctx = RunContext(RunConfig(game="Pong", runs_dir=tmp_path), resolve_game("pong"), tmp_path, StepMeter(10))
        layout = {"start": "greeter", "edges": [("greeter", "decide")], "routes": {"end": END}}
        graph = build_graph(ctx, layout=layout)
        final = graph.invoke({"run_id": "t", "iteration": 0, "history": [], "usage": {}})
        assert (tmp_path / "hello.txt").read_text() == "hello Pong"
        assert final["stop_reason"] == "greeted" and final["route"] == "end"
        entries, damage = read_trace(tmp_path / "trace.jsonl")
        assert not damage
        assert [(e["event"], e["node"]) for e in entries] == [
            ("start", "greeter"), ("end", "greeter"), ("start", "decide"), ("end", "decide"),
        ]  # fmt: skip
        assert entries[1]["summary"] == "said hello" and entries[3]["decision"] == "end"
    finally:
        ROLES.pop("greeter", None)


def test_prompts_name_only_tools_that_exist_and_the_role_may_call():
    """A prompt that tells the model to call a tool it does not have wastes turns on errors."""
    import re
    from pathlib import Path

    from agents.llm.tools import TOOL_NAMES

    prompts = Path(__file__).resolve().parent.parent / "agents" / "prompts"
    for name, role in load_roles().items():
        text = (prompts / f"{name}.md").read_text()
        named = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", text))
        assert named <= set(TOOL_NAMES), f"{name}.md names tools that do not exist: {named - set(TOOL_NAMES)}"
        assert named <= set(role.tools), f"{name}.md names tools {name} may not call: {named - set(role.tools)}"


def test_under_hl_the_simplifier_keeps_what_only_acts_when_the_game_differs():
    """Under hl a route replays exactly, so re-synchronising never acts and its removal always
    "holds the score": the simplifier keeps it (ale-v5 play needs it). Under ale-v5 it is tried."""
    from types import SimpleNamespace

    from agents.roles.simplifier import removable
    from envs.registry import get_family

    policy = {"controller": "screen_route", "features": ["play_on", "resync"]}
    for protocol, expected in (("hl", ["play_on"]), ("ale-v5", ["play_on", "resync"])):
        ctx = SimpleNamespace(family=get_family("atari"), config=SimpleNamespace(protocol=protocol))
        assert removable(ctx, policy) == expected
    route = {"controller": "route", "features": ["recovery", "respawn_resync", "timed_waits", "unstick"]}
    assert removable(SimpleNamespace(family=get_family("atari"), config=SimpleNamespace(protocol="hl")), route) == []
    assert removable(SimpleNamespace(family=get_family("atari"), config=SimpleNamespace(protocol="hl")),
                     {"controller": "llm", "features": []}) == []  # fmt: skip


def test_under_hl_the_critic_skips_directions_that_only_change_a_re_sync():
    """Alien at 200k: "look further ahead for the screen" (the re-sync's lookahead) was evaluated
    under hl, where the screen is always the recorded one: a full episode for the same score."""
    from agents.controllers import default_params
    from agents.controllers.atari import screen_route
    from agents.roles.replay_critic import changes_what_is_seen

    params, features = default_params(screen_route), {"resync", "play_on"}
    further = {name: change for name, _, change in screen_route.DIRECTIONS["lost"]}["look further ahead for the screen"]
    assert not changes_what_is_seen(screen_route, params, features, further, seeds_differ=False)
    assert changes_what_is_seen(screen_route, params, features, further, seeds_differ=True)
    search = {name: change for name, _, change in screen_route.DIRECTIONS["timeout"]}["search for a longer route"]
    assert changes_what_is_seen(screen_route, params, features, search, seeds_differ=False)
    assert not changes_what_is_seen(screen_route, params, features, {"features": {"+play_on"}}, seeds_differ=True)
    # After the route: random play is a change where the baseline's action is held, not where it plays at random.
    at_random = {name: change for name, _, change in screen_route.DIRECTIONS["timeout"]}["play at random after the route"]
    assert changes_what_is_seen(screen_route, {**params, "after_action": 3}, features, at_random, seeds_differ=False)
    assert not changes_what_is_seen(screen_route, params, features, at_random, seeds_differ=False)
