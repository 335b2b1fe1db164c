"""Builtin or LLM: how a role is executed.

The builtin brain is the role's registered function; the LLM brain runs the role through a
chat model (agents/llm/loop.py). Which one a role gets is the run's choice (--model,
--brains), made per role and looked up when the role runs.
"""

from __future__ import annotations

import os
from typing import Callable

from agents.registry import get_role, llm_roles
from runtime.context import RunContext

# The roles that can be driven by a model (each has an LLM report in its module).
LLM_ROLES = llm_roles()


def resolve_brains(model_arg: str, brains_arg: str | None, env: dict | None = None) -> tuple[str | None, dict[str, str]]:
    """(model or None, role -> "llm" | "builtin").

    --model auto: an LLM when OPENAI_API_KEY or OPENAI_BASE_URL is set, builtin otherwise.
    --brains policy_writer=llm,replay_critic=llm mixes (roles not named stay builtin, and
    with --brains given, --model auto means the default model for the named roles).
    """
    env = os.environ if env is None else env
    configured = bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))
    if model_arg == "builtin":
        model = None
    elif model_arg == "auto":
        model = (env.get("HL_MODEL") or "gpt-5.4") if (configured or brains_arg) else None
    else:
        model = model_arg
    brains = {role: ("llm" if model else "builtin") for role in LLM_ROLES}
    if brains_arg:
        if model is None:
            raise ValueError("--brains names LLM roles but --model builtin was given")
        brains = {role: "builtin" for role in LLM_ROLES}
        for item in brains_arg.split(","):
            role, _, kind = item.strip().partition("=")
            if role not in LLM_ROLES or kind not in ("llm", "builtin"):
                raise ValueError(f"bad --brains entry {item!r}: expected ROLE=llm|builtin with ROLE one of {', '.join(LLM_ROLES)}")
            brains[role] = kind
    return model, brains


def node_for(name: str, ctx: RunContext) -> Callable:
    """The function the graph runs for role `name`: its builtin or its LLM brain, decided
    when it runs (the model session is opened after the graph is built)."""
    role = get_role(name)

    def run(state: dict, ctx: RunContext) -> dict:
        if ctx.config.brains.get(name) == "llm" and ctx.llm is not None:
            from agents.llm.loop import run_llm_role

            return run_llm_role(role, state, ctx)
        return role.builtin(state, ctx)

    run.__doc__ = role.builtin.__doc__
    return run
