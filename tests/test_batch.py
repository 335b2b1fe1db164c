"""graph.batch end to end: real graph.run processes (builtin brains, tiny budgets), the local
pool and a real local Ray instance, a kill -9 of the batch, a real Chroma server, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, evaluation_in_progress, process_running
from graph.batch.manifest import BatchSettings, Manifest, read_manifest, write_manifest
from record.ledger import Ledger
from record.tracing import read_trace

# Short episodes, one or two iterations: each cell is a whole run in about half a minute.
# Tiny cells; no robustness check (what the batch does is under test here; tests/test_graph.py,
# test_display.py and test_trace_cli.py check the ale-v5 holdout of runs under hl).
TINY = {"HL_EVAL_MAX_FRAMES": "3000", "HL_MAX_ITERATIONS": "2", "HL_TUNE_TRIALS": "2", "HL_HOLDOUT_EPISODES": "1",
        "HL_PROBE_BUDGET": "5000", "HL_ROBUSTNESS_EPISODES": "0"}  # fmt: skip


def batch_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HL_", "RAY_"))}
    return {**env, **TINY, **extra, "PYTHONPATH": str(PROJECT_ROOT)}


def run_batch(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graph.batch", "--model", "builtin", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=PROJECT_ROOT, env=env or batch_env())  # fmt: skip


def check_ledgers(batch_dir: Path, manifest: Manifest, budget: int) -> None:
    """Every cell's ledger: steps add up to its totals within the budget, no trial twice."""
    for cell in manifest.cells:
        rows = Ledger(batch_dir / cell.run_dir / "trials.jsonl").records()
        assert sum(r.env_steps for r in rows) == rows[-1].cumulative_env_steps == cell.result.env_steps <= budget
        evaluations = Counter((r.policy_hash, tuple(r.seeds), r.role) for r in rows if r.kind == "evaluation" and r.status == "ok")
        assert max(evaluations.values()) == 1, cell.id


def test_a_suite_on_the_local_pool_and_on_ray_gives_the_same_manifest_and_scoreboard(tmp_path):
    local, ray = tmp_path / "local", tmp_path / "ray"
    done = {}
    # The local pool runs two repeats (the second starts from the batch's memory); Ray runs the
    # first repeats only, to compare (a repeat 2 under Ray is the same runs on another executor).
    for batch_dir, extra, repeats in ((local, [], 2), (ray, ["--ray", "auto"], 1)):  # auto: no cluster here, so a local Ray instance
        args = ["--games", "pong,breakout", "--repeats", str(repeats), "--budget", "30000"]
        proc = run_batch(*args, "--runs-dir", batch_dir, *extra)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert ("Ray cluster at" in proc.stdout) == bool(extra)
        assert "cell pong-ram-hl-1 started (attempt 1)" in proc.stdout  # not a terminal: one plain line per event
        assert f"cell breakout-ram-hl-{repeats} done: best" in proc.stdout
        manifest = read_manifest(batch_dir)
        cells = [("pong-ram-hl-1", "done", 1), ("breakout-ram-hl-1", "done", 1), ("pong-ram-hl-2", "done", 1), ("breakout-ram-hl-2", "done", 1)]
        assert [(c.id, c.state, c.attempts) for c in manifest.cells] == cells[: 2 * repeats]
        for cell in manifest.cells:
            summary = json.loads((batch_dir / cell.run_dir / "summary.json").read_text())
            assert cell.result.best_score == summary["best_score"] is not None
            assert cell.result.structure == summary["structure"] is not None
        # Repeat 2 of a game started from what repeat 1 put in the batch's one memory.
        assert [c.result.memory_at_start > 0 for c in manifest.cells] == [False, False, True, True][: 2 * repeats]
        check_ledgers(batch_dir, manifest, 30_000)
        with open(batch_dir / "suite.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        done[batch_dir.name] = (manifest, rows, (batch_dir / "suite.md").read_text())
        assert (batch_dir / "suite.html").exists() and (batch_dir / "suite_curve.png").stat().st_size > 1000
    (m_local, rows_local, md_local), (m_ray, rows_ray, md_ray) = done["local"], done["ray"]
    assert m_local.settings.model_copy(update={"repeats": 1}) == m_ray.settings
    assert [c.model_dump(include={"id", "game", "obs", "protocol", "repeat", "run_dir", "state"}) for c in m_local.cells[:2]] == \
           [c.model_dump(include={"id", "game", "obs", "protocol", "repeat", "run_dir", "state"}) for c in m_ray.cells]  # fmt: skip
    # Under hl a first run is deterministic: the same scores whichever executor ran it.
    first = lambda m: [(c.id, c.result.best_score, c.result.env_steps) for c in m.cells if c.repeat == 1]  # noqa: E731
    assert first(m_local) == first(m_ray)
    assert list(rows_local[0]) == list(rows_ray[0]) and len(rows_local) == len(rows_ray) == 2
    assert [line.split("|")[1] for line in md_local.splitlines() if line.startswith("|")] == \
           [line.split("|")[1] for line in md_ray.splitlines() if line.startswith("|")]  # fmt: skip


def _processes_naming(*texts: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if all(text in line for text in texts):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (its runs, their warm starters and forked workers)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_kill_9_of_the_batch_loses_no_finished_cell_and_duplicates_no_trial(tmp_path):
    batch_dir = tmp_path / "b"
    args = ["--games", "breakout,pong", "--budget", "60000", "--workers", "1", "--runs-dir", batch_dir, "--quiet"]
    env = batch_env(HL_EVAL_MAX_FRAMES="8000")  # evaluations long enough to be killed in the middle of one
    proc = subprocess.Popen([sys.executable, "-m", "graph.batch", "--model", "builtin", *map(str, args)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    second = batch_dir / "pong" / "ram" / "pong-ram-hl-1"
    deadline = time.time() + 600
    while time.time() < deadline:  # the first cell done, the second one stepping an evaluation
        manifest = read_manifest(batch_dir) if (batch_dir / "batch.json").exists() else None
        if manifest and manifest.cells[0].state == "done" and second.exists() and evaluation_in_progress(second):
            break
        assert proc.poll() is None, "the batch ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("the second cell never started an evaluation")
    below = _descendants(proc.pid)  # the running cell, its warm starter, the evaluation's workers
    assert len(below) >= 3
    os.kill(proc.pid, signal.SIGKILL)  # the batch process only: its runs must die with it
    proc.wait()
    deadline = time.time() + 20
    ours = ("pong-ram-hl-1", str(batch_dir))  # tests in parallel may run cells of that name too
    while (_processes_naming(*ours) or any(map(process_running, below))) and time.time() < deadline:
        time.sleep(0.2)
    assert _processes_naming(*ours) == []  # no orphaned run goes on writing
    assert not [pid for pid in below if process_running(pid)]  # nor a worker stepping an env nobody counts

    first = batch_dir / "breakout" / "ram" / "breakout-ram-hl-1" / "trials.jsonl"
    first_ledger, before = first.read_bytes(), Ledger(second / "trials.jsonl").records()
    assert read_manifest(batch_dir).cells[1].state == "running"

    again = run_batch(*args, env=env)  # the same command resumes the batch
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    manifest = read_manifest(batch_dir)
    assert [(c.id, c.state, c.attempts) for c in manifest.cells] == [("breakout-ram-hl-1", "done", 1), ("pong-ram-hl-1", "done", 2)]
    assert first.read_bytes() == first_ledger  # the finished cell was not run again
    log = (batch_dir / "logs" / "pong-ram-hl-1.log").read_text()
    assert log.count("=== ") == 2 and "--resume pong-ram-hl-1" in log  # resumed from its checkpoint, not restarted
    rows = Ledger(second / "trials.jsonl").records()
    assert [r.model_dump() for r in rows[: len(before)]] == [r.model_dump() for r in before]  # nothing rewritten
    interrupted = [r for r in rows if r.failure_kind == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].env_steps > 0  # the killed evaluation's steps still count
    check_ledgers(batch_dir, manifest, 60_000)
    assert manifest.cells[1].result.best_score is not None and manifest.cells[1].result.stop_reason
    entries, _ = read_trace(second / "trace.jsonl")
    assert sum(e["node"] == "prober" and e["event"] == "end" for e in entries) == 1  # not probed again


def test_two_concurrent_runs_share_a_chroma_server(tmp_path, chroma_server):
    from memory import Memory

    batch_dir = tmp_path / "b"
    proc = run_batch("--games", "pong", "--repeats", "2", "--workers", "2", "--budget", "30000", "--memory-url", chroma_server,
                     "--runs-dir", batch_dir, env=batch_env(NO_PROXY="127.0.0.1,localhost"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = read_manifest(batch_dir)
    one, two = manifest.cells
    assert one.started < two.finished and two.started < one.finished  # the two ran at the same time
    assert not (batch_dir / "memory").exists()  # no local store: the server holds it all
    with Memory.open(url=chroma_server) as m:
        # Each run's critic writes the failures it sees (from the baseline on); directions and facts too.
        writers = ({f.run_id for f in m.similar_failures("pong", "ram", "points lost", k=100)}
                   | {d.run_id for d in m.directions("pong", "ram")} | {f.run_id for f in m.facts("pong").values()})  # fmt: skip
    assert {"pong-ram-hl-1", "pong-ram-hl-2"} <= writers


def _fresh(tmp_path) -> Path:
    return tmp_path / "b"


def _other_command(tmp_path) -> Path:
    folder = tmp_path / "runs"
    (folder / "pong" / "ram" / "20261203-000000-abcd").mkdir(parents=True)  # a graph.run runs folder
    return folder


def _another_batch(tmp_path) -> Path:
    folder = tmp_path / "b"
    folder.mkdir()
    write_manifest(folder, Manifest(settings=BatchSettings(games=["Breakout"], obs=["ram"], protocols=["hl"]), cells=[]))
    return folder


def _foreign_json(tmp_path) -> Path:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "batch.json").write_text('{"jobs": []}')
    return folder


@pytest.mark.parametrize(
    "args, folder, message",
    [
        (["--games", "atari58"], _fresh, "unknown game 'atari58'"),
        (["--games", "pong,zork"], _fresh, "unknown game 'zork'"),
        (["--games", "pong", "--budget", "lots"], _fresh, "expected a number of env steps"),
        (["--games", "pong", "--budget", "5000"], _fresh, "is too small"),
        (["--games", "pong", "--obs", "rgb"], _fresh, "obs mode 'rgb'"),
        (["--games", "pong", "--protocol", "sticky"], _fresh, "unknown protocol 'sticky'"),
        (["--games", "pong", "--repeats", "0"], _fresh, "expected a positive integer"),
        (["--games", "pong", "--ray", "127.0.0.1:9"], _fresh, "Ray at 127.0.0.1:9 is unreachable"),
        ([], _fresh, "--games is required"),
        (["--games", "pong"], _other_command, "has no batch.json"),
        (["--games", "pong"], _another_batch, "holds another batch"),
        (["--games", "pong"], _foreign_json, "is not a graph.batch manifest"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, folder, message):
    where = folder(tmp_path)
    before = sorted(p.name for p in where.rglob("*")) if where.exists() else None
    proc = run_batch(*args, "--runs-dir", where, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (sorted(p.name for p in where.rglob("*")) if where.exists() else None) == before  # nothing written


def test_resume_of_a_folder_that_is_not_a_batch_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graph.batch", "--resume", str(tmp_path)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=batch_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path} is not a batch folder (no batch.json)"


def test_the_live_view_shows_counts_steps_and_each_running_cell(tmp_path):
    from rich.console import Console

    from graph.batch.manifest import Cell, CellResult
    from graph.batch.progress import BatchStatus, LiveBatchView

    cells = [Cell(id="pong-ram-hl-1", game="Pong", obs="ram", protocol="hl", repeat=1, run_dir="pong/ram/pong-ram-hl-1",
                  state="done", result=CellResult(best_score=21.0, env_steps=400_000)),
             Cell(id="breakout-ram-hl-1", game="Breakout", obs="ram", protocol="hl", repeat=1, run_dir="breakout/ram/breakout-ram-hl-1",
                  state="running", attempts=2),
             Cell(id="qbert-ram-hl-1", game="Qbert", obs="ram", protocol="hl", repeat=1, run_dir="qbert/ram/qbert-ram-hl-1")]  # fmt: skip
    manifest = Manifest(settings=BatchSettings(games=["Pong", "Breakout", "Qbert"], obs=["ram"], protocols=["hl"]), cells=cells)
    status = BatchStatus(tmp_path, manifest, 1_000_000, time.time() - 60)
    status.progress["breakout-ram-hl-1"] = (120_000, 36.0)  # as read from its ledger
    status.progress["pong-ram-hl-1"] = (400_000, 21.0)
    view = LiveBatchView(status)
    console = Console(record=True, width=120)
    console.print(view._render())
    text = console.export_text()
    assert "1 done · 1 running · 0 failed · 1 pending · env steps 520,000 of 3,000,000" in text
    assert "ETA" in text
    row = next(line for line in text.splitlines() if "breakout-ram-hl-1" in line)
    assert row.split() == ["breakout-ram-hl-1", "2", "120,000", "36"]
    assert "qbert" not in text  # pending cells are counted, not listed
