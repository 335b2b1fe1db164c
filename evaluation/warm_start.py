"""Start sandboxed workers by forking a warm process instead of a fresh interpreter.

A fresh `python -m evaluation.worker` spends about 0.8 s on start-up (the interpreter, NumPy,
EnvPool and the rollout code) before its first env step, and a run starts dozens of workers:
the pattern baseline alone plays twenty to fifty short looks of a few hundred steps each. So
each evaluating process keeps one warm starter: a process that has imported all of that once
and forks a worker per job. The fork becomes what a fresh worker would be: its own session
(killed whole on timeout), the job's working directory and environment (secrets stripped by
the sandbox as before), its pipes in place of stdin/stdout/stderr, and then evaluation.worker's
main(), which sets the resource limits and the parent-death signal itself.

The starter serves requests on a Unix socket: the sandbox sends the job's working directory,
environment and three file descriptors (SCM_RIGHTS); the starter forks, answers with the
worker's pid, and later with its exit code (it is the worker's parent, so only it can reap
it). It lives as long as its evaluating process: it polls its parent and, once orphaned,
kills its workers and exits. It is started with the sandbox's clean environment; when that
environment changes (a test or a user sets PYTHONPATH), a new starter replaces it.

If the starter cannot start or answer, the sandbox starts a fresh interpreter as before.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_MESSAGE = 1 << 20  # a request is the job's environment and working directory: a few KB
POLL_SECONDS = 0.2  # how often the starter reaps workers and checks that its parent lives
# BLAS thread pools do not survive a fork; one thread per worker is what two eval workers on
# a small machine want anyway. A user's own setting is kept.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class WarmProcess:
    """A forked worker, with the parts of subprocess.Popen the sandbox uses."""

    def __init__(self, pid: int, stdin, stdout, control: socket.socket):
        self.pid, self.stdin, self.stdout, self._control = pid, stdin, stdout, control
        self.returncode: int | None = None

    def wait(self) -> int:
        """The worker's exit code as Popen gives it (negative: killed by that signal)."""
        if self.returncode is None:
            try:
                message = self._control.recv(MAX_MESSAGE)
                self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGKILL
            except (OSError, ValueError, KeyError):
                self.returncode = -signal.SIGKILL  # the starter died: so did its workers
            self._control.close()
        return self.returncode


class WarmStarter:
    """The client side: one starter process per environment, started on first use."""

    def __init__(self, env: dict[str, str], startup_seconds: float):
        self.env = dict(env)
        self.folder = Path(tempfile.mkdtemp(prefix="hl-warm-"))
        self.address = str(self.folder / "socket")
        self.proc = subprocess.Popen([sys.executable, "-m", "evaluation.warm_start", self.address],
                                     env={**SINGLE_THREADED, **env}, cwd=self.folder, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        ready = _readline_within(self.proc.stdout, startup_seconds)
        if ready.strip() != b"ready":
            self.close()
            raise OSError("the warm starter did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def launch(self, cwd: Path, env: dict[str, str], stderr_fd: int) -> WarmProcess:
        """Fork a worker in `cwd` with `env`, its stderr on `stderr_fd`."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            control.connect(self.address)
            request = json.dumps({"cwd": str(cwd), "env": env}).encode()
            socket.send_fds(control, [request], [stdin_read, stdout_write, stderr_fd])
            pid = int(json.loads(control.recv(MAX_MESSAGE))["pid"])
        except (OSError, ValueError, KeyError):
            control.close()
            for fd in (stdin_read, stdin_write, stdout_read, stdout_write):
                os.close(fd)
            raise
        os.close(stdin_read)
        os.close(stdout_write)
        return WarmProcess(pid, os.fdopen(stdin_write, "wb"), os.fdopen(stdout_read, "rb"), control)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdout.close()
        for path in (Path(self.address), self.folder):
            try:
                path.unlink() if path.is_socket() else path.rmdir()
            except OSError:
                pass


def _readline_within(stream, seconds: float) -> bytes:
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return line[0] if line else b""


_starter: WarmStarter | None = None
_lock = threading.Lock()


def launch(cwd: Path, env: dict[str, str], stderr_fd: int, startup_seconds: float) -> WarmProcess | None:
    """A worker forked from this process's warm starter (started, or replaced when `env` has
    changed, on the way), or None when no starter can serve: start a fresh interpreter then."""
    global _starter
    with _lock:
        try:
            if _starter is not None and (_starter.env != env or not _starter.alive()):
                _starter.close()
                _starter = None
            if _starter is None:
                _starter = WarmStarter(env, startup_seconds)
            return _starter.launch(cwd, env, stderr_fd)
        except (OSError, ValueError, KeyError):  # no starter, or one that died or answered nonsense
            return None


@atexit.register
def _stop() -> None:
    if _starter is not None:
        _starter.close()


# ============================================================================================
# The starter process: `python -m evaluation.warm_start SOCKET`
# ============================================================================================


def _become_worker(request: dict, fds: list[int]) -> None:
    """In the fork: become a fresh worker (session, fds, directory, environment), run it, exit."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds):  # stdin, stdout, stderr
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import numpy as np

        np.random.seed()  # a fresh interpreter's global NumPy state, not the starter's copy
        from evaluation import worker

        code = worker.main()
    except BaseException:  # noqa: BLE001 - the worker reports its own failures; this is the fork itself
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(address: str) -> None:
    parent = os.getppid()
    # What every worker imports before its first step, imported once here.
    import numpy  # noqa: F401

    from envs.envpool_import import import_envpool
    from envs.registry import get_family  # noqa: F401
    from evaluation import rollout, worker  # noqa: F401

    import_envpool()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(address)
    server.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    print("ready", flush=True)
    children: dict[int, socket.socket] = {}
    while os.getppid() == parent:
        for _ in selector.select(timeout=POLL_SECONDS):
            conn, _ = server.accept()
            try:
                message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
                request = json.loads(message)
            except (OSError, ValueError):
                conn.close()
                continue
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                selector.close()
                server.close()
                conn.close()
                for other in children.values():
                    other.close()
                _become_worker(request, fds)
            for fd in fds:
                os.close(fd)
            children[pid] = conn
            _send(conn, {"pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()
    for pid in children:  # orphaned: the workers go with us
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    Path(address).unlink(missing_ok=True)  # the sandbox that would have removed them is gone
    Path(address).parent.rmdir()


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.send(json.dumps(message).encode())
    except OSError:
        pass  # the sandbox gave up on this worker; nothing to tell


if __name__ == "__main__":
    serve(sys.argv[1])
