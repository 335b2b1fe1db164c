"""`python -m tools.evaluate`: errors are one line with exit 2; a run gives a ledger row,
traces, a contact sheet and a decodable video; --json is the last line of stdout."""

import csv
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import PROJECT_ROOT, policy
from evaluation.rollout import load_trace
from record.video import read_mp4


def cli(*args, check_rc=None, cwd=PROJECT_ROOT):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.evaluate", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.mark.parametrize(
    "args, message",
    [
        (["--game", "brekout", "--policy", policy("noop")], "unknown game 'brekout'; closest: Breakout"),
        (["--game", "pong", "--policy", "missing.py"], "policy file not found"),
        (["--game", "pong", "--policy", policy("noop"), "--episodes", "0"], "expected a positive integer"),
        (["--game", "pong", "--policy", policy("noop"), "--max-frames", "lots"], "expected a positive integer"),
        (["--game", "pong", "--policy", policy("noop"), "--protocol", "v4"], "invalid choice: 'v4'"),
        (["--game", "pong", "--policy", policy("noop"), "--obs", "xray"], "invalid choice: 'xray'"),
        (["--policy", policy("noop")], "--game and --policy are required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    proc = cli(*args, "--runs-dir", tmp_path, check_rc=2)
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not any(tmp_path.rglob("trials.jsonl"))


def test_list_prints_the_57_games_with_actions():
    out = cli("--list", check_rc=0).stdout
    assert sum("-v5" in line for line in out.splitlines()) == 57
    assert "MontezumaRevenge-v5" in out and "0:NOOP" in out and "2:RIGHT" in out


def test_evaluation_records_everything(tmp_path):
    video = tmp_path / "out" / "first.mp4"
    proc = cli("--game", "Breakout-v5", "--policy", policy("random_policy"), "--episodes", "2",
               "--runs-dir", tmp_path / "runs", "--video", video, "--json", check_rc=0)  # fmt: skip
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["game"] == "Breakout" and summary["status"] == "ok" and summary["seeds"] == [0, 1]
    assert summary["env_steps"] == sum(summary["lengths"]) and summary["frames"] == summary["env_steps"] + 2
    assert len(summary["scores"]) == 2 and summary["score_min"] <= summary["score_mean"] <= summary["score_max"]

    frames, size = read_mp4(video)
    assert size == (210, 160) and frames == summary["lengths"][0] + 1  # every observation + the last

    run_dir = tmp_path / "runs" / "breakout" / "ram"
    (run_dir,) = run_dir.iterdir()
    row = json.loads((run_dir / "trials.jsonl").read_text())
    assert read_mp4(run_dir / row["artifacts"]["video"]) == (frames, size)
    trace = load_trace(run_dir / row["artifacts"]["traces"] / "0.npz")
    assert trace["ram"].shape == (summary["lengths"][0], 128)
    lost = [m for m in trace["moments"] if m["label"].startswith("life lost")]
    assert len(lost) == 5 and all(m["frames"].shape == (16, 210, 160, 3) for m in lost)
    assert (trace["lives"][:-1] >= trace["lives"][1:]).all()  # lives only go down
    with Image.open(run_dir / row["artifacts"]["sheet"]) as sheet:
        assert sheet.width > 8 * 160 and sheet.height > 5 * 2 * 210
    assert len(list(csv.DictReader(open(run_dir / "summary.csv")))) == 1
    assert (run_dir / "sample_efficiency.png").stat().st_size > 0


def test_nothing_is_overwritten(tmp_path):
    video = tmp_path / "taken.mp4"
    video.write_bytes(b"precious")
    proc = cli("--game", "pong", "--policy", policy("noop"), "--video", video, "--runs-dir", tmp_path, check_rc=2)
    assert "already exists" in proc.stderr and video.read_bytes() == b"precious"
    for _ in range(2):  # the same command twice: two run folders, two videos, nothing replaced
        proc = cli("--game", "pong", "--policy", policy("noop"), "--episodes", 1, "--max-frames", 100,
                   "--runs-dir", tmp_path / "runs", "--video", "--json", check_rc=0)  # fmt: skip
        assert read_mp4(json.loads(proc.stdout.splitlines()[-1])["video"]) == (101, (210, 160))
    assert len(list((tmp_path / "runs" / "pong" / "ram").iterdir())) == 2


def test_failed_policy_exits_1_with_a_one_line_reason(tmp_path):
    proc = cli("--game", "pong", "--policy", policy("raises"), "--episodes", 1, "--runs-dir", tmp_path, "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout.strip().splitlines()[-1])["failure"] == "ValueError: detector lost the ball"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_relative_runs_dir_from_another_folder(tmp_path):
    # Workers run in a temp cwd; a relative runs dir must still receive traces and video.
    proc = cli("--game", "pong", "--policy", policy("noop"), "--episodes", 1, "--max-frames", 200,
               "--runs-dir", "myruns", "--video", "--json", cwd=tmp_path, check_rc=0)  # fmt: skip
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert read_mp4(tmp_path / summary["video"])[0] == 201
    (trace,) = (tmp_path / "myruns").rglob("traces/*/0.npz")
    assert len(load_trace(trace)["actions"]) == 200
