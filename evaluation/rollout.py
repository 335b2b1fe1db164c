"""Play episodes of a policy in one EnvPool batch. Runs inside a sandboxed worker process
(tools/worker.py); the trusted harness code here never lets the policy touch the env.

Each episode runs in its own EnvPool env seeded with its own seed (`env_seed`), so an
episode's result depends on its seed only, not on how episodes were batched. A finished env
is never stepped again (EnvPool steps a subset of envs by id), so no steps are wasted and
every step taken is a step of a reported episode.
"""

from __future__ import annotations

import collections
import importlib.util
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from envs.atari.observation import Observation
from envs.atari.protocols import Protocol


class PolicyError(Exception):
    """The policy misbehaved (bad action, missing class); the message says how."""


@dataclass
class EpisodeResult:
    seed: int
    score: float = 0.0
    length: int = 0  # env steps
    frames: int = 0  # emulator frames, including the fire-reset frame
    lives_lost: int = 0
    truncated: str | None = None  # "time_limit" | "budget" | None (game over)
    wall_seconds: float = 0.0
    trace: str | None = None  # npz file name, relative to the trace folder
    video: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_policy_class(policy_path: str | Path):
    """Import a policy file and return its `Policy` class.

    The file's folder goes on sys.path so a policy can import its sibling modules
    (detectors.py in a heuristic system).
    """
    policy_path = Path(policy_path).resolve()
    sys.path.insert(0, str(policy_path.parent))
    spec = importlib.util.spec_from_file_location(f"policy_{abs(hash(str(policy_path)))}", policy_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, "Policy", None)
    if cls is None or not callable(cls):
        raise PolicyError(f"{policy_path.name} defines no class Policy")
    return cls


def make_env(task_id: str, protocol: Protocol, seeds: list[int], num_threads: int = 1):
    import envpool

    return envpool.make(
        task_id,
        env_type="gymnasium",
        num_envs=len(seeds),
        env_seed=list(seeds),
        num_threads=num_threads,
        **protocol.envpool_kwargs(),
    )


def _as_action(value, num_actions: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise PolicyError(f"invalid action {value!r} ({type(value).__name__}); act() must return an int")
    action = int(value)
    if not 0 <= action < num_actions:
        raise PolicyError(f"invalid action {action}; valid actions are 0..{num_actions - 1}")
    return action


@dataclass
class _EpisodeState:
    """Per-env bookkeeping while its episode runs."""

    result: EpisodeResult
    policy: object
    started: float
    last_reward: float = 0.0
    lives: int = 0
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    lives_trace: list = field(default_factory=list)
    rams: list = field(default_factory=list)
    recent: collections.deque = None  # (step, chw frame) pairs for contact sheets
    moments: list = field(default_factory=list)  # (label, steps, frames)
    video: object = None


def run_episodes(
    policy_path: str | Path,
    task_id: str,
    protocol: Protocol,
    obs_mode: str,
    seeds: list[int],
    step_allowance: int | None = None,
    trace_dir: str | Path | None = None,
    video_seeds: tuple[int, ...] = (),
    sheet_frames: int = 16,
    sheet_stride: int | None = None,
    max_moments: int = 8,
    on_progress: Callable[[int, list[EpisodeResult]], None] | None = None,
    num_threads: int = 1,
    step_counter: np.ndarray | None = None,
) -> list[EpisodeResult]:
    """Play one episode per seed, all in one EnvPool batch, and return their results.

    step_allowance caps the total env steps across all episodes (the run's budget); episodes
    still running when it is spent are cut and marked truncated="budget". With trace_dir,
    each episode's per-step trace (actions, rewards, lives, and RAM in ram mode) and the
    frames before each life lost are saved as `<seed>.npz`. Policy errors propagate as
    exceptions: the worker turns them into a failed trial. step_counter[0], if given, is kept
    equal to the steps taken so far (a memory-mapped file the sandbox reads if this process
    hangs or dies between progress reports).
    """
    policy_cls = load_policy_class(policy_path)
    env = make_env(task_id, protocol, seeds, num_threads=num_threads)
    num_actions = env.action_space.n
    want_ram = obs_mode == "ram"
    reset_frames = protocol.frame_skip if protocol.use_fire_reset else 0
    # At frame_skip 1 a life is often lost frames after the ball left the screen: space the
    # sheet frames out so they cover the lead-up (16 frames over 64 steps under hl).
    sheet_stride = sheet_stride or max(1, 4 // protocol.frame_skip)
    trace_dir = Path(trace_dir) if trace_dir else None
    if trace_dir:
        trace_dir.mkdir(parents=True, exist_ok=True)

    obs, info = env.reset()
    states: dict[int, _EpisodeState] = {}
    for env_id, seed in enumerate(seeds):
        policy = policy_cls()
        policy.reset(seed)
        state = _EpisodeState(
            result=EpisodeResult(seed=seed, frames=reset_frames),
            policy=policy,
            started=time.perf_counter(),
            lives=int(info["lives"][env_id]),
            recent=collections.deque(maxlen=sheet_frames * sheet_stride) if trace_dir else None,
        )
        if seed in video_seeds and trace_dir:
            from record.video import Mp4Writer

            state.result.video = f"{seed}.mp4"
            state.video = Mp4Writer(trace_dir / state.result.video, fps=60 // protocol.frame_skip)
        states[env_id] = state

    # Row j of the batch arrays belongs to env ids[j].
    ids = np.arange(len(seeds), dtype=np.int32)
    frames, rams, lives = obs, info["ram"], info["lives"]
    finished: list[EpisodeResult] = []
    steps_taken = 0
    last_report = time.perf_counter()

    while ids.size:
        if step_allowance is not None and steps_taken + ids.size > step_allowance:
            keep = max(0, step_allowance - steps_taken)
            for j in range(keep, ids.size):
                state = states[int(ids[j])]
                state.result.truncated = "budget"
                finished.append(_finish(state, trace_dir, want_ram, protocol))
            ids, frames, rams, lives = ids[:keep], frames[:keep], rams[:keep], lives[:keep]
            if not ids.size:
                break

        actions = np.empty(ids.size, dtype=np.int32)
        for j, env_id in enumerate(ids):
            state = states[int(env_id)]
            ram = rams[j] if want_ram else None
            observation = Observation(frames[j], ram, int(lives[j]), state.result.length, state.last_reward)
            action = _as_action(state.policy.act(observation), num_actions)
            actions[j] = action
            state.actions.append(action)
            if want_ram:
                state.rams.append(ram)
            if state.recent is not None:
                state.recent.append((state.result.length, frames[j]))
            if state.video is not None:
                state.video.append(observation.rgb)

        frames, rewards, terminated, truncated, info = env.step(actions, ids)
        assert np.array_equal(info["env_id"], ids), "EnvPool returned envs out of order"
        steps_taken += ids.size
        if step_counter is not None:
            step_counter[0] = steps_taken
        rams, lives = info["ram"], info["lives"]

        done_rows = []
        for j, env_id in enumerate(ids):
            state = states[int(env_id)]
            result = state.result
            reward = float(rewards[j])
            result.score += reward
            result.length += 1
            result.frames += protocol.frame_skip
            state.last_reward = reward
            state.rewards.append(reward)
            state.lives_trace.append(state.lives)
            new_lives = int(lives[j])
            if new_lives < state.lives:
                result.lives_lost += state.lives - new_lives
                if state.recent is not None and len(state.moments) < max_moments:
                    _add_moment(state, f"life lost at step {result.length}", result.length, frames[j], sheet_frames, sheet_stride)
            state.lives = new_lives
            if terminated[j] or truncated[j]:
                if truncated[j] and not terminated[j]:
                    result.truncated = "time_limit"
                already_shown = state.moments and state.moments[-1][1][-1] == result.length
                if state.recent is not None and not already_shown:
                    _add_moment(state, f"episode end at step {result.length}", result.length, frames[j], sheet_frames, sheet_stride)
                if state.video is not None:
                    state.video.append(np.ascontiguousarray(frames[j].transpose(1, 2, 0)))
                finished.append(_finish(state, trace_dir, want_ram, protocol))
                done_rows.append(j)

        if done_rows:
            keep_rows = np.setdiff1d(np.arange(ids.size), done_rows)
            ids, frames, rams, lives = ids[keep_rows], frames[keep_rows], rams[keep_rows], lives[keep_rows]

        now = time.perf_counter()
        if on_progress and (done_rows or now - last_report > 0.25):
            on_progress(steps_taken, finished)
            last_report = now

    env.close()
    if on_progress:
        on_progress(steps_taken, finished)
    order = {seed: i for i, seed in enumerate(seeds)}
    return sorted(finished, key=lambda r: order[r.seed])


def _add_moment(state: _EpisodeState, label: str, step: int, frame: np.ndarray, count: int, stride: int) -> None:
    """Keep `count` frames, `stride` steps apart, ending with the frame that shows the moment."""
    recent = (list(state.recent) + [(step, frame)])[::-1][::stride][:count][::-1]
    steps, chws = zip(*recent)
    state.moments.append((label, steps, chws))


def load_trace(path: str | Path) -> dict:
    """Read an episode trace: arrays `actions`, `rewards`, `lives` (and `ram` in ram mode)
    per env step, plus `moments`: a list of {label, steps, frames} around failures."""
    with np.load(path) as data:
        trace = {k: data[k] for k in data.files if not k.startswith("moment")}
        moments = []
        k = 0
        while f"moment{k}_label" in data.files:
            moments.append(
                dict(
                    label=str(data[f"moment{k}_label"]),
                    steps=data[f"moment{k}_steps"].tolist(),
                    frames=data[f"moment{k}_frames"],
                )
            )
            k += 1
    trace["moments"] = moments
    return trace


def _finish(state: _EpisodeState, trace_dir: Path | None, want_ram: bool, protocol: Protocol) -> EpisodeResult:
    result = state.result
    result.wall_seconds = time.perf_counter() - state.started
    if state.video is not None:
        state.video.close()
    if trace_dir is not None:
        result.trace = f"{result.seed}.npz"
        arrays = dict(
            actions=np.asarray(state.actions, dtype=np.uint8),
            rewards=np.asarray(state.rewards, dtype=np.float32),
            lives=np.asarray(state.lives_trace, dtype=np.uint8),
            frame_skip=np.int32(protocol.frame_skip),
        )
        if want_ram:
            arrays["ram"] = np.asarray(state.rams, dtype=np.uint8).reshape(-1, 128)
        for k, (label, steps, chws) in enumerate(state.moments):
            arrays[f"moment{k}_label"] = np.asarray(label)
            arrays[f"moment{k}_steps"] = np.asarray(steps, dtype=np.int64)
            arrays[f"moment{k}_frames"] = np.stack([f.transpose(1, 2, 0) for f in chws])
        np.savez_compressed(trace_dir / result.trace, **arrays)
    state.rams.clear()
    state.recent = None
    return result
