"""What nodes and roles use but the checkpoint does not hold: the run folder, the step meter,
the ledger, memory, the tracer, the live display and the model session. Rebuilt from disk
on --resume (graph/run.py and graph/studio.py build it the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.base import EnvFamily, EnvProtocol, EnvSpec
from envs.registry import family_of
from evaluation.rollout import StallRule
from record.ledger import Ledger
from record.meter import StepMeter
from record.tracing import Tracer
from record.workspace import HeuristicSystem
from runtime.config import RunConfig


@dataclass
class RunContext:
    config: RunConfig
    game: EnvSpec
    run_dir: Path
    meter: StepMeter
    memory: Any | None = None  # memory.Memory (wrapped in ResilientMemory); None when unavailable
    display: Any | None = None  # graph.display.LiveDisplay, or None when quiet
    llm: Any | None = None  # agents.llm.session.LLMSession when a role has an LLM brain
    ceiling_raised: bool = False  # --resume raised --max-cost-usd: a run paused at the ceiling may go on
    # What evaluations watch for a stall: the detector facts' `progress_watch` (any family's
    # facts may name one), set from the state before each node runs (graph/build.py).
    progress_watch: tuple[int, ...] = ()
    budget_note: str = ""  # what the budget plan decided, said before a new run starts (runtime/budget.py)

    def stall_rule(self) -> StallRule | None:
        """The rule that cuts episodes without progress, when the run knows what to watch."""
        if not self.progress_watch or not self.config.stall_frames:
            return None
        return StallRule(self.config.stall_frames, self.progress_watch)

    @property
    def family(self) -> EnvFamily:
        return family_of(self.game)

    @property
    def protocol(self) -> EnvProtocol:
        """The run's protocol with its settings (the config holds its name)."""
        return self.family.get_protocol(self.config.protocol)

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


def seeds_differ(ctx: RunContext) -> bool:
    """Whether the run's protocol plays each seed as a different game (Atari ale-v5: sticky
    actions). Where it does not (hl), one episode of a deterministic policy says it all, and a
    structure's robustness features never act."""
    return ctx.family.robustness_protocol(ctx.config.protocol) is None
