"""Each way untrusted policy code can fail yields a failed trial row with the reason, and the
evaluation of other policies carries on in the same run."""

import json
import os

import pytest

from conftest import policy, process_running
from evaluation.evaluate import evaluate
from record.ledger import Ledger
from evaluation.sandbox import SandboxLimits, clean_environment

SHORT = dict(game="pong", max_frames=2000, episodes=2)


def _evaluate(run_dir, name, **kw):
    return evaluate(policy(name), run_dir=run_dir, **{**SHORT, **kw})


@pytest.mark.parametrize(
    "name, kind, reason, steps",
    [
        ("raises", "exception", "ValueError: detector lost the ball", 2 * 100),
        ("bad_action", "invalid_action", "invalid action 99", 2 * 50),
        ("memory_hog", "memory", "MemoryError", 2 * 10),
        ("exits", "crash", "exit code 3", 2 * 30),
    ],
)
def test_failing_policy_is_a_failed_trial_and_evaluation_continues(run_dir, name, kind, reason, steps):
    failed = _evaluate(run_dir, name, limits=SandboxLimits(memory_mb=2048))
    assert failed.status == "failed"
    assert failed.failure_kind == kind
    assert reason in failed.failure
    # Steps taken before the failure are still counted, exactly (both envs step together).
    assert failed.env_steps == steps
    if kind != "crash":
        assert "Traceback" in failed.traceback

    ok = _evaluate(run_dir, "noop")
    assert ok.status == "ok" and ok.score_mean is not None
    rows = Ledger(run_dir / "trials.jsonl").records()
    assert [r.status for r in rows] == ["failed", "ok"]
    assert rows[1].cumulative_env_steps == steps + ok.env_steps


@pytest.mark.parametrize("warm", [True, False])
def test_hanging_policy_is_killed_and_counted(run_dir, tmp_path, monkeypatch, warm):
    monkeypatch.setenv("HL_TEST_OUT", str(tmp_path / "pids"))
    record = _evaluate(run_dir, "hangs_with_child", limits=SandboxLimits(stall_seconds=3, warm_start=warm))
    assert record.status == "failed" and record.failure_kind == "timeout"
    assert "no progress" in record.failure
    assert record.env_steps == 2 * 200
    # The worker's whole process group is gone: the policy's process and the child it started.
    pids = [json.loads((tmp_path / f"pids.{seed}.json").read_text()) for seed in (0, 1)]
    assert pids and not any(process_running(p["worker"]) or process_running(p["child"]) for p in pids)


@pytest.mark.parametrize("warm", [True, False])
def test_slow_worker_start_up_is_not_a_hang(run_dir, tmp_path, monkeypatch, warm):
    """A worker that takes longer to start (imports, env creation) than the stall limit, as
    on a busy machine or a cluster node, is not killed: the stall clock starts at "ready".
    Forked from a warm starter, the starter's own start-up is the worker's."""
    slow = tmp_path / "slow_start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(6)\n")  # runs as the worker (or its starter) starts
    monkeypatch.setenv("PYTHONPATH", str(slow))
    record = _evaluate(run_dir, "noop", limits=SandboxLimits(stall_seconds=3, warm_start=warm))
    assert record.status == "ok", record.failure
    assert record.env_steps > 0 and record.score_mean is not None

    monkeypatch.setenv("HL_ANOTHER_ENVIRONMENT", "1")  # a warm starter for it must start first
    too_slow = _evaluate(run_dir, "noop", limits=SandboxLimits(stall_seconds=3, startup_seconds=2, warm_start=warm))
    assert too_slow.status == "failed" and too_slow.failure_kind == "timeout"
    assert "not ready" in too_slow.failure and too_slow.env_steps == 0


def test_api_keys_are_stripped_from_the_worker_environment(run_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "t0ken")
    record = _evaluate(run_dir, "reads_api_key")
    assert record.status == "failed" and record.failure_kind == "exception"
    assert "KeyError" in record.failure and "OPENAI_API_KEY" in record.failure
    env = clean_environment()
    assert "OPENAI_API_KEY" not in env and "SOME_SERVICE_TOKEN" not in env
    assert env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize("warm", [True, False])
def test_policy_runs_in_temp_dir_without_secrets(run_dir, tmp_path, monkeypatch, warm):
    from evaluation import warm_start

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    out = tmp_path / "seen"
    monkeypatch.setenv("HL_TEST_OUT", str(out))
    record = _evaluate(run_dir, "sees", obs_mode="ram", limits=SandboxLimits(warm_start=warm))
    assert record.status == "ok"
    seen = json.loads((tmp_path / "seen.0.json").read_text())
    assert seen[0]["cwd"] != os.getcwd() and "hl-worker-" in seen[0]["cwd"]
    assert not os.path.exists(seen[0]["cwd"])  # temp dir removed afterwards
    assert "OPENAI_API_KEY" not in seen[0]["env_names"]
    # A fork of the warm starter, or a fresh interpreter: either way what `python -m
    # evaluation.worker` would have in its argv and at the head of its path.
    starter = warm_start._starters.get(tuple(sorted(clean_environment().items())))
    assert seen[0]["parent"] == (starter.proc.pid if warm else os.getpid())
    assert seen[0]["argv0"].endswith(os.path.join("evaluation", "worker.py")) and seen[0]["path_head"][1] == seen[0]["cwd"]


def _hs_with_test(tmp_path, body: str):
    hs = tmp_path / "hs"
    (hs / "tests").mkdir(parents=True)
    (hs / "detectors.py").write_text("X = 1\n")
    (hs / "tests" / "test_model_written.py").write_text(body)
    return hs


def test_hs_tests_run_sandboxed_without_secrets_emulators_or_write_access(tmp_path, monkeypatch):
    from evaluation.sandbox import run_hs_tests

    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    hs = _hs_with_test(tmp_path, '''import os, pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import detectors

def test_reads_its_detectors():
    assert detectors.X == 1

def test_sees_no_secret():
    assert "OPENAI_API_KEY" not in os.environ

def test_cannot_step_an_emulator():
    try:
        import envpool  # noqa: F401
    except ImportError as e:
        assert "not be counted" in str(e)
    else:
        raise AssertionError("envpool imported")

def test_writes_land_in_a_copy():
    (pathlib.Path(__file__).resolve().parent.parent / "detectors.py").write_text("X = 2\\n")
''')
    result = run_hs_tests(hs)
    assert result.status == "passed", result.output
    assert "4 passed" in result.summary()
    assert (hs / "detectors.py").read_text() == "X = 1\n"  # the tests changed only their copy
    assert not list(hs.rglob("__pycache__"))


def test_failing_and_hanging_hs_tests_are_outcomes_not_exceptions(tmp_path):
    from evaluation.sandbox import run_hs_tests

    failing = run_hs_tests(_hs_with_test(tmp_path / "a", "def test_no():\n    assert 1 == 2\n"))
    assert failing.status == "failed" and not failing.passed and "1 failed" in failing.summary()
    hanging = run_hs_tests(_hs_with_test(tmp_path / "b", "import time\n\ndef test_sleeps():\n    time.sleep(60)\n"), timeout=3)
    assert hanging.status == "timeout" and "killed" in hanging.output
    assert run_hs_tests(tmp_path / "nothing").status == "no_tests"
