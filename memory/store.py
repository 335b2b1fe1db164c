"""Long-term memory shared across runs: what failed, which directions were tried, game facts.

Three Chroma collections, every entry tagged with game and obs mode:

- `hl_failures`: failure reasons ("ball passes the paddle on fast low shots"), never overwritten.
- `hl_directions`: directions tried, accepted or rejected with their score delta, never overwritten.
- `hl_facts`: keyed game facts (action meanings, RAM addresses, colours, a controller structure
  that worked); adding a key again replaces it, because a fact is the current belief.

The default store is a persistent folder, `<runs_dir>/memory`, so a second run on a game
starts from what the first one learned; `Memory.open(url="http://host:port")` uses a Chroma
server instead.

Several processes share one local store (two `graph.run` on one runs folder, the cells of a
`graph.batch`). Chroma's local client is not safe across processes: two creating the store
at once fail ("table collections already exists"), and a client kept open serves an index
that other processes' writes have made stale ("Error finding id"). So every operation on a
local store takes a file lock, opens the client, works and closes it (about 0.1 s), and sees
every write made before it. A server needs none of this. Texts are embedded by `HashingEmbedding`, which needs no model download:
the machines this runs on may have no internet, and Chroma's default embedding fetches one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import chromadb
import numpy as np
from filelock import FileLock, Timeout
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import BaseModel

from record.workspace import DEFAULT_RUNS_DIR

FAILURES, DIRECTIONS, FACTS = "hl_failures", "hl_directions", "hl_facts"
DEFAULT_PORT = 8000  # `chroma run`'s default
LOCK_TIMEOUT_S = 300  # a local store's lock is held for well under a second per operation
Outcome = Literal["accepted", "rejected"]


class MemoryUnavailable(RuntimeError):
    """The memory store cannot be opened; the message is one line saying why."""


# ---------------------------------------------------------------------------------------------
# Embedding


# Function words carry no meaning of their own but would make every pair of sentences alike.
_STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from into onto as is are was were be been "
    "it its this that these those then than so if when while".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Stable (index, sign) for a feature: blake2b, because Python's hash() is salted per process."""
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 63) & 1 else -1.0)


@register_embedding_function  # lets Chroma rebuild it from the persisted collection config
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Offline text embedding: signed feature hashing of words, word pairs and character 3-grams.

    Words catch shared vocabulary, word pairs catch phrases ("low shots"), character 3-grams
    catch inflections ("paddle"/"paddles", "miss"/"missed"). Counts are sublinear (1 + log tf)
    so a repeated word does not dominate, and vectors are L2-normalised so cosine = dot.
    """

    VERSION = 1  # bump if the features change: vectors of different versions are not comparable
    # Words lead; pairs and 3-grams (many per word) add less, so a reworded sentence stays close.
    WEIGHTS: ClassVar[dict[str, float]] = {"w": 1.0, "b": 0.5, "c": 0.5}

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed(text) for text in input]

    def embed(self, text: str) -> np.ndarray:
        """One text -> unit vector of `dim` float32s."""
        vec = np.zeros(self.dim, dtype=np.float64)
        for feature, tf in self.features(text).items():
            index, sign = _bucket(feature, self.dim)
            vec[index] += sign * self.WEIGHTS[feature[0]] * (1.0 + math.log(tf))
        norm = np.linalg.norm(vec)
        if norm == 0.0:  # empty or all-stopword text: a fixed vector, not NaNs in cosine
            index, sign = _bucket("<empty>", self.dim)
            vec[index], norm = sign, 1.0
        return (vec / norm).astype(np.float32)

    @staticmethod
    def features(text: str) -> Counter[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        feats: Counter[str] = Counter()
        feats.update(f"w:{w}" for w in words)
        feats.update(f"b:{a} {b}" for a, b in pairwise(words))
        for w in words:
            padded = f"<{w}>"
            feats.update(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
        return feats

    # What Chroma 1.x needs to persist the embedding function with the collection (as
    # {"type": "known", "name": ..., "config": ...}) and rebuild it on reopen, instead of
    # storing it as "legacy" and warning.
    @staticmethod
    def name() -> str:
        return "hl_hashing"

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "version": self.VERSION}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        HashingEmbedding.validate_config(config)
        return HashingEmbedding(dim=int(config.get("dim", 384)))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if config.get("version", HashingEmbedding.VERSION) != HashingEmbedding.VERSION:
            raise ValueError(f"hl_hashing version {config['version']} != {HashingEmbedding.VERSION}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config != new_config:
            raise ValueError("hl_hashing config cannot change: stored vectors would not match")

    def default_space(self) -> Literal["cosine"]:
        return "cosine"

    def supported_spaces(self) -> list[Literal["cosine", "l2", "ip"]]:
        return ["cosine", "ip", "l2"]  # unit vectors: all three rank the same


# ---------------------------------------------------------------------------------------------
# Entries


class Entry(BaseModel):
    id: str
    game: str  # normalised: "pong", "montezumarevenge"
    obs_mode: str
    run_id: str
    trial: int | None = None
    timestamp: str  # ISO 8601, UTC
    similarity: float | None = None  # cosine similarity to the query text, for nearest-neighbour results


class FailureEntry(Entry):
    reason: str
    evidence: str = ""


class DirectionEntry(Entry):
    direction: str
    outcome: Outcome
    score_delta: float
    evidence: str = ""


class FactEntry(Entry):
    key: str
    value: str | dict[str, Any]
    confidence: float = 1.0


# ---------------------------------------------------------------------------------------------
# Store


def best_policy_key(protocol: str) -> str:
    """The fact holding a game's best policy under a protocol (scores under Atari's hl and
    ale-v5 are not comparable, so each keeps its own; hl keeps the name it always had)."""
    return "best_policy" if protocol == "hl" else f"best_policy:{protocol}"


def game_key(game: str) -> str:
    """"Pong", "ALE/Pong-v5" and "pong" are one game; so are "MontezumaRevenge" and "montezuma_revenge"."""
    name = re.sub(r"^ALE/", "", game.strip(), flags=re.IGNORECASE)
    name = re.sub(r"-v\d+$", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _where(game: str, obs_mode: str | None = None, **extra: Any) -> dict[str, Any]:
    conds = [{"game": game_key(game)}]
    if obs_mode is not None:
        conds.append({"obs_mode": obs_mode.strip().lower()})
    conds += [{k: v} for k, v in extra.items() if v is not None]
    return conds[0] if len(conds) == 1 else {"$and": conds}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _parse_url(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # "http://host:notaport"
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise MemoryUnavailable(f"bad memory URL {url!r}: expected http://HOST:PORT, e.g. http://localhost:8000")
    return parts.hostname, port or DEFAULT_PORT, parts.scheme == "https"


class Memory:
    """What earlier runs learned about each game, filtered by game and obs mode."""

    def __init__(self, connect: Callable[[], chromadb.api.ClientAPI], where: str, lock: FileLock | None = None) -> None:
        """`connect` makes a client. With a `lock` (a local store) each operation connects
        afresh under the lock; without one (a server) one client serves every operation."""
        self.where = where  # the folder or URL, for messages
        self._connect, self._lock = connect, lock
        self._client = None if lock else connect()
        # Always pass our embedding function, on create and on reopen: Chroma's default would
        # download a model, which fails offline.
        self.embedding = HashingEmbedding()
        with self.session():  # create the collections now, so a store that cannot open fails here
            pass

    @classmethod
    def open(cls, runs_dir: Path | str | None = None, url: str | None = None) -> Memory:
        """Open the shared memory: a Chroma server if `url` is given, else `<runs_dir>/memory`."""
        settings = Settings(anonymized_telemetry=False)
        if url:
            host, port, ssl = _parse_url(url)
            # Probe first: Chroma's HTTP client has no timeout, so a dead host would hang it.
            try:
                socket.create_connection((host, port), timeout=3).close()
            except OSError as e:
                raise MemoryUnavailable(f"Chroma server at {url} is unreachable: {_one_line(e)}") from None
            try:
                client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
                client.heartbeat()
                return cls(lambda: client, url)
            except Exception as e:
                raise MemoryUnavailable(f"Chroma server at {url} did not answer: {_one_line(e)}") from None
        path = Path(runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR) / "memory"
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock = FileLock(path.with_name("memory.lock"), timeout=LOCK_TIMEOUT_S)
            return cls(lambda: chromadb.PersistentClient(path=str(path), settings=settings), str(path), lock)
        except MemoryUnavailable:
            raise
        except Exception as e:
            raise MemoryUnavailable(f"cannot open memory store at {path}: {_one_line(e)}") from None

    @contextmanager
    def session(self) -> Iterator[dict[str, chromadb.Collection]]:
        """The three collections, ready for one operation (a local store: under its lock, with
        a client opened for it and closed after)."""
        if self._lock is None:
            yield self._collections(self._client)
            return
        try:
            self._lock.acquire()
        except Timeout:
            raise MemoryUnavailable(f"memory store at {self.where} stayed locked for {LOCK_TIMEOUT_S} s") from None
        try:
            client = self._connect()
            try:
                yield self._collections(client)
            finally:
                client.close()
        finally:
            self._lock.release()

    def _collections(self, client) -> dict[str, chromadb.Collection]:
        return {name: client.get_or_create_collection(name, embedding_function=self.embedding)
                for name in (FAILURES, DIRECTIONS, FACTS)}  # fmt: skip

    def close(self) -> None:
        """Release the client (and the store's files)."""
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Memory({self.where!r})"

    # --- writing --------------------------------------------------------------------------

    def _meta(self, game: str, obs_mode: str, run_id: str, trial: int | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "game": game_key(game),
            "obs_mode": obs_mode.strip().lower(),
            "run_id": run_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        if trial is not None:  # Chroma metadata cannot hold None
            meta["trial"] = int(trial)
        return meta

    def add_failure(
        self, game: str, obs_mode: str, run_id: str, reason: str, evidence: str = "", trial: int | None = None
    ) -> str:
        """Record why a policy failed (one sentence, e.g. "ball passes the paddle on fast low
        shots"), with optional evidence (scores, frames, log lines). Returns the entry id."""
        entry_id = f"failure-{uuid.uuid4().hex}"
        meta = self._meta(game, obs_mode, run_id, trial) | {"evidence": evidence}
        with self.session() as cols:
            cols[FAILURES].add(ids=[entry_id], documents=[reason], metadatas=[meta])
        return entry_id

    def add_direction(
        self,
        game: str,
        obs_mode: str,
        run_id: str,
        direction: str,
        outcome: Outcome,
        score_delta: float,
        evidence: str = "",
        trial: int | None = None,
    ) -> str:
        """Record a direction tried (e.g. "predict the ball's landing y from its velocity"),
        whether it was accepted or rejected, and the score change it caused. Returns the entry id."""
        if outcome not in ("accepted", "rejected"):
            raise ValueError(f"outcome must be 'accepted' or 'rejected', not {outcome!r}")
        entry_id = f"direction-{uuid.uuid4().hex}"
        meta = self._meta(game, obs_mode, run_id, trial) | {
            "outcome": outcome,
            "score_delta": float(score_delta),
            "evidence": evidence,
        }
        with self.session() as cols:
            cols[DIRECTIONS].add(ids=[entry_id], documents=[direction], metadatas=[meta])
        return entry_id

    def add_fact(
        self, game: str, obs_mode: str, run_id: str, key: str, value: str | dict, confidence: float = 1.0
    ) -> str:
        """Record a game fact under a key (e.g. key "ram.ball_y", value "RAM[54] is the ball's y").
        Adding the same key for the same game and obs mode replaces the old value. Returns the id."""
        meta = self._meta(game, obs_mode, run_id, None)
        # A deterministic id makes the write an upsert: one current belief per key.
        entry_id = f"fact-{meta['game']}-{meta['obs_mode']}-{key}"
        value_json = json.dumps(value, sort_keys=True)  # metadata values must be scalars
        text = value if isinstance(value, str) else value_json
        meta |= {"key": key, "value_json": value_json, "confidence": float(confidence)}
        with self.session() as cols:
            cols[FACTS].upsert(ids=[entry_id], documents=[f"{key}: {text}"], metadatas=[meta])
        return entry_id

    # --- reading --------------------------------------------------------------------------

    @staticmethod
    def _entry(kind: str, entry_id: str, doc: str, meta: dict[str, Any], similarity: float | None = None):
        common = {k: meta[k] for k in ("game", "obs_mode", "run_id", "timestamp")}
        common |= {"id": entry_id, "trial": meta.get("trial"), "similarity": similarity}
        if kind == FAILURES:
            return FailureEntry(reason=doc, evidence=meta.get("evidence", ""), **common)
        if kind == DIRECTIONS:
            return DirectionEntry(
                direction=doc,
                outcome=meta["outcome"],
                score_delta=meta["score_delta"],
                evidence=meta.get("evidence", ""),
                **common,
            )
        return FactEntry(
            key=meta["key"], value=json.loads(meta["value_json"]), confidence=meta["confidence"], **common
        )

    def _get(self, kind: str, where: dict[str, Any]) -> list:
        with self.session() as cols:
            got = cols[kind].get(where=where, include=["documents", "metadatas"])
        entries = [self._entry(kind, *row) for row in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(entries, key=lambda e: e.timestamp)

    def _query(self, kind: str, where: dict[str, Any], text: str, k: int) -> list:
        with self.session() as cols:
            got = cols[kind].query(query_texts=[text], n_results=k, where=where, include=["documents", "metadatas", "distances"])
        rows = zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        # Cosine space: distance = 1 - cosine similarity.
        return [self._entry(kind, i, doc, meta, 1.0 - dist) for i, doc, meta, dist in rows]

    def similar_failures(self, game: str, obs_mode: str, text: str, k: int = 5) -> list[FailureEntry]:
        """The k recorded failures for this game and obs mode most similar to `text`, nearest first."""
        return self._query(FAILURES, _where(game, obs_mode), text, k)

    def directions(self, game: str, obs_mode: str, outcome: Outcome | None = None) -> list[DirectionEntry]:
        """All directions tried for this game and obs mode (only `outcome` ones if given), oldest first."""
        return self._get(DIRECTIONS, _where(game, obs_mode, outcome=outcome))

    def rejected_directions(
        self, game: str, obs_mode: str, text: str | None = None, k: int = 10
    ) -> list[DirectionEntry]:
        """Rejected directions for this game and obs mode: all of them (oldest first) if `text`
        is None, else the k most similar to `text` (nearest first)."""
        where = _where(game, obs_mode, outcome="rejected")
        return self._get(DIRECTIONS, where) if text is None else self._query(DIRECTIONS, where, text, k)

    def was_rejected(
        self, game: str, obs_mode: str, direction: str, threshold: float = 0.8
    ) -> DirectionEntry | None:
        """The rejected direction most like `direction` (cosine similarity >= threshold) for this
        game and obs mode, or None. Check before proposing a direction: a rejected one should
        come back only with new evidence."""
        with self.session() as cols:
            got = cols[DIRECTIONS].get(where=_where(game, obs_mode, outcome="rejected"), include=["documents", "metadatas", "embeddings"])
        if not got["ids"]:
            return None
        # Exact cosine over this game's rejected directions (few), not the approximate index.
        sims = np.asarray(got["embeddings"]) @ self.embedding.embed(direction)
        best = int(np.argmax(sims))
        if sims[best] < threshold:
            return None
        return self._entry(DIRECTIONS, got["ids"][best], got["documents"][best], got["metadatas"][best], float(sims[best]))

    def facts(self, game: str, obs_mode: str | None = None) -> dict[str, FactEntry]:
        """Current facts for a game, keyed by fact key. With obs_mode None, facts from every obs
        mode (action meanings hold for both); if a key exists in several modes, the newest wins."""
        return {fact.key: fact for fact in self._get(FACTS, _where(game, obs_mode))}  # oldest first

    def count(self, game: str | None = None) -> dict[str, int]:
        """Number of entries per collection, for one game or for all."""
        with self.session() as cols:
            return {name: col.count() if game is None else len(col.get(where=_where(game), include=[])["ids"])
                    for name, col in cols.items()}  # fmt: skip
