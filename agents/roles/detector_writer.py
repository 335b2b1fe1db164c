"""detector-writer: turn the probe into hs/detectors.py and tests that pin it to frames.

The facts (per family: agents/controllers/atari/facts.py) say what the probe found and which
controller structure suits it; the chosen controller writes its own detectors (ram mode:
RAM readers from the probe's regressions; vision mode: colour segmentation) and says what
pins them. A short random rollout (its steps go through runtime.steps) records frames
and the detectors' readings into hs/tests/fixtures.npz; hs/tests checks that the detectors
reproduce them, in the sandbox.

LLM brain: the builtin detectors are written first as a draft (no env steps) that the
model may keep or rewrite; it ends with a DetectorReport.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
from pydantic import BaseModel, Field

from agents.controllers import facts_module, get_controller
from agents.registry import register
from evaluation.sandbox import run_hs_tests
from probe import probe_for
from runtime import steps
from runtime.context import RunContext
from runtime.state import HLState, NodeUpdate

FIXTURE_STEPS = 400  # env steps of the recording rollout (every 10th frame is kept)


def probe_facts(state: HLState, ctx: RunContext) -> dict:
    """The facts of this run's probe report, typed per family (Atari: AtariFacts)."""
    family = ctx.game.family
    report = probe_for(family).ProbeReport.model_validate_json((ctx.run_dir / state["probe"]["path"]).read_text())
    return facts_module(family).facts_from_probe(report, ctx.config.obs_mode, ctx.config.protocol)


def start_hs(ctx: RunContext) -> None:
    ctx.hs.init(f"# Heuristic system for {ctx.game.name} ({ctx.config.obs_mode} mode)\n\n"
                "policy.py (the controller), detectors.py (what it sees), tests/ (pins).\n")  # fmt: skip


def load_detectors(ctx: RunContext):
    """hs/detectors.py as a fresh module (trusted: written by the controller's template)."""
    spec = importlib.util.spec_from_file_location("hs_detectors", ctx.hs.path / "detectors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("hs_detectors", None)
    spec.loader.exec_module(module)
    return module


def record_fixtures(ctx: RunContext, facts: dict, steps_wanted: int = FIXTURE_STEPS) -> dict:
    """Play a short rollout of random actions (through runtime.steps: charged, one row), keep
    every 10th frame and what the new detectors read from it (the controller's pins)."""
    controller = get_controller(facts["controller"])
    observations = steps.sample_observations(ctx, controller.fixture_actions(facts), steps_wanted, role="detector_writer",
                                             change_summary="record frames that pin the detectors")  # fmt: skip
    arrays, files = controller.pin_detectors(load_detectors(ctx), observations, facts)
    arrays = dict(rgb=np.stack([np.ascontiguousarray(o.rgb) for o in observations]), **arrays)
    if ctx.config.obs_mode == "ram":
        arrays["ram"] = np.stack([o.ram for o in observations])
    (ctx.hs.path / "tests").mkdir(exist_ok=True)
    ctx.hs.write({f"tests/{name}": text for name, text in files.items()})
    np.savez_compressed(ctx.hs.path / "tests" / "fixtures.npz", **arrays)
    return dict(frames=len(observations))


# -- LLM brain ---------------------------------------------------------------------------------


class DetectorReport(BaseModel):
    """The detectors written."""

    readers: list[str] = Field(description="the read_* functions in detectors.py")
    summary: str = Field(description="where each reading comes from (RAM address or colour), test result")


def prepare_draft(state: HLState, ctx: RunContext) -> dict:
    """Set up hs/ with the builtin detectors as a draft the model may keep or rewrite (no env
    steps), so any mix of brains downstream finds the interface it expects."""
    facts = probe_facts(state, ctx)
    start_hs(ctx)
    if not (ctx.hs.path / "detectors.py").exists():
        ctx.hs.write({"detectors.py": get_controller(facts["controller"]).write_detectors(facts, ctx.config.obs_mode)})
    return {"detectors": facts}


def finish_report(report: DetectorReport, state: dict, ctx: RunContext) -> NodeUpdate:
    tests = run_hs_tests(ctx.hs.path)
    verdict = {"no_tests": "no tests", "passed": "tests pass", "timeout": "tests TIMED OUT"}.get(tests.status, "tests FAIL")
    ctx.hs.commit(f"Detectors (llm): {', '.join(report.readers)}; {verdict}\n\n{report.summary}")
    if ctx.memory is not None:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "detector_facts", state["detectors"])
    return {"detectors": state["detectors"], "trace_summary": f"{', '.join(report.readers)}; {verdict}"}


# -- builtin brain -------------------------------------------------------------------------------


@register("detector_writer", tools=["probe_report", "list_files", "read_file", "write_file", "patch_file", "run_hs_tests", "query_memory"],
          report=DetectorReport, finish=finish_report, prepare=prepare_draft, rollback_on_fallback=False)  # fmt: skip
def detector_writer(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Write hs/detectors.py from the probe, with tests pinned to recorded frames."""
    facts = probe_facts(state, ctx)
    controller = get_controller(facts["controller"])
    start_hs(ctx)
    ctx.hs.write({"detectors.py": controller.write_detectors(facts, ctx.config.obs_mode),
                  "tests/test_detectors.py": controller.DETECTOR_TEST})  # fmt: skip
    recorded = record_fixtures(ctx, facts)
    tests = run_hs_tests(ctx.hs.path)
    passed = tests.passed
    ctx.hs.commit(f"Detectors from the probe ({ctx.config.obs_mode} mode); tests {'pass' if passed else 'FAIL'}\n\n"
                  f"{tests.summary()}")  # fmt: skip
    if ctx.memory is not None:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "detector_facts", facts)
    summary = f"{facts['controller']} controller; axis {'x' if facts['move_axis'] == 0 else 'y'}, " \
              f"ball {facts['ball']['name'] if facts['ball'] else 'none'}; {recorded['frames']} pinned frames; " \
              f"tests {'pass' if passed else 'fail'}"
    return {"detectors": facts, "trace_summary": summary}
