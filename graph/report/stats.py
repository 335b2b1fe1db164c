"""Aggregates over games with bootstrap confidence intervals, numpy only.

The convention of Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical Precipice",
the rliable library): a score per game is the mean over its runs; the suite's number is the
median or the interquartile mean (IQM, the mean of the middle 50%) of those per-game scores;
its 95% interval comes from a stratified bootstrap (runs resampled with replacement within
each game, never across games), percentile method.

One difference from rliable, said wherever the IQM is shown: rliable's IQM pools every run of
every game before trimming; here it trims the per-game means, like the median. With one run
per game the two are the same.

    iqm([1, 2, 3, 4, 5, 6, 7, 8])                     -> 4.5 (the mean of 3, 4, 5, 6)
    aggregate_with_ci({"Pong": [[0.2, 0.4]]}, "median") -> (0.3, 0.2, 0.4)
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
SEED = 0


def iqm(values, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean: sort, drop the lowest and the highest quarter (floor(n/4) values
    each, as scipy.stats.trim_mean(x, 0.25) does), average the rest."""
    x = np.sort(np.asarray(values, dtype=float), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("the IQM of no values")
    cut = n // 4
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def median(values, axis: int = -1) -> np.ndarray | float:
    return np.median(np.asarray(values, dtype=float), axis=axis)


STATISTICS = {"median": median, "iqm": iqm}


def per_game(strata: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Each game's score: the mean over its runs, per input mode, then the best mode.

    strata: game -> one array per input mode, each (runs,) or (runs, points) for a curve.
    Returns (games,) or (games, points)."""
    return np.stack([np.max([np.asarray(a, dtype=float).mean(axis=0) for a in arrays], axis=0) for arrays in strata.values()])


def aggregate_with_ci(strata: dict[str, list[np.ndarray]], statistic: str, resamples: int = RESAMPLES, seed: int = SEED,
                      chunk: int = 64) -> tuple:  # fmt: skip
    """(point, low, high): the statistic ("median" or "iqm") over games of the per-game scores,
    and its 95% stratified-bootstrap interval. For curves (arrays of shape (runs, points)) each
    of the three is an array over the points; one resample is one draw of runs for the whole
    curve, and the points are bootstrapped `chunk` at a time (memory: resamples × games ×
    chunk numbers). Fixed seed: the same numbers every time."""
    if not strata:
        raise ValueError("no games to aggregate")
    games = [[np.asarray(a, dtype=float) for a in arrays] for arrays in strata.values()]
    if any(len(a) == 0 for arrays in games for a in arrays):
        raise ValueError("every game needs at least one run")
    f = STATISTICS[statistic]
    point = f(per_game(strata), axis=0)
    rng = np.random.default_rng(seed)
    picks = [[rng.integers(0, len(a), size=(resamples, len(a))) for a in arrays] for arrays in games]  # runs drawn within each game
    curve = games[0][0].ndim == 2
    flat = [[a.reshape(len(a), -1) for a in arrays] for arrays in games]  # (runs, points); a scalar is one point
    lows, highs = [], []
    for lo in range(0, flat[0][0].shape[1], chunk):
        draws = np.stack([np.max([a[:, lo:lo + chunk][pick].mean(axis=1) for a, pick in zip(arrays, game_picks)], axis=0)
                          for arrays, game_picks in zip(flat, picks)], axis=1)  # (resamples, games, points of this chunk)
        low, high = np.percentile(f(draws, axis=1), [2.5, 97.5], axis=0)
        lows.append(low)
        highs.append(high)
    low, high = np.concatenate(lows), np.concatenate(highs)
    return (point, low, high) if curve else (point, low[0], high[0])
