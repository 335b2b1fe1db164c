"""Play episodes of a policy in one EnvPool batch. Runs inside a sandboxed worker process
(evaluation/worker.py); the trusted harness code here never lets the policy touch the env.

Family-agnostic: the env's family (envs/) makes the batch and says how to read it (a
StepView: what the policy observes, the frame videos and contact sheets show, per-step
trace data, the failure counter) and what an action is (its ActionSpace).

Each episode runs in its own EnvPool env seeded with its own seed (`env_seed`), so an
episode's result depends on its seed only, not on how episodes were batched. A finished env
is never stepped again (EnvPool steps a subset of envs by id), so no steps are wasted and
every step taken is a step of a reported episode.

An episode that makes no progress is cut (a `StallRule`): a game waiting for a serve that
never comes would otherwise play to the frame cap and eat the budget. Its result says
`truncated="stall"` with the evidence (since when, what stood still, which actions were
pressed), so the critic diagnoses what the trace shows.
"""

from __future__ import annotations

import collections
import importlib.util
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from envs.base import ActionSpace, EnvProtocol, EnvSpec, InvalidAction, StepView
from envs.registry import family_of

# A stretch of play this long without a reward is a failure moment of its own (its frames go
# on the contact sheet): in a game without lives it may be the only sign of trouble.
QUIET_MOMENT_FRAMES = 6_000  # emulator frames: 100 s of Atari play


class PolicyError(Exception):
    """The policy misbehaved (bad action, missing class); the message says how."""


@dataclass
class EpisodeResult:
    seed: int
    score: float = 0.0
    length: int = 0  # env steps
    frames: int = 0  # simulator frames, including those of the reset (Atari's fire reset)
    failures: int = 0  # the family's failures: lives lost (Atari), falls (a robot)
    truncated: str | None = None  # "time_limit" | "budget" | "stall" | None (game over)
    stall: dict | None = None  # the evidence of a stall cut (StallRule): since_step, steps, watched, actions
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


@dataclass(frozen=True)
class StallRule:
    """When an episode that makes no progress is cut: `frames` emulator frames without a
    reward while none of the `watch` entries of the family's progress state changed (Atari:
    RAM bytes of the objects the probe tracks, e.g. the ball). An empty watch cuts on the
    reward alone. Frames, not env steps, so the rule means the same game time under every
    protocol."""

    frames: int = 9000  # 150 s of play at 60 frames/s
    watch: tuple[int, ...] = ()

    def steps(self, frame_skip: int) -> int:
        return max(1, -(-self.frames // frame_skip))

    def to_dict(self) -> dict:
        return {"frames": self.frames, "watch": list(self.watch)}


@dataclass
class _EpisodeState:
    """Per-env bookkeeping while its episode runs."""

    result: EpisodeResult
    policy: object
    started: float
    last_reward: float = 0.0
    failures_left: int = 0
    quiet_since: int = 0  # the step of the last reward or change of the watched state
    last_gain: int = 0  # the step of the last positive reward (a no-reward stretch starts there)
    watched: np.ndarray | None = None  # the watched state's values since then
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    failures_trace: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)  # per-step trace arrays the family keeps (RAM)
    recent: collections.deque = None  # (step, HWC frame) pairs for contact sheets
    moments: list = field(default_factory=list)  # (label, steps, frames)
    video: object = None


@dataclass
class _Batch:
    """The envs still playing: env ids, and each one's row in the last reset/step output
    (rows None: row j is ids[j]'s, as right after a step)."""

    ids: np.ndarray
    rows: np.ndarray | None = None
    obs: object = None
    info: dict = None

    def keep(self, positions) -> None:
        rows = np.arange(self.ids.size) if self.rows is None else self.rows
        self.ids, self.rows = self.ids[positions], rows[positions]

    def row(self, j: int) -> int:
        return j if self.rows is None else int(self.rows[j])


def run_episodes(
    policy_path: str | Path,
    spec: EnvSpec,
    protocol: EnvProtocol,
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
    on_ready: Callable[[], None] | None = None,
    stall: StallRule | None = None,
) -> list[EpisodeResult]:
    """Play one episode per seed, all in one EnvPool batch, and return their results.

    step_allowance caps the total env steps across all episodes (the run's budget); episodes
    still running when it is spent are cut and marked truncated="budget". With trace_dir,
    each episode's per-step trace (actions, rewards, the failure counter, and what the
    family adds: RAM in Atari's ram mode) and the frames before each failure are saved as
    `<seed>.npz`. Policy errors propagate as exceptions: the worker turns them into a failed
    trial. step_counter[0], if given, is kept equal to the steps taken so far (a
    memory-mapped file the sandbox reads if this process hangs or dies between progress
    reports). on_ready() is called once the envs exist, before any policy code runs. With
    `stall`, an episode without progress is cut and marked truncated="stall" (StallRule).
    """
    family = family_of(spec)
    env = family.make_env(spec, protocol, seeds, num_threads=num_threads)
    if on_ready:
        on_ready()
    policy_cls = load_policy_class(policy_path)  # the policy's own code: under the stall clock
    view = family.step_view(spec, protocol, obs_mode)
    space = ActionSpace.of(env.action_space)  # from the env itself: no emulator to load for it
    stall_steps = stall.steps(protocol.frame_skip) if stall else None
    action_names = family.action_meanings(spec) if stall and space.kind == "discrete" else None
    # At frame_skip 1 a life is often lost frames after the ball left the screen: space the
    # sheet frames out so they cover the lead-up (16 frames over 64 steps under hl).
    sheet_stride = sheet_stride or max(1, 4 // protocol.frame_skip)
    trace_dir = Path(trace_dir) if trace_dir else None
    if trace_dir:
        trace_dir.mkdir(parents=True, exist_ok=True)

    obs, info = env.reset()
    states = _start_episodes(policy_cls, seeds, view, info, protocol, trace_dir, video_seeds, sheet_frames * sheet_stride)
    batch = _Batch(ids=np.arange(len(seeds), dtype=np.int32), obs=obs, info=info)
    finished: list[EpisodeResult] = []
    steps_taken = 0
    last_report = time.perf_counter()

    def finish(state: _EpisodeState) -> None:
        finished.append(_finish(state, trace_dir, protocol))

    while batch.ids.size:
        if step_allowance is not None and steps_taken + batch.ids.size > step_allowance:
            keep = max(0, step_allowance - steps_taken)
            for env_id in batch.ids[keep:]:
                states[int(env_id)].result.truncated = "budget"
                finish(states[int(env_id)])
            batch.keep(slice(0, keep))
            if not batch.ids.size:
                break

        actions = space.batch(batch.ids.size)
        for j, env_id in enumerate(batch.ids):
            state, row = states[int(env_id)], batch.row(j)
            observation = view.observation(batch.obs, batch.info, row, state.result.length, state.last_reward)
            try:
                action = space.check(state.policy.act(observation))
            except InvalidAction as err:
                raise PolicyError(str(err)) from None
            actions[j] = action
            state.actions.append(action)
            if state.extras:
                for key, value in view.trace_arrays(batch.obs, batch.info, row).items():
                    state.extras[key].append(value)
            if state.recent is not None or state.video is not None:
                frame = view.frame(batch.obs, batch.info, row)
                if state.recent is not None and frame is not None:
                    state.recent.append((state.result.length, frame))
                if state.video is not None and frame is not None:
                    state.video.append(frame)

        obs, rewards, terminated, truncated, info = env.step(actions, batch.ids)
        assert np.array_equal(info["env_id"], batch.ids), "EnvPool returned envs out of order"
        steps_taken += batch.ids.size
        if step_counter is not None:
            step_counter[0] = steps_taken
        batch.obs, batch.info, batch.rows = obs, info, None

        done_rows = []
        for j, env_id in enumerate(batch.ids):
            state = states[int(env_id)]
            _record_step(state, view, obs, info, j, float(rewards[j]), protocol, family.failure_name, sheet_frames,
                         sheet_stride, max_moments)  # fmt: skip
            stalled = stall is not None and _stalled(state, view, info, j, float(rewards[j]), stall, stall_steps, action_names)
            if terminated[j] or truncated[j] or stalled:
                if truncated[j] and not terminated[j]:
                    state.result.truncated = "time_limit"
                _episode_end(state, view, obs, info, j, sheet_frames, sheet_stride)
                finish(state)
                done_rows.append(j)

        if done_rows:
            batch.keep(np.setdiff1d(np.arange(batch.ids.size), done_rows))

        now = time.perf_counter()
        if on_progress and (done_rows or now - last_report > 0.25):
            on_progress(steps_taken, finished)
            last_report = now

    env.close()
    if on_progress:
        on_progress(steps_taken, finished)
    order = {seed: i for i, seed in enumerate(seeds)}
    return sorted(finished, key=lambda r: order[r.seed])


def run_episodes_in_turn(policy_path: str | Path, spec: EnvSpec, protocol: EnvProtocol, obs_mode: str, seeds: list[int],
                         step_allowance: int | None = None, on_progress: Callable[[int, list[EpisodeResult]], None] | None = None,
                         step_counter: np.ndarray | None = None, on_ready: Callable[[], None] | None = None,
                         **options) -> list[EpisodeResult]:  # fmt: skip
    """`run_episodes`, one seed after another, sharing `step_allowance`. In one batch a budget
    that runs out cuts every episode at once (Hero's ale-v5 check: ten episodes cut at 4,080
    steps each, no score at all); in turn, the episodes that finished count and only the one
    playing is cut. A seed reached with no steps left is a budget-cut episode of length 0."""
    results: list[EpisodeResult] = []
    taken = 0

    class _Offset:  # the sandbox's step counter, counting on from the episodes before
        def __setitem__(self, index, value):
            step_counter[index] = taken + value

    for seed in seeds:
        left = None if step_allowance is None else step_allowance - taken
        if left is not None and left <= 0:
            results.append(EpisodeResult(seed=seed, truncated="budget"))
            continue
        done = run_episodes(
            policy_path, spec, protocol, obs_mode, [seed], step_allowance=left,
            on_progress=(lambda steps, finished: on_progress(taken + steps, results + finished)) if on_progress else None,
            step_counter=_Offset() if step_counter is not None else None, on_ready=on_ready if not results else None,
            **{**options, "video_seeds": tuple(s for s in options.get("video_seeds", ()) if s == seed)},
        )  # fmt: skip
        taken += sum(r.length for r in done)
        results.extend(done)
    return results


def _start_episodes(policy_cls, seeds: list[int], view: StepView, info, protocol: EnvProtocol, trace_dir: Path | None,
                    video_seeds: tuple[int, ...], recent_frames: int) -> dict[int, _EpisodeState]:  # fmt: skip
    """One policy instance and its bookkeeping per env (env id = position in `seeds`)."""
    states: dict[int, _EpisodeState] = {}
    for env_id, seed in enumerate(seeds):
        policy = policy_cls()
        policy.reset(seed)
        state = _EpisodeState(
            result=EpisodeResult(seed=seed, frames=protocol.reset_frames),
            policy=policy,
            started=time.perf_counter(),
            failures_left=view.failures_left(info, env_id),
            extras={key: [] for key in view.trace_keys} if trace_dir else {},
            recent=collections.deque(maxlen=recent_frames) if trace_dir else None,
        )
        if seed in video_seeds and trace_dir:
            from record.video import Mp4Writer

            state.result.video = f"{seed}.mp4"
            state.video = Mp4Writer(trace_dir / state.result.video, fps=protocol.video_fps)
        states[env_id] = state
    return states


def _record_step(state: _EpisodeState, view: StepView, obs, info, row: int, reward: float, protocol: EnvProtocol,
                 failure_name: str, sheet_frames: int, sheet_stride: int, max_moments: int) -> None:  # fmt: skip
    """Book one env step: score, length, frames, and a failure moment (with the frames before
    it): a life lost, a point lost (a negative reward: the opponent scored), or a long stretch
    without reward, so games without lives have failure moments too."""
    result = state.result
    result.score += reward
    result.length += 1
    result.frames += protocol.frame_skip
    state.last_reward = reward
    state.rewards.append(reward)
    state.failures_trace.append(state.failures_left)
    if reward > 0:
        state.last_gain = result.length
    left = view.failures_left(info, row)
    labels = []
    if left < state.failures_left:
        result.failures += state.failures_left - left
        labels.append(f"{failure_name} at step {result.length}")
    if reward < 0:
        labels.append(f"point lost at step {result.length} (reward {reward:g})")
    quiet = result.length - state.last_gain
    if quiet == math.ceil(QUIET_MOMENT_FRAMES / protocol.frame_skip):
        labels.append(f"no reward for {quiet} steps (since step {state.last_gain})")
    if labels and state.recent is not None and len(state.moments) < max_moments:
        frame = view.frame(obs, info, row)
        if frame is not None:
            _add_moment(state, "; ".join(labels), result.length, frame, sheet_frames, sheet_stride)
    state.failures_left = left


def _stalled(state: _EpisodeState, view: StepView, info, row: int, reward: float, rule: StallRule, stall_steps: int,
             action_names: list[str] | None) -> bool:  # fmt: skip
    """Book progress (a reward, a change of the watched state); on a stall, mark the episode
    cut with its evidence and say so."""
    watched = None
    if rule.watch:
        progress = view.progress_state(None, info, row)
        if progress is not None:
            watched = np.array([progress[i] for i in rule.watch if i < len(progress)])
    changed = watched is not None and (state.watched is None or not np.array_equal(watched, state.watched))
    if reward != 0 or changed:
        state.quiet_since, state.watched = state.result.length, watched
        return False
    quiet = state.result.length - state.quiet_since
    if quiet < stall_steps:
        return False
    state.result.truncated = "stall"
    state.result.stall = dict(
        frames=rule.frames, since_step=state.quiet_since, steps=quiet,
        watched={str(i): int(v) for i, v in zip(rule.watch, watched)} if watched is not None else {},
        actions=_action_counts(state.actions[state.quiet_since :], action_names),
    )  # fmt: skip
    return True


def _action_counts(actions: list, names: list[str] | None, top: int = 3) -> dict[str, int]:
    """The most pressed actions of a stretch, by name: what the policy kept doing."""
    if names is None or not actions:
        return {}
    ids, counts = np.unique(np.asarray(actions, dtype=np.int64), return_counts=True)
    order = np.argsort(-counts)[:top]
    return {names[int(ids[k])] if int(ids[k]) < len(names) else str(int(ids[k])): int(counts[k]) for k in order}


def _episode_end(state: _EpisodeState, view: StepView, obs, info, row: int, sheet_frames: int, sheet_stride: int) -> None:
    """The last frame: a moment of its own (unless a failure just showed it) and the video's end."""
    frame = view.frame(obs, info, row)
    if frame is None:
        return
    length = state.result.length
    already_shown = state.moments and state.moments[-1][1][-1] == length
    if state.recent is not None and not already_shown:
        stall = state.result.stall
        label = f"stall: no progress since step {stall['since_step']}, cut at {length}" if stall else f"episode end at step {length}"
        _add_moment(state, label, length, frame, sheet_frames, sheet_stride)
    if state.video is not None:
        state.video.append(np.ascontiguousarray(frame))


def _add_moment(state: _EpisodeState, label: str, step: int, frame: np.ndarray, count: int, stride: int) -> None:
    """Keep `count` frames, `stride` steps apart, ending with the frame that shows the moment."""
    recent = (list(state.recent) + [(step, frame)])[::-1][::stride][:count][::-1]
    steps, frames = zip(*recent)
    state.moments.append((label, steps, frames))


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


def _finish(state: _EpisodeState, trace_dir: Path | None, protocol: EnvProtocol) -> EpisodeResult:
    result = state.result
    result.wall_seconds = time.perf_counter() - state.started
    if state.video is not None:
        state.video.close()
    if trace_dir is not None:
        result.trace = f"{result.seed}.npz"
        actions = np.asarray(state.actions)
        arrays = dict(
            actions=actions.astype(np.uint8) if actions.dtype.kind in "iu" else actions.astype(np.float32),
            rewards=np.asarray(state.rewards, dtype=np.float32),
            # The family's failure counter per step, before the step (Atari: lives).
            lives=np.asarray(state.failures_trace, dtype=np.uint8),
            frame_skip=np.int32(protocol.frame_skip),
        )
        for key, values in state.extras.items():
            arrays[key] = np.stack(values) if values else np.empty((0,), dtype=np.uint8)
        for k, (label, steps, frames) in enumerate(state.moments):
            arrays[f"moment{k}_label"] = np.asarray(label)
            arrays[f"moment{k}_steps"] = np.asarray(steps, dtype=np.int64)
            arrays[f"moment{k}_frames"] = np.stack(frames)
        np.savez_compressed(trace_dir / result.trace, **arrays)
    state.extras.clear()
    state.recent = None
    return result
