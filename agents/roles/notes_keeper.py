"""notes-keeper: after each accepted change, write down in hs/NOTES.md what changed, why,
and the score it reached, so the heuristic system carries its own history in words.

This is the worked example of docs/adding-a-role.md: one module (its builtin brain, its
LLM report and how that report becomes a state update), one registry line, one prompt
file, one place in graph/build.py's LAYOUT.
"""

from __future__ import annotations

from pydantic import BaseModel

from agents.registry import register
from runtime.context import RunContext
from runtime.state import HLState, NodeUpdate


class NotesReport(BaseModel):
    entry: str  # the entry written into hs/NOTES.md


def finish_report(report: NotesReport, state: dict, ctx: RunContext) -> NodeUpdate:
    """The model edited NOTES.md with its file tools: commit it."""
    best = dict(state["best"])
    best["commit"] = ctx.hs.commit(f"Notes: {report.entry.splitlines()[0][:80] if report.entry else 'updated'}")
    return {"best": best, "trace_summary": "notes updated"}


@register("notes_keeper", tools=["read_file", "write_file"], report=NotesReport, finish=finish_report)
def notes_keeper(state: HLState, ctx: RunContext) -> NodeUpdate:
    """Append the accepted change, its evidence and its score to hs/NOTES.md."""
    best = state["best"]
    last = state["history"][-1]
    diagnosis = state.get("diagnosis") or {}
    entry = (
        f"\n## Iteration {last['iteration']}: {last['direction']}\n\n"
        f"- score {best['score']:g} (trial {best['trial']}, {best['env_steps']:,} env steps into the run)\n"
        f"- last failure seen: {diagnosis.get('what', 'n/a')}\n"
    )
    notes = ctx.hs.read("NOTES.md")
    if entry in notes:  # resumed after writing it: do not write it twice
        return {}
    ctx.hs.write({"NOTES.md": notes + entry})
    commit = ctx.hs.commit(f"Notes: iteration {last['iteration']} accepted ({last['direction']})")
    return {"best": {**best, "commit": commit}, "trace_summary": f"noted iteration {last['iteration']}"}
