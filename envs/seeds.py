"""Seed splits. dev seeds are for tuning and iteration, holdout seeds only for evaluating
accepted candidates, audit seeds only for the final report. Tuning code calls
`require_tuning_split` and so refuses holdout and audit seeds.

Splits are disjoint ranges, so a seed alone says which split it belongs to.
"""

from __future__ import annotations

SPLIT_BASES = {"dev": 0, "holdout": 1_000_000, "audit": 2_000_000}
SPLIT_SIZE = 1_000_000
TUNING_SPLITS = ("dev",)


class SeedSplitError(ValueError):
    pass


def split_seeds(split: str, episodes: int, offset: int = 0) -> list[int]:
    """The first `episodes` seeds of a split (after `offset`)."""
    if split not in SPLIT_BASES:
        raise SeedSplitError(f"unknown split {split!r}; choose one of: {', '.join(SPLIT_BASES)}")
    if episodes < 1:
        raise SeedSplitError("episodes must be at least 1")
    if offset < 0 or offset + episodes > SPLIT_SIZE:
        raise SeedSplitError(f"seed offset {offset} out of range for split {split!r}")
    base = SPLIT_BASES[split] + offset
    return list(range(base, base + episodes))


def split_of(seed: int) -> str:
    for split, base in SPLIT_BASES.items():
        if base <= seed < base + SPLIT_SIZE:
            return split
    raise SeedSplitError(f"seed {seed} belongs to no split")


def require_tuning_split(seeds: list[int]) -> None:
    """Raise if any seed is a holdout or audit seed: those are never used for tuning."""
    bad = sorted({split_of(s) for s in seeds} - set(TUNING_SPLITS))
    if bad:
        raise SeedSplitError(f"tuning may only use dev seeds, not {' or '.join(bad)} seeds")
