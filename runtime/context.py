"""What nodes use but the checkpoint does not hold: the run folder, the step meter, the
ledger, memory, the tracer and the live display. Rebuilt from disk on --resume."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from envs.atari.games import GameSpec
from runtime.config import RunConfig
from record.tracing import Tracer
from record.ledger import Ledger
from record.meter import StepMeter
from record.workspace import HeuristicSystem


@dataclass
class RunContext:
    config: RunConfig
    game: GameSpec
    run_dir: Path
    meter: StepMeter
    memory: object | None = None  # memory.Memory; None when the store is unavailable
    display: object | None = None  # graph.run.LiveDisplay, or None when quiet
    extras: dict = field(default_factory=dict)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.run_dir / "trials.jsonl")

    @property
    def hs(self) -> HeuristicSystem:
        return HeuristicSystem(self.run_dir / "hs")

    @property
    def tracer(self) -> Tracer:
        return Tracer(self.run_dir / "trace.jsonl")

    def say(self, message: str) -> None:
        """A line for the live display (and the trace)."""
        if self.display is not None:
            self.display.note(message)
