"""trace.jsonl: one line per node start/end and tool call, with timing, env steps, tokens
and the decision taken. Written as it happens (flush + fsync), so a killed run keeps its
trace up to the kill."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from record.ledger import now_iso


class Tracer:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def event(self, event: str, node: str, **fields) -> dict:
        entry = {"ts": now_iso(), "t": round(time.time(), 3), "event": event, "node": node, **fields}
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry


def read_trace(path: str | Path) -> tuple[list[dict], list[str]]:
    """Every readable entry, and a description of each damaged line (a torn last line from a
    kill, or a line that is not JSON): what is after the damage is still read."""
    entries, damage = [], []
    path = Path(path)
    if not path.exists():
        return entries, [f"{path.name} does not exist"]
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:  # not JSON, or not even UTF-8
            last = number == len(lines)
            damage.append(f"line {number}: " + ("torn last line (killed while writing)" if last else "not JSON"))
    return entries, damage
