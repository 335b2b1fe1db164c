"""The parameter search (tools/tune.py): Optuna from the current parameters, stopping when
the parameters change nothing the evaluation sees."""

from tools.tune import FLAT_TRIALS, tune


def test_a_search_whose_trials_all_score_the_same_stops_early():
    played = []

    def score(params):
        played.append(params)
        return 290.0  # a route replayed exactly: every matching radius plays the same game

    best, value, ran = tune({"radius": (2.0, 32.0, False)}, {"radius": 12.0}, score, trials=12)
    assert ran == len(played) == FLAT_TRIALS < 12
    assert value == 290.0 and best["radius"] == 12.0  # the start stands


def test_a_search_that_sees_differences_runs_every_trial_and_keeps_the_best():
    best, value, ran = tune({"radius": (2.0, 32.0, False)}, {"radius": 12.0}, lambda p: -abs(p["radius"] - 25.0), trials=12)
    assert ran == 12
    assert abs(best["radius"] - 25.0) < abs(12.0 - 25.0) and value == -abs(best["radius"] - 25.0)


def test_a_start_whose_score_is_known_is_not_evaluated_again():
    played = []

    def score(params):
        played.append(params["radius"])
        return -abs(params["radius"] - 25.0)

    best, value, ran = tune({"radius": (2.0, 32.0, False)}, {"radius": 12.0}, score, trials=5, start_value=-13.0)
    assert 12.0 not in played and ran == len(played) == 4  # the start's trial was free
    assert value == max(-13.0, *(-abs(r - 25.0) for r in played))
