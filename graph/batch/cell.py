"""One cell of a batch: a `graph.run` in its own process, started by whichever executor runs
the cell (a thread of the local pool, or a Ray task on any node of a cluster).

Everything the cell needs travels in a `CellJob` (plain data, so Ray can ship it); what it
reports comes back as a `CellOutcome`. The run itself writes its folder in the batch folder
(shared storage on a cluster); its `summary.json`, written last, is the proof it finished.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:  # resolved before any fork: the child only makes the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: a killed batch leaves its runs to finish alone
    _prctl = None


@dataclass
class CellJob:
    cell_id: str
    args: list[str]  # graph.run's arguments
    run_dir: str  # absolute
    log: str  # absolute path of the cell's log (every attempt appended)
    env: dict[str, str] = field(default_factory=dict)  # added to the executor's environment


@dataclass
class CellOutcome:
    cell_id: str
    ok: bool
    summary: dict | None = None  # graph.run's summary.json
    error: str | None = None  # one line, when not ok
    returncode: int | None = None
    wall_seconds: float = 0.0


def _die_with_parent() -> None:
    # A kill -9 of the batch (or of the Ray worker) must take its runs with it: an orphaned
    # run would go on writing its ledger while the resumed batch starts it again.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, 9)


def run_cell(job: CellJob) -> CellOutcome:
    """Run one graph.run to its end; never raises (a crash is a failed cell, with its error)."""
    started = time.time()
    try:
        Path(job.log).parent.mkdir(parents=True, exist_ok=True)
        with open(job.log, "a") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} python -m graph.run {' '.join(job.args)}\n")
            log.flush()
            # -P: the batch folder (the run's cwd) holds memory/, which must not shadow the package.
            proc = subprocess.Popen([sys.executable, "-P", "-m", "graph.run", *job.args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=Path(job.run_dir).parents[2], env={**os.environ, **job.env},
                                    preexec_fn=_die_with_parent)  # fmt: skip
            code = proc.wait()
    except Exception as err:  # noqa: BLE001 - the executor must hear about it, not die of it
        return CellOutcome(job.cell_id, False, error=f"could not start graph.run: {type(err).__name__}: {err}",
                           wall_seconds=time.time() - started)  # fmt: skip
    wall = time.time() - started
    summary = read_summary(Path(job.run_dir))
    if code == 0 and summary is not None:
        return CellOutcome(job.cell_id, True, summary=summary, returncode=code, wall_seconds=wall)
    return CellOutcome(job.cell_id, False, error=last_error(Path(job.log), code), returncode=code, wall_seconds=wall)


def read_summary(run_dir: Path) -> dict | None:
    """A finished run's summary.json, or None (not finished, or unreadable)."""
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def last_error(log: Path, code: int | None) -> str:
    """Why a run failed, in one line: its own error line from the log, else its exit."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    attempt = lines[max((i for i, line in enumerate(lines) if line.startswith("=== ")), default=-1) + 1:]
    errors = [line for line in attempt if line.startswith("error:") or "Error" in line.split(":")[0]]
    why = errors[-1] if errors else (attempt[-1] if attempt else "no output")
    if code is not None and code < 0:
        why = f"killed by signal {-code}; last line: {why}"
    return f"exit {code}: {why}"[:300]
