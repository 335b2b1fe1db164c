"""`python -m graph.report RUN`: one self-contained HTML page for a run (`report.html` in the
run folder, also written at the end of every run); `--suite RUNS_DIR`: one page for all runs.

    python -m graph.report RUN                     # RUN: run id (under --runs-dir) or run folder
    python -m graph.report --suite runs            # every run under runs/ -> runs/suite.html
    python -m graph.report RUN -o /tmp/r.html

The page opens from disk with no network: the chart library (Bokeh's BokehJS, from the bokeh
package) and the syntax-highlighting CSS (Pygments) are inlined, the replay video and the
contact sheets are data: URIs. What a run page shows:

- the graph with the path this run took (edges taken, with counts), and the stop reason;
- score and running best against env steps (interactive: hover, zoom, pan);
- one row per iteration: direction tried, accepted/rejected, score and delta, the critic's
  diagnosis, and a link to the code diff (hs/ commit) or, for a rejected candidate (rolled
  back, not in hs/), the parameter diff from the checkpoint;
- the final policy code, every hs/ commit with its diff;
- the replay video of the best policy's holdout episode and contact sheets of failures;
- memory entries this run wrote (by run id) and those it could read (same game and obs mode,
  written by earlier runs before this run started), plus any memory tool calls in the trace;
- costs: env steps, frames, wall time, tokens, USD, per node and in total; the timeline.
"""

from __future__ import annotations

import base64
import csv
import difflib
import html
import io
import json
import math
import re
import statistics
import sys
from datetime import datetime
from pathlib import Path

from graph.trace import diagnosis_text, final_state, load_run, policy_versions, resolve_run
from record.workspace import DEFAULT_RUNS_DIR

MAX_VIDEO_BYTES = 40 * 1024 * 1024  # larger replays are linked, not embedded
MAX_SHEETS = 6
SHEET_MAX_WIDTH = 960
REPO_DATA = Path(__file__).resolve().parents[2] / "envs" / "atari" / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 24px 60px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #d7dbe2;padding-bottom:.2em}
section{background:#fff;border:1px solid #e2e5ea;border-radius:6px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:.88em}th,td{border-bottom:1px solid #eceef2;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.accepted{color:#157a30;font-weight:600}.rejected{color:#a8321c;font-weight:600}.muted{color:#6b7280}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:.92em}.kv b{font-weight:600}
.damage{background:#fff4e0;border:1px solid #f0c36d;padding:6px 10px;border-radius:4px;margin:6px 0}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.hl pre{font-size:12.5px;line-height:1.35;overflow-x:auto;padding:8px;background:#fafbfc;border:1px solid #eceef2;border-radius:4px;margin:4px 0}
img.sheet{max-width:100%;image-rendering:pixelated;border:1px solid #ddd;margin:4px 0}
video{image-rendering:pixelated;background:#000;max-width:100%}
svg text{font-family:system-ui,sans-serif}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{flex:1 1 160px;background:#f8f9fb;border:1px solid #e6e8ec;border-radius:6px;padding:8px 10px}
.card .v{font-size:1.35em;font-weight:650}.card .l{font-size:.8em;color:#6b7280}
"""


# -- small helpers --------------------------------------------------------------------------------


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def fmt_num(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def highlight(code: str, lexer_name: str) -> str:
    from pygments import highlight as _highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return _highlight(code, get_lexer_by_name(lexer_name), HtmlFormatter(cssclass="hl"))


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".hl")


def bokeh_js() -> str:
    """BokehJS from the installed bokeh package, inlined (no CDN)."""
    from bokeh.resources import Resources

    return Resources(mode="inline", components=["bokeh"]).render_js()


def page(title: str, body: str, scripts: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}{pygments_css()}</style>{bokeh_js()}</head>"
            f"<body><main>{body}</main>{scripts}</body></html>\n")  # fmt: skip


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _md_fields(text: str | None) -> dict:
    """'- **What failed:** ...' bullets of a diagnosis file -> {what failed: ...}."""
    fields = {}
    for m in re.finditer(r"^- \*\*(.+?):\*\*\s*(.*)$", text or "", flags=re.M):
        fields[m.group(1).strip().lower()] = m.group(2).strip()
    return fields


# -- the graph with the path taken ------------------------------------------------------------------

_POS = {"__start__": (50, 150), "prober": (160, 150), "detector_writer": (300, 150), "policy_writer": (450, 150),
        "evaluate": (590, 150), "replay_critic": (730, 150), "decide": (870, 150), "__end__": (990, 150),
        "notes_keeper": (730, 270), "simplifier": (590, 270)}  # fmt: skip


def graph_edges() -> list[tuple[str, str, str]]:
    from graph.build import LAYOUT

    edges = [("__start__", LAYOUT["start"], "")] + [(a, b, "") for a, b in LAYOUT["edges"]]
    for route, target in LAYOUT["routes"].items():
        edges.append(("decide", "__end__" if target == "__end__" else target, route))
    return edges


def path_counts(rows: list[dict], finished: bool) -> tuple[dict, dict]:
    seq = [r["node"] for r in rows if r["status"] in ("end", "error", "open")]
    nodes: dict[str, int] = {}
    edges: dict[tuple[str, str], int] = {}
    prev = "__start__"
    for n in seq:
        nodes[n] = nodes.get(n, 0) + 1
        edges[(prev, n)] = edges.get((prev, n), 0) + 1
        prev = n
    if finished and seq:
        edges[(prev, "__end__")] = edges.get((prev, "__end__"), 0) + 1
    return nodes, edges


def graph_svg(rows: list[dict], finished: bool) -> str:
    node_counts, edge_counts = path_counts(rows, finished)
    edges = graph_edges()
    names = {a for a, _, _ in edges} | {b for _, b, _ in edges} | set(node_counts)
    pos = dict(_POS)
    extra = sorted(n for n in names if n not in pos)
    for i, n in enumerate(extra):  # roles added later than this layout: a row of their own
        pos[n] = (160 + 140 * i, 350)
    height = 340 if extra else 270
    out = [f'<svg id="run-graph" viewBox="0 40 1060 {height}" width="100%" role="img" aria-label="graph of the run">',
           '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>']  # fmt: skip
    known = {(a, b) for a, b, _ in edges}
    drawn = edges + [(a, b, "") for (a, b) in edge_counts if (a, b) not in known]
    for a, b, label in drawn:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        n = edge_counts.get((a, b), 0)
        colour = "#2563eb" if n else "#b8bec9"
        width = 1.5 + 1.6 * math.log1p(n) if n else 1.2
        dash = "" if n else ' stroke-dasharray="5 4"'
        if y1 == y2 and abs(x2 - x1) > 150:  # a jump back along the main row: arc above it
            cx, cy = (x1 + x2) / 2, y1 - 95 - abs(x2 - x1) * 0.05
        elif y1 == y2:
            cx, cy = (x1 + x2) / 2, y1
        else:
            cx, cy = (x1 + x2) / 2 + (25 if x2 > x1 else -25), (y1 + y2) / 2
        # Start and end on the node boxes' edges, not their centres.
        sx, sy = _toward(x1, y1, cx, cy)
        ex, ey = _toward(x2, y2, cx, cy)
        out.append(f'<path d="M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}" fill="none" stroke="{colour}" '
                   f'stroke-width="{width:.1f}"{dash} marker-end="url(#arr)"><title>{esc(a)} → {esc(b)}: {n}×</title></path>')  # fmt: skip
        tx, ty = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4 - (9 if y1 == y2 else 5)
        text = " ".join(t for t in (label, f"{n}×" if n else "") if t)
        if text:
            out.append(f'<text x="{tx:.0f}" y="{ty:.0f}" font-size="11" text-anchor="middle" fill="{colour}">{esc(text)}</text>')
    for name in sorted(names):
        x, y = pos[name]
        n = node_counts.get(name, 0)
        terminal = name in ("__start__", "__end__")
        label = {"__start__": "START", "__end__": "END"}.get(name, name)
        fill = "#1f2937" if terminal else ("#dbeafe" if n else "#f3f4f6")
        stroke = "#2563eb" if n or (terminal and (name == "__start__" or finished)) else "#9ca3af"
        w = 62 if terminal else 128
        out.append(f'<g class="gnode" data-node="{esc(name)}"><rect x="{x - w / 2}" y="{y - 20}" width="{w}" height="40" rx="8" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
                   f'<text x="{x}" y="{y + (0 if n else 4)}" font-size="12.5" text-anchor="middle" fill="{"#fff" if terminal else "#111827"}">{esc(label)}</text>')  # fmt: skip
        if n:
            out.append(f'<text x="{x}" y="{y + 14}" font-size="10.5" text-anchor="middle" fill="#1e40af">{n}×</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _toward(x: float, y: float, cx: float, cy: float) -> tuple[float, float]:
    """The point where the line from a node's centre toward (cx, cy) leaves its box."""
    dx, dy = cx - x, cy - y
    if dx == 0 and dy == 0:
        return x, y
    sx = 66 / abs(dx) if dx else math.inf
    sy = 22 / abs(dy) if dy else math.inf
    s = min(sx, sy, 1.0)
    return x + dx * s, y + dy * s


# -- the sample-efficiency plot --------------------------------------------------------------------


def sample_efficiency_plot(records: list, title: str) -> tuple[str, str]:
    """(script, div) of an interactive Bokeh plot: each trial's score, the running best."""
    from bokeh.embed import components
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    fig = figure(height=380, sizing_mode="stretch_width", title=title, x_axis_label="cumulative env steps",
                 y_axis_label="episode score (mean over the trial's episodes)", tools="pan,wheel_zoom,box_zoom,reset,save")  # fmt: skip
    ok = [r for r in records if r.status == "ok" and r.score_mean is not None]
    dev = [r for r in ok if r.role != "finish"]

    def source(rows):
        return ColumnDataSource(dict(
            x=[r.cumulative_env_steps for r in rows], y=[r.score_mean for r in rows], trial=[r.trial for r in rows],
            role=[r.role for r in rows], kind=[r.kind for r in rows], split=[r.split or "" for r in rows],
            lo=[r.score_min for r in rows], hi=[r.score_max for r in rows],
            change=[(r.change_summary or "")[:90] for r in rows],
        ))  # fmt: skip

    renderers = []
    if dev:
        best, running = [], None
        for r in dev:
            running = r.score_mean if running is None else max(running, r.score_mean)
            best.append(running)
        xs = [r.cumulative_env_steps for r in dev]
        fig.step(xs + [max(r.cumulative_env_steps for r in records)], best + [best[-1]], mode="after", line_width=2.5,
                 color="#f97316", legend_label="running best (dev)")  # fmt: skip
        src = source(dev)
        fig.segment("x", "lo", "x", "hi", source=src, color="#2563eb", alpha=0.35)
        renderers.append(fig.scatter("x", "y", source=src, size=8, color="#2563eb", legend_label="trial (dev seeds)"))
    holdout = [r for r in ok if r.role == "finish"]
    if holdout:
        renderers.append(fig.scatter("x", "y", source=source(holdout), size=13, marker="diamond", color="#16a34a",
                                     legend_label="best policy on holdout seeds"))  # fmt: skip
    failed = [r for r in records if r.status == "failed"]
    if failed:
        floor = min((r.score_mean for r in ok), default=0.0)
        src = source(failed)
        src.data["y"] = [floor] * len(failed)
        renderers.append(fig.scatter("x", "y", source=src, size=10, marker="x", color="#dc2626", legend_label="failed trial"))
    if renderers:
        fig.add_tools(HoverTool(renderers=renderers, tooltips=[
            ("trial", "@trial (@role, @kind, @split)"), ("env steps", "@x{0,0}"), ("score", "@y (min @lo, max @hi)"),
            ("change", "@change")]))  # fmt: skip
        fig.legend.location = "bottom_right"
        fig.legend.click_policy = "hide"
    fig.xaxis.formatter.use_scientific = False
    return components(fig)


# -- run report --------------------------------------------------------------------------------------


def _best_video(run_dir: Path, records: list) -> tuple[Path | None, str]:
    finish = [r for r in records if r.role == "finish" and r.artifacts.get("video")]
    if finish:
        r = finish[-1]
        return run_dir / r.artifacts["video"], f"trial {r.trial}: the best policy on holdout seed {r.seeds[0] if r.seeds else '?'}, score {r.scores[0] if r.scores else r.score_mean}"
    with_video = [r for r in records if r.artifacts.get("video") and r.score_mean is not None]
    if with_video:
        r = max(with_video, key=lambda r: (r.score_mean, r.trial))
        return run_dir / r.artifacts["video"], f"trial {r.trial} ({r.role}), score {r.score_mean}"
    return None, ""


def _video_html(run_dir: Path, records: list) -> str:
    path, caption = _best_video(run_dir, records)
    if path is None or not path.exists():
        return '<p class="muted">No replay video in this run (the final holdout evaluation records one).</p>'
    size = path.stat().st_size
    rel = path.relative_to(run_dir)
    if size > MAX_VIDEO_BYTES:
        return f'<p>The replay is {size / 1e6:.0f} MB, too large to embed: <a href="{esc(rel)}">{esc(rel)}</a>. {esc(caption)}</p>'
    return (f'<video id="best-replay" controls muted loop playsinline preload="auto" width="480" '
            f'src="{data_uri(path.read_bytes(), "video/mp4")}"></video>'
            f'<p class="muted">{esc(caption)} · <code>{esc(rel)}</code> ({size / 1e3:.0f} kB, H.264)</p>')  # fmt: skip


def _sheet_png(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > SHEET_MAX_WIDTH:
            im = im.resize((SHEET_MAX_WIDTH, round(im.height * SHEET_MAX_WIDTH / im.width)), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return data_uri(buf.getvalue(), "image/png")


def failure_sheets(run_dir: Path, history: list[dict]) -> list[tuple[str, str]]:
    """Contact sheets the critic pointed at when it found a failure (newest first), then the
    holdout sheet: [(relative path, caption)]."""
    found, seen = [], set()
    for path in sorted((run_dir / "diagnoses").glob("iteration-*.md"), reverse=True):
        text = path.read_text()
        f = _md_fields(text)
        m = re.search(r"(sheets/[\w.\-]+\.png)", text)
        if not m or m.group(1) in seen or "no failure" in f.get("what failed", ""):
            continue
        seen.add(m.group(1))
        found.append((m.group(1), f"{path.stem}: {f.get('what failed', '')}"))
    return found[:MAX_SHEETS]


def memory_entries(run_dir: Path, cfg: dict, started: str | None) -> dict:
    """Entries this run wrote (by run id) and those it could read: same game and obs mode,
    written by other runs before this one started."""
    out = dict(written=[], readable=[], error=None)
    try:
        from memory import Memory
        from memory.store import DIRECTIONS, FACTS, FAILURES

        runs_dir = Path(cfg.get("runs_dir") or run_dir.parents[2])
        if not runs_dir.is_absolute() and not (runs_dir / "memory").exists():
            runs_dir = run_dir.parents[2]
        if not cfg.get("memory_url") and not (runs_dir / "memory").exists():
            out["error"] = f"no memory store at {runs_dir / 'memory'}"
            return out
        mem = Memory.open(runs_dir=runs_dir, url=cfg.get("memory_url"))
        from memory.store import _where

        run_id = run_dir.name
        for kind in (FAILURES, DIRECTIONS, FACTS):
            for e in mem._get(kind, _where(cfg.get("game", ""), cfg.get("obs_mode"))):
                text = getattr(e, "reason", None) or getattr(e, "direction", None) or f"{e.key}: {json.dumps(e.value)[:160]}"
                extra = f"{e.outcome} ({e.score_delta:+g})" if kind == DIRECTIONS else ""
                row = dict(kind=kind.removeprefix("hl_"), text=text, extra=extra, run_id=e.run_id, trial=e.trial, timestamp=e.timestamp)
                if e.run_id == run_id:
                    out["written"].append(row)
                elif started is None or e.timestamp <= started:
                    out["readable"].append(row)
    except Exception as err:  # memory is optional for a report
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def _table(headers: list[str], rows: list[list[str]], num: set[int] = frozenset(), table_id: str = "") -> str:
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in num else f"<th>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    attr = f' id="{table_id}"' if table_id else ""
    return f'<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _candidate_params_diff(run: dict, trial: int | None, records: dict) -> str | None:
    """For a rolled-back candidate: its parameters against the accepted ones, as a diff."""
    if trial is None or trial not in records:
        return None
    phash = records[trial].policy_hash
    for row in run["rows"]:
        cand = (row.get("writes") or {}).get("candidate")
        if cand and cand.get("policy_hash") == phash:
            best = ((row.get("inputs") or {}).get("best") or {}).get("policy") or {}
            old = json.dumps({"params": best.get("params"), "features": best.get("features")}, indent=1, sort_keys=True, default=str)
            new = json.dumps({"params": cand.get("params"), "features": cand.get("features")}, indent=1, sort_keys=True, default=str)
            return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "accepted", f"candidate (trial {trial})"))
    return None


def render_run(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    rows, records = run["rows"], run["records"]
    by_trial = {r.trial: r for r in records}
    cfg = _read_json(run_dir / "config.json")
    state = final_state(run_dir)
    history = state.get("history") or [dict(iteration=r["iteration"] + 1, direction=(r["summary"] or "").split(": ", 1)[-1],
                                            outcome=(r["summary"] or "").split(":", 1)[0], delta=None, trial=None, score=None)
                                       for r in rows if r["node"] == "decide" and r["status"] == "end"]  # fmt: skip
    game_name = cfg.get("game") or (records[0].game if records else "?")
    try:
        from envs.atari.games import resolve_game

        game = resolve_game(game_name)
    except Exception:
        game = None
    obs, protocol = cfg.get("obs_mode", "?"), cfg.get("protocol", "?")
    title = f"{game_name} · {obs} · {protocol} · run {run_dir.name}"
    dev = [r for r in records if r.status == "ok" and r.score_mean is not None and r.role != "finish"]
    best = max(dev, key=lambda r: r.score_mean) if dev else None
    reached = min((r.cumulative_env_steps for r in dev if best and r.score_mean >= best.score_mean), default=None)
    holdout = [r for r in records if r.role == "finish" and r.score_mean is not None]
    hns = game.hns(best.score_mean) if game and best else None
    last = records[-1] if records else None
    times = [e.get("t") for e in run["entries"] if e.get("t")]
    wall = (max(times) - min(times)) if times else 0.0
    finished = bool(state.get("stop_reason")) and not any(r["status"] == "open" for r in rows)
    started = run["entries"][0]["ts"] if run["entries"] else None
    parts = [f"<h1>{esc(title)}</h1>",
             f'<p class="muted">Run folder <code>{esc(run_dir)}</code> · report written {datetime.now().isoformat(timespec="seconds")} · '
             f'<code>python -m graph.trace {esc(run_dir.name)}</code> for the full trace</p>']  # fmt: skip
    for d in run["damage"]:
        parts.append(f'<div class="damage">damage: {esc(d)}</div>')
    cards = [("best dev score", fmt_num(best.score_mean) if best else "–"), ("HNS", f"{hns:.3f}" if hns is not None else "–"),
             ("holdout", f"{fmt_num(holdout[-1].score_mean)} over {len(holdout[-1].scores)} ep." if holdout else "–"),
             ("env steps to best", fmt_num(reached)), ("env steps used", f"{fmt_num(last.cumulative_env_steps) if last else 0} / {fmt_num(cfg.get('budget'))}"),
             ("iterations", f"{len(history)} ({sum(h['outcome'] == 'accepted' for h in history)} accepted)")]  # fmt: skip
    parts.append('<section id="summary"><div class="cards">' + "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="l">{esc(k)}</div></div>' for k, v in cards) + "</div>")
    parts.append(f'<p><b>Why it stopped:</b> {esc(state.get("stop_reason") or ("killed or still running" if not finished else "–"))} · '
                 f'<b>Brains:</b> {esc(cfg.get("model") or "builtin")}</p></section>')  # fmt: skip

    parts.append('<h2>The graph and the path this run took</h2><section id="graph">' + graph_svg(rows, finished) +
                 '<p class="muted">Blue: edges taken (with counts) and nodes run (×executions); dashed grey: not taken.</p></section>')  # fmt: skip

    script, div = sample_efficiency_plot(records, f"{game_name} {obs}: score against env steps")
    parts.append(f'<h2>Sample efficiency</h2><section><div id="sample-efficiency">{div}</div>'
                 '<p class="muted">Each point a trial (dev seeds; bars: min–max over its episodes); orange: running best; '
                 'green diamond: the best policy on holdout seeds. Hover for the change tried; drag to pan, wheel to zoom.</p></section>')  # fmt: skip

    # Iterations.
    versions = policy_versions(run_dir)
    commit_of_trial = {}
    for v in versions:
        m = re.search(r"trial (\d+)", v["message"])
        if m:
            commit_of_trial[int(m.group(1))] = v["version"]
    it_rows, cand_diffs = [], []
    for h in history:
        it = h.get("iteration")
        diag = _md_fields(diagnosis_text(run_dir, it - 1 if isinstance(it, int) else None))
        outcome = h.get("outcome", "")
        link = ""
        if h.get("trial") in commit_of_trial:
            v = commit_of_trial[h["trial"]]
            link = f'<a href="#v{v}">version {v}</a>'
        elif outcome != "accepted":
            diff = _candidate_params_diff(run, h.get("trial"), by_trial)
            if diff:
                cand_diffs.append(f'<details id="cand-{it}"><summary>iteration {it}: rejected candidate (trial {h.get("trial")}), '
                                  f'parameters against the accepted version</summary>{highlight(diff, "diff")}</details>')  # fmt: skip
                link = f'<a href="#cand-{it}">parameter diff</a>'
        delta = h.get("delta")
        it_rows.append([esc(it), esc(h.get("direction")), f'<span class="{esc(outcome)}">{esc(outcome)}</span>',
                        esc(fmt_num(h.get("score"))), esc(f"{delta:+g}" if isinstance(delta, (int, float)) else "–"),
                        esc(h.get("trial")), esc(diag.get("what failed", "–")), esc(diag.get("direction", "–")), link])  # fmt: skip
    parts.append("<h2>Iterations</h2><section id=\"iterations\">" + (_table(
        ["iter", "direction tried", "outcome", "dev score", "Δ best", "trial", "diagnosis of this evaluation", "next direction", "code diff"],
        it_rows, num={0, 3, 4, 5}, table_id="iterations-table") if it_rows else '<p class="muted">No iteration was decided.</p>')
        + "".join(cand_diffs) + "</section>")  # fmt: skip

    # Policy code and its history.
    policy = run_dir / "hs" / "policy.py"
    parts.append('<h2>The final policy</h2><section id="policy">')
    parts.append(highlight(policy.read_text(), "python") if policy.exists() else '<p class="muted">No policy was written.</p>')
    detectors = run_dir / "hs" / "detectors.py"
    if detectors.exists():
        parts.append(f"<details><summary>hs/detectors.py</summary>{highlight(detectors.read_text(), 'python')}</details>")
    parts.append("</section>")
    if versions:
        parts.append('<h2>Policy versions (hs/ commits)</h2><section id="versions">')
        import subprocess

        for v in versions:
            if v["version"] == 0:
                continue
            diff = subprocess.run(["git", "diff", versions[v["version"] - 1]["commit"], v["commit"]], cwd=run_dir / "hs",
                                  capture_output=True, text=True).stdout  # fmt: skip
            parts.append(f'<details id="v{v["version"]}"><summary>version {v["version"]} · <code>{v["commit"][:8]}</code> · {esc(v["subject"])}</summary>'
                         f'<p class="muted">{esc(v["message"])}</p>{highlight(diff or "(no change)", "diff")}</details>')  # fmt: skip
        parts.append("</section>")

    # Replay and contact sheets.
    parts.append('<h2>Replay of the best episode</h2><section id="replay">' + _video_html(run_dir, records) + "</section>")
    sheets = failure_sheets(run_dir, history)
    parts.append('<h2>Contact sheets of failures</h2><section id="sheets">')
    if not sheets:
        parts.append('<p class="muted">The critic found no failure with a contact sheet.</p>')
    for rel, caption in sheets:
        if (run_dir / rel).exists():
            parts.append(f'<figure><img class="sheet" alt="{esc(rel)}" src="{_sheet_png(run_dir / rel)}"><figcaption class="muted">{esc(caption)} · <code>{esc(rel)}</code></figcaption></figure>')
    parts.append("</section>")

    # Memory.
    mem = memory_entries(run_dir, cfg, started)
    tool_reads = [e for r in rows for e in r["events"] if e.get("event") == "tool" and "memory" in str(e.get("tool"))]
    probe_src = next(((r.get("writes") or {}).get("probe", {}) or {} for r in rows if r["node"] == "prober" and r.get("writes")), {})
    parts.append('<h2>Memory</h2><section id="memory">')
    if mem["error"]:
        parts.append(f'<p class="muted">Memory not read: {esc(mem["error"])}</p>')
    if probe_src.get("source") == "memory":
        parts.append("<p>The probe was recalled from memory (no probe steps spent).</p>")
    mrow = lambda e: [esc(e["kind"]), esc(e["text"]), esc(e["extra"]), esc(e["trial"]), esc(e["run_id"]), esc(e["timestamp"])]  # noqa: E731
    parts.append(f"<h3>Written by this run ({len(mem['written'])})</h3>")
    parts.append(_table(["kind", "entry", "outcome", "trial", "run", "time"], [mrow(e) for e in mem["written"]]) if mem["written"] else '<p class="muted">none</p>')
    parts.append(f"<h3>Available to this run when it started ({len(mem['readable'])}): same game and obs mode, earlier runs</h3>"
                 '<p class="muted">The builtin roles read these: the prober and policy-writer recall facts (probe, best policy), '
                 "the critic skips directions remembered as rejected.</p>")  # fmt: skip
    parts.append(_table(["kind", "entry", "outcome", "trial", "run", "time"], [mrow(e) for e in mem["readable"][-60:]]) if mem["readable"] else '<p class="muted">none</p>')
    if tool_reads:
        parts.append("<h3>Memory tool calls (LLM brains)</h3>" + _table(["tool", "arguments", "result"],
                     [[esc(e.get("tool")), esc(json.dumps(e.get("args"))), esc(e.get("result") or e.get("error"))] for e in tool_reads]))  # fmt: skip
    parts.append("</section>")

    # Costs.
    per_node: dict[str, list[float]] = {}
    for r in rows:
        acc = per_node.setdefault(r["node"], [0, 0.0, 0, 0, 0.0, 0])
        acc[0] += 1
        acc[1] += r["seconds"] or 0.0
        acc[2] += r["env_steps"] or 0
        acc[3] += r["tokens"] or 0
        acc[4] += r.get("cost_usd") or 0.0
        acc[5] += sum(1 for e in r["events"] if e.get("event") == "llm_call")
    finish_rows = [r for r in records if r.role == "finish"]
    if finish_rows:
        per_node["finish (holdout)"] = [1, sum(r.wall_seconds for r in finish_rows), sum(r.env_steps for r in finish_rows), 0, 0.0, 0]
    cost_rows = [[esc(n), fmt_num(a[0]), f"{a[1]:.1f}", fmt_num(a[2]), fmt_num(a[5]), fmt_num(a[3]), f"{a[4]:.4f}"] for n, a in per_node.items()]
    tokens = sum(a[3] for a in per_node.values())
    usd = sum(a[4] for a in per_node.values())
    cost_rows.append(["<b>total</b>", fmt_num(sum(a[0] for a in per_node.values())), f"{wall:.1f} (wall)",
                      f"<b>{fmt_num(last.cumulative_env_steps if last else 0)}</b>", fmt_num(sum(a[5] for a in per_node.values())),
                      f"<b>{fmt_num(tokens)}</b>", f"<b>{usd:.4f}</b>"])  # fmt: skip
    parts.append('<h2>Costs</h2><section id="cost">' + _table(["node", "executions", "seconds", "env steps", "LLM calls", "tokens", "USD"],
                 cost_rows, num={1, 2, 3, 4, 5, 6}, table_id="cost-table") +
                 f'<p class="muted">Emulator frames: {fmt_num(last.cumulative_frames if last else 0)} · budget {fmt_num(cfg.get("budget"))} env steps · '
                 f'ledger: {len(records)} trials · wall time from the first to the last trace entry.</p></section>')  # fmt: skip

    # Timeline.
    tl = [[esc(r["index"]), esc(r["iteration"]), esc(r["node"]), esc((r["start"] or "")[11:19]), esc(fmt_num(r["seconds"])),
           esc(fmt_num(r["env_steps"])), esc(fmt_num(r["tokens"])), esc(r["decision"] or ""), esc(r["summary"]),
           esc(", ".join(f"{k}: {v}" for k, v in r["artifacts"].items() if not k.endswith("traces")))] for r in rows]  # fmt: skip
    parts.append(f'<h2>Timeline</h2><section id="timeline"><details><summary>{len(rows)} node executions</summary>' +
                 _table(["#", "iter", "node", "start", "s", "env steps", "tokens", "decision", "summary", "artifacts"], tl, num={0, 1, 4, 5, 6}) +
                 "</details></section>")  # fmt: skip
    return page(title, "".join(parts), script)


def write_report(run_dir: str | Path, out: str | Path | None = None, on_error=None) -> Path | None:
    """Render the run's report to `report.html` in its folder (or `out`). With `on_error`
    (the end of a run), a failure is handed to it as one line and None is returned."""
    run_dir = Path(run_dir)
    path = Path(out) if out else run_dir / "report.html"
    try:
        text = render_run(run_dir)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    except Exception as err:
        if on_error is None:
            raise
        on_error(f"report.html not written: {type(err).__name__}: {err}")
        return None
    return path


# -- suite ---------------------------------------------------------------------------------------------


def find_runs(runs_dir: Path) -> list[Path]:
    """Run folders (<game>/<obs>/<run_id>/ with a ledger) anywhere under runs_dir, so a folder
    of runs folders (bench/learning_suite.py's) is one suite too."""
    return sorted(p.parent for p in Path(runs_dir).rglob("trials.jsonl") if p.parent.parent.name in ("ram", "vision"))


def _reference_points() -> list[dict]:
    for folder in (SHARED_DATA, REPO_DATA):
        path = folder / "atari57_hl_median_hns_points.csv"
        if path.exists():
            with open(path, newline="") as f:
                return [dict(series=r["series"], env_steps=float(r["env_steps"]), median_hns=float(r["median_hns"])) for r in csv.DictReader(f)]
    return []


def suite_data(runs_dir: Path) -> list[dict]:
    from envs.atari.games import resolve_game
    from graph.trace import read_ledger

    out = []
    for run_dir in find_runs(runs_dir):
        cfg = _read_json(run_dir / "config.json")
        records, damage = read_ledger(run_dir)
        if not records:
            continue
        game_name = cfg.get("game") or records[0].game
        try:
            game = resolve_game(game_name)
        except Exception:
            game = None
        curve, running = [], None
        for r in records:
            if r.status == "ok" and r.score_mean is not None and r.role != "finish":
                if running is None or r.score_mean > running:
                    running = r.score_mean
                    curve.append((r.cumulative_env_steps, running))
        holdout = [r.score_mean for r in records if r.role == "finish" and r.score_mean is not None]
        hns = game.hns(running) if game and running is not None else None
        out.append(dict(run_dir=run_dir, run_id=run_dir.name, game=game_name, obs=cfg.get("obs_mode") or records[0].obs_mode,
                        protocol=cfg.get("protocol") or records[0].protocol, best=running, hns=hns,
                        holdout=holdout[-1] if holdout else None, steps=records[-1].cumulative_env_steps,
                        to_best=curve[-1][0] if curve else None, curve=curve, game_spec=game, damage=damage,
                        has_report=(run_dir / "report.html").exists()))  # fmt: skip
    return out


def median_hns_curve(runs: list[dict], grid: list[float]) -> list[float | None]:
    """Median over games of the best (over a game's runs) running-best HNS at each step count."""
    by_game: dict[str, list[dict]] = {}
    for r in runs:
        if r["game_spec"] is not None and r["game_spec"].in_atari57:
            by_game.setdefault(r["game"], []).append(r)
    medians = []
    for x in grid:
        values = []
        for game_runs in by_game.values():
            best = None
            for r in game_runs:
                at = [s for steps, s in r["curve"] if steps <= x]
                if at:
                    best = at[-1] if best is None else max(best, at[-1])
            if best is not None:
                values.append(game_runs[0]["game_spec"].hns(best))
            else:
                values.append(None)
        known = [v for v in values if v is not None]
        medians.append(statistics.median([v if v is not None else 0.0 for v in values]) if known else None)
    return medians


def suite_plot(runs: list[dict]) -> tuple[str, str]:
    from bokeh.embed import components
    from bokeh.models import HoverTool
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    fig = figure(height=420, sizing_mode="stretch_width", x_axis_type="log", title="median HNS across games against env steps",
                 x_axis_label="env steps (log)", y_axis_label="human-normalised score", tools="pan,wheel_zoom,box_zoom,reset,save")  # fmt: skip
    top = max([r["steps"] for r in runs] + [1e7])
    grid = [10 ** (3 + i * (math.log10(top) - 3) / 60) for i in range(61)]
    colours = {"ram": "#2563eb", "vision": "#9333ea", "all": "#111827"}
    # Scores under different protocols are not comparable: one median per obs mode and protocol
    # (hl first, the published curves' protocol), plus the best input mode under hl.
    groups = sorted({(r["protocol"], r["obs"]) for r in runs}, key=lambda g: (g[0] != "hl", g))
    if len({obs for protocol, obs in groups if protocol == "hl"}) > 1:
        groups.append(("hl", "all"))
    for protocol, obs in groups:
        subset = [r for r in runs if r["protocol"] == protocol and obs in ("all", r["obs"])]
        reach = max(r["steps"] for r in subset)  # past the longest run the median is unknown
        xs = [x for x in grid if x < reach] + [reach]
        med = median_hns_curve(subset, xs)
        pts = [(x, y) for x, y in zip(xs, med) if y is not None]
        if pts:
            label = f"this suite, best input, {protocol}" if obs == "all" else f"this suite, {obs}, {protocol}"
            fig.line([p[0] for p in pts], [p[1] for p in pts], line_width=3, color=colours.get(obs, "#111827"),
                     line_dash="solid" if protocol == "hl" else "dotdash", legend_label=label)  # fmt: skip
    refs = _reference_points()
    styles = {"hl_ram": ("#60a5fa", "published HL, ram"), "hl_vision": ("#c084fc", "published HL, vision"),
              "ppo2_openrl": ("#f97316", "PPO2 (OpenAI Baselines) at 10M"), "cleanrl_envpool_ppo": ("#16a34a", "CleanRL EnvPool PPO at 10M")}  # fmt: skip
    for series in dict.fromkeys(p["series"] for p in refs):
        pts = sorted((p["env_steps"], p["median_hns"]) for p in refs if p["series"] == series)
        colour, label = styles.get(series, ("#6b7280", series))
        if len(pts) > 1:
            fig.line([p[0] for p in pts], [p[1] for p in pts], line_dash="dashed", line_width=2, color=colour, legend_label=label)
        r = fig.scatter([p[0] for p in pts], [p[1] for p in pts], size=9, color=colour, marker="square", legend_label=label)
        fig.add_tools(HoverTool(renderers=[r], tooltips=[("series", label), ("env steps", "@x{0,0}"), ("median HNS", "@y{0.000}")]))
    for i, r in enumerate(runs):  # each run's own running-best HNS, faint
        if r["curve"] and r["game_spec"] is not None and r["game_spec"].in_atari57:
            xs = [max(p[0], 1) for p in r["curve"]] + [max(r["steps"], 1)]
            ys = [r["game_spec"].hns(p[1]) for p in r["curve"]] + [r["game_spec"].hns(r["curve"][-1][1])]
            fig.step(xs, ys, mode="after", color=Category10_10[i % 10], alpha=0.35,
                     legend_label=f"{r['game']} {r['obs']} {r['protocol']} (runs)")  # fmt: skip
    fig.legend.click_policy = "hide"
    fig.add_layout(fig.legend[0], "right")
    return components(fig)


def render_suite(runs_dir: Path, out_path: Path | None = None) -> str:
    runs_dir = Path(runs_dir)
    runs = suite_data(runs_dir)
    base = (out_path or runs_dir / "suite.html").resolve().parent
    title = f"suite · {runs_dir}"
    parts = [f"<h1>Suite report: {esc(runs_dir)}</h1>",
             f'<p class="muted">{len(runs)} runs · written {datetime.now().isoformat(timespec="seconds")} · '
             "HNS = (score − random) / (human − random), Atari57 reference scores.</p>"]  # fmt: skip
    if not runs:
        parts.append(f'<section><p>No runs under {esc(runs_dir)} (expected &lt;game&gt;/&lt;obs&gt;/&lt;run_id&gt;/trials.jsonl).</p></section>')
        return page(title, "".join(parts))
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["game"], r["obs"], r["protocol"]), []).append(r)
    rows = []
    for (game, obs, protocol), rs in sorted(groups.items()):
        best = max((r for r in rs if r["best"] is not None), key=lambda r: r["best"], default=None)
        spec = rs[0]["game_spec"]
        published = getattr(spec, f"hl_{obs}_best_score", None) if spec and protocol == "hl" else None
        links = " ".join(_run_link(r, base) for r in rs)
        rows.append([esc(game), esc(obs), esc(protocol), esc(fmt_num(best["best"]) if best else "–"),
                     esc(f"{best['hns']:.3f}" if best and best["hns"] is not None else "–"),
                     esc(fmt_num(best["holdout"]) if best else "–"), esc(fmt_num(best["to_best"]) if best else "–"),
                     esc(fmt_num(sum(r["steps"] for r in rs))), esc(fmt_num(published)), str(len(rs)), links])  # fmt: skip
    parts.append('<h2>Best score per game, obs mode and protocol</h2><section id="suite-table">' + _table(
        ["game", "obs", "protocol", "best dev score", "HNS", "holdout", "env steps to best", "env steps (all runs)",
         "published HL best (hl)", "runs", "reports"], rows, num={3, 4, 5, 6, 7, 8, 9}) + "</section>")  # fmt: skip
    script, div = suite_plot(runs)
    parts.append(f'<h2>Median HNS against env steps</h2><section><div id="suite-curve">{div}</div>'
                 '<p class="muted">Solid: median over this suite\'s Atari57 games of each game\'s best running-best HNS '
                 '(a game with no score yet counts as 0); dashed and squares: the published Heuristic Learning median '
                 'curves and the PPO references at 10M steps (PPO steps are usually 4 frames each, HL steps single frames). '
                 "Faint: each run's own running best. Click a legend entry to hide it.</p></section>")  # fmt: skip
    runs_rows = [[_run_link(r, base), esc(r["game"]), esc(r["obs"]), esc(r["protocol"]), esc(fmt_num(r["best"])),
                  esc(f"{r['hns']:.3f}" if r["hns"] is not None else "–"), esc(fmt_num(r["steps"])),
                  esc("; ".join(r["damage"]) or "")] for r in runs]  # fmt: skip
    parts.append('<h2>Runs</h2><section id="runs">' + _table(["run", "game", "obs", "protocol", "best", "HNS", "env steps", "damage"],
                                                             runs_rows, num={4, 5, 6}) + "</section>")  # fmt: skip
    return page(title, "".join(parts), script)


def _run_link(r: dict, base: Path) -> str:
    import os

    target = r["run_dir"].resolve() / "report.html"
    if not r["has_report"]:
        return f'<span class="muted" title="python -m graph.report {esc(r["run_dir"])}">{esc(r["run_id"])}</span>'
    return f'<a href="{esc(os.path.relpath(target, base))}">{esc(r["run_id"])}</a>'


def write_suite(runs_dir: str | Path, out: str | Path | None = None) -> Path:
    runs_dir = Path(runs_dir)
    path = Path(out) if out else runs_dir / "suite.html"
    text = render_suite(runs_dir, path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from tools.cli import OneLineParser, run_command

    parser = OneLineParser(prog="python -m graph.report", description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run id or run folder")
    parser.add_argument("--suite", type=Path, metavar="RUNS_DIR", help="one page for every run under RUNS_DIR")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    parser.add_argument("-o", "--out", type=Path, help="where to write the page (default: report.html in the run folder, suite.html in RUNS_DIR)")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.suite is not None:
            if not args.suite.is_dir():
                raise FileNotFoundError(f"no runs folder {args.suite}")
            print(write_suite(args.suite, args.out))
            return 0
        if not args.run:
            raise FileNotFoundError("give a run id or folder, or --suite RUNS_DIR")
        print(write_report(resolve_run(args.run, args.runs_dir), args.out))
        return 0

    return run_command(body, usage_errors=(FileNotFoundError,))


if __name__ == "__main__":
    sys.exit(main())
