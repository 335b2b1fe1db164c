"""How roles are registered. A role is a name, a prompt file, the tools it may use and a
builtin brain: a function `(state, ctx) -> state update`. The graph (graph/build.py) looks
roles up here by name; where a role sits in the graph is said in graph/build.py's LAYOUT.

    @register("my_role", prompt="my_role.md", tools=["evaluate_policy"])
    def my_role(state: HLState, ctx: RunContext) -> dict:
        ...

See docs/adding-a-role.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PROMPTS_DIR = Path(__file__).parent / "prompts"

# Modules imported by `load_roles()`; adding a role module means adding its name here.
ROLE_MODULES = [
    "agents.roles.prober",
    "agents.roles.detector_writer",
    "agents.roles.policy_writer",
    "agents.roles.replay_critic",
    "agents.roles.simplifier",
    "agents.roles.notes_keeper",
]


@dataclass
class Role:
    name: str
    builtin: Callable  # (state, ctx) -> dict: the deterministic brain
    prompt: str  # file name in agents/prompts/
    tools: list[str] = field(default_factory=list)
    description: str = ""

    def prompt_text(self) -> str:
        return (PROMPTS_DIR / self.prompt).read_text()


ROLES: dict[str, Role] = {}


def register(name: str, prompt: str | None = None, tools: list[str] | None = None):
    """Decorator registering a builtin brain under a role name."""

    def wrap(fn: Callable) -> Callable:
        if name in ROLES and ROLES[name].builtin is not fn:
            raise ValueError(f"role {name!r} is already registered")
        ROLES[name] = Role(
            name=name,
            builtin=fn,
            prompt=prompt or f"{name}.md",
            tools=list(tools or []),
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
        )
        return fn

    return wrap


def load_roles() -> dict[str, Role]:
    for module in ROLE_MODULES:
        importlib.import_module(module)
    return ROLES


def get_role(name: str) -> Role:
    load_roles()
    try:
        return ROLES[name]
    except KeyError:
        raise KeyError(f"no role named {name!r}; registered: {', '.join(sorted(ROLES))}") from None
