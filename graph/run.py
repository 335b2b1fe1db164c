"""`python -m graph.run --game montezuma`: cultivate a heuristic system for a game.

    python -m graph.run --game pong                       # builtin brains, no API key
    python -m graph.run --game breakout --obs vision --budget 2e6
    python -m graph.run --resume RUN_ID                    # continue a killed run

Everything the run does lands in runs/<game>/<obs>/<run_id>/ (see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from envs.base import UnknownEnvError, UnknownProtocolError
from envs.registry import family_of, obs_mode_names, protocol_names, resolve_env
from record.ledger import Ledger
from record.meter import StepMeter
from record.workspace import DEFAULT_RUNS_DIR, RunFolderError, create_run_dir, new_run_id
from runtime.budget import BudgetTooSmall, plan_budget
from runtime.config import KNOBS, RunConfig, first_error, write_config
from runtime.context import RunContext
from tools.cli import OneLineParser, env_steps, run_command, usd


class UsageError(ValueError):
    """Bad input: printed as one line, exit code 2."""


def run_id_arg(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise argparse.ArgumentTypeError(f"a run id is letters, digits, '.', '_' and '-', got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m graph.run", description="Cultivate a heuristic system (a readable Python policy) for a game.")
    p.add_argument("--game", help="the game as you would type it: montezuma, pong, space-invaders, Breakout-v5, ... "
                                   "(--list shows every game)")
    p.add_argument("--list", action="store_true", help="list the games with their random and human scores and actions, and exit")
    p.add_argument("--obs", choices=obs_mode_names(), default=None,
                   help="what the policy sees: ram (RAM and RGB frames, the Atari default) or vision (RGB frames only)")
    p.add_argument("--budget", type=env_steps, default=None,
                   help="env steps for the whole run, every step counted: probe, evaluations, tuning, search, holdout "
                        "(default 1e6; 2e6 and 120000 work too)")
    p.add_argument("--protocol", choices=protocol_names(), default=None,
                   help="evaluation protocol: the family default (Atari: hl, deterministic, no sticky actions) or ale-v5 "
                        "(sticky actions 0.25, the standard ALE v5 settings)")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR,
                   help="where run folders go: RUNS_DIR/<game>/<obs>/<run_id>/ (default: runs); memory lives here too")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a killed or cost-stopped run from its checkpoint")
    p.add_argument("--run-id", type=run_id_arg, default=None,
                   help="name of the new run folder (letters, digits, '.', '_', '-'; default: the start time); graph.batch names "
                        "each cell's run this way")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the run's own choices (probe episodes, tuning samples, search); dev evaluation seeds are "
                        "fixed by the protocol, holdout seeds are never used for learning (default 0)")
    p.add_argument("--target", type=float, default=None, help="stop when the best dev score reaches this (default: the game's maximum)")
    p.add_argument("--memory-url", default=os.environ.get("HL_MEMORY_URL"),
                   help="Chroma server URL for memory shared across machines (default: HL_MEMORY_URL, else a local store in RUNS_DIR)")
    p.add_argument("--model", default="auto",
                   help="chat model for the LLM brains (e.g. gpt-5.4), 'builtin', 'replay:CASSETTE', or 'auto' (default: "
                        "LLM when OPENAI_API_KEY or OPENAI_BASE_URL is set, builtin otherwise)")
    p.add_argument("--brains", default=None, help="mix brains per role, e.g. policy_writer=llm,replay_critic=llm (the rest builtin)")
    p.add_argument("--record", action="store_true", help="record every model request/response to the run's cassette.jsonl")
    p.add_argument("--max-cost-usd", type=usd, default=None, help="stop cleanly (resumable) before the model cost passes this")
    p.add_argument("--quiet", action="store_true", help="no live display; print the summary as one line of JSON")
    return p


def find_run(runs_dir: Path, run_id: str) -> Path:
    matches = [p for p in runs_dir.glob(f"*/*/{run_id}") if p.is_dir()] if runs_dir.exists() else []
    if not matches:
        raise UsageError(f"no run {run_id!r} under {runs_dir}")
    run_dir = matches[0]
    if not (run_dir / "config.json").exists() or not (run_dir / "checkpoint.sqlite").exists():
        raise UsageError(f"run folder {run_dir} is not resumable (config.json or checkpoint.sqlite missing)")
    return run_dir


def prepare(args) -> tuple[RunContext, dict | None, str, tuple[int, int]]:
    """Create or reopen the run folder after checking the model server answers; return the
    context, the initial state (None on resume), the run id and the check's (input, output)
    tokens."""
    if args.resume:
        run_dir = find_run(args.runs_dir, args.resume)
        cfg = _read_config(run_dir)
        # A resumed replay asks nothing of a server: the recording's check was charged at its start.
        tokens = (0, 0) if (cfg.model or "").startswith("replay:") else check_model(cfg)
        return (*resume_run(args, run_dir), tokens)
    cfg = config_from_args(args)
    tokens = check_model(cfg)  # before a run folder exists: a bad setup leaves nothing behind
    ctx, state = new_run(cfg, run_id=args.run_id)
    return ctx, state, ctx.run_dir.name, tokens


def check_model(cfg: RunConfig) -> tuple[int, int]:
    """One tiny request to the model server when a role uses an LLM: unreachable, bad key or
    unknown model is a one-line error within seconds. A replayed cassette makes no request
    and charges the tokens its recording's check used (from the cassette's header)."""
    from agents.brains import LLM_ROLES
    from agents.llm.session import preflight

    if not cfg.model or not any(cfg.brains.get(r) == "llm" for r in LLM_ROLES):
        return 0, 0
    if cfg.model.startswith("replay:"):
        from agents.llm.session import cassette_preflight

        return cassette_preflight(Path(cfg.model.split(":", 1)[1]))  # what the recording's check used, no network
    return preflight(cfg.model)


def _read_config(run_dir: Path) -> RunConfig:
    try:
        return RunConfig.model_validate_json((run_dir / "config.json").read_text())
    except ValueError:
        raise UsageError(f"{run_dir / 'config.json'} is corrupt; cannot resume") from None


def resume_run(args, run_dir: Path) -> tuple[RunContext, None, str]:
    """Reopen a run folder; the meter starts from the ledger's totals."""
    cfg = _read_config(run_dir)
    raised = args.max_cost_usd is not None and (cfg.max_cost_usd is None or args.max_cost_usd > cfg.max_cost_usd)
    if args.max_cost_usd is not None and args.max_cost_usd != cfg.max_cost_usd:
        cfg = cfg.model_copy(update={"max_cost_usd": args.max_cost_usd})  # raising the ceiling to go on
        write_config(run_dir, cfg)
    from runtime.steps import recover_interrupted

    recover_interrupted(run_dir)  # count a killed evaluation's steps before the meter starts
    contents = Ledger(run_dir / "trials.jsonl").read()
    used = contents.records[-1].cumulative_env_steps if contents.records else 0
    frames = contents.records[-1].cumulative_frames if contents.records else 0
    ctx = RunContext(cfg, resolve_env(cfg.game), run_dir, StepMeter(cfg.budget, used, frames), ceiling_raised=raised)
    return ctx, None, run_dir.name


def config_from_args(args) -> RunConfig:
    """The run's configuration from the flags (a replayed cassette's settings fill the gaps)."""
    recorded = {}
    if args.model.startswith("replay:"):
        from agents.llm.session import cassette_config

        recorded = cassette_config(Path(args.model.split(":", 1)[1]))
    game_name = args.game or recorded.get("game")
    if not game_name:
        raise UsageError("--game is required (or --resume RUN_ID)")
    game = resolve_env(game_name)
    from agents.brains import resolve_brains

    try:
        model, brains = resolve_brains(args.model, args.brains)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if recorded and args.brains is None:
        brains = {**brains, **recorded.get("brains", {})}
    if args.record and not model:
        raise UsageError("--record needs an LLM brain (--model NAME, or OPENAI_API_KEY / OPENAI_BASE_URL set)")
    knobs = {k: recorded[k] for k in KNOBS if k in recorded and KNOBS[k][0] not in os.environ}
    try:
        cfg = RunConfig(game=game.name, obs_mode=args.obs or recorded.get("obs_mode"),
                        protocol=args.protocol or recorded.get("protocol"),
                        budget=args.budget or recorded.get("budget", 1_000_000), runs_dir=args.runs_dir,
                        seed=args.seed if args.seed is not None else recorded.get("seed", 0),
                        target_score=args.target if args.target is not None else recorded.get("target_score"),
                        memory_url=args.memory_url, model=model, brains=brains, record=args.record,
                        max_cost_usd=args.max_cost_usd, **knobs)  # fmt: skip
    except ValueError as err:  # a bad HL_* knob
        raise UsageError(first_error(err)) from None
    _check_family_support(game.family)
    if model and model.startswith("replay:"):
        if not Path(model.split(":", 1)[1]).expanduser().is_file():
            raise UsageError(f"no cassette at {model.split(':', 1)[1]}")
    return cfg


def new_run(cfg: RunConfig, run_id: str | None = None) -> tuple[RunContext, dict]:
    """A fresh run folder for `cfg` (config.json written) and the graph's initial state.
    graph/studio.py starts its runs here too."""
    game = resolve_env(cfg.game)
    protocol = family_of(game).get_protocol(cfg.protocol)
    try:
        plan = plan_budget(cfg, protocol)  # before a run folder exists: a budget too small leaves nothing behind
    except BudgetTooSmall as err:
        raise UsageError(str(err)) from None
    if plan.capped:
        cfg = cfg.model_copy(update={"eval_max_frames": plan.episode_frames})
    run_id = run_id or new_run_id()
    run_dir = create_run_dir(cfg.runs_dir, game.slug, cfg.obs_mode, run_id)
    write_config(run_dir, cfg)
    ctx = RunContext(cfg, game, run_dir, StepMeter(cfg.budget), budget_note=plan.note(protocol))
    ctx.meter.reserved = plan.initial_reserve
    return ctx, {**initial_state(ctx), "reserved": ctx.meter.reserved}


def initial_state(ctx: RunContext) -> dict:
    target = ctx.config.target_score if ctx.config.target_score is not None else ctx.game.max_score
    return dict(run_id=ctx.run_dir.name, target_score=target, iteration=0, plateau=0, history=[], usage={})


def open_memory(ctx: RunContext, strict: bool = True) -> None:
    """Memory for the run, resilient: a store that fails mid-run degrades to no memory, with a
    warning in the trace. strict: an unreachable store at the start is a usage error (else
    the run goes on without memory)."""
    from memory import Memory, MemoryUnavailable
    from memory.resilient import ResilientMemory

    def warn(name: str, message: str) -> None:
        ctx.tracer.event("warning", "memory", message=message)
        ctx.say(message)

    try:
        ctx.memory = ResilientMemory(Memory.open(runs_dir=ctx.config.runs_dir, url=ctx.config.memory_url), on_error=warn)
    except MemoryUnavailable as err:
        if strict:
            raise UsageError(str(err)) from None
        ctx.memory = None


def open_model(ctx: RunContext, spent_usd: float = 0.0, preflight_tokens: tuple[int, int] = (0, 0)) -> dict | None:
    """The model session of the LLM brains (none when every role is builtin). The preflight
    check's tokens are charged to it (traced, on a ledger row of their own); returns their
    usage for the run's totals, or None."""
    if not ctx.config.model:
        return None
    from agents.llm.session import open_session

    ctx.llm = open_session(ctx.config.model, ctx.run_dir, ctx.config.record, ctx.config.max_cost_usd, spent_usd=spent_usd,
                           header={"preflight": list(preflight_tokens)})  # fmt: skip
    if not any(preflight_tokens):
        return None
    from runtime.steps import record_llm_usage

    tokens, cost = ctx.llm.charge(*preflight_tokens)
    ctx.llm.take_unbilled()  # billed here, on a row of its own
    record_llm_usage(ctx, "preflight", tokens, cost)
    ctx.tracer.event("llm_call", "preflight", model=ctx.llm.model, tokens=tokens, input_tokens=preflight_tokens[0],
                     output_tokens=preflight_tokens[1], cost_usd=round(cost, 6), tool_calls=[])  # fmt: skip
    return {"tokens": tokens, "cost_usd": cost}


def _check_family_support(family: str) -> None:
    """The learning loop needs the family's probe and controllers (a family may have only
    its envs: then tools.evaluate works, graph.run does not yet)."""
    from agents.controllers import FAMILIES as CONTROLLER_FAMILIES
    from probe import PROBES

    missing = [what for what, known in (("probe", PROBES), ("controllers", CONTROLLER_FAMILIES)) if family not in known]
    if missing:
        raise UsageError(f"the learning loop does not support the {family} family yet (it has no {' and no '.join(missing)}; "
                         "see docs/adding-an-environment-family.md); python -m tools.evaluate runs its policies")


def write_summary(run_dir: Path, summary: dict) -> None:
    """summary.json: the finished run's numbers (what --quiet prints), written last and
    atomically, so its presence means the run finished (graph.batch relies on it)."""
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(run_dir / "summary.json")


def _brains_line(cfg: RunConfig) -> str:
    from agents.brains import LLM_ROLES

    llm = [r for r in LLM_ROLES if cfg.brains.get(r) == "llm"]
    if not cfg.model or not llm:
        return "brains: builtin (no model configured)"
    model = cfg.model.removeprefix("replay:")
    which = "every role" if len(llm) == len(LLM_ROLES) else ", ".join(llm) + "; builtin for the rest"
    replay = " (replayed from a cassette, no network)" if cfg.model.startswith("replay:") else ""
    return f"brains: llm {model} for {which}{replay}"


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # the wall time a run reports is the command's, start-up and finish included
    args = build_parser().parse_args(argv)
    if args.list:
        from rich.console import Console

        from tools.evaluate import print_game_list

        print_game_list(Console(soft_wrap=True))
        return 0
    from agents.llm.session import ModelConfigError, ReplayError

    return run_command(lambda: _main(args, started), usage_errors=(UsageError, UnknownEnvError, UnknownProtocolError, RunFolderError, ModelConfigError, ReplayError),
                       interrupted="interrupted; continue with --resume")  # fmt: skip


def _main(args, started: float) -> int:
    from graph.build import build_graph, open_checkpointer
    from graph.display import make_display
    from graph.finish import finish_run

    ctx, state, run_id, preflight_tokens = prepare(args)
    open_memory(ctx)
    if state is not None:  # what this run could learn from: 0 makes it a first run on its game
        state["memory_at_start"] = sum((ctx.memory.count(ctx.game.name) or {}).values()) if ctx.memory else 0
    display = None if args.quiet else make_display(ctx)
    ctx.display = display
    cfg = ctx.config
    print(f"{_brains_line(cfg)} · run {run_id} · {ctx.run_dir}", flush=True)
    if ctx.budget_note:
        print(f"budget {cfg.budget:,} env steps: {ctx.budget_note}", flush=True)
    checkpointer = open_checkpointer(ctx.run_dir)
    graph = build_graph(ctx, checkpointer)
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 100_000}
    spent = 0.0
    if state is None:  # resuming: restore what the checkpoint knows that the meter does not
        snapshot = graph.get_state(config)
        saved = snapshot.values
        if not saved:
            raise UsageError(f"run {run_id} has no checkpoint to resume from")
        ctx.meter.reserved = saved.get("reserved", 0)
        spent = float((saved.get("usage") or {}).get("cost_usd", 0.0))
        if saved.get("paused_at") and not snapshot.next:
            # Stopped by the cost ceiling: go on from the role it stopped in (if the ceiling allows).
            if not ctx.ceiling_raised:
                raise UsageError(f"run {run_id} stopped at its cost ceiling (${spent:.4f} spent); resume with a higher --max-cost-usd")
            graph.update_state(config, {"stop_reason": None, "route": saved["paused_at"], "paused_at": None}, as_node="decide")
    checked = open_model(ctx, spent_usd=spent, preflight_tokens=preflight_tokens)
    if checked:  # the preflight's tokens belong in the run's totals like any node's
        usage = {"usage": checked, "usage_by_node": {"preflight": checked}}
        if state is not None:
            state = {**state, **usage}
        else:
            graph.update_state(config, usage)
    if display:
        display.start()
    try:
        final = graph.invoke(state, config) if state is not None else graph.invoke(None, config)
        final = graph.get_state(config).values or final
        summary = finish_run(ctx, final, started=started)  # holdout and report: labelled phases on the display
    finally:
        if display:
            display.stop()
    summary["wall_seconds"] = round(time.time() - started, 1)
    write_summary(ctx.run_dir, summary)
    if args.quiet:
        print(json.dumps(summary))
    else:
        display.print_summary(ctx, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
