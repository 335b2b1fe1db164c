"""The cell archive of the route search (tools/explore.py): each cell with the shortest
trajectory found that reaches it and the emulator state at its end, the Go-Explore
selection weights, and saving and loading (a later search continues from a saved archive).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from envs.atari.games import GameSpec
from envs.atari.protocols import Protocol
from record.meter import StepMeter

if TYPE_CHECKING:
    from tools.explore import CellSpec, Emulator

ARCHIVE_VERSION = 1


@dataclass
class Cell:
    key: tuple
    score: float
    actions: bytes  # the trajectory from the reset to this cell (action indices < 256)
    state: object  # ale_py.ALEState at the end of `actions`
    lives: int
    seen: int = 0  # times any exploration passed through this cell
    chosen: int = 0  # times selected to explore from
    chosen_since_new: int = 0  # ... since exploring from it last found or improved a cell

    @property
    def length(self) -> int:
        return len(self.actions)


@dataclass
class Archive:
    cells: dict[tuple, Cell] = field(default_factory=dict)
    steps_total: int = 0
    frames_total: int = 0
    iterations: int = 0
    rng_state: dict | None = None

    def best(self) -> Cell:
        """Highest score, then shortest trajectory (the moment the score was reached). While
        nothing has scored above the start (0), the longest trajectory at the top level: the
        furthest the search went without losing a point (in a game whose rewards are only
        penalties, the reset itself would otherwise be the best route)."""
        top = max(c.score for c in self.cells.values())
        if top <= 0:
            return max((c for c in self.cells.values() if c.score == top), key=lambda c: c.length)
        return max(self.cells.values(), key=lambda c: (c.score, -c.length))

    def weights(self, score_preference: float) -> tuple[list[Cell], np.ndarray]:
        """Go-Explore selection weights: rarely chosen / rarely seen cells, higher score levels."""
        cells = list(self.cells.values())
        chosen = np.array([c.chosen for c in cells], dtype=np.float64)
        since = np.array([c.chosen_since_new for c in cells], dtype=np.float64)
        seen = np.array([c.seen for c in cells], dtype=np.float64)
        w = 1.0 / np.sqrt(chosen + 1) + 1.0 / np.sqrt(since + 1) + 0.5 / np.sqrt(seen + 1)
        levels = sorted({c.score for c in cells})
        rank = {s: i for i, s in enumerate(levels)}
        top = len(levels) - 1  # relative to the top level: hundreds of levels would overflow a float
        w *= np.array([score_preference ** (rank[c.score] - top) for c in cells])
        return cells, w / w.sum()

    def save(self, path: Path, meta: dict) -> None:
        """Write the archive (states serialised) atomically."""
        data = dict(
            version=ARCHIVE_VERSION,
            meta=meta,
            steps_total=self.steps_total,
            frames_total=self.frames_total,
            iterations=self.iterations,
            rng_state=self.rng_state,
            cells=[
                dict(key=c.key, score=c.score, actions=c.actions, state=c.state.serialize(), lives=c.lives,
                     seen=c.seen, chosen=c.chosen, chosen_since_new=c.chosen_since_new)
                for c in self.cells.values()
            ],
        )  # fmt: skip
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)


def archive_meta(spec: GameSpec, protocol: Protocol, cells: CellSpec) -> dict:
    import ale_py

    return dict(rom=spec.rom, protocol=protocol.name, frame_skip=protocol.frame_skip, use_fire_reset=protocol.use_fire_reset,
                cell_spec=repr(cells), cells=cells, ale_py=ale_py.__version__)  # fmt: skip


def saved_cells(path: Path | None) -> object | None:
    """The cell spec a saved archive was made with (a continued search keeps it: a spec
    calibrated anew could differ), or None when there is no archive there."""
    if path is None or not Path(path).exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)["meta"].get("cells")


def load_archive(path: Path, meta: dict, emu: Emulator, meter: StepMeter) -> Archive:
    """Read a saved archive. States that cannot be restored are rebuilt by replaying each
    cell's actions from the reset; those steps are charged to the meter ("search")."""
    from ale_py import ALEState

    with open(path, "rb") as f:
        data = pickle.load(f)
    if data.get("version") != ARCHIVE_VERSION:
        raise ValueError(f"{path}: archive version {data.get('version')} is not {ARCHIVE_VERSION}")
    old = data["meta"]
    for k in ("rom", "frame_skip", "use_fire_reset", "cell_spec"):
        if old.get(k) != meta.get(k):
            raise ValueError(f"{path}: archive was made with {k}={old.get(k)!r}, not {meta.get(k)!r}")
    archive = Archive(steps_total=data["steps_total"], frames_total=data["frames_total"],
                      iterations=data["iterations"], rng_state=data["rng_state"])  # fmt: skip
    rebuild = old.get("ale_py") != meta.get("ale_py")
    for d in data["cells"]:
        state = None
        if not rebuild:
            try:
                state = ALEState(d["state"])
            except Exception:  # noqa: BLE001 - any failure means: rebuild from actions
                state = None
        if state is None:
            state = _replay_state(emu, d["actions"], meter)
        archive.cells[tuple(d["key"])] = Cell(
            key=tuple(d["key"]), score=d["score"], actions=d["actions"], state=state, lives=d["lives"],
            seen=d["seen"], chosen=d["chosen"], chosen_since_new=d["chosen_since_new"],
        )  # fmt: skip
    return archive


def _replay_state(emu: Emulator, actions: bytes, meter: StepMeter):
    needed = len(actions) + 1
    meter.allowance(needed)
    before = emu.steps
    emu.reset()
    for a in actions:
        emu.step(a)
    taken = emu.steps - before
    meter.charge(taken, (taken - 1) * emu.frame_skip + 1, "search")
    return emu.clone()
