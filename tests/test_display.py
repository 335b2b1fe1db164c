"""What a person sees of a run: plain full lines when the output is not a terminal, a live
display in one that labels every phase and never cuts the paths a user copies, and a wall
time that is the command's."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from conftest import PROJECT_ROOT
from graph.display import LiveDisplay, PlainLog, fmt_number
from record.meter import StepMeter
from record.tracing import read_trace

SMALL = {"HL_EVAL_MAX_FRAMES": "2500", "HL_TUNE_TRIALS": "2", "HL_MAX_ITERATIONS": "2", "HL_HOLDOUT_EPISODES": "1",
         "HL_PROBE_BUDGET": "12000"}  # fmt: skip


def test_a_piped_run_logs_plain_full_lines_with_labelled_phases_and_the_commands_wall_time(tmp_path):
    runs = tmp_path / "a-runs-folder-with-a-long-name-so-that-its-paths-pass-eighty-columns-in-any-log" / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HL_"))}
    env.update(SMALL, COLUMNS="80", PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run([sys.executable, "-m", "graph.run", "--game", "pong", "--budget", "60000", "--runs-dir", str(runs)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "…" not in log and "━" not in log and "\r" not in log  # no progress bar, nothing cut
    run_dir = next(runs.glob("pong/ram/*"))
    summary = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert summary["run dir"] == str(run_dir) and Path(summary["readme"]).is_file()  # whole paths, one per line
    assert any(len(line) > 80 for line in done.stdout.splitlines())  # not wrapped at 80 columns
    events = done.stderr.splitlines()
    assert all(re.match(r"^\d\d:\d\d:\d\d  \S", line) for line in events), events[:5]
    assert any(" trial " in line or "trial " in line for line in events)
    phases = [line.split("  ", 1)[1].split(":")[0] for line in events if "  finish " in line]
    # Under hl the best policy is also played on holdout seeds under ale-v5 (the robustness check).
    assert phases == ["finish holdout", "finish robustness", "finish report"]
    assert re.fullmatch(r"holdout ale-v5: -?[\d.]+ over 10 holdout episodes.*", next(x for x in done.stdout.splitlines() if x.startswith("holdout ale-v5")))
    # The wall time covers everything the command did, finish included.
    entries, _ = read_trace(run_dir / "trace.jsonl")
    assert [e["node"] for e in entries if e["event"] == "end"][-3:] == ["holdout", "robustness", "report"]
    assert float(summary["wall seconds"]) >= entries[-1]["t"] - entries[0]["t"]


def _ctx(run_dir: Path) -> SimpleNamespace:
    return SimpleNamespace(meter=StepMeter(budget=120_000, used_steps=30_000), llm=None, run_dir=run_dir)


def test_live_display_shows_the_best_after_a_decision_and_names_finish_phases(tmp_path):
    display = LiveDisplay(_ctx(tmp_path))
    display.console = Console(file=io.StringIO(), width=100, force_terminal=True)
    display._bar.console.file = io.StringIO()
    display.start()
    display.node("evaluate", {"best": None})
    display.decision(1, "intercept controller", "accepted", {"score": 15}, None)
    assert display._bar.tasks[0].fields["best"] == "15"  # not "-" until the next node starts
    display.phase("holdout")
    fields = display._bar.tasks[0].fields
    assert fields["node"] == "holdout" and "holdout seeds" in fields["diag"]
    display.stop()


def test_summary_in_a_narrow_terminal_prints_paths_whole(tmp_path, monkeypatch):
    deep = tmp_path / ("x" * 60) / "runs" / "pong" / "ram" / "20261203-000000-abcdef"
    summary = dict(game="Pong", obs_mode="ram", protocol="hl", run_id="r1", best_score=21, holdout="21 over 3 holdout episodes",
                   wall_seconds=12.5, stop_reason="target reached", run_dir=str(deep), readme=str(deep / "README.md"),
                   curve=str(deep / "sample_efficiency.png"))  # fmt: skip
    out = io.StringIO()
    monkeypatch.setattr("graph.display.Console", lambda **kw: Console(file=out, width=80, force_terminal=True, **kw))
    LiveDisplay.print_summary(None, summary)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    for path in (summary["run_dir"], summary["readme"], summary["curve"]):
        assert path in text.replace("\n", ""), path  # soft-wrapped by the terminal at most, never cut
    assert "…" not in text


def test_plain_log_formats_numbers_one_way(tmp_path):
    stream = io.StringIO()
    log = PlainLog(_ctx(tmp_path), stream=stream)
    log.decision(3, "lead the ball by 0.75 of its speed", "accepted", {"score": 1234.5}, "target reached")
    lines = stream.getvalue().splitlines()
    assert "env steps 30,000 of 120,000" in lines[0] and re.search(r"best 1,23[45] ", lines[0]), lines[0]
    assert lines[1].endswith("stopping: target reached")
    assert fmt_number(1234567) == "1,234,567" and fmt_number(0.5) == "0.5" and fmt_number(None) == "-"
