"""Cell-archive search (Go-Explore style) on ale-py: find a scoring route through a
sparse-reward game by remembering every place reached and exploring onward from it.

    result = search_route("montezuma", "hl", StepMeter(budget=2_000_000), facts, max_steps=1_500_000)
    result.score, len(result.actions), result.stop_reason

The loop, in words:

1. A **cell** is a coarse description of where the player is: (room, score so far, player x
   and y rounded to `cell_px` pixels), positions from RAM readers the prober found (`facts`,
   see `route_facts_from_probe`); or, with `cells=ScreenCells(...)`, the score and the shrunk
   screen (tools/screen_cells.py), for games with no such readers. Nothing here knows a game.
2. The **archive** maps each cell to the shortest trajectory found that reaches it (its
   actions and the emulator state at its end, from `cloneState`).
3. Each iteration **selects** a cell at random, favouring cells that were chosen and seen
   less often and, strongly, cells of higher score levels; **restores** its state (free:
   no emulator step); and **explores** from there with random macro actions (an action
   held for a random number of steps) for up to `explore_frames` frames.
4. Every new cell reached is **added**, and a cell reached with the same score in fewer
   steps is **replaced** (the score is part of the key, so a higher score is a new cell).
   A life lost ends the exploration, and a cell is only added once the player has
   survived `confirm_frames` frames after reaching it (so the frames of a fatal fall are
   not archived as places to explore from). Trajectories in the archive never lose a life.
5. The best trajectory (highest score, then fewest steps) is replayed once from the start
   to record per-step readings (room, position, objects, score, lives) for the route policy.

Step accounting: every `ale.act` call is one env step of `frame_skip` frames, charged to the
meter as kind "search"; restores are free. The search asks `meter.allowance(...)` before each
exploration and stops cleanly (returning what it has) at the budget, `max_steps` or
`target_score`. It runs without sticky actions, so a trajectory replays exactly (the ledger says so).

Alignment with the evaluation harness (measured with EnvPool 1.2.5 and ale-py 0.12.1): an
EnvPool reset equals an ale-py `reset_game()` plus one frame of FIRE (protocols with fire
reset, `hl`) or NOOP (`ale-v5`), after which action index i of EnvPool's minimal action set
is `ale.getMinimalActionSet()[i]` held for `frame_skip` frames. With sticky actions off,
RAM matches byte for byte step after step under both protocols.

The archive can be saved (`archive_path`) and a later call continues from it, charging only
new steps; states that cannot be restored (another ale-py) are rebuilt by replay, charged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import BaseModel, Field

from envs.atari.emulator import Emulator  # noqa: F401 (callers and tests take it from here too)
from envs.atari.games import GameSpec, resolve_game
from envs.atari.protocols import Protocol, get_protocol
from record.meter import BudgetExhausted, StepMeter
from tools.explore_archive import Archive, Cell, archive_meta, load_archive, saved_cells
from tools.screen_cells import CALIBRATION_FRAMES, ScreenCells  # noqa: F401 (ScreenCells: a type in annotations)

MIN_FIT_R = 0.9  # a RAM byte must track the image position at least this well
GROWTH_DOUBLINGS = 4  # a cell that gave nothing new is explored up to 2**4 times further
FLAT_PX = 4.0  # an object whose other coordinate stayed within this many px gets a constant for it


# ============================================================================================
# Facts -> cells
# ============================================================================================


@dataclass(frozen=True)
class RamReader:
    """A screen coordinate read from RAM: pixel = a * ram[address] + b (address None: the
    constant b, for an object the probe only ever saw on one line)."""

    address: int | None
    a: float = 1.0
    b: float = 0.0

    def read(self, ram: np.ndarray) -> float:
        if self.address is None:
            return self.b
        return self.a * float(ram[self.address]) + self.b


@dataclass(frozen=True)
class ObjectReader:
    """One coordinate of a moving object the player does not control."""

    name: str
    axis: str  # "x" or "y"
    reader: RamReader


@dataclass(frozen=True)
class CellSpec:
    """How RAM (plus the score so far) becomes a cell key."""

    x: RamReader
    y: RamReader
    room: int | None = None  # RAM address of the room number, if the game has rooms
    lives: int | None = None  # RAM address of the lives counter (recorded for the policy)
    objects: tuple[ObjectReader, ...] = ()
    cell_px: float = 16.0  # cell size in screen pixels, both axes

    @staticmethod
    def from_facts(facts: dict, cell_px: float = 16.0) -> "CellSpec":
        ram = facts["ram"]

        def reader(d: dict) -> RamReader:
            address = d.get("address")
            return RamReader(None if address is None else int(address), float(d.get("a", 1.0)), float(d.get("b", 0.0)))

        objects = tuple(
            ObjectReader(o["name"], o["axis"], reader(o)) for o in (ram.get("objects") or [])
        )
        room = ram.get("room")
        lives = ram.get("lives")
        return CellSpec(
            x=reader(ram["player_x"]),
            y=reader(ram["player_y"]),
            room=int(room["address"]) if room else None,
            lives=int(lives["address"]) if lives else None,
            objects=objects,
            cell_px=float(cell_px),
        )

    def position(self, ram: np.ndarray) -> tuple[int, float, float]:
        """(room, x, y) in screen pixels; room 0 when the game has no room byte."""
        room = int(ram[self.room]) if self.room is not None else 0
        return room, self.x.read(ram), self.y.read(ram)

    def key(self, ram: np.ndarray, score: float) -> tuple:
        room, x, y = self.position(ram)
        return (room, int(score), int(x // self.cell_px), int(y // self.cell_px))

    def key_of(self, emu: "Emulator", score: float) -> tuple:
        return self.key(emu.ram(), score)

    def cell_of(self, emu: "Emulator") -> None:
        return None  # positions are recorded instead (the screen cells' route records its cells)

    def object_positions(self, ram: np.ndarray) -> list[float]:
        return [o.reader.read(ram) for o in self.objects]


def _fit_dict(fit) -> dict:
    return dict(address=int(fit.address), a=round(float(fit.a), 4), b=round(float(fit.b), 3), r=round(float(fit.r), 4))


def _best_fit(report, label: str):
    """The best fit for a label with |r| >= 0.9, same-step RAM (lag 0) preferred."""
    fits = [f for f in report.ram_fits.get(label, []) if abs(f.r) >= MIN_FIT_R]
    fits.sort(key=lambda f: (f.lag != 0, -abs(f.r)))
    return fits[0] if fits else None


def route_facts_from_probe(report) -> dict:
    """The facts the search and the route policy need, from a ProbeReport.

    Returns {"ram": {"player_x", "player_y", "room", "lives", "objects"}, "movement",
    "action_names", "moves"}. Player fits need |r| >= 0.9 (lag 0 preferred, else the best
    lag-1 fit: the search and the policy read RAM through the same map, so a one-step lag
    only shifts the pixel estimate). The room byte is the candidate whose perturbation
    redraws most of the screen (else the one that changed most with whole-screen changes).
    Objects are every other label with a good fit, one entry per axis; an object with a fit
    on one axis only, whose other coordinate stayed within FLAT_PX during the probe (an
    enemy rolling along a floor), gets that axis as a constant (address None, "constant":
    True): true in the room the probe saw, a guess elsewhere.
    Raises ValueError when the player's x or y cannot be read from RAM.
    """
    px, py = _best_fit(report, "player_x"), _best_fit(report, "player_y")
    if px is None or py is None:
        raise ValueError("the probe found no RAM byte for the player's x and y (|r| >= 0.9)")
    room = None
    if report.room_candidates:
        best = max(
            report.room_candidates,
            key=lambda c: (c.layout_change or 0.0, c.screen_change_agreement or 0.0, -c.n_values),
        )
        if (best.layout_change or 0.0) > 0.0 or (best.screen_change_agreement or 0.0) >= 0.5:
            room = dict(address=int(best.address))
    lives = dict(address=int(report.lives.address)) if report.lives is not None else None
    objects = []
    for label in sorted(report.ram_fits):
        if label.startswith("player_") or "_" not in label:
            continue
        name, axis = label.rsplit("_", 1)
        fit = _best_fit(report, label)
        if fit is None or axis not in ("x", "y"):
            continue
        if fit.address in (px.address, py.address):
            continue
        objects.append(dict(name=name, axis=axis, **_fit_dict(fit)))
    for info in report.objects:
        axes = {o["axis"] for o in objects if o["name"] == info.name}
        if len(axes) != 1:
            continue
        other = "y" if "x" in axes else "x"
        lo, hi = info.y_range if other == "y" else info.x_range
        if hi - lo <= FLAT_PX:
            objects.append(dict(name=info.name, axis=other, address=None, a=0.0, b=round((lo + hi) / 2, 2), r=None, constant=True))
    return dict(
        ram=dict(player_x=_fit_dict(px), player_y=_fit_dict(py), room=room, lives=lives, objects=objects),
        movement=report.movement.model_dump(),
        action_names=list(report.action_names),
        moves=[bool(report.player_moves_x), bool(report.player_moves_y)],
    )


# ============================================================================================
# Results
# ============================================================================================


class SearchConfig(BaseModel):
    """Knobs of the search (generic; none is tuned for a particular game)."""

    cell_px: float = Field(16.0, gt=0, description="cell size in screen pixels")
    explore_frames: int = Field(400, ge=4, description="frames explored from a selected cell")
    min_repeat_frames: int = Field(4, ge=1, description="a macro action is held at least this many frames")
    max_repeat_frames: int = Field(64, ge=1, description="... and at most this many")
    confirm_frames: int = Field(64, ge=0, description="survive this long after reaching a cell before it is archived")
    score_preference: float = Field(10.0, ge=1.0, description="selection weight factor per score level above the lowest")
    save_every_seconds: float = Field(60.0, gt=0, description="how often the archive is written during a long search")


class StepRecord(BaseModel):
    """What the RAM readers said before one action of the best trajectory."""

    room: int
    x: float
    y: float
    objects: list[float] = Field(default_factory=list, description="one coordinate per facts object reader")
    score: float = Field(description="score collected before this step")
    lives: int
    cell: int | None = Field(None, description="the screen cell (tools/screen_cells.py) when the search used screen cells")


class SearchResult(BaseModel):
    game: str
    protocol: str
    frame_skip: int
    sticky_actions: float = Field(0.0, description="the search runs without sticky actions")
    reset_action: int = Field(description="action index of the frame EnvPool plays at reset (FIRE or NOOP)")
    actions: list[int] = Field(description="the best trajectory, minimal-action-set indices, one per env step")
    records: list[StepRecord] = Field(description="readings before each action, plus one after the last")
    score: float
    steps_used: int = Field(description="env steps this call charged (search + final replay)")
    frames_used: int
    steps_total: int = Field(description="env steps of every call that built this archive")
    cells: int
    iterations: int
    stop_reason: str
    wall_seconds: float
    cell_px: float
    object_names: list[str] = Field(default_factory=list, description="'name_axis' per entry of records[i].objects")
    final_ram: list[int] = Field(default_factory=list, description="RAM after the last action of the best trajectory")
    emulated_steps: int = Field(0, description="env steps the emulator ran in this call (equals steps_used)")
    emulated_frames: int = Field(0, description="emulator frames run in this call (equals frames_used)")
    cell_shape: list[int] = Field(default_factory=list, description="screen cells: the grid's rows, columns and grey levels")


# ============================================================================================
# The search
# ============================================================================================


def _explore(emu: Emulator, archive: Archive, cell: Cell, spec: CellSpec, cfg: SearchConfig,
             rng: np.random.Generator, steps: int) -> tuple[int, bool]:
    """Explore `steps` env steps from `cell` with random macro actions.

    Returns (steps taken, whether a cell was added or improved). New cells wait in
    `pending` until the player has survived confirm_frames after reaching them."""
    fs = emu.frame_skip
    confirm = math.ceil(cfg.confirm_frames / fs)
    lo = max(1, cfg.min_repeat_frames // fs)
    hi = max(lo, cfg.max_repeat_frames // fs)
    n_actions = len(emu.actions)
    emu.restore(cell.state)
    lives0 = emu.lives()
    score = cell.score
    trail = bytearray()
    pending: dict[tuple, tuple[int, float, object]] = {}  # key -> (step reached, score, state)
    found = False
    action, hold = 0, 0

    def commit(key, step, cscore, state) -> bool:
        old = archive.cells.get(key)
        actions = cell.actions + bytes(trail[:step])
        if old is not None and len(actions) >= old.length:
            return False
        if old is None:
            archive.cells[key] = Cell(key, cscore, actions, state, lives0)
        else:
            old.actions, old.state, old.score, old.chosen_since_new = actions, state, cscore, 0
        return True

    taken = 0
    for t in range(1, steps + 1):
        if hold == 0:
            action, hold = int(rng.integers(n_actions)), int(rng.integers(lo, hi + 1))
        score += emu.step(action)
        trail.append(action)
        hold -= 1
        taken = t
        if emu.lives() < lives0 or emu.ale.game_over():
            return taken, found  # a life lost: nothing pending is kept
        key = spec.key_of(emu, score)
        old = archive.cells.get(key)
        if old is not None:
            old.seen += 1
        better = old is None or cell.length + t < old.length
        if better and key not in pending:
            pending[key] = (t, score, emu.clone())
        for k in [k for k, (s, _, _) in pending.items() if t - s >= confirm]:
            s, cscore, state = pending.pop(k)
            found |= commit(k, s, cscore, state)
    return taken, found


def search_route(
    game: str | GameSpec,
    protocol: str | Protocol,
    meter: StepMeter,
    facts: dict,
    *,
    max_steps: int,
    seed: int = 0,
    archive_path: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
    target_score: float | None = None,
    config: SearchConfig | None = None,
    counter_path: str | Path | None = None,
    cells: "CellSpec | ScreenCells | None" = None,
) -> SearchResult:
    """Search for a high-scoring trajectory with a cell archive; see the module docstring.

    `max_steps` caps the env steps of this call (the final replay included). With
    `archive_path`, an existing archive there is continued (its earlier steps are not
    charged again) and the archive is written back periodically and at the end.
    `progress` receives {"steps", "best_score", "cells", "iterations"} about once a second.
    `counter_path`: a file holding the env steps charged so far (8 bytes, little endian), so a
    search killed before its caller recorded them is still counted (evaluate.reconcile_interrupted).
    `cells`: how a moment becomes a cell: default the RAM positions in `facts`, or ScreenCells.
    """
    started = time.perf_counter()
    cfg = config or SearchConfig()
    spec_game = game if isinstance(game, GameSpec) else resolve_game(game)
    proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    cells_spec = cells if cells is not None else CellSpec.from_facts(facts, cfg.cell_px)
    emu = Emulator(spec_game, proto, seed)
    charges = _Charges(meter, proto.frame_skip, counter_path)
    archive_path = Path(archive_path) if archive_path else None
    if hasattr(cells_spec, "calibrate") and (saved := saved_cells(archive_path)) is not None:
        cells_spec = saved  # a continued search: the scale its archive was made at
    elif hasattr(cells_spec, "calibrate") and max_steps > 2 * CALIBRATION_FRAMES // proto.frame_skip:
        # Screen cells: pick the scale for this game (counted; a tiny search keeps the coarsest).
        meter.allowance(CALIBRATION_FRAMES // proto.frame_skip + 1)
        frames = emu.frames
        cells_spec, taken = cells_spec.calibrate(emu, seed)
        charges.charge(taken, emu.frames - frames)
    meta = archive_meta(spec_game, proto, cells_spec)
    archive = _open_archive(archive_path, meta, emu, cells_spec, charges)
    rng = np.random.default_rng(seed)
    if archive.rng_state is not None:
        rng.bit_generator.state = archive.rng_state
    run = _Search(emu, archive, cells_spec, cfg, rng, charges, archive_path, meta, progress)
    stop_reason = run.explore_until_done(max_steps, target_score)
    return run.finish(spec_game, proto, stop_reason, started)


class _Charges:
    """This call's side of the meter: charges as "search", the steps spent since the call
    began, and the counter file (`counter_path`) kept in step with them."""

    def __init__(self, meter: StepMeter, frame_skip: int, counter_path: str | Path | None):
        self.meter = meter
        self.fs = frame_skip
        self.used_before, self.frames_before = meter.used_steps, meter.used_frames
        self.counter = None
        if counter_path is not None:
            Path(counter_path).parent.mkdir(parents=True, exist_ok=True)
            Path(counter_path).write_bytes(bytes(8))
            self.counter = np.memmap(counter_path, dtype="<i8", mode="r+", shape=(1,))

    def charge(self, steps: int, frames: int | None = None) -> None:
        self.meter.charge(steps, steps * self.fs if frames is None else frames, "search")
        self.sync_counter()

    def sync_counter(self) -> None:
        if self.counter is not None:
            self.counter[0] = self.meter.used_steps - self.used_before

    def spent(self) -> int:
        return self.meter.used_steps - self.used_before

    def frames_spent(self) -> int:
        return self.meter.used_frames - self.frames_before


def _open_archive(archive_path: Path | None, meta: dict, emu: Emulator, cells_spec: CellSpec, charges: _Charges) -> Archive:
    """The saved archive at `archive_path` if there is one, else a new archive holding the
    start cell (the reset, one charged step)."""
    if archive_path is not None and archive_path.exists():
        return load_archive(archive_path, meta, emu, charges.meter)
    archive = Archive()
    charges.meter.allowance(1)
    emu.reset()
    charges.charge(1, 1)  # the reset frame
    start = Cell(cells_spec.key_of(emu, 0.0), 0.0, b"", emu.clone(), emu.lives())
    archive.cells[start.key] = start
    archive.steps_total += 1
    archive.frames_total += 1
    return archive


@dataclass
class _Search:
    """The select-restore-explore loop of one search_route call, and its final replay."""

    emu: Emulator
    archive: Archive
    cells_spec: "CellSpec | ScreenCells"
    cfg: SearchConfig
    rng: np.random.Generator
    charges: _Charges
    archive_path: Path | None
    meta: dict
    progress: Callable[[dict], None] | None

    def explore_until_done(self, max_steps: int, target_score: float | None) -> str:
        """Explore from selected cells until the target score, `max_steps` or the budget is
        reached; returns that stop reason. Keeps enough of max_steps and of the budget for
        the final replay of the best trajectory."""
        explore_steps = max(1, self.cfg.explore_frames // self.emu.frame_skip)
        last_report = last_save = time.perf_counter()
        while True:
            best = self.archive.best()
            if target_score is not None and best.score >= target_score:
                return "target_score"
            if max_steps - self.charges.spent() - (best.length + 1) <= 0:
                return "max_steps"
            cells, weights = self.archive.weights(self.cfg.score_preference)
            cell = cells[int(self.rng.choice(len(cells), p=weights))]
            # A cell whose last explorations found nothing new is explored further (up to
            # 16 times as far): a screen that stays the same for a while (an intro, a long
            # fall) is only left by going on long enough.
            wanted = explore_steps * 2 ** min(cell.chosen_since_new, GROWTH_DOUBLINGS)
            wanted = affordable(max_steps - self.charges.spent(), wanted, best.length, cell.length)
            if wanted == 0:
                return "max_steps"
            allowed = self._allowance(wanted, best.length, cell.length)
            if allowed == 0:
                return "budget"
            self._explore_from(cell, allowed)
            now = time.perf_counter()
            if self.progress and now - last_report > 1.0:
                self._report(self.archive.best().score)
                last_report = now
            if self.archive_path is not None and now - last_save > self.cfg.save_every_seconds:
                self._save()
                last_save = now

    def _allowance(self, wanted: int, best_length: int, cell_length: int) -> int:
        """Steps the next exploration may take; 0 when the budget cannot pay for one."""
        meter = self.charges.meter
        try:
            allowed = meter.allowance(wanted)
        except BudgetExhausted:
            return 0
        if allowed is not None and meter.remaining is not None:
            # What is left after this exploration must pay for the final replay.
            allowed = affordable(meter.remaining - meter.reserved, allowed, best_length, cell_length)
        return allowed

    def _explore_from(self, cell: Cell, allowed: int) -> None:
        """Explore up to `allowed` steps from `cell` and charge what was taken."""
        cell.chosen += 1
        cell.chosen_since_new += 1
        taken, found = _explore(self.emu, self.archive, cell, self.cells_spec, self.cfg, self.rng, allowed)
        if found:
            cell.chosen_since_new = 0
        self.charges.charge(taken)
        self.archive.steps_total += taken
        self.archive.frames_total += taken * self.emu.frame_skip
        self.archive.iterations += 1

    def _report(self, best_score: float) -> None:
        self.progress(dict(steps=self.charges.spent(), best_score=best_score, cells=len(self.archive.cells), iterations=self.archive.iterations))

    def _save(self) -> None:
        self.archive.rng_state = self.rng.bit_generator.state
        self.archive.save(self.archive_path, self.meta)

    def finish(self, game: GameSpec, protocol: Protocol, stop_reason: str, started: float) -> SearchResult:
        """Replay the best trajectory from the start for its per-step readings, save the
        archive, and put the result together."""
        emu, archive, fs = self.emu, self.archive, self.emu.frame_skip
        actions, records = replay(emu, self.cells_spec, list(archive.best().actions), self.charges.meter)
        self.charges.sync_counter()
        archive.steps_total += len(actions) + 1
        archive.frames_total += len(actions) * fs + 1
        archive.rng_state = self.rng.bit_generator.state
        if self.archive_path is not None:
            archive.save(self.archive_path, self.meta)
        final_score = records[-1].score
        if self.progress:
            self._report(final_score)
        return SearchResult(
            game=game.name, protocol=protocol.name, frame_skip=fs, reset_action=emu.reset_action,
            actions=actions, records=records, score=final_score, steps_used=self.charges.spent(),
            frames_used=self.charges.frames_spent(), steps_total=archive.steps_total, cells=len(archive.cells),
            iterations=archive.iterations, stop_reason=stop_reason, wall_seconds=round(time.perf_counter() - started, 2),
            cell_px=self.cfg.cell_px, object_names=[f"{o.name}_{o.axis}" for o in self.cells_spec.objects],
            final_ram=[int(v) for v in emu.ram()], emulated_steps=emu.steps, emulated_frames=emu.frames,
            cell_shape=list(getattr(self.cells_spec, "shape", ())),
        )  # fmt: skip


def affordable(room: int, wanted: int, best_length: int, cell_length: int) -> int:
    """The longest exploration (at most `wanted` steps) from a cell whose trajectory is
    `cell_length` long that leaves, of `room` steps, enough for the final replay of the best
    trajectory afterwards (one reset step plus its length: the current best's, or a new best
    found at the end of this exploration)."""
    room -= 1
    same_best = min(wanted, room - best_length, best_length - cell_length)  # a new best no longer than the old
    new_best = min(wanted, (room - cell_length) // 2)  # room for a new best as long as the exploration can make it
    if cell_length + new_best <= best_length:
        new_best = 0  # ... which would not be longer than the current best: the first case holds
    return max(0, same_best, new_best)


def replay(emu: Emulator, spec: "CellSpec | ScreenCells", actions: list[int], meter: StepMeter) -> tuple[list[int], list[StepRecord]]:
    """Play `actions` from the reset and record the readings before each step (and after the
    last). Charged to the meter as search steps, even past the allowance: the replay is the
    search's product and was budgeted for by the caller."""
    before = emu.steps
    emu.reset()
    score = 0.0

    def record() -> StepRecord:
        ram = emu.ram()
        room, x, y = spec.position(ram)
        return StepRecord(room=room, x=round(x, 2), y=round(y, 2), objects=[round(v, 2) for v in spec.object_positions(ram)],
                          score=score, lives=emu.lives(), cell=spec.cell_of(emu))  # fmt: skip

    records = []
    for a in actions:
        records.append(record())
        score += emu.step(a)
    records.append(record())
    taken = emu.steps - before
    meter.charge(taken, (taken - 1) * emu.frame_skip + 1, "search")
    return actions, records
