"""One step meter for a run: every env step taken by probing, evaluation, tuning or search
is charged here, and work stops cleanly when the budget is spent.

Workers are separate processes, so the meter never hands out more than it has: a caller
asks for an `allowance`, the worker stops at that many steps, and the caller charges what
was actually used.
"""

from __future__ import annotations

from collections import defaultdict


class BudgetExhausted(RuntimeError):
    """Raised when work is requested after the run's env-step budget is spent."""


class StepMeter:
    def __init__(self, budget: int | None = None, used_steps: int = 0, used_frames: int = 0):
        if budget is not None and budget < 0:
            raise ValueError("budget must be non-negative")
        self.budget = budget
        self.used_steps = used_steps
        self.used_frames = used_frames
        self.steps_by_kind: dict[str, int] = defaultdict(int)
        # Steps set aside for a final evaluation (the holdout report): ordinary work cannot
        # take them, work that passes use_reserve=True can.
        self.reserved = 0

    @property
    def remaining(self) -> int | None:
        """Env steps left, or None for an unlimited meter."""
        if self.budget is None:
            return None
        return max(0, self.budget - self.used_steps)

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0

    def allowance(self, wanted: int | None = None, use_reserve: bool = False) -> int | None:
        """How many steps the next piece of work may take (None: no limit).

        Raises BudgetExhausted when nothing is left, so work never starts on an empty budget.
        """
        remaining = self.remaining
        if remaining is None:
            return wanted
        if not use_reserve:
            remaining = max(0, remaining - self.reserved)
        if remaining == 0:
            held = f", {self.reserved:,} held for the final evaluation" if self.reserved and not use_reserve else ""
            raise BudgetExhausted(f"env-step budget spent ({self.used_steps:,} of {self.budget:,}{held})")
        return remaining if wanted is None else min(wanted, remaining)

    def charge(self, steps: int, frames: int, kind: str) -> None:
        """Record steps actually taken. Over-charging past the budget is a bug upstream."""
        if steps < 0 or frames < 0:
            raise ValueError("cannot charge negative steps")
        self.used_steps += steps
        self.used_frames += frames
        self.steps_by_kind[kind] += steps
