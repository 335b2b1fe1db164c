"""Start sandboxed workers by forking a warm process instead of a fresh interpreter.

A fresh `python -m evaluation.worker` spends about 0.8 s on start-up (the interpreter, NumPy,
EnvPool and the rollout code) before its first env step, and a run starts dozens of workers:
the pattern baseline alone plays twenty to fifty short looks of a few hundred steps each. So
each evaluating process keeps a warm starter: a process that has imported all of that once and
forks a worker per job. The fork becomes what a fresh worker would be: its own session (killed
whole on timeout), the job's working directory and environment (secrets stripped by the
sandbox as before), its pipes in place of stdin/stdout/stderr, the argv and sys.path[0] a
fresh worker has, and then evaluation.worker's main(), which sets the resource limits itself.

The starter serves requests on a Unix socket that only its evaluating process may use (the
peer's pid is checked, so a policy cannot ask for a worker without limits): the sandbox sends
the job's working directory, environment and three file descriptors (SCM_RIGHTS); the starter
forks, answers with the worker's pid, and later with its exit code (it is the worker's parent,
so only it can reap it). It lives as long as its evaluating process: its stdin is a pipe from
that process, and end of file there (the process died, even by SIGKILL) makes it kill its
workers and exit; each worker dies with the starter (parent-death signal).

There is a starter per clean environment (a test or a user that sets PYTHONPATH gets a new
one; the old one keeps serving the workers it runs). A starter that cannot start in time is
not tried again for that environment: the sandbox starts a fresh interpreter then, as before.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

MAX_MESSAGE = 1 << 20  # a request is the job's environment and working directory: a few KB
POLL_SECONDS = 0.2  # how often the starter reaps its workers
REQUEST_SECONDS = 10.0  # a connection that sends no request in this time is dropped
EXIT_SECONDS = 30.0  # how long the sandbox waits to hear a killed worker's exit code
MAX_STARTERS = 4  # idle starters of older environments are closed beyond this many
# BLAS thread pools do not survive a fork; one thread per worker is what two eval workers on
# a small machine want anyway. A user's own setting is kept.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class WarmProcess:
    """A forked worker, with the parts of subprocess.Popen the sandbox uses."""

    def __init__(self, pid: int, stdin, stdout, control: socket.socket, starter: "WarmStarter"):
        self.pid, self.stdin, self.stdout, self._control, self._starter = pid, stdin, stdout, control, starter
        self.returncode: int | None = None

    def wait(self) -> int:
        """The worker's exit code as Popen gives it (negative: killed by that signal)."""
        if self.returncode is None:
            try:
                self._control.settimeout(EXIT_SECONDS)
                message = self._control.recv(MAX_MESSAGE)
                self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGKILL
            except (OSError, ValueError, KeyError, TypeError):
                self.returncode = -signal.SIGKILL  # the starter died (so did its workers) or never answered
            self._control.close()
            self._starter.running -= 1
        return self.returncode


class WarmStarter:
    """The client side of one starter process."""

    def __init__(self, env: dict[str, str], startup_seconds: float):
        self.env = dict(env)
        self.running = 0  # workers forked and not yet waited for
        self.folder = Path(tempfile.mkdtemp(prefix="hl-warm-"))
        self.address = str(self.folder / "socket")
        self.log = open(self.folder / "starter.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "evaluation.warm_start", self.address, str(os.getpid())],
                                     env={**SINGLE_THREADED, **env}, cwd=self.folder, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)  # fmt: skip
        ready = _readline_within(self.proc.stdout, startup_seconds)
        if ready.strip() != b"ready":
            self.close()
            raise OSError(f"the warm starter did not start within {startup_seconds:g} s")

    def alive(self) -> bool:
        return self.proc.returncode is None and self.proc.poll() is None

    def launch(self, cwd: Path, env: dict[str, str], stderr_fd: int, seconds: float) -> WarmProcess:
        """Fork a worker in `cwd` with `env`, its stderr on `stderr_fd`."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            control.settimeout(seconds)
            control.connect(self.address)
            request = json.dumps({"cwd": str(cwd), "env": env}).encode()
            socket.send_fds(control, [request], [stdin_read, stdout_write, stderr_fd])
            pid = int(json.loads(control.recv(MAX_MESSAGE))["pid"])
        except BaseException:
            control.close()
            for fd in (stdin_write, stdout_read):
                os.close(fd)
            raise
        finally:
            os.close(stdin_read)
            os.close(stdout_write)
        self.running += 1
        return WarmProcess(pid, os.fdopen(stdin_write, "wb"), os.fdopen(stdout_read, "rb"), control, self)

    def close(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            stream.close()
        for path in (Path(self.address), self.folder / "starter.log"):
            path.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass


def _readline_within(stream, seconds: float) -> bytes:
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return line[0] if line else b""


_starters: dict[tuple, WarmStarter] = {}
_failed: set[tuple] = set()  # environments whose starter did not start: fresh interpreters there
_owner = os.getpid()  # a forked copy of this process must not use (or close) its parent's starters
_lock = threading.Lock()


def launch(cwd: Path, env: dict[str, str], stderr_fd: int, startup_seconds: float) -> WarmProcess | None:
    """A worker forked from the warm starter for `env` (started on the way), or None when no
    starter can serve: start a fresh interpreter then. Waiting for a new starter takes at
    most half of `startup_seconds`, so a fresh worker still has the other half."""
    global _owner
    key = tuple(sorted(env.items()))
    with _lock:
        if _owner != os.getpid():
            _starters.clear()
            _failed.clear()
            _owner = os.getpid()
        starter = _starters.get(key)
        if starter is not None and not starter.alive():
            _starters.pop(key).close()
            starter = None
        if starter is None:
            if key in _failed:
                return None
            _retire_idle()
            try:
                starter = _starters[key] = WarmStarter(env, startup_seconds / 2)
            except OSError as err:
                _failed.add(key)
                print(f"warning: {err}; sandboxed workers start as fresh interpreters", file=sys.stderr)
                return None
        try:
            return starter.launch(cwd, env, stderr_fd, startup_seconds / 2)
        except (OSError, ValueError, KeyError, TypeError):  # a starter that died or answered nonsense
            _starters.pop(key).close()
            return None


def _retire_idle() -> None:
    """Close starters that run no worker, oldest first, to make room for a new one."""
    for key in [k for k, s in _starters.items() if s.running == 0][: max(0, len(_starters) + 1 - MAX_STARTERS)]:
        _starters.pop(key).close()


@atexit.register
def _stop() -> None:
    if _owner == os.getpid():
        for starter in _starters.values():
            starter.close()


# ============================================================================================
# The starter process: `python -m evaluation.warm_start SOCKET PARENT_PID`
# ============================================================================================


def _become_worker(request: dict, fds: list[int], starter: int) -> None:
    """In the fork: become a fresh worker (session, fds, directory, environment), run it, exit."""
    code = 1
    try:
        from evaluation import worker

        worker._die_with_parent()  # before anything else: a starter that dies takes its forks along
        if os.getppid() != starter:
            os._exit(code)  # it died before the signal was armed
        os.setsid()
        for target, fd in enumerate(fds):  # stdin, stdout, stderr
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [worker.__file__]  # what `python -m evaluation.worker` has
        sys.path[0] = request["cwd"]
        import numpy as np

        np.random.seed()  # a fresh interpreter's global NumPy state, not the starter's copy
        code = worker.main()
    except BaseException:  # noqa: BLE001 - the worker reports its own failures; this is the fork itself
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _peer_pid(conn: socket.socket) -> int:
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid


def _serve_one(conn: socket.socket, parent: int, children: dict, listening: list) -> None:
    """Read one request from `conn` and fork its worker (or drop the connection). The fork
    closes what it must not keep: the `listening` socket and selector, other workers' links."""
    fds: list[int] = []
    try:
        conn.settimeout(REQUEST_SECONDS)
        if _peer_pid(conn) != parent:
            raise PermissionError("only the evaluating process may start workers")
        message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
        request = json.loads(message)
        if len(fds) != 3 or not isinstance(request, dict):
            raise ValueError("a request is a JSON object and three file descriptors")
        sys.stdout.flush()
        sys.stderr.flush()
        starter = os.getpid()
        pid = os.fork()
        if pid == 0:
            for inherited in [conn, *children.values(), *listening]:
                inherited.close()
            _become_worker(request, fds, starter)
        children[pid] = conn
        conn.send(json.dumps({"pid": pid}).encode())
    except Exception as err:  # noqa: BLE001 - one bad request must not stop the workers already running
        print(f"request refused: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        if conn not in children.values():
            conn.close()
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _reap(children: dict) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                pass  # the sandbox gave up on this worker; nothing to tell
            conn.close()


def serve(address: str, parent: int) -> None:
    if os.getppid() != parent:
        return  # the evaluating process died while this one started
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(address)  # before the imports: a path that cannot be bound fails at once
    server.listen(16)
    # What every worker imports before its first step, imported once here.
    import numpy  # noqa: F401

    from envs.envpool_import import import_envpool
    from envs.registry import get_family  # noqa: F401
    from evaluation import rollout, worker  # noqa: F401

    import_envpool()
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    selector.register(sys.stdin.buffer, selectors.EVENT_READ)  # end of file: the evaluating process is gone
    print("ready", flush=True)
    children: dict[int, socket.socket] = {}
    orphaned = False
    while not orphaned:
        for key, _ in selector.select(timeout=POLL_SECONDS):
            if key.fileobj is server:
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                _serve_one(conn, parent, children, [server, selector])
            elif not os.read(sys.stdin.fileno(), 1024):
                orphaned = True
        _reap(children)
    for pid in children:  # the workers go with us (their parent-death signal would do it too)
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    Path(address).unlink(missing_ok=True)  # the sandbox that would have removed it is gone


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
