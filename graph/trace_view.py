"""How `python -m graph.trace` shows a run to a person (graph/trace.py reads the run; this
module only lays it out).

- The timeline in a terminal: a table that fits the terminal (80 columns and up): the
  node's name is never cut, the summary wraps at word boundaries, and the columns that
  matter less (start time, tokens and cost, the running total) are left out when narrow.
- The timeline piped to a file or another program: one full line per node execution.
- A node's details: every value whole (however large: the run's history, the detector
  facts), wrapped at word boundaries, never cut mid-word nor shortened.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

PIPED_WIDTH = 100  # details written to a file or a pipe wrap here


def terminal_width() -> int | None:
    """The terminal's width, or None when stdout is not a terminal (plain lines then)."""
    return shutil.get_terminal_size((PIPED_WIDTH, 24)).columns if sys.stdout.isatty() else None


def _num(value, fmt: str = "{:,}") -> str:
    return "-" if value is None else fmt.format(value)


def _what(row: dict) -> str:
    """A row's summary, where it went next and what it left (trials and their artifacts)."""
    text = row.get("summary") or ""
    if row.get("decision"):
        text += f" → {row['decision']}"
    if row.get("trials"):
        kinds = sorted({k.split()[-1] for k in row.get("artifacts", {})})
        text += f" [trial {', '.join(map(str, row['trials']))}{': ' + ', '.join(kinds) if kinds else ''}]"
    return text.strip()


def timeline_lines(rows: list[dict]) -> list[str]:
    """One full line per node execution (for pipes and files)."""
    lines = []
    for r in rows:
        iteration = f"iter {r['iteration']}" if r.get("iteration") is not None else "iter -"
        cost = f", {r['tokens']:,} tokens ${r['cost_usd']:.4f}" if r.get("tokens") else ""
        lines.append(f"#{r['index']} {iteration} {r['node']} {(r.get('start') or '')[11:19]} "
                     f"{_num(r.get('seconds'), '{:.1f}')} s, {_num(r.get('env_steps'))} env steps "
                     f"(total {_num(r.get('env_steps_total'))}){cost}: {_what(r)}")  # fmt: skip
    return lines


def timeline_table(rows: list[dict], title: str | None, width: int):
    """The timeline as a rich table that fits `width` columns without cutting a word."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    with_llm = any(r.get("tokens") for r in rows)
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), expand=False, title_justify="left")
    # Narrow terminals drop what matters least first: the start time, then the model's tokens
    # and cost, then the running total (each row's own env steps stay).
    columns = [("#", "right"), ("iter", "right"), ("node", "left")]
    if width >= 120:
        columns.append(("start", "left"))
    columns += [("sec", "right"), ("env steps", "right")]
    if width >= 100:
        columns.append(("total", "right"))
    if with_llm and width >= 120:
        columns += [("tokens", "right"), ("cost $", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    table.add_column("what happened", ratio=1, overflow="fold", min_width=24)
    for r in rows:
        cells = {"#": str(r["index"]), "iter": "" if r.get("iteration") is None else str(r["iteration"]), "node": r["node"],
                 "start": (r.get("start") or "")[11:19], "sec": _num(r.get("seconds"), "{:.1f}"),
                 "env steps": _num(r.get("env_steps")), "total": _num(r.get("env_steps_total")),
                 "tokens": f"{r.get('tokens') or 0:,}", "cost $": f"{r['cost_usd']:.4f}" if r.get("cost_usd") else ""}  # fmt: skip
        table.add_row(*[cells[name] for name, _ in columns], Text(_what(r)))  # Text: "[trial 2: ...]" is not markup
    return table


# -- a node's details -------------------------------------------------------------------------------


def wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    """Wrapped at word boundaries (a word longer than the line stays whole)."""
    out = []
    for paragraph in str(text).splitlines() or [""]:
        out += textwrap.wrap(paragraph, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                             break_long_words=False, break_on_hyphens=False) or [indent]  # fmt: skip
    return out


def value_text(value) -> str:
    """A state value as one string, whole: a string as it is, anything else as its JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def details_lines(d: dict, width: int) -> list[str]:
    """One node execution: what it was given, what it called, what it wrote, its trials."""
    lines = [f"── #{d['index']} {d['node']} · iteration {d['iteration']} · {d['status']} " + "─" * 8,
             *wrap(f"start {d['start']} · {d['seconds']} s · {_num(d['env_steps'])} env steps (total "
                   f"{_num(d['env_steps_total'])}) · {d['tokens']} tokens · ${d['cost_usd'] or 0:.4f} · "
                   f"decision {d['decision'] or '-'}", width, ""),
             *wrap(f"summary: {d['summary']}", width, "")]  # fmt: skip
    if d["inputs"]:
        lines.append("inputs (state before the node):")
        for k, v in d["inputs"].items():
            lines += wrap(f"{k}: {value_text(v)}", width)
    for e in d["llm_calls"]:
        if e["event"] == "llm_call":
            lines += wrap(f"llm {e.get('model')} · {e.get('input_tokens')} in / {e.get('output_tokens')} out · "
                          f"${e.get('cost_usd', 0):.4f} · calls {', '.join(e.get('tool_calls') or []) or '(final answer)'}", width)  # fmt: skip
        else:
            lines += wrap(f"llm error {e.get('error')}", width)
    for e in d["tool_calls"]:
        status = f"error: {e['error']}" if e.get("error") else "ok"
        lines += wrap(f"tool {e.get('tool')}({value_text(e.get('args') or {})}) · {e.get('seconds', '-')} s · {status}", width)
        if e.get("result"):
            lines += wrap(f"→ {value_text(e['result'])}", width, "      ")
    for e in d["other_events"]:
        lines += wrap(f"{e['event']} {value_text({k: v for k, v in e.items() if k not in ('ts', 't', 'event')})}", width)
    if d["outputs"]:
        lines.append("outputs (what the node wrote to the state):")
        for k, v in d["outputs"].items():
            lines += wrap(f"{k}: {value_text(v)}", width)
    for t in d["trials"]:
        artifacts = ", ".join(f"{k}={v}" for k, v in t["artifacts"].items())
        lines += wrap(f"trial {t['trial']} {t['kind']} {t['status']} score {t['score_mean']} · {t['env_steps']:,} steps · "
                      f"{t['change_summary']} · {artifacts}", width)  # fmt: skip
    if d["diagnosis"]:
        lines.append("diagnosis:")
        lines += wrap(d["diagnosis"], width)
    return lines
