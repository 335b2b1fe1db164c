"""Long-term memory shared across runs (Chroma): failures, directions tried, game facts."""

from memory.store import (
    DIRECTIONS,
    FACTS,
    FAILURES,
    DirectionEntry,
    Entry,
    FactEntry,
    FailureEntry,
    HashingEmbedding,
    Memory,
    MemoryUnavailable,
    best_policy_key,
    game_key,
)

__all__ = [
    "DIRECTIONS",
    "FACTS",
    "FAILURES",
    "DirectionEntry",
    "Entry",
    "FactEntry",
    "FailureEntry",
    "HashingEmbedding",
    "Memory",
    "MemoryUnavailable",
    "best_policy_key",
    "game_key",
]
