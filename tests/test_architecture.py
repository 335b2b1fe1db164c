"""The layering rules of docs/architecture.md, checked over the source (no imports run):

- envs/ knows nothing of evaluation, agents or graph (nor of any layer above it);
- no module under agents/ imports graph/ (roles know no wiring);
- every env step is taken through runtime.steps (or the evaluation sandbox it calls): no
  module under agents/ or graph/ charges the meter, appends ledger rows or makes envs itself;
- no Python file outside tests is over 600 lines, no function over 120 lines except the
  generated-code templates (the controllers' write_policy and the detector writers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envs", "record", "evaluation", "probe", "tools", "memory", "runtime", "agents", "graph")

# Which top-level packages each layer may import (besides itself and third-party code).
ALLOWED = {
    "envs": set(),
    "record": {"envs"},
    "evaluation": {"envs", "record"},
    "probe": {"envs", "record"},
    "tools": {"envs", "record", "evaluation", "probe"},
    "memory": {"record"},
    "runtime": {"envs", "record", "evaluation", "probe", "tools", "memory"},
    "agents": {"envs", "record", "evaluation", "probe", "tools", "memory", "runtime"},
    "graph": {"envs", "record", "evaluation", "probe", "tools", "memory", "runtime", "agents"},
}

# Functions allowed past 120 lines: they are templates of generated code (a policy or
# detectors module as an f-string), read as the code they write.
TEMPLATES = {
    ("agents/controllers/atari/intercept.py", "write_policy"),
    ("agents/controllers/atari/shooter.py", "write_policy"),
    ("agents/controllers/atari/shooter.py", "write_detectors"),
    ("agents/controllers/atari/route.py", "write_policy"),
}


def source_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    """Top-level project packages a module imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_import_one_way(package):
    bad = {}
    for path in source_files(package):
        wrong = imported_packages(path) - ALLOWED[package] - {package}
        if wrong:
            bad[str(path.relative_to(ROOT))] = sorted(wrong)
    assert not bad, f"{package}/ may import only {sorted(ALLOWED[package])}; found: {bad}"


def test_the_rules_the_issue_names():
    """Spelled out: envs imports no evaluation, agents or graph; agents imports no graph."""
    assert not {"evaluation", "agents", "graph"} & set().union(*map(imported_packages, source_files("envs")))
    assert "graph" not in set().union(*map(imported_packages, source_files("agents")))


def test_the_checker_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from graph.nodes import decide\n    import agents.registry\n")
    assert imported_packages(module) == {"graph", "agents"}


# Calls that take env steps or book them, allowed only in runtime/steps.py and the layers below.
STEP_TAKING = {"charge", "make_env", "make_ale", "run_episodes", "play_random", "evaluate", "reconcile_interrupted"}
BOOKING = {"append"}  # on a ledger


def _calls(path: Path) -> list[tuple[int, str, str]]:
    """(line, callee name, source of the object it is called on) of every call by attribute or name."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                out.append((node.lineno, f.attr, ast.unparse(f.value)))
            elif isinstance(f, ast.Name):
                out.append((node.lineno, f.id, ""))
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _step_takers(paths: list[Path]) -> list[str]:
    bad = []
    for path in paths:
        text = path.read_text()
        for line, name, owner in _calls(path):
            charges = name == "charge" and "meter" in owner
            books = name in BOOKING and "ledger" in owner.lower()
            steps = name in STEP_TAKING - {"charge"} and owner not in ("steps", "runtime.steps")
            if charges or books or (steps and name != "evaluate"):
                bad.append(f"{_rel(path)}:{line}: {owner + '.' if owner else ''}{name}(...)")
            elif name == "evaluate" and "from evaluation.evaluate import" in text:
                bad.append(f"{_rel(path)}:{line}: evaluation.evaluate(...)")
        for module in ("envpool", "ale_py", "gymnasium"):
            if f"import {module}" in text or f"from {module}" in text:
                bad.append(f"{_rel(path)}: imports {module}")
    return bad


def test_roles_and_nodes_take_env_steps_only_through_runtime_steps():
    """No role or node charges the meter, writes ledger rows, makes an env or an emulator, or
    runs episodes itself: runtime.steps owns "take env steps, charge the meter, write the row"."""
    assert _step_takers(source_files("agents", "graph")) == []


def test_the_accounting_check_catches_a_role_that_steps_an_env(tmp_path):
    rogue = tmp_path / "rogue_role.py"
    rogue.write_text(
        "from envs.atari import make_env\n"
        "def rogue(state, ctx):\n"
        "    env = make_env(ctx.game.task_id, ctx.protocol, [0])\n"
        "    ctx.meter.charge(10, 10, 'probe')\n"
        "    ctx.ledger.append(run_id='x')\n"
    )
    found = _step_takers([rogue])
    assert [f.split(": ", 1)[1] for f in found] == ["make_env(...)", "ctx.meter.charge(...)", "ctx.ledger.append(...)"]


def _long_functions(path: Path, limit: int) -> list[str]:
    rel = str(path.relative_to(ROOT))
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit and (rel, node.name) not in TEMPLATES:
                out.append(f"{rel}:{node.lineno} {node.name} ({length} lines)")
    return out


def test_files_and_functions_stay_readable():
    files = source_files(*PACKAGES) + sorted((ROOT / "bench").glob("*.py"))
    too_long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in files if (n := len(p.read_text().splitlines())) > 600]
    assert too_long == []
    assert [f for p in files for f in _long_functions(p, 120)] == []
