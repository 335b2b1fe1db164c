"""prober: learn the action semantics, the player and moving objects, and the RAM bytes that
track them, by controlled rollouts (tools/probe.py). Every probe step is charged to the
meter and gets a ledger row. A game probed by an earlier run is read from memory instead
(no steps)."""

from __future__ import annotations

import json

from agents.registry import register
from runtime.context import RunContext
from graph.state import HLState
from record.meter import StepMeter
from probe.atari import ProbeReport, probe_game


def _set_aside_interrupted_probe(ctx: RunContext, out) -> None:
    """A probe killed before it wrote its report: keep its files, and charge the most it could
    have used (its allowance), since the steps it took were never reported."""
    from record.workspace import unique_path

    kept = unique_path(out.with_name("probe-interrupted"))
    out.rename(kept)
    steps = min(ctx.config.probe_budget, ctx.meter.remaining if ctx.meter.remaining is not None else ctx.config.probe_budget)
    ctx.meter.charge(steps, steps, "probe")
    ctx.ledger.append(
        run_id=ctx.run_dir.name, game=ctx.game.name, role="prober", kind="invalid", status="invalid",
        protocol=ctx.config.protocol, obs_mode=ctx.config.obs_mode, env_steps=steps, frames=steps,
        failure_kind="interrupted",
        failure=f"the probe was killed before its report; charged its whole allowance ({steps} steps) as an upper bound",
        artifacts={"probe": str(kept.relative_to(ctx.run_dir))},
    )  # fmt: skip


@register("prober", tools=["run_probe", "probe_report", "query_memory", "add_memory"])
def prober(state: HLState, ctx: RunContext) -> dict:
    """Probe the game (or recall an earlier probe from memory) and write probe/."""
    out = ctx.run_dir / "probe"
    report_path = out / "probe.json"
    if report_path.exists():  # resumed after the probe finished: reuse it
        report = ProbeReport.model_validate_json(report_path.read_text())
        return {"probe": {"path": str(report_path.relative_to(ctx.run_dir)), "source": "resume"}}

    if out.exists():
        _set_aside_interrupted_probe(ctx, out)
    remembered = ctx.memory.facts(ctx.game.name, ctx.config.obs_mode).get("probe_report") if ctx.memory else None
    if remembered is not None:
        out.mkdir(exist_ok=True)
        report = ProbeReport.model_validate(remembered.value)
        report_path.write_text(report.model_dump_json(indent=2))
        (out / "probe.md").write_text(f"# Probe of {ctx.game.name}\n\nRecalled from memory (run {remembered.run_id}); no env steps taken.\n")
        ctx.say(f"probe recalled from memory (run {remembered.run_id})")
        return {"probe": {"path": str(report_path.relative_to(ctx.run_dir)), "source": f"memory:{remembered.run_id}"},
                "trace_summary": f"recalled from memory (run {remembered.run_id})"}  # fmt: skip

    # The probe gets its own slice of the budget, charged to the run's meter afterwards.
    allowance = ctx.meter.allowance(ctx.config.probe_budget)
    probe_meter = StepMeter(budget=allowance)
    report = probe_game(ctx.game, out, probe_meter, obs_mode=ctx.config.obs_mode, seed=ctx.config.seed)
    ctx.meter.charge(probe_meter.used_steps, probe_meter.used_frames, "probe")
    ctx.ledger.append(
        run_id=ctx.run_dir.name, game=ctx.game.name, role="prober", kind="probe", status="ok",
        protocol=report.protocol, obs_mode=ctx.config.obs_mode, env_steps=probe_meter.used_steps,
        frames=probe_meter.used_frames, wall_seconds=round(report.wall_seconds, 3),
        change_summary="probe: action semantics, objects, RAM bytes",
        artifacts={"probe": str(report_path.relative_to(ctx.run_dir))},
    )  # fmt: skip
    if ctx.memory is not None:
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "probe_report", json.loads(report.model_dump_json()))
        ctx.memory.add_fact(ctx.game.name, ctx.config.obs_mode, state["run_id"], "movement", report.movement.model_dump())
    moves = ", ".join(f"{k}={v}" for k, v in report.movement.model_dump().items() if v is not None)
    return {"probe": {"path": str(report_path.relative_to(ctx.run_dir)), "source": "probe"},
            "trace_summary": f"{report.env_steps} steps; movement {moves}; {len(report.objects)} objects"}  # fmt: skip
