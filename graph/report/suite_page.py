"""The suite page: one self-contained HTML page for every run under a runs folder or batch
folder (`suite.html` there): the aggregates over Atari57 games (median and IQM HNS with 95%
intervals, all runs and first runs), the scoreboard per game, obs mode and protocol, the median
and IQM HNS against env steps next to the published curves, the runs that produced no policy,
and a row per run linking to its report. The numbers are scoreboard.py's (suite.md's)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from graph.report.html import esc, fmt_num, page, table, write_page
from graph.report.plots import suite_plot
from graph.report.scoreboard import aggregates, collect_runs, find_runs, game_rows, no_policy
from graph.report.suite_files import AGGREGATE_HEADERS, CONVENTIONS, GAME_HEADERS, aggregate_table_rows, game_table_rows

__all__ = ["find_runs", "render_suite", "suite_data", "write_suite"]


def suite_data(runs_dir: Path) -> list[dict]:
    """The suite's runs (scoreboard.collect_runs): every run folder under runs_dir and every
    batch.json cell without one."""
    return collect_runs(runs_dir)


def render_suite(runs_dir: Path, out_path: Path | None = None) -> str:
    runs_dir = Path(runs_dir)
    runs = suite_data(runs_dir)
    base = (out_path or runs_dir / "suite.html").resolve().parent  # run report links are relative to the page
    title = f"suite · {runs_dir}"
    parts = [f"<h1>Suite report: {esc(runs_dir.resolve().name)}</h1>",
             f'<p class="muted">{len(runs)} runs under <code>{esc(runs_dir)}</code> · written {datetime.now().isoformat(timespec="seconds")} · '
             "HNS = (score − random) / (human − random), Atari57 reference scores. The same numbers are in suite.md and suite.csv "
             f"(<code>python -m graph.report --suite {esc(runs_dir)}</code>).</p>"]  # fmt: skip
    if not runs:
        parts.append(f'<section><p>No runs under {esc(runs_dir)} (expected &lt;game&gt;/&lt;obs&gt;/&lt;run_id&gt;/trials.jsonl).</p></section>')
        return page(title, "".join(parts))
    parts.append(aggregates_section(runs))
    parts.append(best_per_game_section(runs, base))
    script, div = suite_plot(runs)
    parts.append(curve_section(div))
    parts.append(no_policy_section(runs))
    parts.append(runs_section(runs, base))
    return page(title, "".join(parts), script)


def write_suite(runs_dir: str | Path, out: str | Path | None = None) -> Path:
    runs_dir = Path(runs_dir)
    path = Path(out) if out else runs_dir / "suite.html"
    return write_page(path, render_suite(runs_dir, path))


# -- the sections, top to bottom ---------------------------------------------------------------------


def aggregates_section(runs: list[dict]) -> str:
    aggs = aggregates(runs)
    if not aggs:
        body = '<p class="muted">No counted run on an Atari57 game: no aggregate.</p>'
    else:
        body = table(AGGREGATE_HEADERS, [[esc(c) for c in row] for row in aggregate_table_rows(aggs)], num=set(range(3, 10)),
                     table_id="aggregates-table")  # fmt: skip
    return f'<h2>Aggregates over Atari57 games</h2><section id="suite-aggregates">{body}<p class="muted">{esc(CONVENTIONS)}</p></section>'


def best_per_game_section(runs: list[dict], base: Path) -> str:
    rows = game_rows(runs)
    links = {(r["game"], r["obs"], r["protocol"]): " ".join(_run_link(x, base) for x in runs
                                                           if (str(x["game"]), str(x["obs"]), str(x["protocol"])) == (r["game"], r["obs"], r["protocol"]))
             for r in rows}  # fmt: skip
    cells = [[esc(c) for c in row[:-1]] + [f'<div style="min-width:18em">{esc(row[-1])}</div>', links[(r["game"], r["obs"], r["protocol"])]]
             for row, r in zip(game_table_rows(rows), rows)]  # fmt: skip
    return ('<h2>Scoreboard per game, obs mode and protocol</h2><section id="suite-table">'
            + '<div style="overflow-x:auto">' + table(GAME_HEADERS + ["reports"], cells, num=set(range(3, 15)) | set(range(17, 21))) + "</div>"
            + '<p class="muted">runs: counted runs (pending and running cells are not); best: the best over its runs of each '
            "run's best dev score; mean best and holdout: means over the runs with a policy; HNS: mean over the counted runs, "
            "no policy counting 0; env steps to best: median over the runs with a policy; env steps and wall seconds: sums. "
            '"published HL best (hl)" was measured under the hl protocol only.</p></section>')  # fmt: skip


def curve_section(div: str) -> str:
    return (f'<h2>Median and IQM HNS against env steps</h2><section><div id="suite-curve">{div}</div>'
            '<p class="muted">Thick solid: the median over this suite\'s Atari57 games of the per-game mean (over its runs) '
            "running-best HNS, a run counting 0 before its first score and holding its best after its end; a dot where it "
            "changes and where the group's longest run ends. Dashed, with its shaded band: the IQM (mean of the middle 50% of "
            "games) and its 95% stratified-bootstrap band. All counted runs (suite.md has the first-runs numbers). Dashed and "
            "squares: the published Heuristic Learning median curves and the PPO references at 10M steps (PPO steps are "
            "usually 4 frames each, HL steps single frames). Thin lines with small dots: each run's own running best. Click a "
            "legend entry to hide it.</p></section>")  # fmt: skip


def no_policy_section(runs: list[dict]) -> str:
    missing = no_policy(runs)
    items = "".join(f"<li>{esc(r['game'])} · {esc(r['obs'])} · {esc(r['protocol'])}: {esc(reason)}</li>" for r, reason in missing)
    body = f"<ul>{items}</ul>" if items else '<p class="muted">Every counted run produced a policy.</p>'
    return f'<h2>Runs that produced no policy</h2><section id="no-policy">{body}</section>'


def runs_section(runs: list[dict], base: Path) -> str:
    runs_rows = [[_run_link(r, base), esc(r["game"]), esc(r["obs"]), esc(r["protocol"]), esc(r.get("state", "")),
                  esc(fmt_num(r["best"])), esc(f"{r['hns']:.3f}" if r["hns"] is not None else "–"), esc(fmt_num(r["steps"])),
                  esc(fmt_num(r.get("memory_at_start"))), esc("; ".join(r["damage"] + r.get("notes", [])) or (r.get("error") or ""))]
                 for r in runs]  # fmt: skip
    return ('<h2>Runs</h2><section id="runs">' + table(["run", "game", "obs", "protocol", "state", "best", "HNS", "env steps",
                                                         "memory at start", "notes"], runs_rows, num={5, 6, 7, 8}) + "</section>")  # fmt: skip


def _run_link(r: dict, base: Path) -> str:
    """A link to the run's report, relative to the page; without a report, the command that writes it."""
    if r["run_dir"] is None:
        return f'<span class="muted" title="no run folder yet">{esc(r["run_id"])}</span>'
    target = r["run_dir"].resolve() / "report.html"
    if not r["has_report"]:
        return f'<span class="muted" title="python -m graph.report {esc(r["run_dir"])}">{esc(r["run_id"])}</span>'
    return f'<a href="{esc(os.path.relpath(target, base))}">{esc(r["run_id"])}</a>'
