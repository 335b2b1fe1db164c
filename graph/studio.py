"""The learning loop's graph for LangGraph Studio / `langgraph dev` (see langgraph.json).

    langgraph dev                                  # in-memory server on localhost:2024, Studio UI

`graph` is build_graph() over a run context made from environment variables, compiled
without a checkpointer (the server brings its own). Each server start opens one run folder
under HL_STUDIO_RUNS_DIR (default runs/studio):

    HL_STUDIO_GAME (pong) · HL_STUDIO_OBS (ram) · HL_STUDIO_PROTOCOL (hl) · HL_STUDIO_BUDGET (1e6)

Builtin brains unless HL_STUDIO_MODEL names a chat model (as --model does). Memory is the
local store in the runs folder. Start a run in Studio with the input from `default_input()`,
e.g. {"run_id": "<the folder's name>", "target_score": 21.0, "iteration": 0, "plateau": 0,
"history": [], "usage": {}}.

LangSmith tracing is whatever the standard LANGSMITH_TRACING / LANGSMITH_API_KEY variables
say: off unless the user sets them; nothing here sets them.
"""

from __future__ import annotations

import os
from pathlib import Path

from graph.build import build_graph


def studio_context():
    """A run context made the way `python -m graph.run` makes one (graph.run.new_run), from
    the HL_STUDIO_* variables."""
    from agents.brains import resolve_brains
    from envs.registry import resolve_env
    from graph.run import new_run, open_memory, open_model
    from record.workspace import new_run_id
    from runtime.config import RunConfig

    game = resolve_env(os.environ.get("HL_STUDIO_GAME", "pong"))
    model, brains = resolve_brains(os.environ.get("HL_STUDIO_MODEL", "builtin"), None)
    cfg = RunConfig(game=game.name, obs_mode=os.environ.get("HL_STUDIO_OBS"), protocol=os.environ.get("HL_STUDIO_PROTOCOL"),
                    budget=int(float(os.environ.get("HL_STUDIO_BUDGET", "1e6"))),
                    runs_dir=Path(os.environ.get("HL_STUDIO_RUNS_DIR", "runs/studio")), model=model, brains=brains)  # fmt: skip
    ctx, state = new_run(cfg, new_run_id("studio-"))
    open_memory(ctx, strict=False)  # the roles run without memory when the store is unavailable
    open_model(ctx)
    return ctx, state


CONTEXT, INITIAL_STATE = studio_context()
graph = build_graph(CONTEXT)


def default_input() -> dict:
    """The input that starts a run in Studio (the same initial state graph.run starts from)."""
    return dict(INITIAL_STATE)
