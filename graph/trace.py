"""`python -m graph.trace RUN`: why the run did what it did, from its own folder, offline.

    python -m graph.trace RUN                      # timeline: one row per node execution
    python -m graph.trace RUN --iteration 2        # only that iteration's rows
    python -m graph.trace RUN --node replay_critic # a node's details: inputs, LLM and tool calls,
                                                   #   outputs, trials, diagnosis (--iteration N: one)
    python -m graph.trace RUN --diff 1 2           # diff of two policy versions in hs/ (version
                                                   #   numbers from the listing, or git revisions)
    python -m graph.trace RUN --json               # any of the above as JSON, for scripts

RUN is a run id (looked up under --runs-dir) or a run folder. Sources: trace.jsonl (node
start/end, LLM and tool calls), trials.jsonl (the ledger: trials and their artifacts),
checkpoint.sqlite (each node's input state and its writes) and hs/ (git). A killed run's
trace or ledger is read up to the damage, and the damage is reported; an unreadable
checkpoint only removes the inputs/outputs detail.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from record.tracing import read_trace
from record.workspace import DEFAULT_RUNS_DIR

# Events recorded inside a node execution (between its start and end).
INNER_EVENTS = ("llm_call", "llm_error", "tool", "fallback", "cost_stop", "warning")
# State channels that are bookkeeping, not something a node reads to decide.
_QUIET_CHANNELS = {"run_id", "game", "obs_mode", "protocol", "budget", "seed", "target_score"}


def resolve_run(run: str, runs_dir: Path) -> Path:
    path = Path(run)
    if path.is_dir():
        return path
    matches = sorted(runs_dir.glob(f"*/*/{run}")) if runs_dir.exists() else []
    if not matches:
        raise FileNotFoundError(f"no run {run!r} (neither a folder nor a run id under {runs_dir})")
    return matches[0]


def timeline(entries: list[dict]) -> list[dict]:
    """Pair start/end events into one row per node execution; LLM calls, tool calls and
    warnings recorded while a node ran go into that row's `events`."""
    rows, open_nodes, orphans = [], {}, []
    for e in entries:
        kind = e.get("event")
        node = e.get("node")
        if kind == "start":
            open_nodes[node] = dict(start=e, events=[])
        elif kind in ("end", "error"):
            opened = open_nodes.pop(node, None)
            start = opened["start"] if opened else None
            rows.append(dict(
                node=node, start=start["ts"] if start else None, end=e.get("ts"), seconds=e.get("seconds"),
                iteration=start.get("iteration") if start else None, env_steps=e.get("env_steps", 0),
                env_steps_start=start.get("env_steps_total") if start else None,
                env_steps_total=e.get("env_steps_total"), tokens=e.get("tokens", 0), cost_usd=e.get("cost_usd", 0.0),
                decision=e.get("decision"), summary=e.get("summary") or e.get("error", ""), status=kind,
                events=opened["events"] if opened else [], t=(start or e).get("t"),
            ))  # fmt: skip
        elif kind in INNER_EVENTS:
            # A role's own events carry its name; others (a memory warning) go to the node running.
            target = open_nodes.get(node) or (list(open_nodes.values())[-1] if open_nodes else None)
            (target["events"] if target else orphans).append(e)
    last_start = max((e.get("t", 0) for e in entries if e.get("event") == "start"), default=0)
    for node, opened in open_nodes.items():  # started, never finished: the run was killed here
        start = opened["start"]
        # Other nodes started after it: it did finish, but its end line was lost (damage).
        summary = "(did not finish)" if start.get("t", 0) >= last_start else "(end not recorded: damaged trace)"
        rows.append(dict(node=node, start=start["ts"], end=None, seconds=None, iteration=start.get("iteration"),
                         env_steps=None, env_steps_start=start.get("env_steps_total"), env_steps_total=None, tokens=0,
                         cost_usd=0.0, decision=None, summary=summary, status="open", events=opened["events"],
                         t=start.get("t")))  # fmt: skip
    # In the order the nodes started (a row whose end was lost sits where it ran).
    order = {id(r): i for i, r in enumerate(rows)}
    rows.sort(key=lambda r: (r.get("t") is None, r.get("t") or 0.0, order[id(r)]))
    for r in rows:
        r.pop("t", None)
    if orphans:
        rows.append(dict(node="(outside nodes)", start=orphans[0].get("ts"), end=orphans[-1].get("ts"), seconds=None,
                         iteration=None, env_steps=0, env_steps_start=None, env_steps_total=None, tokens=0, cost_usd=0.0,
                         decision=None, summary=f"{len(orphans)} events outside any node", status="events",
                         events=orphans))  # fmt: skip
    return rows


# -- the other records of a run ---------------------------------------------------------------


def read_ledger(run_dir: Path) -> tuple[list, list[str]]:
    from record.ledger import Ledger

    try:
        contents = Ledger(run_dir / "trials.jsonl").read()
    except OSError as err:
        return [], [f"trials.jsonl: {err}"]
    return contents.records, [f"trials.jsonl line {d.line}: {d.reason}" for d in contents.damage]


def checkpoint_steps(run_dir: Path) -> tuple[list[dict], list[str]]:
    """The checkpointed graph steps, oldest first: {step, node, inputs (state before the node),
    writes (what it returned)}. Read-only; a missing or unreadable checkpoint gives []."""
    path = run_dir / "checkpoint.sqlite"
    if not path.exists():
        return [], []
    import sqlite3

    try:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            saver = SqliteSaver(conn)
            thread = conn.execute("SELECT DISTINCT thread_id FROM checkpoints").fetchall()
            steps = []
            for (thread_id,) in thread:
                for cp in saver.list({"configurable": {"thread_id": thread_id}}):
                    values = cp.checkpoint.get("channel_values", {})
                    nodes = [k.split(":", 2)[2] for k in values if k.startswith("branch:to:")]
                    if cp.metadata.get("step", -1) < 0 or not nodes:
                        continue
                    writes = {}
                    for _task, channel, value in cp.pending_writes or []:
                        if not channel.startswith(("branch:", "__")):
                            writes[channel] = value
                    inputs = {k: v for k, v in values.items() if not k.startswith(("branch:", "__"))}
                    steps.append(dict(step=cp.metadata.get("step"), node=nodes[0], inputs=inputs, writes=writes))
        finally:
            conn.close()
    except Exception as err:  # a killed run can leave a checkpoint the saver cannot read
        return [], [f"checkpoint.sqlite unreadable: {type(err).__name__}: {err}"]
    steps.sort(key=lambda s: s["step"])
    return steps, []


def final_state(run_dir: Path) -> dict:
    """The last checkpointed state (history, best, usage...), or {}."""
    steps, _ = checkpoint_steps(run_dir)
    if not steps:
        return {}
    last = steps[-1]
    state = dict(last["inputs"])
    for k, v in last["writes"].items():
        if k == "history":
            state["history"] = list(state.get("history") or []) + list(v or [])
        elif k == "usage":
            continue
        else:
            state[k] = v
    return state


def _trials_for(row: dict, records: list) -> list:
    """Ledger rows written by this node execution: same role, inside its env-step window (or,
    for rows that took no steps, its time window)."""
    lo = row.get("env_steps_start")
    hi = row.get("env_steps_total")
    found = []
    role = {"holdout": "finish", "robustness": "finish"}.get(row["node"], row["node"])  # the finish phases' rows are the finish's
    for r in records:
        if r.role != role:
            continue
        if r.env_steps > 0 and lo is not None:
            if lo < r.cumulative_env_steps and (hi is None or r.cumulative_env_steps <= hi):
                found.append(r)
        elif r.env_steps == 0 and row.get("start") and row["start"] <= r.timestamp and (row.get("end") is None or r.timestamp <= row["end"]):
            found.append(r)
    return found


def load_run(run_dir: Path) -> dict:
    """Everything the trace command and the report read: rows (with trials, artifacts,
    inputs and writes attached), the ledger, the checkpoint's last state, and the damage."""
    entries, damage = read_trace(run_dir / "trace.jsonl")
    damage = [f"trace.jsonl {d}" if not d.startswith("trace.jsonl") else d for d in damage]
    rows = timeline(entries)
    records, ledger_damage = read_ledger(run_dir)
    steps, cp_damage = checkpoint_steps(run_dir)
    # The k-th finished execution of a node is the k-th checkpointed step of that node.
    by_node: dict[str, list[dict]] = {}
    for s in steps:
        by_node.setdefault(s["node"], []).append(s)
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        row["index"] = i
        trials = _trials_for(row, records)
        row["trials"] = [r.trial for r in trials]
        row["artifacts"] = {f"trial {r.trial} {k}": v for r in trials for k, v in r.artifacts.items()}
        row["inputs"], row["writes"] = None, None
        if row["status"] == "end":
            k = seen.get(row["node"], 0)
            seen[row["node"]] = k + 1
            if k < len(by_node.get(row["node"], [])):
                step = by_node[row["node"]][k]
                row["inputs"], row["writes"] = step["inputs"], step["writes"]
    return dict(run_dir=str(run_dir), rows=rows, entries=entries, records=records,
                damage=damage + ledger_damage + cp_damage, steps=steps)  # fmt: skip


# -- policy versions ------------------------------------------------------------------------------


def policy_versions(run_dir: Path) -> list[dict]:
    """hs/ commits, oldest first: {version, commit, subject, message}."""
    hs = run_dir / "hs"
    if not (hs / ".git").exists():
        return []
    import subprocess

    out = subprocess.run(["git", "log", "--reverse", "--format=%H%x1f%s%x1f%b%x1e"], cwd=hs, capture_output=True, text=True)
    if out.returncode != 0:
        return []
    versions = []
    for chunk in out.stdout.split("\x1e"):
        chunk = chunk.strip("\n")
        if not chunk:
            continue
        commit, subject, body = (chunk.split("\x1f") + ["", ""])[:3]
        versions.append(dict(version=len(versions), commit=commit, subject=subject, message=body.strip()))
    return versions


def _rev(spec: str, versions: list[dict], hs: Path) -> str:
    """A version number from the listing, or a git revision that names a commit in hs/."""
    import subprocess

    listing = f"versions 0..{len(versions) - 1}" if versions else "no versions"
    if spec.isdigit() and len(spec) < 7:
        if int(spec) >= len(versions):
            raise ValueError(f"no policy version {spec} in {hs} ({listing}, its commits oldest first: git -C {hs} log --reverse --oneline)")
        return versions[int(spec)]["commit"]
    found = None if spec.startswith("-") else subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                                                             cwd=hs, capture_output=True, text=True)  # fmt: skip
    if found is None or found.returncode != 0:
        raise ValueError(f"{spec!r} is neither a policy version ({listing}) nor a git revision in {hs}")
    return found.stdout.strip()


def policy_diff(run_dir: Path, a: str, b: str) -> dict:
    """Unified diff between two versions of hs/ (version numbers or git revisions)."""
    import subprocess

    versions = policy_versions(run_dir)
    if not versions:
        raise ValueError(f"{run_dir / 'hs'} is not a git repository (no policy versions)")
    ra, rb = _rev(a, versions, run_dir / "hs"), _rev(b, versions, run_dir / "hs")
    proc = subprocess.run(["git", "diff", ra, rb], cwd=run_dir / "hs", capture_output=True, text=True)
    if proc.returncode != 0:
        raise ValueError(f"cannot diff {a} and {b} in hs/: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'git failed'}")
    subjects = {v["commit"]: v for v in versions}

    def describe(commit: str) -> dict:  # _rev gave the full commit hash
        v = subjects.get(commit, {})
        return dict(rev=commit, commit=commit, version=v.get("version"), subject=v.get("subject"))

    return dict(a=describe(ra), b=describe(rb), diff=proc.stdout)


def diagnosis_text(run_dir: Path, iteration: int | None) -> str | None:
    if iteration is None:
        return None
    path = run_dir / "diagnoses" / f"iteration-{iteration:03d}.md"
    return path.read_text() if path.exists() else None


def node_details(run: dict, node: str, iteration: int | None = None) -> list[dict]:
    run_dir = Path(run["run_dir"])
    records = {r.trial: r for r in run["records"]}
    out = []
    for row in run["rows"]:
        if row["node"] != node or (iteration is not None and row["iteration"] != iteration):
            continue
        inputs = {k: v for k, v in (row["inputs"] or {}).items() if k not in _QUIET_CHANNELS}
        writes = dict(row["writes"] or {})
        trials = [dict(trial=t, kind=records[t].kind, status=records[t].status, score_mean=records[t].score_mean,
                       env_steps=records[t].env_steps, change_summary=records[t].change_summary,
                       artifacts=records[t].artifacts) for t in row["trials"]]  # fmt: skip
        diagnosis = diagnosis_text(run_dir, row["iteration"]) if node == "replay_critic" else None
        out.append(dict(
            {k: row[k] for k in ("index", "node", "iteration", "status", "start", "end", "seconds", "env_steps",
                                 "env_steps_total", "tokens", "cost_usd", "decision", "summary")},
            inputs=inputs, llm_calls=[e for e in row["events"] if e["event"] in ("llm_call", "llm_error")],
            tool_calls=[e for e in row["events"] if e["event"] == "tool"],
            other_events=[e for e in row["events"] if e["event"] not in ("llm_call", "llm_error", "tool")],
            outputs=writes, trials=trials, diagnosis=diagnosis,
        ))  # fmt: skip
    return out


# -- command ----------------------------------------------------------------------------------------

# The finish of a run is traced like nodes (graph/finish.py): the holdout evaluation, then the reports.
FINISH_PHASES = ("holdout", "report")
# Below this many columns the timeline table would cut words: plain lines then (the terminal wraps them).
TABLE_WIDTH = 80


def _json_rows(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("inputs", "writes")} for r in rows]


def node_names() -> list[str]:
    """Every node a run can have: the graph's (graph/build.py LAYOUT) and the finish phases."""
    from graph.build import LAYOUT

    names = {LAYOUT["start"]} | {n for edge in LAYOUT["edges"] for n in edge} | {"evaluate", "decide"}
    names |= {n for n in LAYOUT["routes"].values() if isinstance(n, str) and not n.startswith("__")}
    return sorted(names) + list(FINISH_PHASES)


def build_parser() -> argparse.ArgumentParser:
    from tools.cli import OneLineParser

    parser = OneLineParser(prog="python -m graph.trace", description=__doc__.split("\n\n")[0].replace("\n", " "),
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])  # fmt: skip
    parser.add_argument("run", help="run id (looked up under --runs-dir) or run folder")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, metavar="RUNS_DIR",
                        help="where run ids are looked up (default: runs)")
    parser.add_argument("--node", help="details of this node's executions: its inputs, model and tool calls, outputs, trials "
                                       "(a graph node such as replay_critic, or a finish phase: holdout, report)")
    parser.add_argument("--iteration", type=int, help="only the rows (or --node executions) of this iteration")
    parser.add_argument("--diff", nargs=2, metavar=("A", "B"),
                        help="diff two policy versions in hs/: version numbers from the listing, or git revisions")
    parser.add_argument("--json", action="store_true", help="print the same as one JSON document, for scripts")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tools.cli import run_command

    args = build_parser().parse_args(argv)

    def body() -> int:
        code = _main(args)
        sys.stdout.flush()  # here, not at exit: a reader that went away (`| head -1`) ends it quietly
        return code

    return run_command(body, usage_errors=(FileNotFoundError, ValueError))


def _main(args) -> int:
    from graph import trace_view

    run_dir = resolve_run(args.run, args.runs_dir)
    if args.diff:
        return _print_diff(run_dir, args)
    if args.node and args.node not in node_names():
        raise ValueError(f"unknown node {args.node!r}; nodes: {', '.join(node_names())}")
    run = load_run(run_dir)
    rows = run["rows"]
    if args.node:
        details = node_details(run, args.node, args.iteration)
        if args.json:
            print(json.dumps({"run_dir": str(run_dir), "node": args.node, "executions": details, "damage": run["damage"]}, default=str))
            return 0
        width = trace_view.terminal_width() or trace_view.PIPED_WIDTH
        if not details:
            ran = sorted({r["node"] for r in run["rows"]})
            print(f"no execution of {args.node!r} recorded" + (f" in iteration {args.iteration}" if args.iteration is not None else "")
                  + (f"; nodes in this run: {', '.join(ran)}" if ran else ""))  # fmt: skip
        for d in details:
            print("\n".join(trace_view.details_lines(d, width)))
        _print_damage(run["damage"])
        return 0
    if args.iteration is not None:
        rows = [r for r in rows if r["iteration"] == args.iteration]
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), "rows": _json_rows(rows), "damage": run["damage"]}, default=str))
        return 0
    width = trace_view.terminal_width()
    print(f"trace of {run_dir}")  # a line of its own: the folder whole, to copy
    if width is None or width < TABLE_WIDTH:  # piped, or a terminal too narrow for the table: one full line per row
        print("\n".join(trace_view.timeline_lines(rows)))
    else:
        from rich.console import Console

        Console(width=width).print(trace_view.timeline_table(rows, None, width))
    if not rows:
        print("no node executions recorded" + (f" in iteration {args.iteration}" if args.iteration is not None else ""))
    _print_damage(run["damage"])
    return 0


def _print_damage(damage: list[str]) -> None:
    for d in damage:
        print(f"damage: {d}")


def _print_diff(run_dir: Path, args) -> int:
    result = policy_diff(run_dir, *args.diff)  # ValueError: one line, exit 2
    if args.json:
        print(json.dumps(result))
        return 0
    for side in ("a", "b"):
        s = result[side]
        print(f"{side}: version {s['version']} {s['commit'][:10]} {s['subject'] or ''}")
    if not result["diff"]:
        print("(no difference)")
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(result["diff"], "diff", theme="ansi_dark", word_wrap=True))
    else:
        print(result["diff"], end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
