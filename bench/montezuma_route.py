"""Montezuma's Revenge with the route controller: probe -> cell-archive search -> a heuristic
system folder (detectors.py, route.py, policy.py) -> evaluation with the real harness.

    python bench/montezuma_route.py --protocol hl --search-steps 2e6
    python bench/montezuma_route.py --protocol ale-v5 --search-steps 1.5e6 --episodes 10 --baseline
    python bench/montezuma_route.py --protocol ale-v5 --reuse --search-steps 0 --no-dev --holdout

Every env step (probe, search, evaluations) goes through one StepMeter and one ledger
(`<out>/run/trials.jsonl`); the search row records that it ran without sticky actions.
Nothing here is specific to Montezuma except the default game name: the RAM addresses come
from the probe. `--reuse` continues in the output folder (default runs/bench/<game>-<protocol>): the probe is read back,
the archive continues (only new search steps are charged), and the ledger keeps counting;
`--search-steps 0` evaluates the system already written there (the final holdout run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.controllers import default_params  # noqa: E402
from agents.controllers.atari import route as route_controller  # noqa: E402
from envs.atari.games import resolve_game  # noqa: E402
from envs.atari.protocols import get_protocol  # noqa: E402
from evaluation.evaluate import evaluate  # noqa: E402
from tools.explore import SearchConfig, route_facts_from_probe, search_route  # noqa: E402
from record.ledger import Ledger  # noqa: E402
from record.meter import StepMeter  # noqa: E402
from probe.atari import ProbeReport, probe_game  # noqa: E402

OPEN_LOOP_POLICY = '''"""Open-loop baseline: replay the search's action sequence by step count, whatever happens."""

from route import ROUTE


class Policy:
    def reset(self, seed):
        pass

    def act(self, obs):
        return ROUTE[obs.step][4] if obs.step < len(ROUTE) else 0
'''


def _steps(text: str) -> int:
    return int(float(text))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="montezuma")
    p.add_argument("--protocol", default="hl", choices=["hl", "ale-v5"])
    p.add_argument("--budget", type=_steps, default=10_000_000, help="env steps for everything (probe, search, evaluations)")
    p.add_argument("--search-steps", type=_steps, default=2_000_000, help="env steps for this search call")
    p.add_argument("--target-score", type=float, default=None, help="stop the search at this score")
    p.add_argument("--episodes", type=int, default=None, help="dev episodes (default: 1 under hl, 10 under ale-v5)")
    p.add_argument("--baseline", action="store_true", help="also evaluate the open-loop replay on the same dev seeds")
    p.add_argument("--holdout", action="store_true", help="evaluate on 10 holdout seeds too (the final report only)")
    p.add_argument("--no-dev", action="store_true", help="skip the dev evaluation (with --reuse --holdout)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/bench/<game>-<protocol>)")
    p.add_argument("--reuse", action="store_true", help="continue in --out: reuse its probe, archive and ledger")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a route policy parameter")
    args = p.parse_args(argv)

    spec = resolve_game(args.game)
    proto = get_protocol(args.protocol)
    out = (args.out or Path("runs/bench") / f"{spec.slug}-{proto.name}").resolve()
    episodes = args.episodes or (1 if proto.name == "hl" else 10)
    state_file = out / "meter.json"

    # One meter and one ledger for everything; a reused folder carries its counts over.
    used = json.loads(state_file.read_text()) if args.reuse and state_file.exists() else {}
    meter = StepMeter(budget=args.budget, used_steps=used.get("steps", 0), used_frames=used.get("frames", 0))
    for kind, steps in used.get("by_kind", {}).items():
        meter.steps_by_kind[kind] = steps
    if out.exists() and not args.reuse:
        print(f"{out} exists: pass --reuse to continue there, or another --out", file=sys.stderr)
        return 2
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(run_dir / "trials.jsonl")

    def save_meter() -> None:
        state_file.write_text(json.dumps(dict(steps=meter.used_steps, frames=meter.used_frames, by_kind=dict(meter.steps_by_kind))))

    # 1. Probe (hl: every reset is identical, which the probe's experiments need).
    probe_dir = out / "probe"
    if (probe_dir / "probe.json").exists():
        report = ProbeReport.model_validate_json((probe_dir / "probe.json").read_text())
        print(f"probe: reused {probe_dir / 'probe.json'}")
    else:
        before = meter.used_steps
        report = probe_game(spec, probe_dir, meter, "ram")
        print(f"probe: {meter.used_steps - before:,} env steps")
        ledger.append(run_id=run_dir.name, game=spec.name, role="prober", kind="probe", protocol="hl",
                      obs_mode="ram", env_steps=meter.used_steps - before, frames=report.env_frames,
                      change_summary="probe for the route controller")  # fmt: skip
        save_meter()
    facts = route_facts_from_probe(report)
    facts["controller"] = "route"
    (out / "facts.json").write_text(json.dumps(facts, indent=1))
    print("facts:", json.dumps(facts["ram"]))

    # 2. Search (deterministic: no sticky actions; every emulator step charged), 3. hs/ folder.
    hs = out / "hs"
    open_loop = out / "open_loop"
    figures: dict = {}
    if args.search_steps == 0:  # evaluate the system already written (e.g. the final holdout run)
        if not (hs / "policy.py").exists():
            print(f"--search-steps 0 needs an earlier run's {hs / 'policy.py'}", file=sys.stderr)
            return 2
        print(f"search: skipped; evaluating {hs}")
    else:
        build_system(args, spec, proto, meter, facts, out, hs, open_loop, ledger, run_dir, save_meter, figures)
    run_evaluations(args, spec, proto, meter, run_dir, hs, open_loop, episodes, save_meter, figures)
    return 0


def build_system(args, spec, proto, meter, facts, out, hs, open_loop, ledger, run_dir, save_meter, figures) -> None:
    """Search (deterministic, metered) and write hs/ and the open-loop baseline folder."""

    def progress(info: dict) -> None:
        print(f"  search: {info['steps']:>10,} steps  best {info['best_score']:>6g}  cells {info['cells']:>5}", flush=True)

    before_steps, before_frames = meter.used_steps, meter.used_frames
    started = time.perf_counter()
    result = search_route(spec, proto, meter, facts, max_steps=args.search_steps, archive_path=out / "archive.pkl",
                          progress=progress, target_score=args.target_score, config=SearchConfig())  # fmt: skip
    save_meter()
    ledger.append(
        run_id=run_dir.name, game=spec.name, role="policy_writer", kind="search", protocol=proto.name,
        protocol_settings={**proto.model_dump(), "repeat_action_probability": 0.0, "engine": "ale-py cloneState/restoreState"},
        obs_mode="ram", env_steps=meter.used_steps - before_steps, frames=meter.used_frames - before_frames,
        score_mean=result.score, score_max=result.score, wall_seconds=round(time.perf_counter() - started, 2),
        change_summary=f"cell-archive search without sticky actions: best {result.score:g} in {len(result.actions)} steps, "
                       f"{result.cells} cells, stop: {result.stop_reason}",
    )  # fmt: skip
    print(f"search: score {result.score:g}, route {len(result.actions):,} steps, {result.cells} cells, "
          f"{result.steps_used:,} steps this call ({result.steps_total:,} in the archive), stop: {result.stop_reason}")  # fmt: skip

    hs.mkdir(exist_ok=True)
    params = default_params(route_controller)
    for item in args.param:
        name, value = item.split("=", 1)
        params[name] = int(float(value)) if name in route_controller.INT_PARAMS else float(value)
    features = route_controller.initial_features(facts)
    (hs / "detectors.py").write_text(route_controller.write_route_detectors(facts))
    (hs / "route.py").write_text(route_controller.write_route_module(result, facts))
    (hs / "policy.py").write_text(route_controller.write_policy(params, features, facts, "initial route from the search"))
    open_loop.mkdir(exist_ok=True)
    for name in ("detectors.py", "route.py"):
        (open_loop / name).write_text((hs / name).read_text())
    (open_loop / "policy.py").write_text(OPEN_LOOP_POLICY)
    print(f"heuristic system: {hs} (features {sorted(features)})")

    figures.update(search_score=result.score, search_steps_total=result.steps_total, route_steps=len(result.actions))


def run_evaluations(args, spec, proto, meter, run_dir, hs, open_loop, episodes, save_meter, figures) -> None:
    """4. Evaluations with the real harness (sandboxed workers, sticky actions per protocol)."""

    def run_eval(policy: Path, split: str, label: str) -> None:
        record = evaluate(policy, spec, run_dir, obs_mode="ram", protocol=proto.name, split=split, episodes=episodes,
                          meter=meter, workers=1, role="user", change_summary=label)  # fmt: skip
        save_meter()
        figures[label] = dict(mean=record.score_mean, scores=record.scores, env_steps=record.env_steps, status=record.status)
        print(f"{label}: mean {record.score_mean} scores {record.scores} ({record.env_steps:,} env steps, {record.status})")

    if not args.no_dev:
        run_eval(hs / "policy.py", "dev", f"closed-loop {proto.name} dev")
        if args.baseline:
            run_eval(open_loop / "policy.py", "dev", f"open-loop {proto.name} dev")
    if args.holdout:
        run_eval(hs / "policy.py", "holdout", f"closed-loop {proto.name} holdout")

    figures["total_env_steps"] = meter.used_steps
    figures["steps_by_kind"] = dict(meter.steps_by_kind)
    out = hs.parent
    name = "figures-holdout.json" if args.holdout and args.no_dev else "figures.json"
    (out / name).write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    sys.exit(main())
