"""The learning loop's graph for LangGraph Studio / `langgraph dev` (see langgraph.json).

    langgraph dev                                  # in-memory server on localhost:2024, Studio UI

`graph` is build_graph() over a run context made from environment variables, compiled
without a checkpointer (the server brings its own). Each server start opens one run folder
under HL_STUDIO_RUNS_DIR (default runs/studio):

    HL_STUDIO_GAME (pong) · HL_STUDIO_OBS (ram) · HL_STUDIO_PROTOCOL (hl) · HL_STUDIO_BUDGET (1e6)

Builtin brains unless HL_STUDIO_MODEL names a chat model (as --model does). Memory is the
local store in the runs folder. Start a run in Studio with the input from `default_input()`,
e.g. {"run_id": "<the folder's name>", "game": "Pong", "obs_mode": "ram", "protocol": "hl",
"budget": 1000000, "iteration": 0, "plateau": 0, "history": []}.

LangSmith tracing is whatever the standard LANGSMITH_TRACING / LANGSMITH_API_KEY variables
say: off unless the user sets them; nothing here sets them.
"""

from __future__ import annotations

import os
from pathlib import Path

from graph.build import build_graph


def studio_context():
    from agents.brains import resolve_brains
    from envs.atari.games import resolve_game
    from runtime.config import RunConfig
    from runtime.context import RunContext
    from graph.run import _write_config
    from record.meter import StepMeter
    from record.workspace import create_run_dir, new_run_id

    game = resolve_game(os.environ.get("HL_STUDIO_GAME", "pong"))
    model, brains = resolve_brains(os.environ.get("HL_STUDIO_MODEL", "builtin"), None)
    cfg = RunConfig(game=game.name, obs_mode=os.environ.get("HL_STUDIO_OBS", "ram"),
                    protocol=os.environ.get("HL_STUDIO_PROTOCOL", "hl"),
                    budget=int(float(os.environ.get("HL_STUDIO_BUDGET", "1e6"))),
                    runs_dir=Path(os.environ.get("HL_STUDIO_RUNS_DIR", "runs/studio")), model=model, brains=brains)  # fmt: skip
    run_dir = create_run_dir(cfg.runs_dir, game.slug, cfg.obs_mode, new_run_id("studio-"))
    _write_config(run_dir, cfg)
    ctx = RunContext(cfg, game, run_dir, StepMeter(cfg.budget))
    ctx.extras["brains"] = cfg.brains
    try:
        from memory import Memory
        from memory.resilient import ResilientMemory

        ctx.memory = ResilientMemory(Memory.open(runs_dir=cfg.runs_dir),
                                     on_error=lambda name, message: ctx.tracer.event("warning", "memory", message=message))  # fmt: skip
    except Exception:
        ctx.memory = None  # the roles run without memory
    if model:
        from agents.llm.session import open_session

        ctx.extras["llm"] = open_session(model, run_dir, False, None)
    return ctx


CONTEXT = studio_context()
graph = build_graph(CONTEXT)


def default_input() -> dict:
    cfg = CONTEXT.config
    return dict(run_id=CONTEXT.run_dir.name, game=cfg.game, obs_mode=cfg.obs_mode, protocol=cfg.protocol,
                budget=cfg.budget, target_score=None, seed=cfg.seed, iteration=0, plateau=0, history=[], usage={})  # fmt: skip
