"""policy-writer: write and revise hs/policy.py.

First visit: choose a controller structure from what the probe found and write it with
default parameters. Later visits: apply the critic's direction to the accepted version; when
the critic has no untried direction, tune the named parameters with Optuna on dev seeds.
"""

from __future__ import annotations

import shutil

from agents.policy_templates import INT_PARAMS, INTERCEPT_PARAMS, default_params, param_used, write_intercept_policy
from agents.registry import register
from agents.replay_critic import apply_change
from graph.context import RunContext
from graph.nodes import run_evaluation
from graph.state import HLState
from tools.tune import tune
from tools.workspace import policy_hash


def initial_features(facts: dict) -> set[str]:
    features = {"return_to_centre"}
    if facts["actions"].get("fire") is not None:
        features.add("fire_to_serve")  # games that need FIRE to serve show it in the probe
    return features


def write_candidate(ctx: RunContext, facts: dict, params: dict, features: set[str], direction: str, source: str) -> dict:
    source_code = write_intercept_policy(params, features, facts, direction)
    ctx.hs.write({"policy.py": source_code})
    return dict(policy_hash=policy_hash(ctx.hs.path / "policy.py"), controller="intercept", params=params,
                features=sorted(features), direction=direction, source=source)  # fmt: skip


def tune_parameters(ctx: RunContext, facts: dict, params: dict, features: set[str], seed: int) -> tuple[dict, float | None]:
    """Optuna over the parameters the current features use; each trial is a ledger row."""
    folder = ctx.run_dir / "tuning"
    space = {name: (low, high, name in INT_PARAMS) for name, (_, low, high, _) in INTERCEPT_PARAMS.items()
             if name in params and param_used(name, features)}  # fmt: skip

    def score(candidate: dict) -> float | None:
        code = write_intercept_policy(candidate, features, facts, "parameter search")
        variant = folder / "candidate"
        variant.mkdir(parents=True, exist_ok=True)
        (variant / "policy.py").write_text(code)
        shutil.copyfile(ctx.hs.path / "detectors.py", variant / "detectors.py")
        result = run_evaluation(ctx, variant / "policy.py", role="policy_writer", kind="tuning",
                                change_summary=f"tuning {candidate}")  # fmt: skip
        if result is None:
            from tools.meter import BudgetExhausted

            raise BudgetExhausted("budget spent during tuning")
        return result["score_mean"] if result["status"] == "ok" else None

    best, value, _ = tune(space, params, score, trials=ctx.config.tune_trials, seed=seed)
    return best, value


@register("policy_writer", tools=["read_file", "write_file", "evaluate_policy", "tune_parameters", "query_memory"])
def policy_writer(state: HLState, ctx: RunContext) -> dict:
    """Write the first policy, apply the critic's direction, or tune parameters."""
    facts = state["detectors"]
    best = state.get("best")
    if not best or not best.get("policy"):
        remembered = (ctx.memory.facts(ctx.game.name, ctx.config.obs_mode) if ctx.memory else {}).get("best_policy")
        if remembered and state.get("iteration", 0) == 0:
            value = remembered.value
            candidate = write_candidate(ctx, facts, {**default_params(), **value["params"]}, set(value["features"]),
                                        f"start from the best policy of run {remembered.run_id} (memory)", "memory")  # fmt: skip
        else:
            candidate = write_candidate(ctx, facts, default_params(), initial_features(facts),
                                        "intercept controller with default parameters", "initial")  # fmt: skip
        return {"candidate": candidate}

    policy = best["policy"]
    params, features = dict(policy["params"]), set(policy["features"])
    diagnosis = state.get("diagnosis") or {}
    if diagnosis.get("direction") and not state.get("force_tune"):
        new_params, new_features = apply_change(params, features, diagnosis["params"])
        if (new_params, new_features) != (params, features):
            return {"candidate": write_candidate(ctx, facts, new_params, new_features, diagnosis["direction"], "critic")}
    ctx.say("no untried direction: tuning parameters with Optuna")
    tuned, value = tune_parameters(ctx, facts, params, features, seed=ctx.config.seed + state.get("iteration", 0))
    changed = {k: v for k, v in tuned.items() if params.get(k) != v}
    direction = "tuned parameters: " + (", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "no change")
    return {"candidate": write_candidate(ctx, facts, tuned, features, direction, "tuning")}
