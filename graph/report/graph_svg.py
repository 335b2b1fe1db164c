"""The graph with the path a run took, as an inline SVG: every node and edge of the graph's
layout, the edges taken drawn with their counts and the nodes run with their executions."""

from __future__ import annotations

import math

from graph.report.html import esc

_POS = {"__start__": (50, 150), "prober": (160, 150), "detector_writer": (300, 150), "policy_writer": (450, 150),
        "evaluate": (590, 150), "replay_critic": (730, 150), "decide": (870, 150), "__end__": (990, 150),
        "notes_keeper": (730, 270), "simplifier": (590, 270), "holdout": (990, 250), "report": (990, 330)}  # fmt: skip
# The finish's phases (graph/finish.py), traced like nodes: they run after the graph's END.
FINISH_PHASES = ("holdout", "report")


def graph_edges() -> list[tuple[str, str, str]]:
    from graph.build import LAYOUT

    edges = [("__start__", LAYOUT["start"], "")] + [(a, b, "") for a, b in LAYOUT["edges"]]
    for route, target in LAYOUT["routes"].items():
        edges.append(("decide", "__end__" if target == "__end__" else target, route))
    return edges


def path_counts(rows: list[dict], finished: bool) -> tuple[dict, dict]:
    """Executions per node and traversals per edge; the finish's phases hang off END."""
    seq = [r["node"] for r in rows if r["status"] in ("end", "error", "open")]
    nodes: dict[str, int] = {}
    edges: dict[tuple[str, str], int] = {}
    prev = "__start__"
    for n in (n for n in seq if n not in FINISH_PHASES):
        nodes[n] = nodes.get(n, 0) + 1
        edges[(prev, n)] = edges.get((prev, n), 0) + 1
        prev = n
    phases = [n for n in seq if n in FINISH_PHASES]
    if (finished or phases) and prev != "__start__":
        edges[(prev, "__end__")] = edges.get((prev, "__end__"), 0) + 1
    prev = "__end__"
    for n in phases:
        nodes[n] = nodes.get(n, 0) + 1
        edges[(prev, n)] = edges.get((prev, n), 0) + 1
        prev = n
    return nodes, edges


def graph_svg(rows: list[dict], finished: bool) -> str:
    node_counts, edge_counts = path_counts(rows, finished)
    edges = graph_edges()
    names = {a for a, _, _ in edges} | {b for _, b, _ in edges} | set(node_counts)
    pos = dict(_POS)
    extra = sorted(n for n in names if n not in pos)
    for i, n in enumerate(extra):  # roles added later than this layout: a row of their own
        pos[n] = (160 + 140 * i, 350)
    height = 340 if extra or "report" in node_counts else 270
    out = [f'<svg id="run-graph" viewBox="0 40 1060 {height}" width="100%" role="img" aria-label="graph of the run">',
           '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>']  # fmt: skip
    known = {(a, b) for a, b, _ in edges}
    drawn = edges + [(a, b, "") for (a, b) in edge_counts if (a, b) not in known]
    for a, b, label in drawn:
        out += _edge(pos, a, b, label, edge_counts.get((a, b), 0))
    for name in sorted(names):
        out += _node(pos, name, node_counts.get(name, 0), finished)
    out.append("</svg>")
    return "".join(out)


def _edge(pos: dict, a: str, b: str, label: str, n: int) -> list[str]:
    """An edge a -> b taken n times: a curve with an arrow head, and its label and count."""
    (x1, y1), (x2, y2) = pos[a], pos[b]
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
    out = [f'<path d="M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}" fill="none" stroke="{colour}" '
           f'stroke-width="{width:.1f}"{dash} marker-end="url(#arr)"><title>{esc(a)} → {esc(b)}: {n}×</title></path>']  # fmt: skip
    tx, ty = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4 - (9 if y1 == y2 else 5)
    text = " ".join(t for t in (label, f"{n}×" if n else "") if t)
    if text:
        out.append(f'<text x="{tx:.0f}" y="{ty:.0f}" font-size="11" text-anchor="middle" fill="{colour}">{esc(text)}</text>')
    return out


def _node(pos: dict, name: str, n: int, finished: bool) -> list[str]:
    """A node run n times: a box with its name (START and END dark) and its count."""
    x, y = pos[name]
    terminal = name in ("__start__", "__end__")
    label = {"__start__": "START", "__end__": "END"}.get(name, name)
    fill = "#1f2937" if terminal else ("#dbeafe" if n else "#f3f4f6")
    stroke = "#2563eb" if n or (terminal and (name == "__start__" or finished)) else "#9ca3af"
    w = 62 if terminal else 128
    out = [f'<g class="gnode" data-node="{esc(name)}"><rect x="{x - w / 2}" y="{y - 20}" width="{w}" height="40" rx="8" '
           f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
           f'<text x="{x}" y="{y + (0 if n else 4)}" font-size="12.5" text-anchor="middle" fill="{"#fff" if terminal else "#111827"}">{esc(label)}</text>']  # fmt: skip
    if n:
        out.append(f'<text x="{x}" y="{y + 14}" font-size="10.5" text-anchor="middle" fill="#1e40af">{n}×</text>')
    out.append("</g>")
    return out


def _toward(x: float, y: float, cx: float, cy: float) -> tuple[float, float]:
    """The point where the line from a node's centre toward (cx, cy) leaves its box."""
    dx, dy = cx - x, cy - y
    if dx == 0 and dy == 0:
        return x, y
    sx = 66 / abs(dx) if dx else math.inf
    sy = 22 / abs(dy) if dy else math.inf
    s = min(sx, sy, 1.0)
    return x + dx * s, y + dy * s
