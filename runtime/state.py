"""The typed graph state. Everything a node needs to decide what to do next lives here (or
on disk in the run folder, referenced from here); it is checkpointed after every node.
The run's settings are not copied here: nodes read them from `ctx.config` (runtime/config.py).

Lists and usage have reducers, so a node returns only what it adds: `{"usage": {...delta}}`
is summed into the run's totals (and, by graph/build.py's wrapper, into `usage_by_node`
under the node's name), `{"history": [entry]}` is appended.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict


class Usage(TypedDict, total=False):
    env_steps: int
    frames: int
    tokens: int
    cost_usd: float


def add_usage(total: Usage | None, delta: Usage | None) -> Usage:
    """Reducer: per-node usage deltas sum into the run's totals."""
    total, delta = total or {}, delta or {}
    return {k: total.get(k, 0) + delta.get(k, 0) for k in ("env_steps", "frames", "tokens", "cost_usd")}


def add_usage_by_node(total: dict[str, Usage] | None, delta: dict[str, Usage] | None) -> dict[str, Usage]:
    """Reducer: each node's usage deltas sum into that node's totals."""
    merged = dict(total or {})
    for node, usage in (delta or {}).items():
        merged[node] = add_usage(merged.get(node), usage)
    return merged


class Candidate(TypedDict, total=False):
    """The policy version under evaluation (written to hs/, not yet committed)."""

    policy_hash: str
    controller: str  # the controller structure, e.g. "intercept"
    params: dict  # the named parameters of policy.py
    direction: str  # what changed and why, in one line
    source: str  # "baseline" | "initial" | "critic" | "tuning" | "switch" (a second turn) | "simplifier" | "memory"
    route_file: str  # a searching structure's route (hs/route.py, hs/screen_route.py): data the policy imports


class Evaluation(TypedDict, total=False):
    trial: int
    status: str
    score_mean: float | None
    score_min: float | None
    scores: list[float]
    env_steps: int
    traces: str  # folder relative to the run dir
    policy_hash: str
    failure: str | None  # why a failed trial failed


class Diagnosis(TypedDict, total=False):
    failure: str  # score | lost | stall | serve | timeout | crash | none (agents/roles/replay_critic.failure_kinds)
    what: str
    evidence: str
    hypothesis: str
    direction: str  # the proposed change, named so memory can match it
    params: dict  # concrete parameter changes implementing the direction
    sheet: str | None
    controller: str | None  # the structure whose directions the change is in (None: free text)


class Best(TypedDict, total=False):
    score: float
    policy_hash: str
    commit: str
    trial: int
    env_steps: int  # cumulative env steps when it was reached
    policy: dict  # controller, params, features of the accepted version


class ProbeRef(TypedDict, total=False):
    path: str  # the probe report (probe/probe.json), relative to the run folder
    source: str  # "probe" | "resume" | "memory:<run id>" (+ " (llm)")


class HLState(TypedDict, total=False):
    # Set once at the start of a run.
    run_id: str
    target_score: float | None  # stop when the best reaches it (the game's maximum if known)
    memory_at_start: int  # memory entries about the game when the run began (0: a first run)

    # Progress.
    iteration: int
    probe: ProbeRef | None
    # The facts the detector-writer derived from the probe: the contract between probe,
    # detectors and controllers, typed per family (Atari: agents/controllers/atari/facts.py).
    detectors: dict | None
    candidate: Candidate | None
    evaluation: Evaluation | None
    diagnosis: Diagnosis | None
    best: Best | None
    baseline: dict | None  # the pattern baseline (agents/baseline.py): winner, rounds, env steps; its dev score once evaluated
    structures_tried: list[str]  # structures that have had their first candidate (the probe's, then challengers)
    # Each builtin structure's best evaluated candidate, accepted or not: name -> {score, params, features}.
    structure_best: dict[str, dict]
    switch_to: str | None  # decide asks the policy-writer to give this runner-up structure a second turn
    structures_switched: list[str]  # structures that have had their second turn
    plateau: int  # iterations since the best improved
    new_best: bool
    route: str  # where decide sends the graph next
    stop_reason: str | None
    reserved: int  # env steps held back for the final holdout evaluation
    force_tune: bool  # decide asks the policy-writer for a parameter search next
    accepted_count: int  # new bests so far, the pattern baseline not counted (the simplifier runs every few)
    paused_at: str | None  # the role the cost ceiling stopped in (a resumed run restarts it)

    history: Annotated[list[dict], operator.add]  # one entry per decide: direction, outcome, delta
    usage: Annotated[Usage, add_usage]
    usage_by_node: Annotated[dict[str, Usage], add_usage_by_node]  # the same, per node name


class NodeUpdate(HLState, total=False):
    """What a node returns: a partial state, plus an optional one-line account of what it did
    for the trace (graph/build.py's wrapper writes it to trace.jsonl and drops it, so it
    never reaches the state)."""

    trace_summary: str
