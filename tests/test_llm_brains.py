"""LLM brains end to end: `python -m graph.run` with ChatOpenAI talking real HTTP to a scripted
OpenAI-compatible server on localhost (tests/openai_server.py). The "model" writes detectors
and a policy through the file tools, evaluates, the critic diagnoses from a contact sheet,
and decide accepts or rolls back; faults, refusals, the cost ceiling and record/replay are
exercised the same way. Only the model is scripted: env steps, the sandbox, git, Chroma and
the checkpointer are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT
from openai_server import ScriptedServer, call, calls, error, raw_call, report
from record.ledger import Ledger
from record.tracing import read_trace

MODEL = "gpt-5.4-mini"  # in the pricing table, so costs are computed

# What the scripted model writes: a Pong tracker over the builtin detectors' interface.
# (RIGHT=2 moves Pong's paddle up, LEFT=3 down: the model "read" that in the probe report.)
TRACKER = '''"""Track the ball: move the paddle towards the ball's height, within a deadband."""
from detectors import read_ball, read_player

P = {
    "deadband": 3.0,  # px of error tolerated before moving
}


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        ball, player = read_ball(obs), read_player(obs)
        if ball is None or player is None:
            return 0
        error = ball[1] - player
        if error > P["deadband"]:
            return 3
        if error < -P["deadband"]:
            return 2
        return 0
'''
IDLE = '''"""Stand still (a worse idea, to be rolled back)."""


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        return 0
'''
DETECTOR_TEST = '''from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import detectors


def test_detectors_expose_readers():
    assert callable(detectors.read_player) and callable(detectors.read_ball)
'''

NOTES = "# Notes\n\n## Iteration 1: track the ball's height\n\n- the paddle follows the ball within 3 px\n"

ENV_KNOBS = {"HL_DEV_EPISODES": "1", "HL_HOLDOUT_EPISODES": "1", "HL_EVAL_MAX_FRAMES": "2500", "HL_PROBE_BUDGET": "12000",
             "HL_MAX_ITERATIONS": "2", "HL_LLM_RETRIES": "1", "HL_LLM_TIMEOUT": "20"}  # fmt: skip


def scripts(policy_rounds: int = 2) -> dict:
    """A full conversation: probe, detectors, a policy that is accepted, then a worse one."""
    policy_writer = [
        call("read_file", path="detectors.py"),
        call("write_file", path="policy.py", content=TRACKER),
        call("evaluate_policy", episodes=1),
        report(direction="track the ball's height with a 3 px deadband", rationale="the paddle must meet the ball",
               params={"deadband": 3.0}),
    ]  # fmt: skip
    if policy_rounds > 1:
        policy_writer += [
            call("write_file", path="policy.py", content=IDLE),
            report(direction="stand still and let the ball come", rationale="an experiment", params={}),
        ]
    critic = [
        calls(("diagnose_last_evaluation", {}), ("view_contact_sheet", {}), ("view_frames", {"seed": 0, "steps": [400, 10**9]})),
        report(failure="lost", what="points lost on fast returns", evidence="trial sheet", hypothesis="the paddle lags",
               direction="lead the ball"),
    ] * 2  # fmt: skip
    return {
        "prober": [call("run_probe"), report(summary="paddle moves vertically; ball found; RAM bytes tracked")],
        "detector_writer": [
            call("read_file", path="detectors.py"),
            call("write_file", path="tests/test_detectors.py", content=DETECTOR_TEST),
            call("run_hs_tests"),
            report(readers=["read_player", "read_ball"], summary="kept the RAM readers; tests pass"),
        ],
        "policy_writer": policy_writer,
        "replay_critic": critic,
        "simplifier": [report(removed=[], rationale="nothing to remove")],
        "notes_keeper": [
            call("read_file", path="NOTES.md"),
            call("write_file", path="NOTES.md", content=NOTES),
            report(entry="tracker accepted: the paddle follows the ball"),
        ],
    }


def run_graph(tmp_path: Path, server: ScriptedServer | None, *args: str, env_extra: dict | None = None,
              timeout: int = 420) -> subprocess.CompletedProcess:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HL_"))}
    env.update(ENV_KNOBS)
    if server is not None:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "graph.run", "--runs-dir", str(tmp_path / "runs"), "--quiet", *args],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def run_folder(tmp_path: Path, game: str = "pong") -> Path:
    folders = sorted((tmp_path / "runs" / game / "ram").iterdir())
    assert folders, "no run folder"
    return folders[-1]


def git_log(run_dir: Path) -> list[str]:
    out = subprocess.run(["git", "log", "--format=%s"], cwd=run_dir / "hs", capture_output=True, text=True)
    return out.stdout.splitlines()


ALL_LLM = "prober=llm,detector_writer=llm,policy_writer=llm,replay_critic=llm,simplifier=llm,notes_keeper=llm"


def test_a_full_llm_iteration_accepts_then_rolls_back(tmp_path):
    with ScriptedServer(scripts()) as server:
        done = run_graph(tmp_path, server, "--game", "pong", "--model", MODEL, "--brains", ALL_LLM, "--budget", "60000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].startswith(f"brains: llm {MODEL} for every role")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    run_dir = Path(summary["run_dir"])

    # Every scripted reply was used, and the server saw one conversation per role turn.
    for role in ("prober", "detector_writer", "policy_writer", "replay_critic", "notes_keeper"):
        assert server.remaining(role) == 0, role

    # Ledger: the probe, the model's own evaluation (reused by the evaluate node: no second
    # row for the same code), the rejected idle policy, and the final holdout.
    rows = Ledger(run_dir / "trials.jsonl").records()
    kinds = [(r.role, r.kind) for r in rows]
    assert ("prober", "probe") in kinds
    evals = [r for r in rows if r.kind == "evaluation" and r.role != "finish"]
    assert [r.role for r in evals] == ["policy_writer", "evaluate"]
    assert evals[0].tokens > 0 and evals[0].cost_usd > 0  # the tokens that led to this trial
    tracker_row, idle_row = evals
    assert tracker_row.policy_hash != idle_row.policy_hash

    # hs/: the model's detectors commit and the accepted tracker; the idle policy rolled back.
    log = git_log(run_dir)
    assert log[0] == "Notes: tracker accepted: the paddle follows the ball" and log[1].startswith("track the ball")
    assert any(m.startswith("Detectors (llm): read_player, read_ball; tests pass") for m in log)
    assert any(m.startswith("track the ball's height") for m in log)
    assert not any("stand still" in m for m in log)
    assert (run_dir / "hs" / "policy.py").read_text() == TRACKER
    assert summary["accepted"] == 1 and summary["rejected"] == 1
    # The notes-keeper's model wrote NOTES.md through the file tools; the commit names its entry.
    assert (run_dir / "hs" / "NOTES.md").read_text() == NOTES
    assert "Notes: tracker accepted: the paddle follows the ball" in log

    # trace.jsonl: model calls and tool calls per role; node token totals add up to the server's.
    entries, damage = read_trace(run_dir / "trace.jsonl")
    assert not damage
    llm_calls = [e for e in entries if e["event"] == "llm_call"]
    tools = [(e["node"], e["tool"]) for e in entries if e["event"] == "tool"]
    assert ("policy_writer", "write_file") in tools and ("replay_critic", "view_contact_sheet") in tools
    assert ("detector_writer", "run_hs_tests") in tools and ("prober", "run_probe") in tools
    frames = next(e for e in entries if e["event"] == "tool" and e["tool"] == "view_frames")
    assert frames["error"] is None and "frames at steps" in frames["result"]
    served = server.usage["prompt_tokens"] + server.usage["completion_tokens"]
    assert sum(e["tokens"] for e in llm_calls) == served
    preflight = [e["tokens"] for e in llm_calls if e["node"] == "preflight"]
    assert len(preflight) == 1  # the connection check before the run: traced and counted like any call
    assert sum(e.get("tokens", 0) for e in entries if e["event"] == "end") + preflight[0] == served
    assert summary["tokens"] == served and summary["cost_usd"] > 0
    # ... and so do the ledger's rows (tokens of a role that made no evaluation get an "llm" row),
    # and the state's per-node totals.
    assert sum(r.tokens for r in rows) == served
    assert {r.role for r in rows if r.kind == "llm"} >= {"prober", "replay_critic"}
    assert sum(u.get("tokens", 0) for u in summary["usage_by_node"].values()) == served
    assert summary["usage_by_node"]["policy_writer"]["tokens"] > 0

    # The critic (a multimodal model by name) was shown the contact sheet as an image.
    critic_requests = [json.dumps(r["body"]["messages"]) for r in server.requests if r["role"] == "replay_critic"]
    assert any('"image_url"' in text and "data:image/png;base64," in text for text in critic_requests)
    # Every request capped the reply at HL_LLM_MAX_OUTPUT (the cost check's bound).
    assert all(r["body"].get("max_completion_tokens", r["body"].get("max_tokens")) == 16384 for r in server.requests)

    # The critic's diagnosis came from the model, with the contact sheet as evidence.
    note = (run_dir / "diagnoses" / "iteration-000.md").read_text()
    assert "points lost on fast returns" in note and "lead the ball" in note


def test_tool_refusals_and_malformed_arguments_go_back_to_the_model(tmp_path):
    script = scripts(policy_rounds=1)
    script["policy_writer"] = [
        call("write_file", path="../outside.py", content="x = 1"),  # outside hs/: refused
        call("read_file", path="/etc/passwd"),  # absolute path outside hs/: refused
        call("evaluate_policy", episodes=1, split="holdout"),  # holdout seeds: refused
        raw_call("write_file", '{"path": "policy.py", "content": '),  # malformed JSON: repaired below
        call("write_file", path="policy.py", content=TRACKER),
        report(direction="track the ball", rationale="", params={}),
    ]
    script["replay_critic"] = script["replay_critic"][:2]
    with ScriptedServer(script) as server:
        done = run_graph(tmp_path, server, "--game", "pong", "--model", MODEL, "--budget", "60000",
                         "--brains", "prober=builtin,policy_writer=llm,replay_critic=llm",
                         env_extra={"HL_MAX_ITERATIONS": "1", "HL_LLM_IMAGES": "off"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = run_folder(tmp_path)
    assert not (run_dir / "outside.py").exists() and not (run_dir.parent / "outside.py").exists()
    # What the model was told, turn by turn (the tool messages of its next request).
    pw = [r["body"]["messages"] for r in server.requests if r["role"] == "policy_writer"]
    told = [m["content"] for m in pw[-1] if m["role"] == "tool"]
    assert "outside hs/" in told[0] and "outside hs/" in told[1]
    assert "holdout" in told[2] and "not for tuning" in told[2]
    assert "not valid JSON" in told[3]
    assert told[4].startswith("wrote policy.py")
    rows = Ledger(run_dir / "trials.jsonl").records()
    assert not any(r.split == "holdout" and r.role != "finish" for r in rows)
    # HL_LLM_IMAGES=off: a text-only model gets the contact sheet as text, never as an image.
    critic = [r for r in server.requests if r["role"] == "replay_critic"]
    sheet_replies = [m["content"] for r in critic for m in r["body"]["messages"] if m["role"] == "tool" and "contact sheet" in str(m["content"])]
    assert sheet_replies and "rows of 16 frames" in sheet_replies[0]
    assert not any("image_url" in json.dumps(r["body"]) for r in critic)


def test_transient_errors_are_retried_and_a_storm_falls_back_to_builtin(tmp_path):
    script = scripts(policy_rounds=1)
    script["prober"] = [error(429, headers={"retry-after": "0"})] + script["prober"]  # retried, then fine
    script["policy_writer"] = [error(500)] * 12  # a storm: more failures than retries and the cap allow
    with ScriptedServer(script) as server:
        done = run_graph(tmp_path, server, "--game", "pong", "--model", MODEL, "--budget", "60000",
                         "--brains", "prober=llm,policy_writer=llm", env_extra={"HL_MAX_ITERATIONS": "1", "HL_LLM_MAX_FAILURES": "2"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = run_folder(tmp_path)
    entries, _ = read_trace(run_dir / "trace.jsonl")
    fallback = [e for e in entries if e["event"] == "fallback"]
    assert [e["node"] for e in fallback] == ["policy_writer"]
    errors = [e for e in entries if e["event"] == "llm_error" and e["node"] == "policy_writer"]
    assert len(errors) == 2 and "500" in errors[0]["error"]
    assert not [e for e in entries if e["event"] == "llm_error" and e["node"] == "prober"]  # the 429 was retried by the client
    assert any(r["role"] == "prober" for r in server.requests)
    # The builtin brain took over: its first move, the pattern baseline, was played and its winner evaluated.
    assert "Pattern controller" in (run_dir / "hs" / "policy.py").read_text()
    assert any(r.kind == "baseline" for r in Ledger(run_dir / "trials.jsonl").records())
    end = [e for e in entries if e["event"] == "end" and e["node"] == "policy_writer"]
    assert end[0]["summary"].startswith("fallback to builtin")


@pytest.mark.parametrize("status, kind, message", [
    (401, "AuthenticationError", "Incorrect API key provided"),
    (404, "NotFoundError", "The model does not exist"),
])  # fmt: skip
def test_a_bad_key_or_model_stops_with_one_line_and_the_run_resumes_once_fixed(tmp_path, status, kind, message):
    with ScriptedServer({"prober": [error(status, message)]}) as server:
        done = run_graph(tmp_path, server, "--game", "pong", "--model", MODEL, "--brains", "prober=llm", "--budget", "60000",
                         env_extra={"HL_MAX_ITERATIONS": "1"})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and kind in done.stderr and "Traceback" not in done.stderr
    assert len(server.requests) == 1  # not retried: retrying cannot fix a bad key or model
    run_dir = run_folder(tmp_path)
    assert (run_dir / "checkpoint.sqlite").exists() and (run_dir / "config.json").exists()
    if status != 401:
        return  # the resume below is the same for both

    # Fixed (a server that accepts the key and knows the model): the same run goes on from its checkpoint.
    with ScriptedServer({"prober": scripts()["prober"]}) as server:
        again = run_graph(tmp_path, server, "--resume", run_dir.name, env_extra={"HL_MAX_ITERATIONS": "1"})
        assert server.remaining("prober") == 0
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads(again.stdout.strip().splitlines()[-1])
    assert resumed["run_id"] == run_dir.name and resumed["best_score"] is not None
    entries, _ = read_trace(run_dir / "trace.jsonl")
    assert [e["node"] for e in entries if e["event"] == "end"][0] == "prober"


@pytest.mark.parametrize("setup, expected", [
    ("unreachable", "cannot reach the model server at http://127.0.0.1:9/v1"),
    ("silent", "did not answer within 2 s"),
    (401, "refused the key (HTTP 401: Incorrect API key provided)"),
    (404, "does not know model 'gpt-4o-mini' (HTTP 404: The model does not exist)"),
])  # fmt: skip
def test_a_model_server_that_cannot_serve_the_run_is_one_line_before_any_run_folder(tmp_path, setup, expected):
    """The preflight request: no retries, no silent fallback to builtin brains, nothing left behind."""
    import socket

    env = {"HL_LLM_PREFLIGHT_TIMEOUT": "2"}
    args = ("--game", "pong", "--model", "gpt-4o-mini", "--budget", "60000")
    if setup in ("unreachable", "silent"):
        with socket.socket() as silent:  # "silent": accepts connections (the kernel's backlog), never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            port = 9 if setup == "unreachable" else silent.getsockname()[1]
            env.update(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", OPENAI_API_KEY="sk-test")
            done = run_graph(tmp_path, None, *args, env_extra=env)
    else:
        message = "Incorrect API key provided" if setup == 401 else "The model does not exist"
        with ScriptedServer({"preflight": [error(setup, message)]}) as server:
            done = run_graph(tmp_path, server, *args, env_extra=env)
        assert [r["role"] for r in server.requests] == ["preflight"]  # one request, not retried, no role ran
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "pong").exists()  # refused before a run folder was made


def test_cost_ceiling_stops_cleanly_and_resumes(tmp_path):
    # Output priced at $1000/1M tokens and capped at 1,024 tokens a reply: the check before each
    # call reserves ~$1.02 for it, so a $1.05 ceiling allows the first call and stops before
    # the second (inside the prober).
    prices = {"HL_PRICE_INPUT": "0.0001", "HL_PRICE_OUTPUT": "1000", "HL_MAX_ITERATIONS": "1", "HL_LLM_MAX_OUTPUT": "1024"}
    brains = ["--brains", "prober=llm,policy_writer=llm"]
    with ScriptedServer(scripts(policy_rounds=1)) as server:
        done = run_graph(tmp_path, server, "--game", "pong", "--model", MODEL, "--budget", "60000", "--max-cost-usd", "1.05",
                         *brains, env_extra=prices)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["stop_reason"].startswith("cost limit $1.05 reached")
        assert 0 < summary["cost_usd"] <= 1.05
        assert summary["best_score"] is None and server.remaining("prober") == 1  # stopped before its report
        run_dir = Path(summary["run_dir"])
        entries, _ = read_trace(run_dir / "trace.jsonl")
        assert [e["node"] for e in entries if e["event"] == "cost_stop"] == ["prober"]

        refused = run_graph(tmp_path, server, "--resume", summary["run_id"], env_extra=prices)
        assert refused.returncode == 2 and "higher --max-cost-usd" in refused.stderr

        again = run_graph(tmp_path, server, "--resume", summary["run_id"], "--max-cost-usd", "1000", env_extra=prices)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads(again.stdout.strip().splitlines()[-1])
    assert resumed["run_id"] == summary["run_id"] and resumed["best_score"] is not None
    assert resumed["cost_usd"] > summary["cost_usd"]
    assert (run_dir / "hs" / "policy.py").read_text() == TRACKER
    assert server.remaining("prober") == 0 and server.remaining("policy_writer") == 0


def test_record_then_replay_without_the_server(tmp_path):
    with ScriptedServer(scripts(policy_rounds=1)) as server:
        first = run_graph(tmp_path / "a", server, "--game", "pong", "--model", MODEL, "--budget", "60000", "--record",
                          "--brains", "detector_writer=llm,policy_writer=llm,replay_critic=llm", env_extra={"HL_MAX_ITERATIONS": "1"})  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    a = Path(json.loads(first.stdout.strip().splitlines()[-1])["run_dir"])
    cassette = a / "cassette.jsonl"
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert lines[0]["cassette"] == 1 and lines[0]["config"]["budget"] == 60000  # the run's settings first
    assert len(lines) - 1 == len(server.requests)

    # No server now: OPENAI_* unset; the cassette answers. The cassette alone is enough: game,
    # budget and brains come from its header.
    second = run_graph(tmp_path / "b", None, "--model", f"replay:{cassette}", env_extra={"HL_MAX_ITERATIONS": "1"})
    assert second.returncode == 0, second.stderr[-2000:]
    assert "replayed from a cassette" in second.stdout.splitlines()[0]
    b = Path(json.loads(second.stdout.strip().splitlines()[-1])["run_dir"])
    assert json.loads((b / "config.json").read_text())["brains"] == json.loads((a / "config.json").read_text())["brains"]

    def rows(run_dir):
        keep = ("role", "kind", "status", "policy_hash", "seeds", "env_steps", "scores", "lengths", "tokens", "cost_usd", "change_summary")
        return [{k: getattr(r, k) for k in keep} for r in Ledger(run_dir / "trials.jsonl").records()]

    assert rows(a) == rows(b)
    assert rows(a)[0]["role"] == "preflight" and rows(a)[0]["tokens"] > 0  # replayed from the cassette's header, no network

    def tree(run_dir):
        hs = run_dir / "hs"
        return {str(p.relative_to(hs)): p.read_bytes() for p in sorted(hs.rglob("*")) if p.is_file() and ".git" not in p.parts
                and "__pycache__" not in p.parts}  # fmt: skip

    assert tree(a) == tree(b)
    assert git_log(a) == git_log(b)



@pytest.mark.parametrize("argv, message", [
    (["--game", "pong", "--model", "gpt-5.4"], "needs OPENAI_API_KEY"),
    (["--game", "pong", "--brains", "critic=llm"], "bad --brains entry"),
    (["--game", "pong", "--max-cost-usd", "-1"], "non-negative"),
    (["--game", "pong", "--model", "replay:/nonexistent/cassette.jsonl"], "no cassette"),
    (["--game", "pong", "--model", "replay:" + str(Path(__file__).resolve())], "is corrupt"),  # not a cassette
])  # fmt: skip
def test_bad_model_flags_are_one_line_errors(tmp_path, argv, message):
    done = run_graph(tmp_path, None, *argv, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1


def test_model_auto_picks_llm_only_when_a_model_is_configured():
    from agents.brains import LLM_ROLES, resolve_brains

    assert resolve_brains("auto", None, env={}) == (None, {r: "builtin" for r in LLM_ROLES})
    model, brains = resolve_brains("auto", None, env={"OPENAI_BASE_URL": "http://localhost:11434/v1", "HL_MODEL": "qwen3"})
    assert model == "qwen3" and set(brains.values()) == {"llm"}
    model, brains = resolve_brains("gpt-5.4", "policy_writer=llm", env={})
    assert model == "gpt-5.4" and [r for r, k in brains.items() if k == "llm"] == ["policy_writer"]
    with pytest.raises(ValueError, match="--model builtin"):
        resolve_brains("builtin", "policy_writer=llm", env={})


def test_replay_refuses_a_diverging_conversation_and_one_that_outruns_the_cassette(tmp_path):
    import httpx

    from agents.llm.session import ReplayError, ReplayTransport

    body = {"model": MODEL, "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}
    entry = {"request": {"method": "POST", "path": "/v1/chat/completions", "body": body},
             "response": {"status": 200, "body": {"ok": True}, "headers": {"content-type": "application/json"}}}  # fmt: skip
    cassette = tmp_path / "cassette.jsonl"
    cassette.write_text(json.dumps({"cassette": 1, "config": {"game": "Pong"}}) + "\n" + json.dumps(entry) + "\n")
    replay = ReplayTransport(cassette)
    assert replay.header["config"] == {"game": "Pong"} and len(replay.entries) == 1

    def post(payload):
        return replay.handle_request(httpx.Request("POST", "http://cassette.invalid/v1/chat/completions", json=payload))

    other = {**body, "messages": body["messages"] + [{"role": "assistant", "content": "z"}]}
    with pytest.raises(ReplayError, match="differs from the cassette"):
        post(other)  # the replayed run asked something else: it diverged
    replay = ReplayTransport(cassette)
    assert post(body).json() == {"ok": True}
    with pytest.raises(ReplayError, match="more model requests than the cassette holds"):
        post(body)
