"""policy-writer: write and revise hs/policy.py.

First visit: the pattern baseline (agents/baseline.py), the policy every structure must beat.
Then the structure the probe's facts chose (agents/controllers/: intercept for paddle-and-ball
games, align-and-fire for shooters, route following for exploration games, reactive for a
player among things to avoid or collect, pattern when nothing is readable), with default
parameters; a route controller first needs a route: a counted cell-archive search in the
emulator (tools/explore.py) finds one. Then each challenger (another structure that suits
and reads the frame itself) gets one look: decide keeps whichever scores best.
Later visits: apply the critic's direction to the accepted version (a parameter or feature
change, or a further search); when the critic has no untried direction, tune the named
parameters with Optuna on dev seeds. Every env step goes through runtime.steps.

LLM brain: the model edits policy.py with the file tools (evaluating and tuning through
its tools) and ends with a PolicyReport naming its change.
"""

from __future__ import annotations

import shutil

from pydantic import BaseModel, Field

from agents.controllers import (CONTROLLER_MODULES, acting_features, apply_change, default_params, dev_episodes_for, facts_module,
                                get_controller, starting_params, structure_facts)  # fmt: skip
from agents.registry import BrainFailed, register
from envs.seeds import split_seeds
from memory.store import best_policy_key
from record.meter import BudgetExhausted
from record.workspace import policy_hash
from runtime import steps
from runtime.context import RunContext
from runtime.context import seeds_differ as runs_differ
from runtime.budget import holdout_reserve
from runtime.remember import remembered_wins
from runtime.state import HLState, NodeUpdate
from tools.tune import tune


def write_candidate(ctx: RunContext, facts: dict, params: dict, features: set[str], direction: str, source: str,
                    controller_name: str | None = None) -> dict:  # fmt: skip
    name = controller_name or facts["controller"]
    source_code = get_controller(name).write_policy(params, features, structure_facts(facts, name), direction)
    ctx.hs.write({"policy.py": source_code})
    route = {"route_file": get_controller(name).ROUTE_FILE} if searches(name) else {}  # data the policy cannot run without
    return dict(policy_hash=policy_hash(ctx.hs.path / "policy.py"), controller=name, params=params,
                features=sorted(features), direction=direction, source=source, **route)  # fmt: skip


SEARCH_SHARE = 0.7  # a search may take this share of what the run has left: the rest evaluates its route
CHALLENGER_SEARCH_SHARE = 0.35  # ... half that for a first look, when it challenges another structure


def searches(name: str) -> bool:
    """Whether the structure's policy follows a route a search finds (ROUTE_FILE)."""
    return hasattr(get_controller(name), "ROUTE_FILE")


def search_allowance(ctx: RunContext, wanted: int, share: float = SEARCH_SHARE) -> int:
    """Env steps a route search may take: a share of what is left after a holdout (robustness
    check included) of episodes as long as the cap, the reserve the run held before any policy
    scored: a route may play that long, and the reserve held for the current best follows its
    episodes, which may be far shorter (a 871-step baseline left a route's 17,000-step
    episodes without a holdout). The rest of the share pays the route's dev evaluations."""
    if ctx.meter.remaining is None:
        return wanted
    left = ctx.meter.remaining - max(ctx.meter.reserved, holdout_reserve(ctx.config, ctx.protocol, []))
    return max(0, min(wanted, int(left * share)))


def search_route(ctx: RunContext, facts: dict, extra_steps: int, reason: str, name: str = "route") -> dict:
    """Run (or continue) the cell-archive search of structure `name` (its cells: RAM positions
    for route, the screen for screen_route) and write its best route to hs/<its ROUTE_FILE>."""
    from record.workspace import unique_path
    from tools.explore import search_route as run_search

    controller = get_controller(name)
    facts = structure_facts(facts, name)
    folder = ctx.run_dir / controller.SEARCH_FOLDER
    folder.mkdir(exist_ok=True)
    # This call's step counter, named by its ledger row: a search killed before the row was
    # written is counted on resume (evaluation.evaluate.reconcile_interrupted).
    calls = unique_path(folder / "call")
    ctx.say(f"searching for a route ({extra_steps:,} env steps at most): {reason}")
    summary = unique_path(folder / "route.json")
    with steps.metered(ctx, "policy_writer", "search") as work:
        # The search's own emulator: this protocol's frame skip and reset, but no sticky actions.
        work.protocol_settings = {**ctx.protocol.model_dump(), "repeat_action_probability": 0.0,
                                  "engine": "ale-py cloneState/restoreState (deterministic)"}  # fmt: skip
        work.change_summary = (f"cell-archive search in a deterministic emulator (ale-py clone/restore, no sticky "
                               f"actions, every step counted): {reason}")  # fmt: skip
        work.artifacts = {"search": str(summary.relative_to(ctx.run_dir)), "counter": str(calls.relative_to(ctx.run_dir))}
        result = run_search(
            ctx.game, ctx.protocol, work.meter, facts, max_steps=extra_steps, seed=ctx.config.seed,
            archive_path=folder / "archive", progress=getattr(ctx.display, "search", None),
            counter_path=calls / "steps-0.counter", cells=controller.search_cells(facts),
        )  # fmt: skip
        ctx.hs.write({controller.ROUTE_FILE: controller.write_route_module(result, facts)})
        remember_route(ctx, name, ctx.hs.read(controller.ROUTE_FILE), float(result.score))
        summary.write_text(result.model_dump_json(indent=1) if hasattr(result, "model_dump_json") else str(result))
        work.scores = [float(result.score)]
    return {"search_score": float(result.score), "search_steps": work.meter.used_steps}


def tune_parameters(ctx: RunContext, facts: dict, controller_name: str, params: dict, features: set[str],
                    seed: int, start_score: float | None = None) -> tuple[dict, float | None]:  # fmt: skip
    """Optuna over the parameters the current features use; each trial is a ledger row.
    `start_score`: the score `params` already has on these dev seeds (not evaluated again).
    Each trial's policy.py is the one the winner's candidate will be, direction line included,
    so the evaluate node finds the winner's evaluation in the ledger instead of paying again."""
    controller = get_controller(controller_name)
    facts = structure_facts(facts, controller_name)
    folder = ctx.run_dir / "tuning"
    # Action indices are names, not a scale: Optuna picks among the game's distinct actions
    # (and -1 where the parameter's range allows it: route followers' "random play after the route").
    actions = getattr(controller, "ACTION_PARAMS", set())
    distinct = list(facts.get("distinct_actions") or range(len(facts["action_names"])))
    choices = lambda name: distinct + [-1] * (controller.PARAMS[name][1] < 0)  # noqa: E731
    seeds_differ = runs_differ(ctx)
    acting = acting_features(controller, features, seeds_differ)  # under hl a re-sync's parameters change nothing
    space = {name: choices(name) if name in actions else (low, high, name in controller.INT_PARAMS)
             for name, (_, low, high, _) in controller.PARAMS.items() if name in params and controller.param_used(name, acting)}  # fmt: skip
    # Every trial on the same dev seeds, as many as decide would judge the candidate on.
    seeds = split_seeds("dev", dev_episodes_for({"controller": controller_name, "features": sorted(features)},
                                                ctx.config.dev_episodes, seeds_differ))  # fmt: skip

    def score(candidate: dict) -> float | None:
        code = controller.write_policy(candidate, features, facts, tuned_words(params, candidate))
        variant = folder / "candidate"
        variant.mkdir(parents=True, exist_ok=True)
        (variant / "policy.py").write_text(code)
        for sibling in ("detectors.py", getattr(controller, "ROUTE_FILE", "")):  # the modules policy.py imports
            if sibling and (ctx.hs.path / sibling).exists():
                shutil.copyfile(ctx.hs.path / sibling, variant / sibling)
        result = steps.evaluate_candidate(ctx, variant / "policy.py", role="policy_writer", kind="tuning", seeds=seeds,
                                          change_summary=f"tuning {candidate}")  # fmt: skip
        if result is None:
            raise BudgetExhausted("budget spent during tuning")
        return result["score_mean"] if result["status"] == "ok" else None

    if not space:
        return dict(params), None  # nothing to tune with these features
    best, value, _ = tune(space, params, score, trials=ctx.config.tune_trials, seed=seed, start_value=start_score)
    return best, value


def route_key(protocol: str, name: str = "route") -> str:
    """The memory fact holding the best route structure `name`'s search found under a protocol
    (its frame skip)."""
    return f"{name}:{protocol}"


def remember_route(ctx: RunContext, name: str, source: str, score: float) -> None:
    """A search's route is worth keeping whether or not its policy is accepted (a later run
    can start from it instead of searching again), unless memory has a better one."""
    if ctx.memory is None:
        return
    known = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode).get(route_key(ctx.config.protocol, name))
    if known is None or known.value.get("score", float("-inf")) < score:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, ctx.run_dir.name, route_key(ctx.config.protocol, name),
                            {"score": score, "route_source": source})  # fmt: skip


def remembered_route(ctx: RunContext, name: str = "route") -> str | None:
    """The source of the best route memory holds for this game, protocol and structure, or None."""
    known = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode) if ctx.memory else {}
    fact = known.get(route_key(ctx.config.protocol, name))
    return fact.value.get("route_source") if fact is not None else None


def remembered_policy(ctx: RunContext, name: str):
    """The best policy memory holds for this game, obs mode and protocol (a fact), if it has
    the structure `name`; else None. A policy remembered from a run under another protocol
    (frame skip, sticky actions) is not a good start: it was judged under other dynamics."""
    known = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode) if ctx.memory else {}
    remembered = known.get(best_policy_key(ctx.config.protocol))
    if remembered is None or remembered.value.get("protocol", ctx.config.protocol) != ctx.config.protocol:
        return None
    return remembered if remembered.value.get("controller", name) == name else None


def first_pattern(ctx: RunContext, facts: dict) -> dict:
    """The pattern baseline (agents/baseline.py) and its winner as the first candidate."""
    from agents.baseline import run_baseline

    ctx.say("pattern baseline: blind action patterns, halved round by round")
    found = run_baseline(ctx, facts)
    pattern = get_controller("pattern")
    features = set(found["features"])
    words = pattern.describe(found["params"], features, facts["action_names"])
    direction = f"pattern baseline: {words} (best of {found['patterns']} patterns, {found['env_steps']:,} env steps)"
    candidate = write_candidate(ctx, facts, found["params"], features, direction, "baseline", "pattern")
    return {"candidate": candidate, "baseline": found}


def tied_pattern(ctx: RunContext, facts: dict, baseline: dict) -> dict:
    """The fixed pattern that tied random play in the baseline's short looks, played in full
    (agents/baseline.py `tied_fixed_pattern`): decide keeps whichever scores better."""
    tied = baseline["tied"]
    pattern = get_controller("pattern")
    words = pattern.describe(tied["params"], set(tied["features"]), facts["action_names"])
    ctx.say(f"pattern baseline: {words} tied random play in the short looks; played in full")
    direction = f"pattern baseline in full: {words} (tied random play)"
    candidate = write_candidate(ctx, facts, tied["params"], set(tied["features"]), direction, "baseline", "pattern")
    return {"candidate": candidate, "baseline": {**baseline, "tied": None, "tied_played": True}}


def first_candidate(ctx: RunContext, facts: dict, state: HLState) -> dict:
    name = facts["controller"]
    controller = get_controller(name)
    remembered = remembered_policy(ctx, name) if state.get("iteration", 0) == 0 else None
    from_memory = remembered is not None
    if searches(name):
        ensure_route(ctx, facts, name, remembered.value.get("route_source") if from_memory else None, SEARCH_SHARE)
    if from_memory:
        value = remembered.value
        return write_candidate(ctx, facts, {**default_params(controller), **value["params"]}, set(value["features"]),
                               f"start from the best policy of run {remembered.run_id} (memory)", "memory")  # fmt: skip
    return write_candidate(ctx, facts, starting_params(controller, facts, state.get("baseline")), controller.initial_features(facts),
                           f"{name} controller with default parameters", "initial")  # fmt: skip


def ensure_route(ctx: RunContext, facts: dict, name: str, source: str | None, share: float) -> None:
    """Before a searching structure's first policy: its route, from `source` (a remembered
    policy's), else from memory's best route for this game, else a search of `share` of what
    the run has left."""
    route_file = get_controller(name).ROUTE_FILE
    if (ctx.hs.path / route_file).exists():
        return
    source = source or remembered_route(ctx, name)
    if source:
        ctx.hs.write({route_file: source})  # an earlier run's route: no search
    else:
        search_route(ctx, facts, search_allowance(ctx, ctx.config.search_steps, share), "first route", name)


def structure_order(ctx: RunContext, facts: dict) -> list[str]:
    """The structures to give a first look, in order: the probe's choice, then the challengers
    (the pattern is the baseline, already played); those memory says won most often on games
    of this kind (runtime/remember.py, by probe features) go first. One search per run: a
    second searching structure would only halve the budget of the first."""
    order = [s for s in [facts["controller"], *(facts.get("challengers") or {})] if s != "pattern"]
    if searches(facts["controller"]):
        order = [s for s in order if s == facts["controller"] or not searches(s)]
    wins = remembered_wins(ctx, facts_module(ctx.family.name).kind_of_game(facts))
    return sorted(order, key=lambda s: -wins.get(s, 0))  # stable: the probe's order among equals


def challenger_candidate(ctx: RunContext, facts: dict, name: str, baseline: dict | None) -> dict:
    """The first candidate of a structure that reads the frame itself, tried after the chosen
    one: the screen by evidence (decide keeps whichever scores best, and the critic goes on
    with that structure)."""
    controller = get_controller(name)
    own = structure_facts(facts, name)
    ctx.say(f"challenger: the {name} structure, against the best so far")
    if searches(name):
        ensure_route(ctx, facts, name, None, CHALLENGER_SEARCH_SHARE)
    return write_candidate(ctx, facts, starting_params(controller, own, baseline), controller.initial_features(own),
                           f"{name} controller with default parameters (a challenger to {facts['controller']})", "initial", name)  # fmt: skip


def tuned_words(params: dict, tuned: dict) -> str:
    """A parameter search's direction: "tuned parameters: " and what it changed."""
    changed = ", ".join(f"{k}={v}" for k, v in sorted(tuned.items()) if params.get(k) != v)
    return "tuned parameters: " + (changed or "no change")


def second_turn(ctx: RunContext, facts: dict, state: HLState, name: str) -> dict:
    """The best's structure plateaued, parameter search included: the runner-up structure
    (decide picks it by its best score) goes on from its best candidate, with a longer search
    if it follows one, and a parameter search; decide keeps it only if it beats the best."""
    entry = state["structure_best"][name]
    params, features = dict(entry["params"]), set(entry["features"])
    ctx.say(f"second turn: the {name} structure ({entry['score']:g}), as the best's structure has plateaued")
    extra = ""
    if searches(name):
        search_route(ctx, facts, search_allowance(ctx, ctx.config.search_steps), f"second turn for {name}", name)
        extra = "a longer search, "
    # After a new search the start plays a new route: its score is not known.
    tuned, _ = tune_parameters(ctx, facts, name, params, features, seed=ctx.config.seed + state.get("iteration", 0),
                               start_score=None if extra else entry["score"])  # fmt: skip
    direction = f"second turn for the {name} structure: {extra}{tuned_words(params, tuned)}"
    return write_candidate(ctx, facts, tuned, features, direction, "switch", name)


# -- LLM brain ---------------------------------------------------------------------------------


class PolicyReport(BaseModel):
    """The change made to policy.py."""

    direction: str = Field(description="one line: what changed (this names the change in memory and git)")
    rationale: str = Field(description="why this change should raise the score")
    params: dict[str, float] = Field(default_factory=dict, description="the named parameters of P, as written")


def finish_report(report: PolicyReport, state: dict, ctx: RunContext) -> NodeUpdate:
    path = ctx.hs.path / "policy.py"
    if not path.exists():
        raise BrainFailed("the model wrote no policy.py")
    candidate = dict(policy_hash=policy_hash(path), controller="llm", params=dict(report.params), features=[],
                     direction=report.direction.strip() or "LLM revision", source="llm", rationale=report.rationale)  # fmt: skip
    return {"candidate": candidate}


# -- builtin brain -------------------------------------------------------------------------------


@register("policy_writer", tools=["list_files", "read_file", "write_file", "patch_file", "structures", "write_structure", "search_route", "baseline",
                                   "probe_report", "evaluate_policy", "tune_parameters", "query_memory"],
          report=PolicyReport, finish=finish_report)  # fmt: skip
def policy_writer(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Write the first policy, apply the critic's direction, or tune parameters."""
    facts = state["detectors"]
    best = state.get("best")
    if (state.get("baseline") or {}).get("tied"):
        return tied_pattern(ctx, facts, state["baseline"])
    if not best or not best.get("policy"):
        if state.get("baseline") is None and not remembered_policy(ctx, facts["controller"]):
            return first_pattern(ctx, facts)
        return {"candidate": first_candidate(ctx, facts, state), "structures_tried": [facts["controller"]]}

    if state.get("switch_to"):
        return {"candidate": second_turn(ctx, facts, state, state["switch_to"])}
    policy = best["policy"]
    name = policy.get("controller") or facts["controller"]
    tried = list(state.get("structures_tried") or [])
    untried = [s for s in structure_order(ctx, facts) if s not in tried]
    if untried and name in CONTROLLER_MODULES:
        # The baseline is in: each structure that suits gets one look (the one memory says won
        # on games of this kind first), and decide keeps the best, before the critic goes on.
        pick = untried[0]
        candidate = (first_candidate(ctx, facts, state) if pick == facts["controller"]
                     else challenger_candidate(ctx, facts, pick, state.get("baseline")))  # fmt: skip
        return {"candidate": candidate, "structures_tried": tried + [pick]}
    if name not in CONTROLLER_MODULES:
        # The best policy was written by an LLM brain: offer the builtin structure as a challenger.
        return {"candidate": first_candidate(ctx, facts, {**state, "iteration": 1})}
    controller = get_controller(name)
    params, features = dict(policy["params"]), set(policy["features"])
    diagnosis = state.get("diagnosis") or {}
    if diagnosis.get("controller") not in (None, name):
        diagnosis = {}  # a change to another structure's parameters (a challenger that lost): not this one's
    change = diagnosis.get("params") or {}
    if diagnosis.get("direction") and not state.get("force_tune"):
        new_params, new_features = apply_change(controller, params, features, change)
        if change.get("search"):
            search_route(ctx, facts, search_allowance(ctx, int(change["search"])), diagnosis["direction"], name)
        if change.get("search") or (new_params, new_features) != (params, features):
            return {"candidate": write_candidate(ctx, facts, new_params, new_features, diagnosis["direction"], "critic", name)}
    ctx.say("no untried direction: tuning parameters with Optuna")
    tuned, value = tune_parameters(ctx, facts, name, params, features, seed=ctx.config.seed + state.get("iteration", 0),
                                   start_score=best["score"])  # fmt: skip
    if tuned == params:
        # Nothing beat the best: policy.py stays the best's own file (rolled back to it), so the
        # evaluate node finds its evaluation in the ledger instead of playing it again under a
        # new docstring, and decide records the search as a direction that changed nothing.
        route = {"route_file": controller.ROUTE_FILE} if searches(name) else {}
        return {"candidate": dict(policy_hash=policy_hash(ctx.hs.path / "policy.py"), controller=name, params=params,
                                  features=sorted(features), direction=tuned_words(params, tuned), source="tuning", **route)}  # fmt: skip
    return {"candidate": write_candidate(ctx, facts, tuned, features, tuned_words(params, tuned), "tuning", name)}
