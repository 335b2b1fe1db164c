"""What a run page reads from a run folder besides the trace and the ledger (graph.trace reads
those): its config, the critic's diagnoses, which replay and contact sheets to show, the
memory entries around the run, a rejected candidate's parameters."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from record.ledger import is_holdout

MAX_SHEETS = 6


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def md_fields(text: str | None) -> dict:
    """'- **What failed:** ...' bullets of a diagnosis file -> {what failed: ...}."""
    fields = {}
    for m in re.finditer(r"^- \*\*(.+?):\*\*\s*(.*)$", text or "", flags=re.M):
        fields[m.group(1).strip().lower()] = m.group(2).strip()
    return fields


def best_video(run_dir: Path, records: list) -> tuple[Path | None, str]:
    """The replay to show, with its caption: the best policy's holdout episode, else the
    best-scoring trial that recorded one."""
    finish = [r for r in records if is_holdout(r) and r.artifacts.get("video")]
    if finish:
        r = finish[-1]
        return run_dir / r.artifacts["video"], f"trial {r.trial}: the best policy on holdout seed {r.seeds[0] if r.seeds else '?'}, score {r.scores[0] if r.scores else r.score_mean}"
    with_video = [r for r in records if r.artifacts.get("video") and r.score_mean is not None]
    if with_video:
        r = max(with_video, key=lambda r: (r.score_mean, r.trial))
        return run_dir / r.artifacts["video"], f"trial {r.trial} ({r.role}), score {r.score_mean}"
    return None, ""


def failure_sheets(run_dir: Path, history: list[dict]) -> list[tuple[str, str]]:
    """Contact sheets the critic pointed at when it found a failure, newest first, one per kind
    of failure (its words with the numbers left out: a reward stall in iterations 0, 2 and 5 is
    one sheet, the newest, whose caption names the others): [(relative path, caption)]."""
    kinds: dict[str, list[tuple[str, str, str]]] = {}
    for path in sorted((run_dir / "diagnoses").glob("iteration-*.md"), reverse=True):
        text = path.read_text()
        what = md_fields(text).get("what failed", "")
        m = re.search(r"(sheets/[\w.\-]+\.png)", text)
        if not m or "no failure" in what:
            continue
        kind = re.sub(r"\d[\d,.]*", "#", re.sub(r"\[[^\]]*\]", "[...]", what))
        if not any(m.group(1) == sheet for sheet, _, _ in kinds.get(kind, [])):
            kinds.setdefault(kind, []).append((m.group(1), path.stem, what))
    found = []
    for seen in kinds.values():
        sheet, stem, what = seen[0]
        caption = f"{stem}: {what}"
        if len(seen) > 1:
            earlier = "; ".join(f"{s} ({w})" for _, s, w in seen[1:7]) + ("; ..." if len(seen) > 7 else "")
            caption += f" · the same kind of failure {len(seen) - 1} more time{'s' if len(seen) > 2 else ''}: {earlier}"
        found.append((sheet, caption))
    return found[:MAX_SHEETS]


def memory_entries(run_dir: Path, cfg: dict, started: str | None) -> dict:
    """Entries this run wrote (by run id) and those it could read: same game and obs mode,
    written by other runs before this one started."""
    out = dict(written=[], readable=[], error=None)
    try:
        from memory import Memory
        from memory.store import DIRECTIONS, FACTS, FAILURES

        runs_dir = Path(cfg.get("runs_dir") or run_dir.parents[2])
        if not runs_dir.is_absolute() and not (runs_dir / "memory").exists():
            runs_dir = run_dir.parents[2]
        if not cfg.get("memory_url") and not (runs_dir / "memory").exists():
            out["error"] = f"no memory store at {runs_dir / 'memory'}"
            return out
        mem = Memory.open(runs_dir=runs_dir, url=cfg.get("memory_url"))
        from memory.store import _where

        run_id = run_dir.name
        for kind in (FAILURES, DIRECTIONS, FACTS):
            for e in mem._get(kind, _where(cfg.get("game", ""), cfg.get("obs_mode"))):
                text = getattr(e, "reason", None) or getattr(e, "direction", None) or f"{e.key}: {readable(e.value)}"
                full = json.dumps(e.value, indent=1, sort_keys=True, default=str) if kind == FACTS else ""
                extra = f"{e.outcome} ({e.score_delta:+g})" if kind == DIRECTIONS else ""
                row = dict(kind=kind.removeprefix("hl_"), text=text, extra=extra, run_id=e.run_id, trial=e.trial, timestamp=e.timestamp,
                           full=full if len(full) > len(text) else "")  # fmt: skip
                if e.run_id == run_id:
                    out["written"].append(row)
                elif started is None or e.timestamp <= started:
                    out["readable"].append(row)
    except Exception as err:  # memory is optional for a report
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def readable(value, limit: int = 220) -> str:
    """A memory fact's value for people: 'controller intercept · features fire_to_serve ·
    params aim_offset 0, deadband 2, ...', nested values counted, cut at a whole item (…)."""

    def short(v, depth: int = 0) -> str:
        if isinstance(v, dict):
            if depth >= 1 and len(v) > 10:
                return f"({len(v)} fields)"
            return ", ".join(f"{k} {short(x, depth + 1)}" for k, x in v.items()) if depth else ""
        if isinstance(v, (list, tuple)):
            if len(v) > 6 or any(isinstance(x, (dict, list)) for x in v):
                return f"({len(v)} items)"
            return ", ".join(short(x, depth + 1) for x in v) or "none"
        if isinstance(v, float):
            return f"{v:g}"
        return "none" if v is None else str(v)

    if not isinstance(value, dict):
        items = [short(value, 1)]
    else:
        items = [f"{k} {short(v, 1)}" for k, v in value.items()]
    out = ""
    for i, item in enumerate(items):
        piece = item if not out else f"{out} · {item}"
        if len(piece) > limit:
            return (out or item[: limit - 1].rsplit(" ", 1)[0]) + " …"
        out = piece
    return out


def candidate_params_diff(rows: list[dict], trial: int | None, records: dict) -> str | None:
    """For a rolled-back candidate: its parameters against the accepted ones, as a diff.
    `rows`: the trace's node executions (their checkpointed writes hold the candidate)."""
    if trial is None or trial not in records:
        return None
    phash = records[trial].policy_hash
    for row in rows:
        cand = (row.get("writes") or {}).get("candidate")
        if cand and cand.get("policy_hash") == phash:
            best = ((row.get("inputs") or {}).get("best") or {}).get("policy") or {}
            old = json.dumps({"params": best.get("params"), "features": best.get("features")}, indent=1, sort_keys=True, default=str)
            new = json.dumps({"params": cand.get("params"), "features": cand.get("features")}, indent=1, sort_keys=True, default=str)
            return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "accepted", f"candidate (trial {trial})"))
    return None
