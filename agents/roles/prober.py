"""prober: learn the action semantics, the player and moving objects, and the RAM bytes that
track them, by controlled rollouts (the game's family's probe: probe/atari). The probe's steps go through
runtime.steps (charged to the meter, one ledger row). A game probed by an earlier run is
read from memory instead (no steps).

LLM brain: the model calls run_probe / probe_report and ends with a ProberReport.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from agents.registry import BrainFailed, register
from probe import probe_for
from runtime import steps
from runtime.context import RunContext
from runtime.state import HLState, NodeUpdate


def _set_aside_interrupted_probe(ctx: RunContext, out) -> None:
    """A probe killed before it wrote its report: keep its files, and charge the most it could
    have used (its allowance), since the steps it took were never reported."""
    from record.workspace import unique_path

    kept = unique_path(out.with_name("probe-interrupted"))
    out.rename(kept)
    allowance = ctx.meter.remaining if ctx.meter.remaining is not None else ctx.config.probe_budget
    charged = min(ctx.config.probe_budget, allowance)
    steps.record_interrupted(
        ctx, "prober", charged, frames=charged, artifacts={"probe": str(kept.relative_to(ctx.run_dir))},
        failure=f"the probe was killed before its report; charged its whole allowance ({charged} steps) as an upper bound",
    )  # fmt: skip


def _recall(ctx: RunContext, out, remembered) -> NodeUpdate:
    """Write the remembered probe report into this run's probe/ (no env steps)."""
    out.mkdir(exist_ok=True)
    report = probe_for(ctx.game.family).ProbeReport.model_validate(remembered.value)
    (out / "probe.json").write_text(report.model_dump_json(indent=2))
    (out / "probe.md").write_text(f"# Probe of {ctx.game.name}\n\nRecalled from memory (run {remembered.run_id}); no env steps taken.\n")
    ctx.say(f"probe recalled from memory (run {remembered.run_id})")
    return {"probe": {"path": "probe/probe.json", "source": f"memory:{remembered.run_id}"},
            "trace_summary": f"recalled from memory (run {remembered.run_id})"}  # fmt: skip


# -- LLM brain ---------------------------------------------------------------------------------


class ProberReport(BaseModel):
    """What the probe established, in a few sentences."""

    summary: str = Field(description="player, axes, objects, RAM bytes found; what is uncertain")


def finish_report(report: ProberReport, state: dict, ctx: RunContext) -> NodeUpdate:
    if not (ctx.run_dir / "probe" / "probe.json").exists():
        raise BrainFailed("the model did not run the probe")
    source = (state.get("probe") or {}).get("source", "probe")
    return {"probe": {"path": "probe/probe.json", "source": f"{source} (llm)"}, "trace_summary": report.summary[:200]}


# -- builtin brain -------------------------------------------------------------------------------


@register("prober", tools=["run_probe", "probe_report", "query_memory", "add_memory"], report=ProberReport,
          finish=finish_report)  # fmt: skip
def prober(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Probe the game (or recall an earlier probe from memory) and write probe/."""
    out = ctx.run_dir / "probe"
    report_path = out / "probe.json"
    if report_path.exists():  # resumed after the probe finished: reuse it
        return {"probe": {"path": str(report_path.relative_to(ctx.run_dir)), "source": "resume"}}

    if out.exists():
        _set_aside_interrupted_probe(ctx, out)
    remembered = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode).get("probe_report") if ctx.memory else None
    if remembered is not None:
        return _recall(ctx, out, remembered)

    # The probe gets its own slice of the budget; runtime.steps charges it and writes its row.
    with steps.metered(ctx, "prober", "probe", ctx.config.probe_budget,
                       "probe: action semantics, objects, RAM bytes") as work:  # fmt: skip
        report = probe_for(ctx.game.family).probe_game(ctx.game, out, work.meter, obs_mode=ctx.config.obs_mode,
                                                       seed=ctx.config.seed)  # fmt: skip
        work.protocol, work.wall_seconds = report.protocol, report.wall_seconds
        work.artifacts = {"probe": str(report_path.relative_to(ctx.run_dir))}
    if ctx.memory is not None:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "probe_report", json.loads(report.model_dump_json()))
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "movement", report.movement.model_dump())
    moves = ", ".join(f"{k}={v}" for k, v in report.movement.model_dump().items() if v is not None)
    return {"probe": {"path": str(report_path.relative_to(ctx.run_dir)), "source": "probe"},
            "trace_summary": f"{report.env_steps} steps; movement {moves}; {len(report.objects)} objects"}  # fmt: skip
