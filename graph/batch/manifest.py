"""The batch manifest, `batch.json` in the batch folder: the batch's settings and one entry per
cell (game × obs × protocol × repeat) with its run folder, state and result.

Only the batch process writes it, always whole and atomically (a temporary file renamed over
the old one), so a kill -9 at any moment leaves the previous version or the new one. Run
folders are named by cell (`<game slug>/<obs>/<cell id>/`), so a cell that was running when
the batch died is found again and resumed from its checkpoint.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

MANIFEST = "batch.json"
CellState = Literal["pending", "running", "done", "failed"]


class BatchSettings(BaseModel):
    """What a batch runs. Re-running the command with the same settings resumes the batch."""

    games: list[str]  # display names, in the order given
    suite: str | None = None  # the suite name the games came from (atari57, atari5, ...), if any
    obs: list[str]
    protocols: list[str]
    budget: int | None = None  # env steps per cell (None: graph.run's default)
    repeats: int = 1
    model: str = "auto"
    brains: str | None = None
    seed: int = 0  # repeat k runs with --seed seed + k - 1
    knobs: dict[str, str] = Field(default_factory=dict)  # HL_* variables every cell runs with

    def same_batch(self, other: BatchSettings) -> bool:
        return self.model_dump() == other.model_dump()


class CellResult(BaseModel):
    """A finished cell's numbers, from its graph.run summary (summary.json in the run folder)."""

    best_score: float | None = None
    best_hns: float | None = None
    holdout: str | None = None  # graph.run's holdout line ("19.3 over 10 holdout episodes")
    holdout_score: float | None = None
    robustness_protocol: str | None = None  # the protocol of the robustness check (Atari: ale-v5 after hl)
    robustness_score: float | None = None  # the best policy on its holdout seeds under that protocol
    env_steps: int = 0
    env_steps_to_best: int | None = None
    structure: str | None = None  # the controller structure of the best policy
    memory_at_start: int | None = None  # memory entries for this game when the run started (0: a first run)
    stop_reason: str | None = None
    wall_seconds: float | None = None


class Cell(BaseModel):
    id: str  # also the run id: "<slug>-<obs>-<protocol>-<repeat>"
    game: str
    obs: str
    protocol: str
    repeat: int  # 1-based
    run_dir: str  # relative to the batch folder
    state: CellState = "pending"
    attempts: int = 0  # times a graph.run was started for it (a resume counts)
    error: str | None = None  # why it failed, one line
    result: CellResult | None = None
    started: str | None = None  # ISO time of the latest attempt
    finished: str | None = None
    wall_seconds: float = 0.0  # over all attempts


class Manifest(BaseModel):
    command: Literal["graph.batch"] = "graph.batch"
    version: int = 1
    created: str = Field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    settings: BatchSettings
    cells: list[Cell]

    def cell(self, cell_id: str) -> Cell:
        return next(c for c in self.cells if c.id == cell_id)

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "running": 0, "done": 0, "failed": 0}
        for c in self.cells:
            out[c.state] += 1
        return out


class ManifestError(ValueError):
    """A batch folder that cannot be used: one line saying why."""


def cell_id(slug: str, obs: str, protocol: str, repeat: int) -> str:
    return f"{slug}-{obs}-{protocol}-{repeat}"


def read_manifest(batch_dir: Path) -> Manifest | None:
    """The manifest of a batch folder, or None when it has none."""
    path = Path(batch_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(path.read_text())
    except (ValidationError, ValueError):
        raise ManifestError(f"{path} is not a graph.batch manifest (another command's file, or damaged)") from None


def write_manifest(batch_dir: Path, manifest: Manifest) -> None:
    """Write batch.json whole, atomically (fsync, then rename over the old one)."""
    path = Path(batch_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest.model_dump(), indent=1))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
