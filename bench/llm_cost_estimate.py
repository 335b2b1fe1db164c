"""What an LLM-brain run would cost per 1M env steps: an ESTIMATE from the token counts of the
scripted full iteration the tests run (every role an LLM, against tests/openai_server.py on
localhost), priced with agents/llm.py's table.

    python bench/llm_cost_estimate.py [--budget 60000] [--frames 2500]

Caveats, printed with the figures: the scripted server counts ~4 characters per token and
sends no reasoning tokens; the script's conversations are shorter than a real model's; the
evaluations are capped at --frames frames (HL_EVAL_MAX_FRAMES), so env steps per model
call are far fewer than in a real run, which overstates the cost per env step. Treat the
result as the order of magnitude of the model's share, not a quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agents.llm.session import PRICING  # noqa: E402
from openai_server import ScriptedServer  # noqa: E402
from test_llm_brains import ALL_LLM, ENV_KNOBS, MODEL, run_graph, scripts  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=60_000)
    p.add_argument("--frames", type=int, default=int(ENV_KNOBS["HL_EVAL_MAX_FRAMES"]))
    p.add_argument("--keep", type=Path, default=None, help="keep the scripted run's runs folder here (to read its trace)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ScriptedServer(scripts()) as server:
        done = run_graph(args.keep or Path(tmp), server, "--game", "pong", "--model", MODEL, "--brains", ALL_LLM, "--budget",
                         str(args.budget), env_extra={"HL_EVAL_MAX_FRAMES": str(args.frames)})  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        run_dir = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
        calls = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines() if '"llm_call"' in line]
        rows = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    steps = rows[-1]["cumulative_env_steps"]
    tokens_in = sum(c["input_tokens"] for c in calls)
    tokens_out = sum(c["output_tokens"] for c in calls)
    console = Console(width=120)
    console.print(f"scripted run: {len(calls)} model calls, {tokens_in:,} input + {tokens_out:,} output tokens, "
                  f"{steps:,} env steps (evaluations capped at {args.frames:,} frames)")  # fmt: skip
    table = Table(title="ESTIMATE: model cost per 1M env steps at the pricing table's rates")
    for col in ("model", "$ / 1M input", "$ / 1M output", "$ this run", "$ per 1M env steps"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model, (price_in, price_out) in PRICING.items():
        usd = (tokens_in * price_in + tokens_out * price_out) / 1e6
        table.add_row(model, f"{price_in:.2f}", f"{price_out:.2f}", f"{usd:.4f}", f"{usd / steps * 1e6:.2f}")
    console.print(table)
    if args.keep:
        console.print(f"run folder: {run_dir} (python -m graph.trace {run_dir} --node policy_writer)")
    console.print("An estimate: ~4 characters a token, no reasoning tokens, short scripted conversations, and "
                  "few env steps per call (capped evaluations) — see the module docstring.")  # fmt: skip


if __name__ == "__main__":
    main()
