"""Failure detection over episode traces: the moments a replay-critic looks at.

Works on the compact per-step traces evaluation/rollout.py saves (actions, rewards, lives, and
RAM in ram mode), so it costs no env steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from evaluation.rollout import load_trace


class FailureMoment(BaseModel):
    kind: str  # life_lost | point_lost | reward_stall | periodic_loop | timeout | stall_cut | game_over
    step: int
    detail: str


class EpisodeFindings(BaseModel):
    seed: int
    length: int
    score: float
    lives_lost: int
    points_lost: int
    longest_stall: int  # most steps between two positive rewards (or episode edges)
    stall_start: int
    loop_period: int | None  # RAM states repeat with this period at the end of the episode
    timeout: bool
    game_over_with_lives: bool = False  # the game ended while lives were left (e.g. invaders landed)
    # The evaluation cut the episode for making no progress (evaluation.rollout.StallRule):
    # since_step, steps, watched {state index: value that stood still}, actions {name: count}.
    stall: dict | None = None
    moments: list[FailureMoment]


def find_loop_period(ram: np.ndarray, window: int = 4096, max_period: int = 2048) -> int | None:
    """Smallest period p such that the last `window` RAM states repeat every p steps."""
    if ram is None or len(ram) < 2 * max_period // 4:
        return None
    tail = ram[-window:]
    keys = np.array([hash(row.tobytes()) for row in tail])
    last = keys[-1]
    for p in np.nonzero(keys[:-1] == last)[0][::-1]:
        period = len(keys) - 1 - int(p)
        if period > max_period:
            break
        if len(keys) >= 3 * period and np.array_equal(keys[-2 * period :][:period], keys[-period:]):
            return period
    return None


def describe_stall(stall: dict) -> str:
    """What a stall cut's evidence says, in words."""
    what = f"no reward for {stall['steps']} steps from step {stall['since_step']}"
    if stall.get("watched"):
        values = ", ".join(f"{i}={v}" for i, v in stall["watched"].items())
        what += f" and the tracked objects stood still (state bytes {values}): nothing in play"
    if stall.get("actions"):
        what += "; the policy kept pressing " + ", ".join(f"{a} ×{n}" for a, n in stall["actions"].items())
    return what + "; the episode was cut there"


def analyse_trial(run_dir: str | Path, row) -> list[EpisodeFindings]:
    """Findings of each episode of a ledger row (record.ledger.TrialRecord) whose trace exists."""
    trace_dir = Path(run_dir) / row.artifacts.get("traces", "")
    stalls = row.stalls or [None] * len(row.seeds)
    return [analyse_episode(trace_dir / f"{seed}.npz", seed, truncated, stall)
            for seed, truncated, stall in zip(row.seeds, row.truncated, stalls)
            if row.artifacts.get("traces") and (trace_dir / f"{seed}.npz").exists()]  # fmt: skip


def analyse_episode(trace_path: str | Path, seed: int, truncated: str | None, stall: dict | None = None) -> EpisodeFindings:
    trace = load_trace(trace_path)
    rewards, lives = trace["rewards"], trace["lives"].astype(int)
    moments = []
    lost_at = np.nonzero(np.diff(lives) < 0)[0] + 1
    for step in lost_at[:20]:
        moments.append(FailureMoment(kind="life_lost", step=int(step), detail=f"lives {lives[step - 1]} -> {lives[step]}"))
    negative = np.nonzero(rewards < 0)[0]
    for step in negative[:20]:
        moments.append(FailureMoment(kind="point_lost", step=int(step), detail=f"reward {rewards[step]:g}"))
    positive = np.concatenate([[-1], np.nonzero(rewards > 0)[0], [len(rewards)]])
    gaps = np.diff(positive)
    i = int(np.argmax(gaps)) if len(gaps) else 0
    longest, stall_start = (int(gaps[i]) - 1, int(positive[i]) + 1) if len(gaps) else (0, 0)
    if longest > 2000:
        moments.append(FailureMoment(kind="reward_stall", step=stall_start, detail=f"{longest} steps without reward"))
    period = find_loop_period(trace.get("ram"))
    if period:
        moments.append(FailureMoment(kind="periodic_loop", step=len(rewards) - period,
                                     detail=f"RAM states repeat every {period} steps"))  # fmt: skip
    if truncated == "time_limit":
        moments.append(FailureMoment(kind="timeout", step=len(rewards), detail="episode hit the frame cap"))
    if truncated == "stall" and stall:
        moments.append(FailureMoment(kind="stall_cut", step=int(stall["since_step"]), detail=describe_stall(stall)))
    ended_early = truncated is None and len(lives) > 0 and lives[-1] > 0
    if ended_early:
        moments.append(FailureMoment(kind="game_over", step=len(rewards),
                                     detail=f"the game ended with {lives[-1]} lives left"))  # fmt: skip
    return EpisodeFindings(
        seed=seed, length=len(rewards), score=float(rewards.sum()), lives_lost=len(lost_at),
        points_lost=len(negative), longest_stall=longest, stall_start=stall_start, loop_period=period,
        timeout=truncated == "time_limit", game_over_with_lives=ended_early,
        stall=stall if truncated == "stall" else None, moments=moments,
    )  # fmt: skip
