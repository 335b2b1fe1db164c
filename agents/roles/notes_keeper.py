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
    """Append the accepted change, its evidence and its score to hs/NOTES.md, with any accepted
    change before it that the notes do not have yet (the notes-keeper runs when the simplifier
    is due, not after every new best)."""
    best = state["best"]
    last = state["history"][-1]
    diagnosis = state.get("diagnosis") or {}
    notes = ctx.hs.read("NOTES.md")
    entries = [_entry(h) for h in state["history"][:-1] if h["outcome"] == "accepted" and _header(h) not in notes]
    entry = (
        f"{_header(last)}\n\n"
        f"- score {best['score']:g} (trial {best['trial']}, {best['env_steps']:,} env steps into the run)\n"
        f"- last failure seen: {diagnosis.get('what', 'n/a')}\n"
    )
    if _header(last) in notes:  # resumed after writing it: do not write it twice
        return {}
    ctx.hs.write({"NOTES.md": notes + "".join(entries) + entry})
    commit = ctx.hs.commit(f"Notes: iteration {last['iteration']} accepted ({last['direction']})")
    return {"best": {**best, "commit": commit}, "trace_summary": f"noted iteration {last['iteration']}"}


def _header(h: dict) -> str:
    return f"\n## Iteration {h['iteration']}: {h['direction']}"


def _entry(h: dict) -> str:
    score = "none" if h.get("score") is None else f"{h['score']:g}"
    return f"{_header(h)}\n\n- score {score} (trial {h.get('trial')})\n"


ENDING = "\n## How the run ended"


def close_notes(ctx: RunContext, history: list[dict], ending: list[str]) -> str | None:
    """At the end of a run: the accepted changes the notes lack, then how the run ended
    (`ending`: lines in words, from the finish: why it stopped, what capped the score, what was
    tried and rejected), committed in hs/. Notes an LLM notes-keeper wrote are its own and
    are left as they are; a rewrite (a resumed run finishing again) replaces the ending."""
    if not (ctx.hs.path / ".git").exists():
        return None  # the run stopped before hs/ was started (e.g. at its cost ceiling in the prober)
    notes = ctx.hs.read("NOTES.md") if (ctx.hs.path / "NOTES.md").exists() else ""
    written = "\n## " in notes
    if written and ctx.config.brains.get("notes_keeper") == "llm":
        return None
    notes = notes.split(ENDING, 1)[0]
    accepted = [h for h in history if h.get("outcome") == "accepted"]
    entries = "".join(_entry(h) for h in accepted if _header(h) not in notes)
    lead = [] if accepted else ["- Nothing was accepted: no candidate was evaluated to a score."]
    text = notes + entries + ENDING + "\n\n" + "\n".join(lead + ending) + "\n"
    ctx.hs.write({"NOTES.md": text})
    return ctx.hs.commit("Notes: how the run ended")
