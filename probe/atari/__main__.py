"""Command line: python -m probe.atari --game breakout --out runs/breakout/probe"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from envs.atari.games import UnknownGameError, resolve_game
from envs.atari.protocols import get_protocol
from probe.atari.report import ProbeConfig
from probe.atari.run import probe_game
from record.meter import BudgetExhausted, StepMeter


def main(argv: list[str] | None = None) -> int:
    """Command line: probe one game into --out and print probe.md (exit 2 on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m probe.atari", description="Probe an Atari game: actions, player, objects, RAM.")
    parser.add_argument("--game", required=True, help="the game as you would type it: pong, montezuma, space-invaders, Breakout-v5")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not hold earlier probe files)")
    parser.add_argument("--obs", default="ram", choices=("ram", "vision"), help="what the probe may read: ram (RAM and frames) or vision (frames only); default ram")
    parser.add_argument("--protocol", default="hl", help="evaluation protocol: hl (deterministic, the default) or ale-v5 (sticky actions)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe's episodes and random actions (default 0)")
    parser.add_argument("--budget", type=int, default=30_000, help="env steps the probe may take in total (default 30000)")
    parser.add_argument("--record-steps", type=int, default=ProbeConfig().record_steps,
                        help=f"env steps of each recorded episode used to fit detectors (default {ProbeConfig().record_steps})")
    args = parser.parse_args(argv)
    try:
        game = resolve_game(args.game)
        protocol = get_protocol(args.protocol)
    except (UnknownGameError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    meter = StepMeter(budget=args.budget)
    try:
        probe_game(game, args.out, meter, args.obs, protocol, args.seed, ProbeConfig(record_steps=args.record_steps))
    except (BudgetExhausted, FileExistsError) as err:
        print(err, file=sys.stderr)
        return 2
    print((args.out / "probe.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
