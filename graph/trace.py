"""`python -m graph.trace RUN`: the run's timeline from trace.jsonl (node, duration, env
steps, tokens, decision). RUN is a run id (looked up under --runs-dir) or a run folder.
A killed run's trace is read up to the damage, and the damage is reported."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graph.tracing import read_trace
from tools.workspace import DEFAULT_RUNS_DIR


def resolve_run(run: str, runs_dir: Path) -> Path:
    path = Path(run)
    if path.is_dir():
        return path
    matches = list(runs_dir.glob(f"*/*/{run}")) if runs_dir.exists() else []
    if not matches:
        raise FileNotFoundError(f"no run {run!r} (neither a folder nor a run id under {runs_dir})")
    return matches[0]


def timeline(entries: list[dict]) -> list[dict]:
    """Pair start/end events into one row per node execution."""
    rows, open_nodes = [], {}
    for e in entries:
        if e["event"] == "start":
            open_nodes[e["node"]] = e
        elif e["event"] in ("end", "error"):
            start = open_nodes.pop(e["node"], None)
            rows.append(dict(
                node=e["node"], start=start["ts"] if start else None, seconds=e.get("seconds"),
                iteration=start.get("iteration") if start else None, env_steps=e.get("env_steps", 0),
                env_steps_total=e.get("env_steps_total"), tokens=e.get("tokens", 0),
                decision=e.get("decision"), summary=e.get("summary") or e.get("error", ""), status=e["event"],
            ))  # fmt: skip
    for node, start in open_nodes.items():  # started, never finished: the run was killed here
        rows.append(dict(node=node, start=start["ts"], seconds=None, iteration=start.get("iteration"), env_steps=None,
                         env_steps_total=None, tokens=0, decision=None, summary="(did not finish)", status="open"))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graph.trace", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run id or run folder")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        run_dir = resolve_run(args.run, args.runs_dir)
    except FileNotFoundError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    entries, damage = read_trace(run_dir / "trace.jsonl")
    rows = timeline(entries)
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), "rows": rows, "damage": damage}))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"trace of {run_dir}")
    for col in ("#", "iter", "node", "seconds", "env steps", "total steps", "tokens", "decision", "summary"):
        table.add_column(col, justify="right" if col in ("#", "iter", "seconds", "env steps", "total steps", "tokens") else "left")
    for i, r in enumerate(rows):
        table.add_row(
            str(i), str(r["iteration"] if r["iteration"] is not None else ""), r["node"],
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
            f"{r['env_steps']:,}" if r["env_steps"] is not None else "-",
            f"{r['env_steps_total']:,}" if r["env_steps_total"] is not None else "-",
            str(r["tokens"]), r["decision"] or "", (r["summary"] or "")[:80],
        )  # fmt: skip
    console.print(table)
    for d in damage:
        console.print(f"[yellow]damage:[/] {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
