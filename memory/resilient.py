"""Memory is advice, not a dependency: a failing store (a local store opened by two runs at
once, a server that went away) must not crash a run. ResilientMemory forwards every call to
a Memory and turns an exception into an empty answer, a warning line and a trace entry."""

from __future__ import annotations

from typing import Callable


class ResilientMemory:
    def __init__(self, memory, on_error: Callable[[str, str], None] | None = None):
        self._memory = memory
        self._on_error = on_error
        self.errors: list[str] = []

    def __getattr__(self, name: str):
        target = getattr(self._memory, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            try:
                return target(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any store failure degrades to "no memory"
                message = f"memory.{name} failed: {type(err).__name__}: {str(err)[:200]}"
                self.errors.append(message)
                if self._on_error:
                    self._on_error(name, message)
                return _EMPTY.get(name)

        return call


# What each query returns when the store cannot answer: "nothing remembered".
_EMPTY = {"facts": {}, "similar_failures": [], "rejected_directions": [], "directions": [], "was_rejected": None,
          "count": {}, "add_failure": None, "add_direction": None, "add_fact": None}  # fmt: skip
