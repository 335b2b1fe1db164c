"""Parameter search with Optuna on dev seeds. Every trial is a real evaluation: its env
steps are charged to the run's meter and it gets a ledger row (kind "tuning"). Holdout
and audit seeds are refused (evaluation.evaluate's for_tuning check)."""

from __future__ import annotations

import math
from typing import Callable

import optuna

from record.meter import BudgetExhausted

optuna.logging.set_verbosity(optuna.logging.WARNING)

# After this many trials that all scored the same, the search stops: these parameters change
# nothing the evaluation sees (a route replayed exactly under hl plays the same whatever its
# matching radius), and more trials would only spend env steps.
FLAT_TRIALS = 6


def tune(
    space: dict[str, tuple[float, float, bool] | list[int]],
    start: dict,
    score: Callable[[dict], float | None],
    trials: int,
    seed: int = 0,
    start_value: float | None = None,
) -> tuple[dict, float | None, int]:
    """Search `space` ({name: (low, high, is_int)}, or {name: [choices]} for a parameter whose
    values are names, not a scale: an action index) starting from `start`.

    `score(params)` evaluates one parameter set and returns its mean dev score (None when the
    trial failed; BudgetExhausted stops the search). Returns (best params, best score,
    trials run). TPE with a fixed seed: a resumed run proposes the same parameters again,
    so the evaluations it already paid for are found in the ledger instead of rerun. The
    search ends early when its first FLAT_TRIALS trials all score the same. `start_value`:
    the start's score when it is already known (the accepted policy's, on the same seeds),
    so its first trial costs nothing.
    """
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(6, trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({k: v for k, v in start.items() if k in space and (not isinstance(space[k], list) or v in space[k])})
    ran = 0
    for _ in range(trials):
        trial = study.ask()
        params = dict(start)
        for name, spec in space.items():
            if isinstance(spec, list):
                params[name] = trial.suggest_categorical(name, spec)
                continue
            low, high, is_int = spec
            if is_int:
                params[name] = trial.suggest_int(name, int(low), int(high))
            else:
                params[name] = round(trial.suggest_float(name, low, high), 2)
        if trial.number == 0 and start_value is not None:
            value = start_value  # the enqueued start, scored before
        else:
            try:
                value = score(params)
            except BudgetExhausted:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            ran += 1
        trial.set_user_attr("params", params)  # exactly what was evaluated (rounded)
        study.tell(trial, -math.inf if value is None else value)
        values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(values) == FLAT_TRIALS and len(set(values)) == 1:
            break  # flat: no trial scored differently from the start
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value != -math.inf]
    if not done:
        return dict(start), None, ran
    best = max(done, key=lambda t: t.value)
    return best.user_attrs["params"], best.value, ran
