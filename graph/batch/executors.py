"""Where a batch's cells run. Both executors take a `CellJob`, run `graph.batch.cell.run_cell`
and hand back `CellOutcome`s; the batch loop does not know which one it has.

- `LocalPool` (the default): threads of this process, each waiting on one graph.run process.
  No service to start; `workers` cells at a time.
- `RayPool` (`--ray auto|ADDRESS`): each cell is a Ray task asking for `cpus_per_cell` CPUs
  (the run's evaluation workers), so Ray places as many at once as the cluster holds. It
  assumes every node has the workbench installed (same version) and sees the batch folder at
  the same path (shared storage): the runs write their folders there.
"""

from __future__ import annotations

import socket
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

from graph.batch.cell import CellJob, CellOutcome, run_cell


class ExecutorError(ValueError):
    """The executor cannot start (Ray missing or unreachable): one line."""


class LocalPool:
    name = "local pool"

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cell")
        self._running: dict[Future, str] = {}

    def submit(self, job: CellJob) -> None:
        self._running[self._pool.submit(run_cell, job)] = job.cell_id

    def wait(self, timeout: float) -> list[CellOutcome]:
        """The cells that ended within `timeout` seconds (maybe none)."""
        if not self._running:
            return []
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            cell_id = self._running.pop(future)
            try:
                out.append(future.result())
            except Exception as err:  # noqa: BLE001 - run_cell does not raise; be sure anyway
                out.append(CellOutcome(cell_id, False, error=f"{type(err).__name__}: {err}"))
        return out

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class RayPool:
    def __init__(self, address: str, cpus_per_cell: int) -> None:
        check_ray(address)
        import ray

        # auto: a cluster this machine belongs to (RAY_ADDRESS, or `ray start` here), else a
        # local instance with this machine's CPUs.
        try:
            ray.init(address=None if address == "auto" else address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - any failure to connect is the user's setup
            raise ExecutorError(f"cannot start or join Ray at {address}: {' '.join(str(err).split())[:200]}") from None
        self._ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if cpus < cpus_per_cell:
            ray.shutdown()
            raise ExecutorError(f"the Ray cluster has {cpus} CPUs, fewer than --cpus-per-cell {cpus_per_cell}")
        self.slots = max(1, cpus // cpus_per_cell)
        self.name = f"Ray cluster at {ray.get_runtime_context().gcs_address} ({cpus} CPUs)"
        # No retries: a retried cell would start a second graph.run on the same run folder.
        self._remote = ray.remote(num_cpus=cpus_per_cell, max_retries=0)(run_cell)
        self._running: dict = {}

    def submit(self, job: CellJob) -> None:
        self._running[self._remote.remote(job)] = job.cell_id

    def wait(self, timeout: float) -> list[CellOutcome]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout)
        out = []
        for ref in ready:
            cell_id = self._running.pop(ref)
            try:
                out.append(self._ray.get(ref))
            except Exception as err:  # noqa: BLE001 - the task or its worker died
                out.append(CellOutcome(cell_id, False, error=f"Ray task failed: {' '.join(str(err).split())[:200]}"))
        return out

    def shutdown(self) -> None:
        self._ray.shutdown()


def _check_reachable(address: str) -> None:
    """A TCP connect to the address first: Ray itself retries a dead address for a minute."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port or (10001 if address.startswith("ray://") else 6379)
    except ValueError:
        host = port = None
    if not host:
        raise ExecutorError(f"bad Ray address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as err:
        raise ExecutorError(f"Ray at {address} is unreachable: {' '.join(str(err).split())}") from None


def check_ray(address: str) -> None:
    """Before the batch folder is made: Ray is installed, and an address answers."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ExecutorError("--ray needs Ray: pip install -c constraints.txt -e '.[ray]'") from None
    if address != "auto":
        _check_reachable(address)


def make_executor(ray: str | None, workers: int, cpus_per_cell: int):
    """The executor the flags ask for."""
    return RayPool(ray, cpus_per_cell) if ray else LocalPool(workers)
