import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POLICIES = Path(__file__).resolve().parent / "policies"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


@pytest.fixture
def run_dir(tmp_path):
    from record.workspace import create_run_dir

    return create_run_dir(tmp_path / "runs", "pong", "ram", run_id="test-run")


def policy(name: str) -> Path:
    return POLICIES / f"{name}.py"


# The shared small run's knobs: short episodes, three iterations.
SMALL_RUN_KNOBS = {"HL_EVAL_MAX_FRAMES": "3000", "HL_MAX_ITERATIONS": "3", "HL_TUNE_TRIALS": "3", "HL_HOLDOUT_EPISODES": "1",
                   "HL_PROBE_BUDGET": "10000"}  # fmt: skip


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One small run of the real loop (Pong, builtin brains, 60,000 env steps, about a minute),
    shared by the tests that read a finished run folder: (runs folder, run folder, summary)."""
    import json
    import os
    import subprocess

    from net_recorder import NetRecorder

    def clean_env(**extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "HL_"))}
        env.pop("COLUMNS", None)
        return {**env, **extra, "PYTHONPATH": str(PROJECT_ROOT)}

    runs = tmp_path_factory.mktemp("runs")
    # Every outbound HTTP(S) request of the run (telemetry, tracing, downloads) would reach
    # this proxy: a run with no LangSmith variables must send nothing anywhere.
    with NetRecorder() as proxy:
        proc = subprocess.run([sys.executable, "-m", "graph.run", "--game", "pong", "--budget", "60000", "--runs-dir", str(runs), "--quiet"],
                              capture_output=True, text=True, timeout=600, env=clean_env(**SMALL_RUN_KNOBS, **proxy.proxy_env()), cwd=PROJECT_ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "langsmith" not in proc.stderr.lower()  # tracing is off and silent without its variables
    assert proxy.requests == [], proxy.requests[:5]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return runs, Path(summary["run_dir"]), summary


def process_running(pid: int) -> bool:
    """Whether `pid` is a live process: not gone, and not a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path, monkeypatch):
    """A real Chroma server (`chroma run`) on localhost, storing in tmp_path/db: its URL."""
    for key in [k for k in os.environ if "proxy" in k.lower()]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    beside = Path(sys.executable).with_name("chroma")
    exe = str(beside) if beside.exists() else shutil.which("chroma")
    if exe is None:
        pytest.fail("the `chroma` executable is missing: install chromadb (it provides the CLI)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    # The server logs every request: to a file, since a pipe nobody reads fills and blocks the server.
    log_path = tmp_path / "chroma-server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with opener.open(f"{url}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma server at {url} did not answer within 60 s")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def evaluation_in_progress(run_dir: Path) -> bool:
    """An evaluation of the run is stepping (its step counter moves) and has no ledger row yet:
    the moment a kill -9 tests resuming at its worst."""
    from evaluation.sandbox import read_step_counter
    from record.ledger import Ledger

    ledger = run_dir / "trials.jsonl"
    named = {r.artifacts.get("traces") for r in Ledger(ledger).records()} if ledger.exists() else set()
    for counter in run_dir.glob("traces/*/steps-*.counter"):
        folder = str(counter.parent.relative_to(run_dir))
        if folder not in named and read_step_counter(counter) > 1000:
            return True
    return False
