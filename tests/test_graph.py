"""End to end, CI-sized: `python -m graph.run` runs every role with builtin brains on a small
budget, with real EnvPool, a real Chroma store and a real SQLite checkpoint; a kill -9
mid-run resumes without lost or duplicated trials; a second run starts from memory."""

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from conftest import PROJECT_ROOT
from record.tracing import read_trace
from record.ledger import Ledger

# Short episodes and a short search keep each run under a minute here.
SMALL = {"HL_EVAL_MAX_FRAMES": "6000", "HL_TUNE_TRIALS": "3", "HL_PLATEAU_PATIENCE": "3", "HL_HOLDOUT_EPISODES": "1"}


def graph_run(runs_dir, *args, env_extra=None, timeout=600):
    # Builtin brains: a developer's OPENAI_* variables must not turn these runs into LLM runs.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env = {**env, **SMALL, **(env_extra or {}), "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "graph.run", "--runs-dir", str(runs_dir), "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=PROJECT_ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_log(hs):
    out = subprocess.run(["git", "log", "--format=%s"], cwd=hs, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    summary = graph_run(runs, "--game", "breakout", "--budget", "150000")
    return runs, summary


def test_all_roles_leave_their_records(first_run):
    runs, s = first_run
    from pathlib import Path

    run_dir = Path(s["run_dir"])
    assert s["game"] == "Breakout" and s["best_score"] is not None and s["best_score"] > 1.7  # random is 1.7

    rows = Ledger(run_dir / "trials.jsonl").records()
    roles = Counter(r.role for r in rows)
    assert roles["prober"] == 1 and roles["detector_writer"] == 1 and roles["evaluate"] >= 2
    assert roles["simplifier"] >= 1 and roles["finish"] == 2  # the holdout, then the robustness check
    assert sum(r.env_steps for r in rows) == rows[-1].cumulative_env_steps == s["env_steps"] <= 150_000
    # The holdout was paid for from the reserve and scored, as the summary says; so was the
    # same policy on 10 ale-v5 holdout seeds (under hl every seed is the same game).
    holdout, robust = rows[-2], rows[-1]
    assert holdout.role == "finish" and holdout.status == "ok" and s["holdout"].endswith("over 1 holdout episode")
    assert (robust.kind, robust.protocol, robust.status, len(robust.scores)) == ("robustness", "ale-v5", "ok", 10)
    assert s["robustness_score"] == robust.score_mean and s["robustness"].startswith(f"{robust.score_mean:g} over 10 holdout episodes")
    assert all(r.policy_hash for r in rows if r.kind in ("evaluation", "tuning"))

    entries, damage = read_trace(run_dir / "trace.jsonl")
    assert not damage
    ended = Counter(e["node"] for e in entries if e["event"] == "end")
    for node in ("prober", "detector_writer", "policy_writer", "evaluate", "replay_critic", "decide", "notes_keeper", "simplifier"):
        assert ended[node] >= 1, node
    ends = [e for e in entries if e["event"] == "end"]
    assert sum(e["env_steps"] for e in ends) == s["env_steps"]  # the finish phases are traced like nodes
    assert [(e["node"], e["env_steps"]) for e in ends[-3:]] == [("holdout", holdout.env_steps), ("robustness", robust.env_steps), ("report", 0)]
    assert [e["decision"] for e in entries if e["event"] == "end" and e["node"] == "decide"][-1] == "end"

    log = git_log(run_dir / "hs")
    assert log[-1] == "Start the heuristic system" and log[-2].startswith("Detectors from the probe")
    assert log[-3].startswith("pattern baseline: ") and any(m.startswith("intercept controller") for m in log)
    assert any(m.startswith("Notes:") for m in log)
    assert "## Iteration 1" in (run_dir / "hs" / "NOTES.md").read_text()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=run_dir / "hs",
                           capture_output=True, text=True)  # fmt: skip
    assert tests.returncode == 0, tests.stdout  # the detector pins hold

    for name in ("summary.csv", "sample_efficiency.png", "README.md", "probe/probe.json", "probe/probe.md"):
        assert (run_dir / name).exists(), name
    readme = (run_dir / "README.md").read_text()
    assert f"**Best dev score:** {s['best_score']:g}" in readme and "Intercept controller" in readme
    # The reproduction command carries the HL_* knobs this run used that differ from the
    # defaults (one holdout episode is hl's default: not repeated).
    assert " HL_TUNE_TRIALS=3 HL_PLATEAU_PATIENCE=3 HL_EVAL_MAX_FRAMES=6000 python -m graph.run" in readme
    assert "HL_HOLDOUT_EPISODES" not in readme
    # Usage per node in the state sums to the run's (all but the finish, which runs after the graph).
    by_node = s["usage_by_node"]
    assert {"prober", "detector_writer", "evaluate", "simplifier"} <= set(by_node)
    assert sum(u["env_steps"] for u in by_node.values()) == s["env_steps"] - holdout.env_steps - robust.env_steps

    from memory import Memory

    memory = Memory.open(runs_dir=runs)
    facts = memory.facts("Breakout", "ram")
    assert {"probe_report", "detector_facts", "best_policy"} <= set(facts)
    assert facts["best_policy"].value["score"] == s["best_score"]
    assert memory.count("Breakout")["hl_failures"] >= 1
    # Every revision is remembered: all iterations but the first versions (the pattern baseline,
    # the probe's structure and each challenger structure). The trace's decisions name them all;
    # hs/ keeps only the accepted ones (a rejected challenger is rolled back).
    decided = [e["summary"].split(": ", 1)[1] for e in ends if e["node"] == "decide" and e["summary"]]  # not the stop
    assert len(decided) == s["iterations"]
    first_versions = [d for d in decided if d.startswith("pattern baseline: ") or "controller with default parameters" in d]
    assert len(first_versions) >= 3  # the baseline, intercept and at least one challenger
    assert len(memory.directions("Breakout", "ram")) == s["iterations"] - len(first_versions)


def test_second_run_starts_from_memory(first_run):
    runs, first = first_run
    second = graph_run(runs, "--game", "breakout", "--budget", "150000")
    from pathlib import Path

    run_dir = Path(second["run_dir"])
    rows = Ledger(run_dir / "trials.jsonl").records()
    assert not any(r.role == "prober" for r in rows)  # the probe came from memory: no steps
    entries, _ = read_trace(run_dir / "trace.jsonl")
    prober = next(e for e in entries if e["event"] == "end" and e["node"] == "prober")
    assert prober["env_steps"] == 0 and "memory" in prober["summary"]
    assert second["best_score"] >= first["best_score"]
    assert second["env_steps_to_best"] < first["env_steps_to_best"]


def test_montezuma_route_run_and_a_second_run_from_its_memory(tmp_path):
    """The route controller end to end on a small budget: probe, a counted search, the route
    policy evaluated in the harness; a second run takes probe and route from memory (no
    probe, no search) and reaches the first run's best sooner."""
    from pathlib import Path

    knobs = {"HL_SEARCH_STEPS": "60000", "HL_EVAL_MAX_FRAMES": "3000", "HL_MAX_ITERATIONS": "2", "HL_PROBE_BUDGET": "20000"}
    first = graph_run(tmp_path, "--game", "montezuma", "--budget", "150000", env_extra=knobs)
    run_dir = Path(first["run_dir"])
    rows = Ledger(run_dir / "trials.jsonl").records()
    search = [r for r in rows if r.kind == "search"]
    assert search and search[0].role == "policy_writer" and 0 < search[0].env_steps <= 60_000  # HL_SEARCH_STEPS
    assert search[0].protocol_settings["repeat_action_probability"] == 0.0 and "deterministic" in search[0].change_summary
    assert sum(r.env_steps for r in rows) == first["env_steps"] <= 150_000  # search steps are on the meter
    # The route policy was evaluated (accepted only if it beat the pattern baseline), and memory
    # keeps the route either way.
    route_evaluated = lambda rows: any(r.kind == "evaluation" and r.change_summary == "route controller with default parameters"
                                       for r in rows)  # noqa: E731
    assert route_evaluated(rows) and first["best_score"] is not None
    from memory import Memory

    with Memory.open(runs_dir=tmp_path) as memory:
        route = memory.facts("MontezumaRevenge", "ram")["route:hl"]
    assert route.run_id == run_dir.name and "ROUTE" in route.value["route_source"]

    second = graph_run(tmp_path, "--game", "montezuma", "--budget", "150000", env_extra=knobs)
    again = Path(second["run_dir"])
    rows2 = Ledger(again / "trials.jsonl").records()
    assert not any(r.kind == "search" and r.change_summary.endswith("first route") for r in rows2)
    assert not any(r.role == "prober" for r in rows2) and route_evaluated(rows2)  # the remembered route, no search
    assert second["best_score"] >= first["best_score"]
    assert second["env_steps_to_best"] < first["env_steps_to_best"]


# Killing a run mid-evaluation and resuming it: tests/test_batch.py kills a batch (and so its
# running graph.run) and checks the resumed run's ledger and trace.


@pytest.mark.parametrize(
    "args, message",
    [
        (["--game", "zork"], "unknown game 'zork'"),
        (["--game", "pong", "--budget", "lots"], "expected a number of env steps"),
        (["--game", "pong", "--budget", "0"], "positive whole number"),
        (["--game", "pong", "--budget", "40000"], "is too small"),  # no holdout could be paid for
        (["--resume", "no-such-run"], "no run 'no-such-run'"),
        ([], "--game is required"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "graph.run", "--runs-dir", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/*/*/config.json"))  # no run folder is left behind


@pytest.mark.parametrize(
    "knob, message",
    [
        ({"HL_TUNE_TRIALS": "many"}, "HL_TUNE_TRIALS='many' is not a number"),
        ({"HL_SIMPLIFY_EVERY": "0"}, "bad setting simplify_every"),
        ({"HL_EVAL_MAX_FRAMES": "-5"}, "bad setting eval_max_frames"),
    ],
)
def test_bad_knobs_are_one_line_and_leave_no_run_folder(tmp_path, knob, message):
    env = {**os.environ, **knob}
    proc = subprocess.run([sys.executable, "-m", "graph.run", "--runs-dir", str(tmp_path / "runs"), "--game", "pong"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_corrupt_run_folder_is_refused(tmp_path):
    run = tmp_path / "pong" / "ram" / "broken-run"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{not json")
    (run / "checkpoint.sqlite").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "graph.run", "--runs-dir", str(tmp_path), "--resume", "broken-run"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "corrupt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
