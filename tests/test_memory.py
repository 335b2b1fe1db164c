"""Memory: Chroma collections of failures, directions and facts, shared across runs, offline."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port
from memory import (
    DIRECTIONS,
    FACTS,
    FAILURES,
    DirectionEntry,
    FactEntry,
    FailureEntry,
    HashingEmbedding,
    Memory,
    MemoryUnavailable,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOW_SHOTS = "ball passes the paddle on fast low shots"
PREDICT = "move the paddle to the predicted landing position of the ball using its velocity"


def offline_env() -> dict[str, str]:
    """The environment for child processes: no proxies, Hugging Face offline, our code importable."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost"}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    return env


def run_python(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=offline_env(), capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def mem(tmp_path):
    m = Memory.open(tmp_path)
    yield m
    m.close()


# --- embedding --------------------------------------------------------------------------------


def test_hashing_embedding_shape_norm_and_similarity_order():
    ef = HashingEmbedding()
    texts = [
        LOW_SHOTS,
        "fast low shots get past the paddle",
        "the paddle misses fast low balls near the bottom",
        "agent loses a life when it walks into the skull",
        "score counter is read from RAM address 0x0d",
        "fire as soon as an enemy is in the same column",
    ]
    vecs = np.asarray(ef(texts))
    assert vecs.shape == (6, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs[0]
    # Both rewordings of the failure are nearer to it than any unrelated text.
    assert min(sims[1], sims[2]) > max(sims[3:]) + 0.2, sims
    assert np.linalg.norm(ef([""])[0]) == pytest.approx(1.0)  # no NaNs from empty text


def test_hashing_embedding_is_deterministic_across_processes():
    here = HashingEmbedding()([LOW_SHOTS])[0].tolist()
    # A fresh interpreter has a different hash() salt; blake2b features must not care.
    there = run_python(
        "import json; from memory import HashingEmbedding;"
        f"print(json.dumps(HashingEmbedding()([{LOW_SHOTS!r}])[0].tolist()))"
    )
    assert there == here


def test_embedding_config_round_trips():
    ef = HashingEmbedding()
    assert not ef.is_legacy()  # Chroma persists it as a known function, not "legacy"
    assert HashingEmbedding.build_from_config(ef.get_config()).get_config() == ef.get_config()
    with pytest.raises(ValueError):
        HashingEmbedding.build_from_config({"dim": 384, "version": 999})


# --- persistent store ---------------------------------------------------------------------------


def test_persists_and_reopens_offline_in_a_new_process(tmp_path):
    with Memory.open(tmp_path) as m:
        m.add_failure("Pong", "ram", "run-1", LOW_SHOTS, evidence="lost 21-0", trial=3)
        m.add_direction("Pong", "ram", "run-1", PREDICT, "rejected", -2.5, trial=4)
        m.add_fact("Pong", "ram", "run-1", "ram.ball_y", {"address": 54, "meaning": "ball y"})
    assert (tmp_path / "memory").is_dir()

    # The child forbids network connections and Chroma's default (downloading) embedding.
    got = run_python(
        f"""
import json, socket, warnings
def no_network(*a, **k): raise RuntimeError("network used")
socket.socket.connect = socket.create_connection = no_network
import chromadb.api.types as t
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
def no_default(self, input): raise RuntimeError("default embedding used")
t.DefaultEmbeddingFunction.__call__ = ONNXMiniLM_L6_V2.__call__ = no_default
import chromadb
from memory import Memory, HashingEmbedding
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # A bare client that names no embedding function still embeds queries with ours,
    # rebuilt from the persisted config (this needs HashingEmbedding registered on import).
    raw = chromadb.PersistentClient({str(tmp_path / "memory")!r}, settings=chromadb.Settings(anonymized_telemetry=False))
    raw_hit = raw.get_collection("hl_failures").query(query_texts=["low shots"], n_results=1)["documents"][0]
    raw.close()
    m = Memory.open({str(tmp_path)!r})
    failures = m.similar_failures("pong", "ram", "paddle misses low fast shots")
    out = dict(
        failure=failures[0].model_dump(),
        rejected=m.was_rejected("Pong", "ram", "move paddle toward the predicted landing position of the ball using ball velocity").direction,
        fact=m.facts("Pong")["ram.ball_y"].value,
        counts=m.count(),
        raw_hit=raw_hit,
    )
    with m.session() as cols:
        out["ours"] = [type(c._embedding_function).__name__ for c in cols.values()]
        out["persisted"] = [type(c.configuration["embedding_function"]).__name__ for c in cols.values()]
    m.close()
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""
    )
    assert got["failure"]["reason"] == LOW_SHOTS
    assert got["raw_hit"] == [LOW_SHOTS]
    assert (got["failure"]["trial"], got["failure"]["evidence"], got["failure"]["run_id"]) == (3, "lost 21-0", "run-1")
    assert got["rejected"] == PREDICT
    assert got["fact"] == {"address": 54, "meaning": "ball y"}  # dict decoded from its JSON string
    assert got["counts"] == {"hl_failures": 1, "hl_directions": 1, "hl_facts": 1}
    # Our embedding is used, and it is what Chroma rebuilt from the persisted collection config.
    assert got["ours"] == got["persisted"] == ["HashingEmbedding"] * 3
    assert got["warnings"] == []


# --- behaviour ----------------------------------------------------------------------------------


def test_filters_by_game_and_obs_mode(mem):
    mem.add_fact("Pong", "ram", "r1", "actions", "0 NOOP, 1 FIRE, 2 RIGHT(up), 3 LEFT(down)")
    mem.add_fact("Pong", "vision", "r1", "colours.ball", {"rgb": [236, 236, 236]})
    mem.add_fact("Breakout", "ram", "r1", "ram.paddle_x", "RAM[72]")
    mem.add_failure("Pong", "ram", "r1", LOW_SHOTS)
    mem.add_failure("Breakout", "ram", "r1", "ball passes the paddle on fast low shots near the wall")
    mem.add_direction("Pong", "vision", "r1", PREDICT, "rejected", -1.0)

    assert set(mem.facts("Breakout")) == {"ram.paddle_x"}
    assert set(mem.facts("Pong", "ram")) == {"actions"}
    assert set(mem.facts("ALE/Pong-v5")) == {"actions", "colours.ball"}  # None: every obs mode
    assert isinstance(mem.facts("pong", "vision")["colours.ball"], FactEntry)

    failures = mem.similar_failures("Pong", "ram", "paddle misses fast low balls")
    assert [f.reason for f in failures] == [LOW_SHOTS]
    assert isinstance(failures[0], FailureEntry) and 0 < failures[0].similarity <= 1
    assert mem.rejected_directions("Pong", "ram") == []  # that one was under vision
    assert mem.count("Pong") == {"hl_failures": 1, "hl_directions": 1, "hl_facts": 2}
    assert mem.count() == {"hl_failures": 2, "hl_directions": 1, "hl_facts": 3}


def test_fact_upsert_replaces_but_failures_and_directions_accumulate(mem):
    first = mem.add_fact("Pong", "ram", "r1", "ram.ball_y", "RAM[54]", confidence=0.5)
    second = mem.add_fact("Pong", "ram", "r2", "ram.ball_y", "RAM[49]")
    assert first == second
    fact = mem.facts("Pong", "ram")["ram.ball_y"]
    assert (fact.value, fact.confidence, fact.run_id) == ("RAM[49]", 1.0, "r2")

    ids = {mem.add_failure("Pong", "ram", "r1", LOW_SHOTS, trial=1) for _ in range(2)}
    ids |= {mem.add_direction("Pong", "ram", "r1", PREDICT, "rejected", -1.0, trial=1) for _ in range(2)}
    assert len(ids) == 4
    assert mem.count("Pong") == {"hl_failures": 2, "hl_directions": 2, "hl_facts": 1}


def test_directions_by_outcome_and_nearest_rejected(mem):
    mem.add_direction("Pong", "ram", "r1", PREDICT, "rejected", -3.0, evidence="dev mean -21", trial=2)
    mem.add_direction("Pong", "ram", "r1", "aim the paddle edge at the ball for steep returns", "accepted", 4.0)
    mem.add_direction("Pong", "ram", "r1", "fire as soon as an enemy is in the same column", "rejected", 0.0)

    assert [d.outcome for d in mem.directions("Pong", "ram")] == ["rejected", "accepted", "rejected"]
    accepted = mem.directions("Pong", "ram", outcome="accepted")
    assert len(accepted) == 1 and accepted[0].score_delta == 4.0
    assert len(mem.rejected_directions("Pong", "ram")) == 2
    nearest = mem.rejected_directions("Pong", "ram", text="predict the ball landing point and move there", k=1)
    assert [d.direction for d in nearest] == [PREDICT]
    assert isinstance(nearest[0], DirectionEntry)
    assert (nearest[0].score_delta, nearest[0].evidence, nearest[0].trial) == (-3.0, "dev mean -21", 2)
    with pytest.raises(ValueError):
        mem.add_direction("Pong", "ram", "r1", "x", "maybe", 0.0)


def test_was_rejected_finds_paraphrase_only_of_rejected_same_game(mem):
    paraphrase = "move paddle toward the predicted landing position of the ball, using the ball velocity"
    mem.add_direction("Pong", "ram", "r1", PREDICT, "rejected", -2.0)
    hit = mem.was_rejected("Pong", "ram", paraphrase)
    assert hit is not None and hit.direction == PREDICT and hit.similarity >= 0.8

    assert mem.was_rejected("Pong", "ram", "fire as soon as an enemy is in the same column") is None
    assert mem.was_rejected("Breakout", "ram", paraphrase) is None  # other game
    assert mem.was_rejected("Pong", "vision", paraphrase) is None  # other obs mode

    accepted = "aim the paddle edge at the ball for steep returns"
    mem.add_direction("Pong", "ram", "r1", accepted, "accepted", 3.0)
    assert mem.was_rejected("Pong", "ram", accepted) is None  # accepted directions are fine to reuse


# --- server -------------------------------------------------------------------------------------


def test_http_client_round_trip_against_a_real_server(chroma_server):
    url = chroma_server
    with Memory.open(url=url) as m:
        m.add_failure("Pong", "ram", "r1", LOW_SHOTS, trial=1)
        m.add_direction("Pong", "ram", "r1", PREDICT, "rejected", -2.0)
        m.add_fact("Pong", "ram", "r1", "ram.ball_y", {"address": 54})
    with Memory.open(url=url) as m:  # reopen: config and entries come back from the server
        assert [f.reason for f in m.similar_failures("Pong", "ram", "paddle misses fast low balls")] == [LOW_SHOTS]
        assert m.was_rejected("Pong", "ram", PREDICT).score_delta == -2.0
        assert m.facts("Pong")["ram.ball_y"].value == {"address": 54}
        assert m.facts("Breakout") == {}
        with m.session() as cols:
            assert all(type(c.configuration["embedding_function"]) is HashingEmbedding for c in cols.values())


def test_unreachable_server_fails_fast_with_one_line():
    url = f"http://127.0.0.1:{free_port()}"  # bound then released: nothing listens there
    start = time.monotonic()
    with pytest.raises(MemoryUnavailable) as info:
        Memory.open(url=url)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert url in message and "unreachable" in message and "\n" not in message


@pytest.mark.parametrize("url", ["localhost:8000", "http://127.0.0.1:notaport", "ftp://127.0.0.1:8000", "http://"])
def test_bad_url_is_a_clear_error(url):
    with pytest.raises(MemoryUnavailable, match="bad memory URL"):
        Memory.open(url=url)


def test_a_failing_store_degrades_to_no_memory():
    from memory.resilient import ResilientMemory

    class Broken:
        def facts(self, *a, **k):
            raise RuntimeError("Error creating hnsw segment reader: Nothing found on disk")

        def add_fact(self, *a, **k):
            raise RuntimeError("disk full")

    seen = []
    memory = ResilientMemory(Broken(), on_error=lambda name, message: seen.append(name))
    assert memory.facts("Pong", "ram") == {}
    assert memory.add_fact("Pong", "ram", "r", "k", "v") is None
    assert seen == ["facts", "add_fact"] and "hnsw" in memory.errors[0]


WRITER = """
import json, sys, time
from pathlib import Path
from memory import Memory
runs, who, n, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, go - time.time()))  # every writer opens the fresh store at the same moment
m = Memory.open(runs)
for i in range(n):
    m.add_failure("Pong", "ram", who, f"{who} failure {i}: the ball passes the paddle", trial=i)
    m.add_direction("Pong", "ram", who, f"{who} direction {i}", "rejected" if i % 2 else "accepted", -1.0)
    m.add_fact("Pong", "ram", who, f"{who}.fact", {"i": i})
    if i == n // 2:  # reading while the others write
        m.similar_failures("Pong", "ram", "ball passes the paddle", k=3)
print(json.dumps(dict(who=who, seen=len(m.directions("Pong", "ram")))))
"""


def test_concurrent_runs_create_and_write_one_local_store_without_loss(tmp_path):
    """Six processes open a fresh local store at the same instant and write at once: none
    fails (Chroma alone: "table collections already exists" for one of them) and no entry is
    lost; afterwards every entry is found by its words."""
    writers, n = 6, 30
    go = time.time() + 4  # past every child's imports
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{k}", str(n), str(go)], env=offline_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(writers)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, [err[-500:] for _, err in outs]
    assert all(json.loads(out)["seen"] >= n for out, _ in outs)  # each saw at least its own directions
    with Memory.open(tmp_path) as m:
        assert m.count() == {FAILURES: writers * n, DIRECTIONS: writers * n, FACTS: writers}
        for k in range(writers):
            for i in (0, n // 2, n - 1):
                hits = m.similar_failures("pong", "ram", f"w{k} failure {i}: the ball passes the paddle", k=1)
                assert hits[0].reason.startswith(f"w{k} failure {i}:")
            assert m.facts("pong")[f"w{k}.fact"].value == {"i": n - 1}
