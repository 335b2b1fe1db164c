"""The scoreboard's files in the batch folder, from scoreboard.py's numbers: suite.csv (the
per-game table, plain numbers), suite.md (the aggregates with their intervals, the per-game
table, the runs that produced no policy and why) and suite_curve.png (median and IQM HNS against
env steps with 95% bands, next to the published curves). Each is written whole through a
temporary file and a rename, so a reader never sees half of one."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from graph.report.scoreboard import (BEST_INPUT, COLUMNS, NOT_COUNTED, fmt_score, aggregates, atari57_runs, counted, no_policy,
                                     suite_curves)  # fmt: skip
from graph.report.stats import RESAMPLES, SEED

CONVENTIONS = (
    "HNS = (score − random) / (human − random), Atari57 reference scores. A game's HNS is the mean over its runs of each "
    "run's best dev HNS (the published convention); a run that produced no policy (failed, or nothing scored) counts 0. "
    "Median and IQM (interquartile mean: the mean of the middle 50%, Agarwal et al. 2021) are taken over the per-game "
    "HNS of the Atari57 games here (rliable's IQM pools every run of every game instead; with one run per game the two "
    f"agree). 95% intervals: stratified bootstrap, {RESAMPLES} resamples (runs drawn with replacement within each game, "
    f"then the per-game means, then the statistic; percentile interval; seed {SEED}). With one run per game an interval "
    "has width 0: it measures run-to-run variation only, never which games were chosen. \"best input\": per game the "
    "better obs mode. First runs: runs that started with no memory of their game (memory_at_start 0); a run that starts "
    "from memory skips the probe and starts from an earlier best policy, so its env steps to best are not a from-scratch "
    "number. Runs whose memory at start is unknown (older runs, failed cells) are not first runs. Pending and running "
    "cells are in no number. The published columns are the same statistic of the published per-game HNS over the same "
    "games (Heuristic Learning best input, OpenAI Baselines PPO2, CleanRL EnvPool PPO at 10M steps; PPO steps are "
    "usually 4 frames each)."
)


def _atomic_write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _plain(value) -> str:
    """A CSV cell: numbers as plain numbers (no separators), yes/no, empty for unknown."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}" if abs(value) < 1e5 else f"{value:.1f}"
    return str(value)


def write_csv(path: Path, rows: list[dict]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_plain(row[c]) for c in COLUMNS])
    return _atomic_write(Path(path), out.getvalue().encode())


# -- suite.md ---------------------------------------------------------------------------------------


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def _hns(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _with_ci(row: dict, stat: str) -> str:
    if row.get(stat) is None:
        return "–"
    return f"{row[stat]:.3f} [{row[f'{stat}_low']:.3f}, {row[f'{stat}_high']:.3f}]"


def _ref(row: dict, column: str) -> str:
    if row.get(f"{column}_median") is None:
        return "–"
    return f"{row[f'{column}_median']:.3f} / {row[f'{column}_iqm']:.3f}"


def aggregate_table_rows(aggs: list[dict]) -> list[list[str]]:
    return [[a["obs"], a["protocol"], a["runs"], str(a["n_runs"]), str(a["games"]), _with_ci(a, "median"), _with_ci(a, "iqm"),
             _ref(a, "hl_best_input_hns"), _ref(a, "ppo2_hns"), _ref(a, "cleanrl_envpool_ppo_hns")] for a in aggs]  # fmt: skip


AGGREGATE_HEADERS = ["obs", "protocol", "runs", "run count", "games", "median HNS [95% CI]", "IQM HNS [95% CI]",
                     "published HL best input, same games: median / IQM", "PPO2: median / IQM", "CleanRL EnvPool PPO: median / IQM"]  # fmt: skip

GAME_HEADERS = ["game", "obs", "protocol", "runs", "with a policy", "best score", "mean best", "HNS", "holdout", "holdout HNS",
                "holdout where seeds differ (robustness)", "its HNS", "env steps to best (median)", "env steps used", "wall s", "structure", "beats random", "published HL best (hl)",
                "published HL HNS", "PPO2 HNS", "CleanRL EnvPool PPO HNS", "notes"]  # fmt: skip


def game_table_rows(rows: list[dict]) -> list[list[str]]:
    yes_no = {True: "yes", False: "no", None: "–"}
    return [[r["game"], r["obs"], r["protocol"], str(r["runs"]), str(r["runs_with_policy"]), fmt_score(r["best_score"]),
             fmt_score(r["mean_best_score"]), _hns(r["hns"]), fmt_score(r["holdout_score"]), _hns(r["holdout_hns"]),
             fmt_score(r["robustness_score"]), _hns(r["robustness_hns"]), fmt_score(r["env_steps_to_best_median"]), fmt_score(r["env_steps"]), fmt_score(r["wall_seconds"]), r["structures"] or "–",
             yes_no[r["beats_random"]], fmt_score(r["published_hl_best_hl"]), _hns(r["published_hl_hns"]), _hns(r["ppo2_hns"]),
             _hns(r["cleanrl_envpool_ppo_hns"]), r["notes"]] for r in rows]  # fmt: skip


def render_markdown(batch_dir: Path, runs: list[dict], rows: list[dict], aggs: list[dict]) -> str:
    done = counted(runs)
    waiting = [r for r in runs if r["state"] in NOT_COUNTED]
    games = {r["game"] for r in runs}
    parts = [f"# Suite scoreboard: {Path(batch_dir).resolve().name}", "",
             f"{len(runs)} runs of {len(games)} games under `{batch_dir}`: {len(done)} counted, {len(waiting)} pending or running; "
             f"{len(atari57_runs(runs))} counted runs on Atari57 games. Written {datetime.now().isoformat(timespec='seconds')} by "
             f"`python -m graph.report --suite {batch_dir}` (from each run's summary.json and ledger, and batch.json).", "",
             "## Aggregates over Atari57 games", ""]  # fmt: skip
    parts += [_md_table(AGGREGATE_HEADERS, aggregate_table_rows(aggs)) if aggs else "No counted run on an Atari57 game: no aggregate.", "",
              CONVENTIONS, "", "## Per game, obs mode and protocol", "",
              _md_table(GAME_HEADERS, game_table_rows(rows)) if rows else "No runs.", "",
              "Per row: runs = counted runs; best = the best over its runs of each run's best dev score; mean best and "
              "holdout = means over the runs with a policy; HNS = mean over the counted runs (no policy counts 0); env "
              "steps to best = median over the runs with a policy; env steps and wall seconds = sums. \"published HL best (hl)\" "
              "is the published best episode score for this obs mode, measured under the hl protocol only. beats random: the "
              "best score is above the random agent's.", "",
              "## Runs that produced no policy", ""]  # fmt: skip
    missing = no_policy(runs)
    parts += [f"- {r['game']} · {r['obs']} · {r['protocol']}: {reason}" for r, reason in missing] or ["Every counted run produced a policy."]
    if waiting:
        parts += ["", "Not finished (in no number): " + ", ".join(f"{r['run_id']} ({r['state']})" for r in waiting) + "."]
    parts += ["", "## Median and IQM HNS against env steps", "", "![median and IQM HNS against env steps](suite_curve.png)", "",
              CURVE_CAPTION, ""]  # fmt: skip
    return "\n".join(parts)


def write_markdown(path: Path, batch_dir: Path, runs: list[dict], rows: list[dict], aggs: list[dict] | None = None) -> Path:
    aggs = aggregates(runs) if aggs is None else aggs
    return _atomic_write(Path(path), render_markdown(batch_dir, runs, rows, aggs).encode())


# -- suite_curve.png --------------------------------------------------------------------------------

CURVE_CAPTION = (
    "At each env step of a log-spaced grid up to the longest run of a group: each run's running-best HNS (0 before its "
    "first score, held after its end), the mean over a game's runs, then the median (solid) and the IQM (dashed) over "
    "games, with 95% stratified-bootstrap bands; all counted runs. Squares and dashed grey-blue/purple lines: the "
    "published Heuristic Learning median curves (ram, vision); stars: PPO references at 10M steps (PPO steps are usually "
    "4 frames each, HL steps single frames)."
)
COLOURS = {"ram": "#2563eb", "vision": "#9333ea", BEST_INPUT: "#111827"}
REFERENCE_STYLES = {"hl_ram": ("#60a5fa", "published HL, ram"), "hl_vision": ("#c084fc", "published HL, vision"),
                    "ppo2_openrl": ("#f97316", "PPO2 (OpenAI Baselines) at 10M"),
                    "cleanrl_envpool_ppo": ("#16a34a", "CleanRL EnvPool PPO at 10M")}  # fmt: skip


def write_curve_png(path: Path, runs: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from graph.report.plots import _reference_points

    fig = Figure(figsize=(11, 5.5), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    curves = suite_curves(runs)
    for c in curves:
        colour = COLOURS.get(c["obs"], "#111827")
        label = f"{c['obs']}, {c['protocol']}"
        x = c["x"]
        ax.fill_between(x, c["median_low"], c["median_high"], step="post", color=colour, alpha=0.10, linewidth=0)
        ax.fill_between(x, c["iqm_low"], c["iqm_high"], step="post", color=colour, alpha=0.18, linewidth=0,
                        label=f"IQM 95% band ({label})")  # fmt: skip
        ax.step(x, c["median"], where="post", color=colour, linewidth=2.5, label=f"median ({label})",
                linestyle="solid" if c["protocol"] == "hl" else "dashdot")  # fmt: skip
        ax.step(x, c["iqm"], where="post", color=colour, linewidth=1.8, linestyle="dashed", label=f"IQM ({label})")
        ax.plot(x[-1:], c["median"][-1:], "o", color=colour, markersize=6)
    refs = _reference_points()
    for series in dict.fromkeys(p["series"] for p in refs):
        pts = sorted((p["env_steps"], p["median_hns"]) for p in refs if p["series"] == series)
        colour, label = REFERENCE_STYLES.get(series, ("#6b7280", series))
        marker = "s" if series.startswith("hl_") else "*"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, markersize=9 if marker == "*" else 6, color=colour,
                linestyle="dashed" if len(pts) > 1 else "none", label=label)  # fmt: skip
    if not curves:
        ax.text(0.02, 0.95, "no counted run on an Atari57 game yet: only the published references", transform=ax.transAxes,
                va="top", color="#6b7280")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("env steps (log)")
    ax.set_ylabel("human-normalised score")
    ax.set_title("this suite: median and IQM HNS over Atari57 games (95% bootstrap bands)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _atomic_write(Path(path), buf.getvalue())
