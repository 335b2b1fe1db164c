"""Phase 2, the recording rollout: discover object types, then label sampled frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from probe.atari.metered_env import BudgetCut, MeteredEnv
from probe.atari.objects import ObjectType, group_object_types
from probe.atari.report import ProbeConfig
from probe.atari.segmentation import Blobs, find_blobs, mode_colour, pack_rgb, unpack_keys
from probe.atari.tracking import Follower, PlayerModel, PlayerTracker, Scenery


def action_schedule(num_actions: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Random actions mixed with long holds, so the player both jitters and sweeps its range."""
    out = np.empty(steps, dtype=np.int32)
    t = 0
    while t < steps:
        n = int(rng.integers(16, 65)) if rng.random() < 0.5 else int(rng.integers(1, 7))
        out[t : t + n] = rng.integers(num_actions)
        t += n
    return out


@dataclass
class Recording:
    """The recording rollout: per-step RAM and lives, labelled positions at sampled steps."""

    rams: np.ndarray  # (envs, T, 128)
    lives: np.ndarray  # (envs, T)
    rewards: np.ndarray  # (envs, T)
    fresh: np.ndarray  # (envs, T) the env was reset at this step
    screen_change: np.ndarray  # (envs, T) fraction of pixels changed since the previous step
    sample_env: list = field(default_factory=list)
    sample_step: list = field(default_factory=list)
    sample_labels: list = field(default_factory=list)  # dict label -> value per sample
    steps: int = 0  # steps recorded per env
    cut: bool = False


class Labeller:
    """Turns a frame into position labels: the player and every moving object type."""

    def __init__(self, player: PlayerModel | None, background: int, scenery: Scenery, stride: int, envs: int, rest_steps: int):
        self.player = player
        self.background = background
        self.scenery = scenery
        self.types: list[ObjectType] = []
        jump = 3 * max(player.width, player.height) + 8 * stride if player else 0
        self.trackers = [PlayerTracker(player, True, jump, scenery) for _ in range(envs)] if player else []
        self.envs, self.stride = envs, stride
        self.rest_samples = max(1, rest_steps // stride)
        self.prev_keys: list[np.ndarray | None] = [None] * envs
        self.age = [np.zeros(scenery.static.shape, dtype=np.int32) for _ in range(envs)]  # samples unchanged
        self.followers: list[list[Follower]] = []  # [env][type], for single-instance types
        self.player_boxes: list = []  # (env, step, x0, y0, x1, y1) of every player sighting
        self.best_frame: tuple | None = None  # (score, rgb frame, detections)

    def set_types(self, types: list[ObjectType]) -> None:
        """Use these object types from now on; single ones get a Follower per env that
        refuses jumps a few times longer than the type's fastest observed motion."""
        self.types = types
        self.followers = []
        for _ in range(self.envs):
            row = []
            for t in types:
                speed = np.percentile(t.speeds, 95) if t.speeds.size else 4.0
                row.append(Follower(3 * max(t.width, t.height) + 3 * self.stride * max(speed, 1.0) + 8, trust_unique=True))
            self.followers.append(row)

    def reset_env(self, env: int) -> None:
        """An episode restarted in this env: forget where things were."""
        self.prev_keys[env] = None
        self.age[env][:] = 0
        if self.trackers:
            self.trackers[env].reset()
        for f in self.followers[env] if self.followers else []:
            f.reset()

    def foreground(self, env: int, keys: np.ndarray, player_blob: Blobs | None) -> Blobs:
        """Blobs with some pixel that is neither unchanged scenery nor resting (unchanged for
        `rest_steps`, like a score digit that changed once), minus the player's.

        Blobs are segmented on the whole frame (only the background ignored) and then kept or
        dropped whole, so an invader half over its old position is not cut into fragments."""
        prev = self.prev_keys[env]
        age = self.age[env]
        if prev is None:
            age[:] = 0
        else:
            np.copyto(age, np.where(keys == prev, age + 1, 0))
        self.prev_keys[env] = keys
        blobs, labels = find_blobs(keys, ignore=keys == self.background, label_map=True)
        if len(blobs):
            lively = (age < self.rest_samples) & ~self.scenery.unchanged(keys) & (labels >= 0)
            blobs.fresh = np.bincount(labels[lively & (age == 0)], minlength=len(blobs)) > 0
            blobs = blobs.take(np.bincount(labels[lively], minlength=len(blobs)) > 0)
        if player_blob is not None and len(blobs):
            p = player_blob
            pad_x, pad_y = 0.5 * float(p.width[0]), 0.5 * float(p.height[0])
            near = (
                (blobs.x1 >= p.x0[0] - pad_x) & (blobs.x0 <= p.x1[0] + pad_x)
                & (blobs.y1 >= p.y0[0] - pad_y) & (blobs.y0 <= p.y1[0] + pad_y)
            )
            blobs = blobs.take(~near)
        return blobs

    def player_blob(self, env: int, step: int, keys: np.ndarray) -> Blobs | None:
        if not self.trackers:
            return None
        blob = self.trackers[env].locate(keys)
        if blob is not None:
            self.player_boxes.append((env, step, int(blob.x0[0]), int(blob.y0[0]), int(blob.x1[0]), int(blob.y1[0])))
        return blob

    def labels(self, env: int, step: int, player_blob: Blobs | None, blobs: Blobs) -> tuple[dict, list]:
        """Position labels for one frame, and the boxes detected (for the overview picture)."""
        out: dict[str, float] = {}
        boxes = []
        if player_blob is not None:
            # Label only a whole player: the centre of a sprite half hidden behind a wall
            # is not where the game thinks the player is.
            if 0.75 <= player_blob.area[0] / self.player.area <= 1.5:
                out["player_x"], out["player_y"] = float(player_blob.cx[0]), float(player_blob.cy[0])
            boxes.append(("player", player_blob))
        for k, t in enumerate(self.types):
            m = t.matches(blobs)
            if not m.any():
                continue
            found = blobs.take(m)
            if t.single:  # one thing (a ball): follow it, ignore look-alikes (score digits)
                best = self.followers[env][k].pick(found)
                if best is None:
                    continue
                found = found.take([best])
                out[f"obj{k}_x"], out[f"obj{k}_y"] = float(found.cx[0]), float(found.cy[0])
            else:  # a group (a formation): its top-left corner
                out[f"obj{k}_x"], out[f"obj{k}_y"] = float(found.x0.min()), float(found.y0.min())
            t.records.append((env, step, found.cx, found.cy))
            boxes.append((f"obj{k}", found))
        return out, boxes


def record(
    env: MeteredEnv,
    num_actions: int,
    warmup: int,
    player: PlayerModel | None,
    config: ProbeConfig,
    seed: int,
    notes: list[str],
    keep_ram: bool = True,
) -> tuple[Recording, Labeller | None]:
    """Run the recording rollout: discover object types on the first frames, then label
    every `sample_stride`-th frame while logging lives, screen changes and (keep_ram) RAM
    every step. Actions: random ones mixed with long holds (action_schedule), per env."""
    n, stride = env.n, config.sample_stride
    total = max(0, config.record_steps // n)
    rng = np.random.default_rng(seed)
    schedules = np.stack([action_schedule(num_actions, total, rng) for _ in range(n)])
    schedules[:, : min(warmup, total)] = 0  # nothing responds during the warm-up anyway
    rec = Recording(
        rams=np.zeros((n, total, 128), dtype=np.uint8),
        lives=np.zeros((n, total), dtype=np.int32),
        rewards=np.zeros((n, total)),
        fresh=np.zeros((n, total), dtype=bool),
        screen_change=np.zeros((n, total)),
    )
    discover_end = min(total, warmup + config.discover_steps)
    stored: list[tuple[int, int, np.ndarray, bool]] = []  # (env, step, keys, restarted) during discovery
    labeller: Labeller | None = None
    restarted = np.zeros(n, dtype=bool)  # an episode restarted since the env's last sample

    frames, _, _ = env.reset()
    prev = frames
    try:
        for t in range(total):
            frames, rams, lives, fresh = env.step(schedules[:, t])
            rec.lives[:, t], rec.fresh[:, t], rec.rewards[:, t] = lives, fresh, env.last_rewards
            if keep_ram:
                rec.rams[:, t] = rams
            rec.screen_change[:, t] = (frames != prev).any(axis=1).mean(axis=(1, 2))
            prev = frames
            rec.steps = t + 1
            restarted |= fresh
            if t >= warmup and t % stride == 0:
                keys = pack_rgb(frames)
                if labeller is None:
                    stored.extend((e, t, keys[e], bool(restarted[e])) for e in range(n))
                else:
                    for e in range(n):
                        _label_sample(labeller, rec, e, t, keys[e], frames[e], bool(restarted[e]))
                restarted[:] = False
            if t + 1 == discover_end and labeller is None:
                labeller = _discover(stored, player, rec, stride, n, config.rest_steps, notes)
                stored = []
    except BudgetCut as cut:
        rec.cut = True
        notes.append(f"budget ran out during the recording after {rec.steps} steps per env ({cut})")
    if labeller is None and stored:
        labeller = _discover(stored, player, rec, stride, n, config.rest_steps, notes)
    for name in ("rams", "lives", "rewards", "fresh", "screen_change"):
        setattr(rec, name, getattr(rec, name)[:, : rec.steps])
    return rec, labeller


def _discover(stored, player: PlayerModel | None, rec: Recording, stride: int, envs: int, rest_steps: int, notes: list[str]) -> Labeller | None:
    """Build the labeller from the discovery frames, then label those frames too."""
    if not stored:
        notes.append("no frames for object discovery (recording too short)")
        return None
    scenery = Scenery.from_frames(np.stack([k for _, _, k, _ in stored]))
    background = mode_colour(scenery.static)
    labeller = Labeller(player, background, scenery, stride, envs, rest_steps)
    fg_frames = []
    for e, t, keys, restarted in stored:  # in time order, envs interleaved: trackers stay causal
        if restarted:
            labeller.reset_env(e)
        blob = labeller.player_blob(e, t, keys)
        fg_frames.append((e, t, labeller.foreground(e, keys, blob)))
    types = group_object_types(fg_frames, min_presence=0.05)
    for t in types:
        t.records = []  # re-collected below and during the rest of the recording
    labeller.set_types(types)
    for e in range(envs):
        labeller.reset_env(e)
    labeller.player_boxes.clear()
    for e, t, keys, restarted in stored:
        _label_sample(labeller, rec, e, t, keys, None, restarted)
    return labeller


def _label_sample(labeller: Labeller, rec: Recording, env: int, step: int, keys: np.ndarray, frame: np.ndarray | None, restarted: bool) -> None:
    """Label one frame and log it as a sample of the recording."""
    if restarted:
        labeller.reset_env(env)
    blob = labeller.player_blob(env, step, keys)
    fg = labeller.foreground(env, keys, blob) if labeller.types else Blobs.empty()
    values, boxes = labeller.labels(env, step, blob, fg)
    rec.sample_env.append(env)
    rec.sample_step.append(step)
    rec.sample_labels.append(values)
    # Keep the frame showing the most kinds of things, for objects.png.
    score = len({name for name, _ in boxes})
    if labeller.best_frame is None or score > labeller.best_frame[0]:
        rgb = frame.transpose(1, 2, 0).copy() if frame is not None else unpack_keys(keys)
        labeller.best_frame = (score, rgb, boxes)
