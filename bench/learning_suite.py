"""The learning loop's benchmark: `python -m graph.run` (builtin brains) on the games and
settings of the acceptance table, each in a fresh runs folder, plus a second Breakout run
that reads the first one's memory. Prints and writes the results table.

    python bench/learning_suite.py                       # everything, 2 runs at a time
    python bench/learning_suite.py --only pong-ram-hl breakout-ram-hl --jobs 1
    python bench/learning_suite.py --out runs/suite-2 --table docs/results.md --curves docs/img

Each row is one graph.run: best dev score, the holdout evaluation the run ends with, env
steps to the best (the ledger's cumulative env steps of the first dev evaluation reaching
it: probe, searches and tuning included), env steps used, wall time, and the command.
Under `hl` env steps are emulator frames; under `ale-v5` one env step is 4 frames.
Wall times are of runs sharing the machine (`--jobs` at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


@dataclass
class Entry:
    name: str
    args: list[str]
    env: dict = field(default_factory=dict)
    after: str | None = None  # run in the same runs folder, after this entry (reads its memory)
    target: str = ""  # the acceptance target, for the table


ENTRIES = [
    Entry("pong-ram-hl", ["--game", "pong"], target="≥ +20 within 1M"),
    Entry("pong-ram-ale-v5", ["--game", "pong", "--protocol", "ale-v5"], target="holdout ≥ +15"),
    Entry("pong-vision-hl", ["--game", "pong", "--obs", "vision"], target="≥ +15"),
    Entry("breakout-ram-hl", ["--game", "breakout", "--budget", "3e6"], target="≥ 700 within 3M"),
    Entry("breakout-ram-hl-memory", ["--game", "breakout", "--budget", "3e6"], after="breakout-ram-hl",
          target="first run's best with fewer env steps"),
    Entry("breakout-ram-ale-v5", ["--game", "breakout", "--protocol", "ale-v5", "--budget", "3e6"], target="reported"),
    Entry("breakout-vision-hl", ["--game", "breakout", "--obs", "vision", "--budget", "3e6"], target="≥ 300"),
    Entry("montezuma-ram-hl", ["--game", "montezuma", "--budget", "10e6"], target="≥ 400 within 10M, closed loop"),
    Entry("montezuma-ram-ale-v5", ["--game", "montezuma", "--protocol", "ale-v5", "--budget", "10e6"],
          target="holdout ≥ 100"),
]  # fmt: skip


def run_entry(entry: Entry, out: Path, console: Console) -> dict:
    runs = out / (entry.after or entry.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HL_"))}  # builtin brains, defaults
    env.update(entry.env)
    argv = [sys.executable, "-m", "graph.run", *entry.args, "--runs-dir", str(runs), "--quiet"]
    started = time.perf_counter()
    console.print(f"[bold]{entry.name}[/]: {' '.join(['python -m graph.run', *entry.args])}")
    log = out / f"{entry.name}.log"
    with open(log, "w") as f:
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=f, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        console.print(f"[red]{entry.name} failed (exit {done.returncode}); see {log}[/]")
        return dict(name=entry.name, failed=True, wall=wall)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    console.print(f"{entry.name}: best {summary['best_score']} · holdout {summary['holdout']} · "
                  f"{summary['env_steps_to_best']} env steps to best · {wall:.0f} s")  # fmt: skip
    return dict(name=entry.name, summary=summary, wall=wall, command=" ".join(["python -m graph.run", *entry.args]),
                target=entry.target)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / f"suite-{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--only", nargs="*", default=None, help="entry names (default: all)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--table", type=Path, default=None, help="also write the results table (markdown) here")
    p.add_argument("--curves", type=Path, default=None, help="copy learning curves of Breakout and Montezuma here")
    args = p.parse_args()
    names = {e.name for e in ENTRIES}
    unknown = set(args.only or []) - names
    if unknown:
        p.error(f"unknown entries {sorted(unknown)}; known: {', '.join(sorted(names))}")
    entries = [e for e in ENTRIES if not args.only or e.name in args.only]
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} is not empty: pass another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    console = Console(width=160)

    # An entry that reads another's memory waits for it; the others run --jobs at a time.
    results: dict[str, dict] = {}
    first = [e for e in entries if not e.after or e.after not in {x.name for x in entries}]
    later = [e for e in entries if e not in first]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {e.name: pool.submit(run_entry, e, args.out, console) for e in first}
        for e in later:
            results[e.after] = futures[e.after].result()
            futures[e.name] = pool.submit(run_entry, e, args.out, console)
        for name, f in futures.items():
            results[name] = f.result()

    table = Table(title="graph.run, builtin brains")
    columns = ("run", "target", "best dev score", "holdout", "env steps to best", "env steps used", "wall s", "stopped")
    for col in columns:
        table.add_column(col)
    lines = ["| " + " | ".join(columns + ("command",)) + " |", "|" + "---|" * (len(columns) + 1)]
    for e in entries:
        r = results[e.name]
        if r.get("failed"):
            row = (e.name, e.target, "failed", "", "", "", f"{r['wall']:.0f}", "")
            cmd = ""
        else:
            s = r["summary"]
            best = "–" if s["best_score"] is None else f"{s['best_score']:.4g}"
            to_best = "–" if s["env_steps_to_best"] is None else f"{s['env_steps_to_best']:,}"
            row = (e.name, e.target, best, s["holdout"] or "–", to_best, f"{s['env_steps']:,}", f"{r['wall']:.0f}", s["stop_reason"] or "")
            cmd = f"`{r['command']}`" + (f" (after {e.after}, same runs folder)" if e.after else "")
        table.add_row(*row)
        lines.append("| " + " | ".join(row + (cmd,)) + " |")
    pair = [results.get(n, {}).get("summary") for n in ("breakout-ram-hl", "breakout-ram-hl-memory")]
    if all(pair) and pair[0]["env_steps_to_best"] and pair[1]["env_steps_to_best"]:
        ratio = pair[0]["env_steps_to_best"] / pair[1]["env_steps_to_best"]
        note = (f"Memory: the second Breakout run reached {pair[1]['best_score']:g} (first: {pair[0]['best_score']:g}) after "
                f"{pair[1]['env_steps_to_best']:,} env steps against {pair[0]['env_steps_to_best']:,}: {ratio:.1f}× fewer.")  # fmt: skip
        lines += ["", note]
    console.print(table)
    if len(lines) > 2 + len(entries):
        console.print(lines[-1])
    text = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(text)
    if args.curves:
        args.curves.mkdir(parents=True, exist_ok=True)
        for name in ("breakout-ram-hl", "breakout-vision-hl", "montezuma-ram-hl", "montezuma-ram-ale-v5"):
            s = results.get(name, {}).get("summary")
            if s and Path(s["curve"]).exists():
                shutil.copyfile(s["curve"], args.curves / f"{name.replace('-', '_')}_learning_curve.png")
    console.print(f"results: {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
