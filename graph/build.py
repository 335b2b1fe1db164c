"""Wire the roles into a LangGraph StateGraph.

    START → prober → detector_writer → policy_writer → evaluate → replay_critic → decide
    decide → policy_writer (revise) | notes_keeper → simplifier (after a new best) | END

LAYOUT is the one place that says where each role sits; roles themselves come from the
registry (agents/registry.py). Every node is wrapped so that its start and end, duration,
env steps, tokens and decision go to trace.jsonl.
"""

from __future__ import annotations

import time
from pathlib import Path

from langgraph.graph import END, START, StateGraph

from agents.registry import get_role
from graph import nodes
from record.meter import BudgetExhausted
from runtime.context import RunContext
from runtime.state import HLState

LAYOUT = {
    "start": "prober",
    "edges": [
        ("prober", "detector_writer"),
        ("detector_writer", "policy_writer"),
        ("policy_writer", "evaluate"),
        ("evaluate", "replay_critic"),
        ("replay_critic", "decide"),
        ("notes_keeper", "simplifier"),
        ("simplifier", "policy_writer"),
    ],
    # decide's route -> next node
    "routes": {"revise": "policy_writer", "simplify": "notes_keeper", "end": END},
}

PLAIN_NODES = {"evaluate": nodes.evaluate, "decide": nodes.decide}


def node_function(name: str, ctx: RunContext | None = None):
    """The plain node, or the role's brain (builtin or LLM, per the run's --brains)."""
    if name in PLAIN_NODES:
        return PLAIN_NODES[name]
    if ctx is None:
        return get_role(name).builtin
    from agents.brains import node_for

    return node_for(name, ctx)


def traced(name: str, fn, ctx: RunContext):
    """Run a node with trace entries around it; stop early once the run has a stop reason."""

    def run(state: HLState) -> dict:
        if state.get("stop_reason") and name != "decide":
            return {}  # budget spent or stopping: pass through to decide, which ends the run
        # What evaluations watch for stalls comes from the detector facts in the state (so a
        # resumed run watches the same things).
        ctx.progress_watch = tuple((state.get("detectors") or {}).get("progress_watch") or ())
        if ctx.display:
            ctx.display.node(name, state)
        steps_before, started = ctx.meter.used_steps, time.time()
        ctx.tracer.event("start", name, iteration=state.get("iteration", 0), env_steps_total=steps_before)
        try:
            update = fn(state, ctx) or {}
        except BudgetExhausted:
            # A node that needed env steps found none left (the simplifier's ablations took the
            # last before the policy-writer's search): the run ends, and decide keeps the best.
            update = {"evaluation": None, "stop_reason": nodes.budget_spent(ctx, state.get("best"))}
        except Exception as err:
            ctx.tracer.event("error", name, error=f"{type(err).__name__}: {err}", seconds=round(time.time() - started, 3))
            raise
        steps = ctx.meter.used_steps - steps_before
        usage = update.get("usage") or {}
        update["usage"] = {**usage, "env_steps": steps}  # the meter is the single source of truth
        update["usage_by_node"] = {name: update["usage"]}
        ctx.tracer.event(
            "end", name,
            seconds=round(time.time() - started, 3), env_steps=steps, env_steps_total=ctx.meter.used_steps,
            tokens=usage.get("tokens", 0), cost_usd=usage.get("cost_usd", 0.0),
            decision=update.get("route"), summary=update.get("trace_summary") or _summary(name, update),
        )  # fmt: skip
        update.pop("trace_summary", None)
        return update

    run.__name__ = name
    return run


def _summary(name: str, update: dict) -> str:
    if name == "evaluate" and update.get("evaluation"):
        e = update["evaluation"]
        return f"trial {e['trial']} {e['status']} score {e['score_mean']}"
    if name == "replay_critic" and update.get("diagnosis"):
        d = update["diagnosis"]
        return f"{d.get('failure')}: {d.get('direction')}"
    if name == "decide" and update.get("history"):
        h = update["history"][-1]
        return f"{h['outcome']}: {h['direction']}"
    if update.get("candidate"):
        return update["candidate"].get("direction", "")
    return ""


def build_graph(ctx: RunContext, checkpointer=None, layout: dict = LAYOUT):
    graph = StateGraph(HLState)
    names = {layout["start"]} | {a for a, _ in layout["edges"]} | {b for _, b in layout["edges"]}
    names |= {"decide"} | {t for t in layout["routes"].values() if t != END}
    for name in sorted(names):
        graph.add_node(name, traced(name, node_function(name, ctx), ctx))
    graph.add_edge(START, layout["start"])
    for a, b in layout["edges"]:
        graph.add_edge(a, b)
    # Besides its routes, decide can send the run straight to any role: a run paused by the
    # cost ceiling resumes at the role it stopped in.
    routes = {**{n: n for n in sorted(names) if n not in PLAIN_NODES}, **layout["routes"]}
    graph.add_conditional_edges("decide", lambda s: s.get("route", "end"), routes)
    return graph.compile(checkpointer=checkpointer)


def open_checkpointer(run_dir: Path):
    """SqliteSaver in the run folder: `--resume RUN_ID` continues from the last finished node."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(run_dir / "checkpoint.sqlite", check_same_thread=False)
    return SqliteSaver(conn)
