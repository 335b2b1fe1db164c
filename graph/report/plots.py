"""The interactive Bokeh plots (hover, zoom, pan), each as (script, div): a run's score and
running best against env steps, and the suite's median human-normalised score against env
steps next to the published reference curves."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from record.ledger import is_holdout

REPO_DATA = Path(__file__).resolve().parents[2] / "envs" / "atari" / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


# -- a run: sample efficiency ------------------------------------------------------------------------


def _marks(records: list) -> dict:
    """What the run's plot draws, chosen once so its caption names only what is drawn: dev
    trials, their min-max bars (only where episodes differed), the holdout of the best policy,
    failed trials, and the stretches spent probing or searching."""
    ok = [r for r in records if r.status == "ok" and r.score_mean is not None]
    dev = [r for r in ok if r.role != "finish"]
    return dict(dev=dev, bars=[r for r in dev if r.score_min is not None and r.score_max is not None and r.score_max > r.score_min],
                holdout=[r for r in ok if is_holdout(r)], failed=[r for r in records if r.status == "failed"],
                spans=[(r.cumulative_env_steps - r.env_steps, r.cumulative_env_steps, r.kind) for r in records
                       if r.kind in ("probe", "search") and r.env_steps],
                end=max((r.cumulative_env_steps for r in records), default=0))  # fmt: skip


def sample_efficiency_caption(records: list) -> str:
    """The plot's caption, naming the marks the plot has (no holdout diamond when there is no
    holdout score, no bars when every trial's episodes scored alike)."""
    m = _marks(records)
    if not (m["dev"] or m["holdout"] or m["failed"]):
        return ""
    parts = ["Each blue point a trial on dev seeds (its mean score)"]
    parts.append("vertical bars: min–max over its episodes" if m["bars"] else
                 "no bars: each trial's episodes scored alike (or it had one)")  # fmt: skip
    if m["dev"]:
        parts.append("orange: the running best")
    parts.append("green diamond: the best policy on holdout seeds" if m["holdout"] else "no holdout score, so no diamond")
    if m["failed"]:
        parts.append("red x: a failed trial, at the bottom")
    if m["spans"]:
        parts.append("grey bands: env steps spent probing or searching")
    return "; ".join(parts) + ". The x axis runs from env step 0 to the run's last. Hover for the change tried; drag to pan, wheel to zoom."


def sample_efficiency_plot(records: list, title: str) -> tuple[str, str]:
    """(script, div) of an interactive Bokeh plot: each trial's score, the running best, the
    holdout, from env step 0 to the run's last. Nothing scored: no figure, a sentence (an
    empty figure is Bokeh's MISSING_RENDERERS warning)."""
    m = _marks(records)
    if not (m["dev"] or m["holdout"] or m["failed"]):
        return "", '<p class="muted">No trial has a score yet: nothing to plot.</p>'
    from bokeh.embed import components
    from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, NumeralTickFormatter, Range1d
    from bokeh.plotting import figure

    end = max(m["end"], 1)
    fig = figure(height=380, sizing_mode="stretch_width", title=title, x_axis_label="cumulative env steps",
                 x_range=Range1d(0, end * 1.03, bounds=(0, end * 1.03)), y_axis_label="episode score (mean over the trial's episodes)",
                 tools="pan,wheel_zoom,box_zoom,reset,save")  # fmt: skip

    def source(rows):
        return ColumnDataSource(dict(
            x=[r.cumulative_env_steps for r in rows], y=[r.score_mean for r in rows], trial=[r.trial for r in rows],
            role=[r.role for r in rows], kind=[r.kind for r in rows], split=[r.split or "" for r in rows],
            lo=[r.score_min for r in rows], hi=[r.score_max for r in rows],
            change=[(r.change_summary or "")[:90] for r in rows],
        ))  # fmt: skip

    for lo, hi, _kind in m["spans"]:
        fig.add_layout(BoxAnnotation(left=lo, right=hi, fill_color="#9ca3af", fill_alpha=0.15, line_alpha=0))
    renderers = []
    dev = m["dev"]
    if dev:
        best, running = [], None
        for r in dev:
            running = r.score_mean if running is None else max(running, r.score_mean)
            best.append(running)
        xs = [r.cumulative_env_steps for r in dev]
        fig.step(xs + [end], best + [best[-1]], mode="after", line_width=2.5, color="#f97316", legend_label="running best (dev)")
        if m["bars"]:
            fig.segment("x", "lo", "x", "hi", source=source(m["bars"]), color="#2563eb", alpha=0.5, line_width=2,
                        legend_label="min–max over its episodes")  # fmt: skip
        renderers.append(fig.scatter("x", "y", source=source(dev), size=8, color="#2563eb", legend_label="trial (dev seeds)"))
    if m["holdout"]:
        renderers.append(fig.scatter("x", "y", source=source(m["holdout"]), size=14, marker="diamond", color="#16a34a",
                                     legend_label="best policy on holdout seeds"))  # fmt: skip
    if m["failed"]:
        floor = min((r.score_mean for r in dev + m["holdout"]), default=0.0)
        src = source(m["failed"])
        src.data["y"] = [floor] * len(m["failed"])
        renderers.append(fig.scatter("x", "y", source=src, size=10, marker="x", color="#dc2626", legend_label="failed trial"))
    fig.add_tools(HoverTool(renderers=renderers, tooltips=[
        ("trial", "@trial (@role, @kind, @split)"), ("env steps", "@x{0,0}"), ("score", "@y (min @lo, max @hi)"),
        ("change", "@change")]))  # fmt: skip
    fig.legend.location = "bottom_right"
    fig.legend.click_policy = "hide"
    fig.xaxis.formatter = NumeralTickFormatter(format="0,0")
    return components(fig)


# -- the suite: median HNS against env steps -----------------------------------------------------------


def _reference_points() -> list[dict]:
    for folder in (SHARED_DATA, REPO_DATA):
        path = folder / "atari57_hl_median_hns_points.csv"
        if path.exists():
            with open(path, newline="") as f:
                return [dict(series=r["series"], env_steps=float(r["env_steps"]), median_hns=float(r["median_hns"])) for r in csv.DictReader(f)]
    return []


def median_hns_curve(runs: list[dict], grid: list[float]) -> list[float | None]:
    """Median over Atari57 games of the per-game mean (over its runs) running-best HNS at each
    step count, a run counting 0 before its first score (scoreboard.aggregate_curve); None at
    every point when no run is on an Atari57 game."""
    from graph.report.scoreboard import aggregate_curve

    curve = aggregate_curve(runs, grid, resamples=1)
    return [float(v) for v in curve["median"]] if curve is not None else [None] * len(grid)


def suite_plot(runs: list[dict]) -> tuple[str, str]:
    """(script, div): this suite's median and IQM HNS curves with their 95% bands, the published
    reference curves, and each run's own running best, faint."""
    from bokeh.embed import components
    from bokeh.plotting import figure

    fig = figure(height=420, sizing_mode="stretch_width", x_axis_type="log", title="median and IQM HNS across games against env steps",
                 x_axis_label="env steps (log)", y_axis_label="human-normalised score", tools="pan,wheel_zoom,box_zoom,reset,save")  # fmt: skip
    _suite_medians(fig, runs)
    _reference_curves(fig)
    _each_run(fig, runs)
    if not fig.renderers:  # no Atari57 score and no reference data: no empty figure (Bokeh's MISSING_RENDERERS)
        return "", '<p class="muted">No run here has a score on an Atari57 game yet: no curve to draw.</p>'
    fig.legend.click_policy = "hide"
    fig.add_layout(fig.legend[0], "right")
    return components(fig)


def _suite_medians(fig, runs: list[dict]) -> None:
    """Per obs mode and protocol (hl first, the published curves' protocol; scores under different
    protocols are not comparable), plus the best input mode under a protocol with both: the
    median (a step line, a dot where it changes and at its end, so a short run still shows where
    it got and how far it went) and the IQM (dashed) with its 95% bootstrap band."""
    from bokeh.models import HoverTool

    from graph.report.scoreboard import BEST_INPUT, aggregate_curve, aggregate_groups, atari57_runs, group_grid, in_group, log_grid

    colours = {"ram": "#2563eb", "vision": "#9333ea", BEST_INPUT: "#111827"}
    pool = atari57_runs(runs)
    grid = log_grid(pool, 120)
    for obs, protocol in aggregate_groups(pool):
        subset = in_group(pool, obs, protocol)
        c = aggregate_curve(subset, np.maximum(group_grid(subset, grid), 1))
        if c is None:
            continue
        label = f"this suite, {obs}, {protocol}"
        colour, dash = colours.get(obs, "#111827"), "solid" if protocol == "hl" else "dotdash"
        x, median = list(c["x"]), list(c["median"])
        fig.step(x, median, mode="after", line_width=3, color=colour, line_dash=dash, legend_label=label)
        marks = [i for i in range(len(x)) if i in (0, len(x) - 1) or median[i] != median[i - 1]]
        dots = fig.scatter([x[i] for i in marks], [median[i] for i in marks], size=9, color=colour, legend_label=label)
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", label + " median"), ("env steps", "@x{0,0}"), ("median HNS", "@y{0.000}")]))
        iqm_label = f"{label}: IQM, 95% band"
        fig.varea_step(x=x, y1=list(c["iqm_low"]), y2=list(c["iqm_high"]), step_mode="after", fill_color=colour, fill_alpha=0.15,
                       legend_label=iqm_label)  # fmt: skip
        fig.step(x, list(c["iqm"]), mode="after", line_width=2, color=colour, line_dash="dashed", legend_label=iqm_label)


def _reference_curves(fig) -> None:
    from bokeh.models import HoverTool

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


def _each_run(fig, runs: list[dict]) -> None:
    from bokeh.palettes import Category10_10

    for i, r in enumerate(runs):  # each run's own running-best HNS, faint
        if r["curve"] and r["game_spec"] is not None and r["game_spec"].in_atari57:
            xs = [max(p[0], 1) for p in r["curve"]] + [max(r["steps"], 1)]
            ys = [r["game_spec"].hns(p[1]) for p in r["curve"]] + [r["game_spec"].hns(r["curve"][-1][1])]
            label = f"{r['game']} {r['obs']} {r['protocol']} (runs)"
            fig.step(xs, ys, mode="after", color=Category10_10[i % 10], alpha=0.6, line_width=2, legend_label=label)
            fig.scatter(xs, ys, size=5, color=Category10_10[i % 10], alpha=0.6, legend_label=label)
