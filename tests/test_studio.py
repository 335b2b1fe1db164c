"""LangGraph Studio: `langgraph dev` (langgraph-cli's in-memory server) starts on localhost
with the repo's langgraph.json and lists our graph; LangSmith tracing stays off (and quiet)
unless its standard variables are set."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_langgraph_dev_serves_our_graph(tmp_path):
    cli = shutil.which("langgraph")
    assert cli, "langgraph-cli is a test dependency (pip install -e '.[test]')"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_"))}
    env.update(HL_STUDIO_RUNS_DIR=str(tmp_path / "runs"), LANGGRAPH_CLI_NO_ANALYTICS="1", PYTHONPATH=str(PROJECT_ROOT))
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([cli, "dev", "--no-browser", "--no-reload", "--port", str(port), "--config", str(PROJECT_ROOT / "langgraph.json")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            try:
                assert call(port, "/ok")["ok"] is True
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                assert time.time() < deadline, "langgraph dev did not answer within 120 s"
                time.sleep(1)
        assistants = call(port, "/assistants/search", {})
        ours = [a for a in assistants if a["graph_id"] == "heuristic_learning"]
        assert ours, assistants
        drawn = call(port, f"/assistants/{ours[0]['assistant_id']}/graph")
        nodes = {n["id"] for n in drawn["nodes"]}
        assert {"prober", "detector_writer", "policy_writer", "evaluate", "replay_critic", "decide", "simplifier"} <= nodes
        assert list((tmp_path / "runs").glob("pong/ram/studio-*/config.json"))  # the graph's run folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_langsmith_tracing_is_off_and_quiet_by_default():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    code = ("import warnings; warnings.simplefilter('error');"
            "import graph.build, graph.run, graph.report, graph.trace, os;"
            "from langsmith.utils import tracing_is_enabled;"
            "assert not tracing_is_enabled();"
            "assert not any(k.startswith(('LANGSMITH_', 'LANGCHAIN_')) for k in os.environ), 'we set a tracing variable'")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]


def test_langsmith_tracing_sends_the_graphs_runs_when_the_user_turns_it_on(tmp_path):
    """With LangSmith's standard variables set, the run's nodes are traced to the endpoint
    (here a local recorder standing in for LangSmith's API: real HTTP, no account)."""
    from net_recorder import NetRecorder

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "HL_"))}
    env.update(HL_EVAL_MAX_FRAMES="1000", HL_MAX_ITERATIONS="1", HL_HOLDOUT_EPISODES="1", HL_PROBE_BUDGET="8000",
               HL_TUNE_TRIALS="1", PYTHONPATH=str(PROJECT_ROOT))  # fmt: skip
    with NetRecorder() as langsmith:
        env.update(LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=langsmith.url, LANGSMITH_API_KEY="lsv2-test",
                   LANGSMITH_PROJECT="hl-test")  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "graph.run", "--game", "pong", "--budget", "30000", "--quiet",
                               "--runs-dir", str(tmp_path / "runs")], cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        deadline = time.time() + 20  # the tracer sends from a background thread
        while time.time() < deadline and not any(b"prober" in body for _, _, body in langsmith.requests):
            time.sleep(0.5)
    posted = [(m, path) for m, path, body in langsmith.requests if m == "POST" and "/runs" in path]
    assert posted, langsmith.requests[:5]
    bodies = b"".join(body for _, _, body in langsmith.requests)
    for node in (b"prober", b"detector_writer", b"evaluate", b"decide"):
        assert node in bodies, node
