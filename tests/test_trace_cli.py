"""`python -m graph.trace` as a person and a script meet it, on a real small run of the learning
loop: the timeline fits a terminal of 80, 100 or 120 columns without cutting a word, and is one
full line per row when piped; the finish (holdout, report) is in it; a node's details wrap its
values whole; bad input (an unknown node, a missing policy version) is one line and exit 2; a
reader that goes away ends it quietly; every argument has help."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
BORDERS = "│┃║|┏┓┗┛┡┩└┘┌┐├┤┬┴┼━─═╇╈╋┳┻"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_"))}
    env.pop("COLUMNS", None)
    return {**env, **extra, "PYTHONPATH": str(PROJECT_ROOT)}


@pytest.fixture(scope="module")
def trace_run(small_run) -> Path:
    """The shared small run of the real loop (tests/conftest.py)."""
    return small_run[1]


def trace(*args) -> subprocess.CompletedProcess:
    """graph.trace with stdout a pipe (as in `... > file` or `... | less`)."""
    return subprocess.run([sys.executable, "-m", "graph.trace", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip


def in_terminal(columns: int, *args) -> tuple[int, str]:
    """graph.trace with stdout a terminal `columns` wide: its exit code and what it showed
    (colours and other escape codes removed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    env = clean_env(COLUMNS=str(columns), LINES="60", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "graph.trace", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE, env=env, cwd=PROJECT_ROOT)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=120)
    assert proc.stderr.read() == b""
    proc.stderr.close()
    return code, ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def rows_of(run_dir: Path) -> list[dict]:
    proc = trace(run_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["rows"]


def words(text: str) -> list[str]:
    return "".join(" " if c in BORDERS else c for c in text).split()


# -- the timeline -----------------------------------------------------------------------------------


def test_timeline_has_the_finish_holdout_and_report(trace_run):
    rows = rows_of(trace_run)
    assert [r["node"] for r in rows[-3:]] == ["holdout", "robustness", "report"]  # under hl: the ale-v5 check too
    holdout, robust, report = rows[-3:]
    assert rows[-4]["node"] == "decide" and rows[-4]["decision"] == "end"
    assert holdout["status"] == robust["status"] == report["status"] == "end"
    assert holdout["iteration"] == report["iteration"] >= rows[-4]["iteration"]  # the run's last iteration
    assert holdout["env_steps"] > 0 and robust["env_steps_total"] == report["env_steps_total"]
    assert holdout["trials"], "the holdout trial belongs to the holdout row"
    assert len(robust["trials"]) == 1 and not set(robust["trials"]) & set(holdout["trials"]), "each finish trial in its own row"
    piped = trace(trace_run).stdout
    assert re.search(r"\bholdout\b.*\bholdout\b", piped) and re.search(r"\breport\b", piped)


def assert_rows_whole(shown: str, rows: list[dict], where: str) -> None:
    """Every row's node and every word of its summary shown whole and in order: nothing cut
    ("detector…") or broken inside a word; the rows read top to bottom."""
    assert "…" not in shown, shown
    tokens, at = words(shown), 0
    for r in rows:
        for word in [r["node"], *(r["summary"] or "").split()]:
            assert word in tokens[at:], f"{word!r} (row {r['index']}) not shown whole {where}:\n{shown}"
            at = tokens.index(word, at) + 1


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_timeline_fits_the_terminal_without_cutting_a_word(trace_run, columns, tmp_path):
    rows = rows_of(trace_run)
    # The run's folder by a path longer than the terminal is wide: shown whole, to copy.
    folder = tmp_path / ("a-folder-with-a-long-name-" * 4) / trace_run.name
    folder.parent.mkdir()
    folder.symlink_to(trace_run)
    code, shown = in_terminal(columns, folder)
    assert code == 0
    lines = shown.splitlines()
    assert lines[0].rstrip() == f"trace of {folder}" and len(lines[0]) > columns
    assert all(len(line) <= columns for line in lines[1:]), "\n".join(lines)
    assert_rows_whole(shown, rows, f"at {columns} columns")
    assert re.search(r"\bwhat happened\b", shown)
    # Readable, not a column of single words: a row takes a few lines at most.
    assert len(lines) <= 3 * len(rows) + 8, shown


def test_timeline_in_a_narrow_terminal_is_plain_lines(trace_run):
    rows = rows_of(trace_run)
    code, shown = in_terminal(60, trace_run)
    assert code == 0
    assert_rows_whole(shown, rows, "at 60 columns")
    assert shown.splitlines() == trace(trace_run).stdout.splitlines()  # the terminal wraps them, nothing is cut


def test_timeline_piped_is_one_full_line_per_row(trace_run):
    rows = rows_of(trace_run)
    proc = trace(trace_run)
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == len(rows) + 1 and str(trace_run) in lines[0]
    for r, line in zip(rows, lines[1:]):
        assert re.search(rf"\b{r['node']}\b", line) and (r["summary"] or "") in line, line
    assert not any(c in proc.stdout for c in "│┃━…")  # no table drawn for a file


def test_iteration_filter(trace_run):
    rows = [r for r in rows_of(trace_run) if r["iteration"] == 1]
    proc = trace(trace_run, "--iteration", "1")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == len(rows) + 1


# -- a node's details ---------------------------------------------------------------------------------


def test_replay_critic_details_wrap_values_whole(trace_run):
    proc = trace(trace_run, "--node", "replay_critic")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert "…" not in proc.stdout  # no value cut short
    # Wrapped at word boundaries to 100 columns (a single word longer than that stays whole).
    assert all(len(line) <= 100 or len(line.split()) == 1 for line in lines), [x for x in lines if len(x) > 100]
    flowing = " ".join(line.strip() for line in lines)
    executions = json.loads(trace(trace_run, "--node", "replay_critic", "--json").stdout)["executions"]
    assert len(executions) >= 2 and all(e["node"] == "replay_critic" for e in executions)
    for e in executions:
        diagnosis = e["outputs"]["diagnosis"]
        for key in ("what", "evidence", "hypothesis"):
            assert json.dumps(diagnosis[key]) in flowing, key  # the whole value, wrapped at words
        for key, value in e["inputs"].items():  # every input value whole, however long
            assert f"{key}: " in flowing
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            assert text in flowing, (key, text[:200])
    one = trace(trace_run, "--node", "replay_critic", "--iteration", "1")
    assert one.returncode == 0 and one.stdout.count("replay_critic · iteration 1") == 1


def test_holdout_details(trace_run):
    proc = trace(trace_run, "--node", "holdout")
    assert proc.returncode == 0 and proc.stderr == ""
    executions = json.loads(trace(trace_run, "--node", "holdout", "--json").stdout)["executions"]
    assert len(executions) == 1 and executions[0]["env_steps"] > 0 and executions[0]["trials"]
    trial = executions[0]["trials"][0]
    assert "holdout" in proc.stdout and f"trial {trial['trial']} {trial['kind']} {trial['status']}" in proc.stdout


# -- like a Unix tool -------------------------------------------------------------------------------


def test_unknown_node_is_one_line_naming_the_valid_ones(trace_run):
    proc = trace(trace_run, "--node", "nosuchnode")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "nosuchnode" in proc.stderr, proc.stderr
    for node in ("prober", "detector_writer", "policy_writer", "evaluate", "replay_critic", "decide", "notes_keeper",
                 "simplifier", "holdout", "report"):  # fmt: skip
        assert node in proc.stderr, node


@pytest.mark.parametrize("a, b", [("1", "9"), ("0", "99"), ("1", "nosuchrevision"), ("HEAD~50", "0")])
def test_diff_of_a_missing_version_is_one_line(trace_run, a, b):
    proc = trace(trace_run, "--diff", a, b)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "usage: git" not in proc.stderr and "Traceback" not in proc.stderr
    assert (b if b != "0" else a) in proc.stderr  # names what is missing


def test_diff_of_two_versions(trace_run):
    proc = trace(trace_run, "--diff", "0", "1")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("a: version 0 ") and "\nb: version 1 " in proc.stdout
    as_json = json.loads(trace(trace_run, "--diff", "0", "1", "--json").stdout)
    assert as_json["a"]["version"] == 0 and as_json["b"]["version"] == 1


def test_unknown_run_is_one_line(tmp_path):
    proc = trace("no-such-run", "--runs-dir", tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no-such-run" in proc.stderr


@pytest.mark.parametrize("args", [["--json"], ["--node", "replay_critic", "--json"], [], ["--node", "evaluate"]])
def test_a_reader_that_goes_away_ends_it_quietly(trace_run, args):
    # `... | head -1`: the reader closes the pipe; here before anything is written, so every
    # write the command makes meets a closed pipe.
    proc = subprocess.Popen([sys.executable, "-m", "graph.trace", str(trace_run), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 141), err.decode()
    assert err == b"", err.decode()  # no BrokenPipeError traceback, no "Exception ignored"
    shell = subprocess.run(f"{sys.executable} -m graph.trace {trace_run} {' '.join(args)} | head -1", shell=True,
                           capture_output=True, text=True, timeout=120, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip
    assert shell.returncode == 0 and shell.stderr == "" and shell.stdout.count("\n") == 1


def test_every_argument_has_help():
    proc = trace("--help")
    assert proc.returncode == 0
    text = proc.stdout
    for option in ("--runs-dir", "--node", "--iteration", "--diff", "--json", "run"):
        at = re.search(rf"^  {re.escape(option)}\b[^\n]*(\n {{20,}}[^\n]*)?", text, re.M)
        assert at, option
        explained = re.sub(rf"^  {re.escape(option)}( [A-Z_]+)*", "", at.group(0)).split()
        assert len(explained) >= 3, f"{option} has no help text: {at.group(0)!r}"
    assert "holdout" in text  # the finish phases are nodes too
