"""Sandboxed worker: `python -m evaluation.worker` reads one job (JSON) on stdin, plays its
episodes with evaluation.rollout, and reports JSON lines on its protocol channel.

It is started by evaluation/sandbox.py in its own process group, with API keys stripped from its
environment and a temporary working directory. It sets its own resource limits before it
imports the policy, so the policy runs under them from its first line.

Messages (one JSON object per line):
    {"type": "ready"}  (modules imported and envs made: the sandbox's stall clock starts)
    {"type": "progress", "steps": int, "episodes": [EpisodeResult, ...]}
    {"type": "result", "steps": int, "episodes": [...]}
    {"type": "error", "kind": "exception" | "invalid_action" | "memory", "message": str,
     "traceback": str, "steps": int, "episodes": [...]}
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback


def set_limits(memory_mb: int | None, file_mb: int | None) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if file_mb:
        limit = file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker if the evaluating process dies (kill -9 of a run):
    an orphan would go on stepping envs that nobody counts."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except OSError:
        pass


def main() -> int:
    # The protocol channel is a private copy of stdout; fd 1 then points at stderr, so
    # whatever the policy prints lands in the worker log and cannot corrupt the channel.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    _die_with_parent()
    job = json.loads(sys.stdin.read())
    set_limits(job.get("memory_mb"), job.get("file_mb"))

    from envs.registry import get_family
    from evaluation.rollout import PolicyError, StallRule, run_episodes, run_episodes_in_turn

    import numpy as np

    progress = {"steps": 0, "episodes": []}
    counter = np.memmap(job["counter_path"], dtype="<i8", mode="r+", shape=(1,)) if job.get("counter_path") else None

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")

    def on_progress(steps, finished):
        progress["steps"] = steps
        progress["episodes"] = [r.to_dict() for r in finished]
        send({"type": "progress", **progress})

    family = get_family(job["family"])
    try:
        play = run_episodes_in_turn if job.get("in_turn") else run_episodes
        results = play(
            policy_path=job["policy_path"],
            spec=family.resolve(job["env"]),
            protocol=family.protocol_from_settings(job["protocol"]),
            obs_mode=job["obs_mode"],
            seeds=job["seeds"],
            step_allowance=job.get("step_allowance"),
            trace_dir=job.get("trace_dir"),
            video_seeds=tuple(job.get("video_seeds", ())),
            on_progress=on_progress,
            num_threads=job.get("num_threads", 1),
            step_counter=counter,
            on_ready=lambda: send({"type": "ready"}),
            stall=StallRule(job["stall"]["frames"], tuple(job["stall"]["watch"])) if job.get("stall") else None,
        )
    except BaseException as err:  # the policy's failure is a result, not a crash
        kind = "exception"
        if isinstance(err, PolicyError) and str(err).startswith("invalid action"):
            kind = "invalid_action"
        elif isinstance(err, MemoryError):
            kind = "memory"
        message = f"{type(err).__name__}: {err}".strip()
        send({"type": "error", "kind": kind, "message": message, "traceback": traceback.format_exc(), **progress})
        return 0
    send({"type": "result", "steps": progress["steps"], "episodes": [r.to_dict() for r in results]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
