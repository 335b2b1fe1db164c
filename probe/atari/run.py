"""probe_game: the orchestration of the phases, the summaries and the outputs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from envs.atari.games import GameSpec
from envs.atari.protocols import PROTOCOLS, Protocol
from probe.atari.actions import ActionExperiment, action_phase, movement_labels
from probe.atari.contacts import type_contacts
from probe.atari.drawing import draw_actions, draw_objects, draw_room
from probe.atari.markdown import write_markdown
from probe.atari.metered_env import BudgetCut, MeteredEnv
from probe.atari.objects import sighting_speeds
from probe.atari.perturb import perturb_layout
from probe.atari.ram import find_lives_byte, fit_ram, merge_room_candidates, passive_room_candidates
from probe.atari.recording import Labeller, Recording, record
from probe.atari.report import ObjectInfo, Playfield, ProbeConfig, ProbeReport
from probe.atari.segmentation import hex_colour, unpack_rgb
from probe.atari.tracking import PlayerModel
from record.meter import StepMeter

OUTPUT_FILES = ("probe.json", "probe.md", "objects.png", "actions.png", "room.png")


def probe_game(
    game: GameSpec,
    out_dir: Path,
    meter: StepMeter,
    obs_mode: str = "ram",
    protocol: Protocol = PROTOCOLS["hl"],
    seed: int = 0,
    config: ProbeConfig | None = None,
) -> ProbeReport:
    """Discover a game's actions, player, moving objects and (in ram mode) RAM layout.

    Writes probe.json, probe.md and pictures into `out_dir` and returns the ProbeReport.
    Every env step is charged to `meter` as "probe" (about 3,000-15,000 steps with the default
    config). Raises BudgetExhausted if the meter is already spent and FileExistsError if
    `out_dir` already holds probe outputs; if the budget runs out midway the report comes
    back with partial=True. In vision mode no RAM is read or reported.
    """
    started = time.perf_counter()
    config = config or ProbeConfig()
    out_dir = Path(out_dir)
    existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite probe outputs in {out_dir}: {', '.join(existing)}")
    if obs_mode not in ("ram", "vision"):
        raise ValueError(f"unknown obs mode {obs_mode!r}")
    meter.allowance()  # raises BudgetExhausted before any work on a spent budget
    use_ram = obs_mode == "ram"
    names = game.action_meanings()
    counts = {"envpool_steps": 0, "ale_frames": 0, "env_frames": 0}
    notes: list[str] = []
    report = ProbeReport(
        game=game.name, task_id=game.task_id, protocol=protocol.name, obs_mode=obs_mode, seed=seed,
        config=config, action_names=names, hold_steps=config.hold_steps, ram_analysis=use_ram,
    )
    exps: list[ActionExperiment] = []
    recording: Recording | None = None
    labeller: Labeller | None = None
    model: PlayerModel | None = None
    perturbation: tuple[dict, list] | None = None

    try:
        # ---- Phase 1: what each action does -------------------------------------------------
        env = MeteredEnv(game, protocol, len(names), seed, meter, counts)
        try:
            exps, model, report.actions = action_phase(env, names, config, use_ram, report, notes)
        finally:
            env.close()
        report.movement = movement_labels(report.actions)

        # ---- Phase 2: recording rollout, objects and labels --------------------------------
        # On a tight budget the recording shrinks so the perturbation experiment still fits.
        record_config = config
        reserve = report.warmup_steps + config.hold_steps + 3 * (1 + 2 * 128) if use_ram and config.perturb_ram else 0
        if meter.remaining is not None and meter.remaining - reserve < config.record_steps:
            steps = max(0, meter.remaining - reserve)
            record_config = config.model_copy(update={"record_steps": steps})
            report.partial = True
            notes.append(f"recording shortened to {steps} steps to fit the budget")
        env = MeteredEnv(game, protocol, config.record_envs, seed, meter, counts)
        try:
            recording, labeller = record(env, len(names), report.warmup_steps, model, record_config, seed, notes, keep_ram=use_ram)
        finally:
            env.close()
        if recording.cut:
            report.partial = True

        # ---- Phase 3: RAM perturbation for layout bytes (needs the recording's rare bytes) -
        if use_ram and config.perturb_ram and recording.steps > 1:
            passive, rare = passive_room_candidates(recording)
            report.room_candidates = passive
            perturbation = perturb_layout(game, seed, report.warmup_steps + config.hold_steps, rare, meter, counts)
    except BudgetCut as cut:
        report.partial = True
        notes.append(f"budget ran out: {cut}; later phases skipped")

    # ---- Summaries (no env steps from here on) ----------------------------------------------
    if labeller is not None:
        summarise_things(report, labeller, model, len(recording.sample_step))
        type_contacts(report.objects, labeller.types, labeller.player_boxes, recording, protocol.frame_skip)
    if recording is not None:
        report.recorded_steps = int(recording.steps * recording.rams.shape[0])
        report.labelled_frames = len(recording.sample_step)
        if use_ram:
            report.ram_fits = fit_ram(recording)
            report.lives = find_lives_byte(recording)
    if perturbation is not None:
        report.room_candidates = merge_room_candidates(report.room_candidates, perturbation[0], recording)

    report.envpool_steps = counts["envpool_steps"]
    report.ale_frames = counts["ale_frames"]
    report.env_steps = counts["envpool_steps"] + counts["ale_frames"]
    report.env_frames = counts["env_frames"]
    report.notes = notes

    write_outputs(report, out_dir, labeller, exps, perturbation, started)
    return report


def write_outputs(
    report: ProbeReport, out_dir: Path, labeller: Labeller | None, exps: list[ActionExperiment], perturbation: tuple[dict, list] | None, started: float
) -> None:
    """The pictures there is material for, then probe.json and probe.md (the report's
    images and wall_seconds are filled in here, before it is written)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if labeller is not None and labeller.best_frame is not None:
        draw_objects(labeller.best_frame[1], labeller.best_frame[2], out_dir / "objects.png")
        report.images.append("objects.png")
    if exps and report.actions:
        draw_actions(exps, report.actions, out_dir / "actions.png")
        report.images.append("actions.png")
    if perturbation is not None and any(c.layout_change for c in report.room_candidates):
        draw_room(perturbation[1], report.room_candidates, out_dir / "room.png")
        report.images.append("room.png")
    report.wall_seconds = round(time.perf_counter() - started, 2)
    (out_dir / "probe.json").write_text(report.model_dump_json(indent=2))
    write_markdown(report, out_dir / "probe.md")


def summarise_things(report: ProbeReport, labeller: Labeller, model: PlayerModel | None, n_samples: int) -> None:
    """Fill report.player, objects, playfield and changing_region from the labelled frames."""
    if model is not None:
        sightings = [(e, t, np.array([(x0 + x1) / 2]), np.array([(y0 + y1) / 2])) for e, t, x0, y0, x1, y1 in labeller.player_boxes]
        report.player = _object_info("player", model.colour, model.width, model.height, model.area, sightings, n_samples)
        report.player.labels = [label for label, moves in (("player_x", model.moves_x), ("player_y", model.moves_y)) if moves]
    for k, t in enumerate(labeller.types):
        info = _object_info(f"obj{k}", t.colour, t.width, t.height, t.area, t.records, n_samples)
        info.labels = [f"obj{k}_x", f"obj{k}_y"]
        report.objects.append(info)
    boxes = [b[2:] for b in labeller.player_boxes]
    report.playfield = _bounds(boxes + _object_boxes(labeller))
    if not labeller.scenery.constant.all():
        ys, xs = np.nonzero(~labeller.scenery.constant)
        report.changing_region = Playfield(left=int(xs.min()), top=int(ys.min()), right=int(xs.max()), bottom=int(ys.max()))


def _object_boxes(labeller: Labeller) -> list[tuple[int, int, int, int]]:
    """Rough boxes of every object sighting (centre +- half the type's size)."""
    boxes = []
    for t in labeller.types:
        for r in t.records:
            for x, y in zip(r[2], r[3]):
                boxes.append((int(x - t.width / 2), int(y - t.height / 2), int(x + t.width / 2), int(y + t.height / 2)))
    return boxes


def _object_info(name: str, colour: int, width: float, height: float, area: float, records: list, n_frames: int) -> ObjectInfo:
    """Summarise sightings (env, step, xs, ys) of one kind of blob."""
    xs = np.concatenate([r[2] for r in records]) if records else np.zeros(1)
    ys = np.concatenate([r[3] for r in records]) if records else np.zeros(1)
    speeds = sighting_speeds(records)
    return ObjectInfo(
        name=name,
        colour=unpack_rgb(colour),
        colour_hex=hex_colour(colour),
        width=round(float(width), 1),
        height=round(float(height), 1),
        area=round(float(area), 1),
        instances_per_frame=round(float(np.mean([len(r[2]) for r in records])) if records else 0.0, 2),
        visible_fraction=round(len(records) / max(1, n_frames), 3),
        mean_speed=round(float(speeds.mean()) if speeds.size else 0.0, 3),
        speed_p95=round(float(np.percentile(speeds, 95)) if speeds.size else 0.0, 3),
        x_range=[round(float(xs.min()), 1), round(float(xs.max()), 1)],
        y_range=[round(float(ys.min()), 1), round(float(ys.max()), 1)],
    )


def _bounds(boxes: list[tuple[int, int, int, int]]) -> Playfield | None:
    if not boxes:
        return None
    b = np.asarray(boxes)
    return Playfield(left=int(b[:, 0].min()), top=int(b[:, 1].min()), right=int(b[:, 2].max()), bottom=int(b[:, 3].max()))
