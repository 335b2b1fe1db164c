"""The interactive Bokeh plots (hover, zoom, pan), each as (script, div): a run's score and
running best against env steps, and the suite's median human-normalised score against env
steps next to the published reference curves."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

REPO_DATA = Path(__file__).resolve().parents[2] / "envs" / "atari" / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


# -- a run: sample efficiency ------------------------------------------------------------------------


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


# -- the suite: median HNS against env steps -----------------------------------------------------------


def _reference_points() -> list[dict]:
    for folder in (SHARED_DATA, REPO_DATA):
        path = folder / "atari57_hl_median_hns_points.csv"
        if path.exists():
            with open(path, newline="") as f:
                return [dict(series=r["series"], env_steps=float(r["env_steps"]), median_hns=float(r["median_hns"])) for r in csv.DictReader(f)]
    return []


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
    """(script, div): this suite's median HNS curves, the published reference curves, and each
    run's own running best, faint."""
    from bokeh.embed import components
    from bokeh.plotting import figure

    fig = figure(height=420, sizing_mode="stretch_width", x_axis_type="log", title="median HNS across games against env steps",
                 x_axis_label="env steps (log)", y_axis_label="human-normalised score", tools="pan,wheel_zoom,box_zoom,reset,save")  # fmt: skip
    _suite_medians(fig, runs)
    _reference_curves(fig)
    _each_run(fig, runs)
    fig.legend.click_policy = "hide"
    fig.add_layout(fig.legend[0], "right")
    return components(fig)


def _suite_medians(fig, runs: list[dict]) -> None:
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
            fig.step(xs, ys, mode="after", color=Category10_10[i % 10], alpha=0.35,
                     legend_label=f"{r['game']} {r['obs']} {r['protocol']} (runs)")  # fmt: skip
