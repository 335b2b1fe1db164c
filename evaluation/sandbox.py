"""Run untrusted policy code (written by a model or a search) in worker processes.

Each worker is a fresh `python -m evaluation.worker` process, or a fork of a warm process that
has imported what a worker needs (evaluation/warm_start.py), made to be the same thing:
- started in its own session, so its whole process group is killed on timeout;
- with an environment stripped of API keys, tokens and other secrets;
- in a temporary working directory, removed afterwards;
- under an address-space limit (a memory hog gets MemoryError, not the machine).

A worker that raises, hangs (no progress for `stall_seconds` once it reported ready), takes
longer than `startup_seconds` to start, exceeds its wall time or dies yields a failed
`WorkerOutcome` with the reason; the caller carries on. Start-up (imports, env creation) has
its own, longer limit: on a busy machine or a cluster node it can take longer than a healthy
policy ever pauses, and a stall clock running during it would kill healthy policies.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from evaluation import warm_start

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Names of environment variables a policy must never see.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION)", re.IGNORECASE)
_SECRET_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LANGCHAIN_", "LANGSMITH_", "AWS_", "AZURE_", "GOOGLE_", "HF_", "GITHUB_")


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 4096  # address-space limit per worker
    file_mb: int = 4096  # largest file a worker may write
    stall_seconds: float = 120.0  # no progress message for this long after "ready" = hung policy
    startup_seconds: float = 600.0  # from launch to the worker's "ready" message
    wall_seconds: float | None = None  # hard cap on a worker's lifetime
    warm_start: bool = True  # fork workers from a warm process (evaluation/warm_start.py)


@dataclass
class WorkerOutcome:
    status: str  # "ok" | "failed"
    steps: int = 0
    episodes: list[dict] = field(default_factory=list)
    failure_kind: str | None = None  # exception | invalid_action | memory | timeout | crash
    failure: str | None = None  # one-line reason
    traceback: str | None = None
    log_tail: str = ""


def clean_environment() -> dict[str, str]:
    """os.environ without secrets, plus PYTHONPATH so the worker finds the project."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not _SECRET_NAME.search(k) and not k.upper().startswith(_SECRET_PREFIXES)
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_step_counter(path: str | Path) -> int:
    """Steps a worker has taken, from its memory-mapped counter file (0 if unreadable)."""
    try:
        return int.from_bytes(Path(path).read_bytes()[:8].ljust(8, b"\0"), "little")
    except OSError:
        return 0


class Worker:
    """One sandboxed worker process running one job."""

    def __init__(self, job: dict, limits: SandboxLimits, messages: "queue.Queue[tuple[Worker, dict | None]]"):
        self.job = {**job, "memory_mb": limits.memory_mb, "file_mb": limits.file_mb}
        self.limits = limits
        self.workdir = Path(tempfile.mkdtemp(prefix="hl-worker-"))
        self.log_path = self.workdir / "worker.log"
        # The worker writes its step count here after every batch step, so the steps of a
        # worker that hangs or dies between progress messages are still counted exactly.
        # It lives in the run folder when the caller names a path, so the steps of a run
        # killed mid-evaluation can be counted on resume (evaluation.evaluate.reconcile_interrupted).
        self.counter_path = Path(job.get("counter_path") or self.workdir / "steps.counter")
        self.counter_path.parent.mkdir(parents=True, exist_ok=True)
        self.counter_path.write_bytes(bytes(8))
        self.job["counter_path"] = str(self.counter_path)
        self._log = open(self.log_path, "wb")
        self.started = self.last_heard = time.monotonic()
        env = clean_environment()
        self.proc = limits.warm_start and warm_start.launch(self.workdir, env, self._log.fileno(), limits.startup_seconds)
        if not self.proc:  # a fresh interpreter (see evaluation/warm_start.py for the fork)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "evaluation.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd=self.workdir,
                env=env,
                start_new_session=True,  # own process group: killpg reaches its children too
            )
        self.ready = False  # the worker has imported its modules and made its envs
        self.last_message: dict | None = None
        self.outcome: WorkerOutcome | None = None
        self.proc.stdin.write(json.dumps(self.job).encode())
        self.proc.stdin.close()
        self._reader = threading.Thread(target=self._read, args=(messages,), daemon=True)
        self._reader.start()

    def _read(self, messages) -> None:
        for line in self.proc.stdout:
            try:
                messages.put((self, json.loads(line)))
            except json.JSONDecodeError:
                continue  # only our worker writes here; a partial line means it died mid-write
        messages.put((self, None))  # EOF: the worker exited or was killed

    def kill(self) -> None:
        # The group reaches the policy's own children; the process itself, a fork killed
        # before its setsid (no group yet), unless it was reaped and its pid may be reused.
        for kill in (os.killpg, os.kill) if self.proc.returncode is None else (os.killpg,):
            try:
                kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self, chars: int = 2000) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def steps_counted(self) -> int:
        return read_step_counter(self.counter_path)

    def finish(self, outcome: WorkerOutcome) -> WorkerOutcome:
        self.kill()  # also reaps stray children the policy may have started
        self.proc.wait()
        outcome.steps = max(outcome.steps, self.steps_counted())
        outcome.log_tail = self.log_tail()
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.outcome = outcome
        return outcome


def run_jobs(
    jobs: list[dict],
    limits: SandboxLimits = SandboxLimits(),
    on_progress: Callable[[int, dict], None] | None = None,
) -> list[WorkerOutcome]:
    """Run each job in its own sandboxed worker, concurrently; return outcomes in job order.

    on_progress(job_index, message) is called with every progress message.
    """
    messages: queue.Queue = queue.Queue()
    workers = [Worker(job, limits, messages) for job in jobs]
    index = {id(w): i for i, w in enumerate(workers)}
    try:
        while any(w.outcome is None for w in workers):
            try:
                worker, message = messages.get(timeout=0.5)
            except queue.Empty:
                worker, message = None, None
            now = time.monotonic()
            if worker is not None and worker.outcome is None:
                worker.last_heard = now
                if message is None:
                    _on_exit(worker)
                else:
                    worker.last_message = message
                    _on_message(worker, message, index[id(worker)], on_progress)
            for w in workers:
                if w.outcome is not None:
                    continue
                if not w.ready:
                    if now - w.started > limits.startup_seconds:
                        _timed_out(w, f"worker not ready after {limits.startup_seconds:g} s (start-up too slow)")
                elif now - w.last_heard > limits.stall_seconds:
                    _timed_out(w, f"no progress for {limits.stall_seconds:g} s (policy hung?)")
                elif limits.wall_seconds and now - w.started > limits.wall_seconds:
                    _timed_out(w, f"exceeded the wall-time limit of {limits.wall_seconds:g} s")
    finally:
        for w in workers:
            if w.outcome is None:
                w.finish(WorkerOutcome(status="failed", failure_kind="crash", failure="evaluation interrupted"))
    return [w.outcome for w in workers]


def _on_message(worker: Worker, message: dict, job_index: int, on_progress) -> None:
    kind = message.get("type")
    if kind == "ready":
        worker.ready = True  # the stall clock starts now (last_heard was just set)
    elif kind == "progress":
        if on_progress:
            on_progress(job_index, message)
    elif kind == "result":
        worker.finish(WorkerOutcome(status="ok", steps=message["steps"], episodes=message["episodes"]))
    elif kind == "error":
        worker.finish(
            WorkerOutcome(
                status="failed",
                steps=message.get("steps", 0),
                episodes=message.get("episodes", []),
                failure_kind=message["kind"],
                failure=message["message"].splitlines()[0][:500] if message["message"] else message["kind"],
                traceback=message.get("traceback"),
            )
        )


def _partial(worker: Worker) -> dict:
    last = worker.last_message or {}
    return {"steps": last.get("steps", 0), "episodes": last.get("episodes", [])}


def _on_exit(worker: Worker) -> None:
    code = worker.proc.wait()
    reason = f"worker died (exit code {code})"
    if code < 0:
        reason = f"worker killed by signal {signal.Signals(-code).name}"
    tail = worker.log_tail()
    worker.finish(
        WorkerOutcome(status="failed", failure_kind="crash", failure=reason, traceback=tail or None, **_partial(worker))
    )


def _timed_out(worker: Worker, reason: str) -> None:
    worker.finish(WorkerOutcome(status="failed", failure_kind="timeout", failure=reason, **_partial(worker)))


# ============================================================================================
# The heuristic system's own tests (hs/tests), which a model may have written
# ============================================================================================

# Put first on a sandboxed pytest's path: emulator packages cannot be imported there, so a
# test cannot take env steps the meter would never see (hs/ tests run on recorded frames).
_NO_EMULATORS = '''import sys


class _NoEmulators:
    BLOCKED = {"envpool", "ale_py", "gymnasium", "gym"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} cannot be imported by hs/ tests: emulator steps there would not be counted")
        return None


sys.meta_path.insert(0, _NoEmulators())
'''


@dataclass
class TestRun:
    """The outcome of a sandboxed pytest run over hs/tests."""

    __test__ = False  # not a pytest test class

    status: str  # "passed" | "failed" | "timeout" | "no_tests"
    output: str = ""  # the last lines pytest printed

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def summary(self) -> str:
        """pytest's last line ("3 passed in 0.4s"), or the status."""
        lines = self.output.strip().splitlines()
        return lines[-1] if lines else self.status


def run_hs_tests(hs_dir: str | Path, timeout: float = 300.0, limits: SandboxLimits = SandboxLimits()) -> TestRun:
    """Run pytest over a copy of `hs_dir` (its tests/ folder) in the sandbox the policies get:
    own session (killed whole on timeout), environment stripped of secrets, a temporary copy
    (the tests cannot change hs/), address-space and file-size limits, no third-party pytest
    plugins, and no emulator packages (see _NO_EMULATORS)."""
    hs_dir = Path(hs_dir)
    if not (hs_dir / "tests").is_dir():
        return TestRun("no_tests", "hs/tests does not exist")
    with tempfile.TemporaryDirectory(prefix="hl-hs-tests-") as scratch:
        copy = Path(scratch) / "hs"
        shutil.copytree(hs_dir, copy, ignore=shutil.ignore_patterns(".git", "__pycache__"), symlinks=True)
        site = Path(scratch) / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(_NO_EMULATORS)
        env = clean_environment()
        env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"

        from evaluation.worker import set_limits  # the limits evaluation workers set on themselves

        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=copy, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: set_limits(limits.memory_mb, limits.file_mb),
        )  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-30:])
            return TestRun("timeout", f"{tail}\nhs/ tests still running after {timeout:g} s: killed".strip())
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # stray children of the tests
            except ProcessLookupError:
                pass
    tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-30:])
    return TestRun("passed" if proc.returncode == 0 else "failed", tail)
