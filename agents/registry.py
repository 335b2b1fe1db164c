"""How roles are registered. A role is found whole in its own module (agents/roles/) plus its
prompt file: a name, a prompt (agents/prompts/<name>.md), the tools its LLM brain may call,
its builtin brain (a function `(state, ctx) -> state update`) and, for an LLM brain, the
report the model ends with and how that report becomes the same state update. The graph
(graph/build.py) looks roles up here by name; where a role sits in the graph is said in
graph/build.py's LAYOUT.

    @register("my_role", tools=["evaluate_policy"], report=MyReport, finish=finish_report)
    def my_role(state: HLState, ctx: RunContext) -> dict:
        ...

See docs/adding-a-role.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).parent / "prompts"

# Modules imported by `load_roles()`, in graph order; adding a role module means adding its
# name here. This is the one list of roles.
ROLE_MODULES = [
    "agents.roles.prober",
    "agents.roles.detector_writer",
    "agents.roles.policy_writer",
    "agents.roles.replay_critic",
    "agents.roles.simplifier",
    "agents.roles.notes_keeper",
]


class BrainFailed(RuntimeError):
    """The LLM brain could not finish (repeated faults, no usable report): use the builtin."""


@dataclass
class Role:
    name: str
    builtin: Callable  # (state, ctx) -> dict: the deterministic brain
    prompt: str  # file name in agents/prompts/
    tools: list[str] = field(default_factory=list)  # what its LLM brain may call (agents/llm/tools.py)
    description: str = ""
    # The LLM brain: the model ends with a `report` (a pydantic schema, asked for with
    # function calling) and `finish(report, state, ctx)` turns it into exactly the state
    # update the builtin returns (raising BrainFailed if the model's work is unusable).
    # A role with no report runs its builtin brain only.
    report: type[BaseModel] | None = None
    finish: Callable | None = None
    # Optional: (state, ctx) -> state additions, run before the model (e.g. a draft to start from).
    prepare: Callable | None = None
    # Whether an LLM brain's half-made change in hs/ is rolled back before the builtin takes over.
    rollback_on_fallback: bool = True

    def prompt_text(self) -> str:
        return (PROMPTS_DIR / self.prompt).read_text()


ROLES: dict[str, Role] = {}


def register(name: str, prompt: str | None = None, tools: list[str] | None = None, report: type[BaseModel] | None = None,
             finish: Callable | None = None, prepare: Callable | None = None, rollback_on_fallback: bool = True):  # fmt: skip
    """Decorator registering a role under its name, with its builtin brain (the decorated
    function) and, optionally, its LLM report schema, finish and prepare functions."""
    if (report is None) != (finish is None):
        raise ValueError(f"role {name!r}: an LLM report schema and its finish function come together")

    def wrap(fn: Callable) -> Callable:
        if name in ROLES and ROLES[name].builtin is not fn:
            raise ValueError(f"role {name!r} is already registered")
        ROLES[name] = Role(
            name=name,
            builtin=fn,
            prompt=prompt or f"{name}.md",
            tools=list(tools or []),
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
            report=report,
            finish=finish,
            prepare=prepare,
            rollback_on_fallback=rollback_on_fallback,
        )
        return fn

    return wrap


def load_roles() -> dict[str, Role]:
    for module in ROLE_MODULES:
        importlib.import_module(module)
    return ROLES


def llm_roles() -> tuple[str, ...]:
    """The roles that have an LLM brain, in graph order."""
    load_roles()
    return tuple(name for name, role in ROLES.items() if role.report is not None)


def get_role(name: str) -> Role:
    load_roles()
    try:
        return ROLES[name]
    except KeyError:
        raise KeyError(f"no role named {name!r}; registered: {', '.join(sorted(ROLES))}") from None
