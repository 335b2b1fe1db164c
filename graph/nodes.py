"""The two nodes that are not agents: `evaluate` (a tool node) and `decide` (plain code)."""

from __future__ import annotations

import math

import numpy as np

from agents.controllers import dev_episodes_for
from envs.seeds import split_seeds
from runtime import steps
from runtime.budget import holdout_reserve
from runtime.context import RunContext
from runtime.context import seeds_differ as runs_differ
from runtime.remember import remember_best_policy
from runtime.state import HLState, NodeUpdate


# Under a protocol where seeds differ (sticky actions), a candidate must beat the best by this
# many standard errors of its per-seed score differences (the same dev seeds for both: common
# random numbers), so noise does not replace a policy with a luckier copy of a worse one.
NOISE_Z = 1.0


def clearly_better(ctx: RunContext, evaluation: dict, best: dict | None) -> tuple[bool, str]:
    """(does the candidate beat the best, why not when it does not). Under a protocol that
    plays every seed the same (hl), a higher mean is a better policy; where seeds differ, the
    paired per-seed differences must clear NOISE_Z standard errors."""
    score = evaluation["score_mean"] if evaluation["status"] == "ok" else None
    if score is None:
        return False, "no score"
    if best is None:
        return True, ""
    if score <= best["score"]:
        return False, f"score {score:g} vs best {best['score']:g}"
    if not runs_differ(ctx):
        return True, ""  # deterministic: the one game every seed plays says it all
    new, old = steps.trial_row(ctx, evaluation["trial"]), steps.trial_row(ctx, best.get("trial"))
    if new is None or old is None or new.seeds != old.seeds or len(new.scores) < 2 or len(new.scores) != len(old.scores):
        return True, ""  # no paired evidence (another seed set): the mean decides
    diff = np.asarray(new.scores, dtype=float) - np.asarray(old.scores, dtype=float)
    margin = NOISE_Z * float(diff.std(ddof=1)) / math.sqrt(len(diff))
    if diff.mean() > margin:
        return True, ""
    return False, (f"within noise: {diff.mean():+.3g} per seed over {len(diff)} common seeds, "
                   f"needs more than {margin:.3g} ({NOISE_Z:g} standard error)")  # fmt: skip


def evaluate(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Evaluate the candidate in hs/ on the dev seeds."""
    steps.count_interrupted(ctx)  # steps of an evaluation a kill cut short still count
    before = ctx.meter.used_steps
    candidate = state.get("candidate") or {}
    seeds = split_seeds("dev", dev_episodes_for(candidate, ctx.config.dev_episodes, runs_differ(ctx)))
    result = steps.evaluate_candidate(ctx, ctx.hs.path / "policy.py", role="evaluate", seeds=seeds,
                                      change_summary=candidate.get("direction", ""))  # fmt: skip
    usage = {"env_steps": ctx.meter.used_steps - before}
    if result is None:
        return {"evaluation": None, "stop_reason": budget_spent(ctx, state.get("best")), "usage": usage}
    return {"evaluation": result, "usage": usage}


def budget_spent(ctx: RunContext, best: dict | None) -> str:
    """The stop reason when the budget is spent, saying what the rest is for."""
    if not best:
        return "budget spent: no policy scored, so there is no holdout to run"
    cfg = ctx.config
    check = f" and {cfg.robustness_episodes} under {cfg.robustness_protocol}" if cfg.robustness_protocol else ""
    return f"budget spent: {ctx.meter.remaining:,} env steps left for the holdout of the best policy ({cfg.holdout_episodes} episodes{check})"


def _structure_best(state: HLState, candidate: dict, score: float | None) -> dict:
    """state["structure_best"] with this candidate in, if it is its structure's best so far."""
    table = dict(state.get("structure_best") or {})
    name = candidate.get("controller")
    if name and score is not None and score > table.get(name, {}).get("score", float("-inf")):
        table[name] = dict(score=score, params=candidate.get("params") or {}, features=candidate.get("features") or [])
    return table


def _runner_up(state: HLState, best: dict | None) -> str | None:
    """The structure with the best score after the best's own (the pattern baseline aside),
    that has not had a second turn yet and scored above the baseline (one that could not beat
    blind play has shown nothing to build on: Freeway's intercept at 0 against hold-UP's 21);
    None when there is none."""
    own = ((best or {}).get("policy") or {}).get("controller")
    floor = (state.get("baseline") or {}).get("score", float("-inf"))
    others = {n: e for n, e in (state.get("structure_best") or {}).items()
              if n not in (own, "pattern") and n not in (state.get("structures_switched") or []) and e["score"] > floor}  # fmt: skip
    return max(others, key=lambda n: others[n]["score"]) if others else None


def _tuned_since_best(state: HLState, update: dict) -> bool:
    history = state.get("history", []) + update.get("history", [])
    for h in reversed(history):
        if h["outcome"] == "accepted":
            return False
        if h["direction"].startswith("tuned parameters"):
            return True
    return False


def decide(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Accept the candidate (commit) or roll it back, remember the direction, and route."""
    cfg = ctx.config
    evaluation = state.get("evaluation")
    candidate = state.get("candidate") or {}
    best = state.get("best")
    iteration = state.get("iteration", 0) + 1
    update: dict = {"iteration": iteration, "new_best": False}
    direction = candidate.get("direction", "initial policy")

    if evaluation is None and state.get("stop_reason"):
        # Stopped before anything was evaluated (budget or cost ceiling): nothing to judge, and
        # an unevaluated candidate is not kept.
        ctx.hs.rollback()
        update.update(iteration=iteration - 1, route="end", stop_reason=state["stop_reason"])
        if ctx.display:
            ctx.display.decision(iteration - 1, "stopped", "stopped", best, state["stop_reason"])
        return update
    if evaluation is None:
        ctx.hs.rollback()
        outcome, delta = "unevaluated", 0.0
    else:
        score = evaluation["score_mean"] if evaluation["status"] == "ok" else None
        previous = best["score"] if best else None
        improved, why_not = clearly_better(ctx, evaluation, best)
        delta = 0.0 if score is None or previous is None else score - previous
        if improved:
            commit = ctx.hs.commit(f"{direction}\n\nscore {score:g} (was {previous}), trial {evaluation['trial']}")
            policy = {k: candidate.get(k) for k in ("controller", "params", "features")}
            if candidate.get("route_file"):
                policy["route_file"] = candidate["route_file"]  # the route data the policy imports
            update["best"] = dict(score=score, policy_hash=evaluation["policy_hash"], commit=commit, policy=policy,
                                  trial=evaluation["trial"], env_steps=ctx.meter.used_steps)  # fmt: skip
            remember_best_policy(ctx, state["run_id"], policy, score)
            update["new_best"] = True
            update["plateau"] = 0
            outcome = "accepted"
        else:
            ctx.hs.rollback()
            update["plateau"] = state.get("plateau", 0) + 1
            outcome = "rejected"
        update["structure_best"] = _structure_best(state, candidate, score)
        baseline = state.get("baseline") or {}
        if candidate.get("source") == "baseline" and score is not None and score > baseline.get("score", float("-inf")):
            # The floor every structure must beat: the best of the patterns played in full, whose
            # action a structure may start from (the reactive structure's goal).
            update["baseline"] = dict(baseline, score=score, params=candidate.get("params"), features=candidate.get("features"))
        if ctx.memory is not None and candidate.get("source") not in ("initial", "baseline"):
            evidence = f"trial {evaluation['trial']}: score {score} vs best {previous}" + (f" ({why_not})" if why_not else "")
            if evaluation["status"] != "ok":
                evidence = f"trial {evaluation['trial']} failed: {evaluation.get('failure')}"
            ctx.memory.add_direction(ctx.game.name, cfg.obs_mode, state["run_id"], direction, outcome,
                                     float(delta), evidence=evidence, trial=evaluation["trial"])  # fmt: skip
    update["history"] = [dict(iteration=iteration, direction=direction, outcome=outcome, delta=delta,
                              trial=evaluation["trial"] if evaluation else None,
                              score=evaluation["score_mean"] if evaluation else None)]  # fmt: skip

    best_now = update.get("best", best)
    if update["new_best"]:
        # Hold back what the holdout of this policy needs: its dev episodes say how long it plays.
        row = steps.trial_row(ctx, evaluation["trial"])
        ctx.meter.reserved = holdout_reserve(cfg, ctx.protocol, row.lengths if row else [])
    update["reserved"] = ctx.meter.reserved  # checkpointed, so --resume holds the same reserve
    stop = state.get("stop_reason")
    target = state.get("target_score")
    if stop:
        pass
    elif ctx.meter.exhausted or (ctx.meter.remaining is not None and ctx.meter.remaining <= ctx.meter.reserved):
        stop = budget_spent(ctx, best_now)
    elif target is not None and best_now and best_now["score"] >= target:
        stop = f"target {target:g} reached"
    elif update.get("plateau", state.get("plateau", 0)) >= cfg.plateau_patience and _tuned_since_best(state, update):
        runner_up = _runner_up({**state, **update}, best_now)
        if runner_up is None:
            stop = f"plateau: no improvement in {cfg.plateau_patience} iterations, parameter search included"
        else:  # the best's structure is out of ideas: the next best structure gets a second turn first
            update["switch_to"] = runner_up
            update["structures_switched"] = list(state.get("structures_switched") or []) + [runner_up]
    elif iteration >= cfg.max_iterations + bool((state.get("baseline") or {}).get("tied_played")):
        # (the tied fixed pattern played in full is part of the baseline, not an iteration of its own)
        stop = f"iteration limit ({cfg.max_iterations})"
    update["stop_reason"] = stop
    update.setdefault("switch_to", None)  # a second turn is asked for once
    plateaued = update.get("plateau", state.get("plateau", 0)) >= cfg.plateau_patience
    # Out of named directions: the policy-writer runs a parameter search before the run gives up.
    update["force_tune"] = bool(plateaued and not stop)
    # The pattern baseline has nothing to simplify: the count starts at the first structure.
    accepted = state.get("accepted_count", 0) + (1 if update["new_best"] and candidate.get("source") != "baseline" else 0)
    update["accepted_count"] = accepted
    # The simplifier re-evaluates every feature: do it after the first best and every few after.
    simplify = update["new_best"] and accepted > 0 and (accepted - 1) % cfg.simplify_every == 0
    update["route"] = "end" if stop else ("simplify" if simplify else "revise")
    if ctx.display:
        ctx.display.decision(iteration, direction, outcome, best_now, stop)
    return update
