"""The suite page: one self-contained HTML page for every run under a runs folder (`suite.html`
there): the best score per game, obs mode and protocol, the median human-normalised score
against env steps next to the published curves, and a row per run linking to its report."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from graph.report.html import esc, fmt_num, page, table, write_page
from graph.report.plots import suite_plot
from graph.report.run_files import read_json


def find_runs(runs_dir: Path) -> list[Path]:
    """Run folders (<game>/<obs>/<run_id>/ with a ledger) anywhere under runs_dir, so a folder
    of runs folders (bench/learning_suite.py's) is one suite too."""
    return sorted(p.parent for p in Path(runs_dir).rglob("trials.jsonl") if p.parent.parent.name in ("ram", "vision"))


def suite_data(runs_dir: Path) -> list[dict]:
    from envs.registry import resolve_env
    from graph.trace import read_ledger

    out = []
    for run_dir in find_runs(runs_dir):
        cfg = read_json(run_dir / "config.json")
        records, damage = read_ledger(run_dir)
        if not records:
            continue
        game_name = cfg.get("game") or records[0].game
        try:
            game = resolve_env(game_name)
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


def render_suite(runs_dir: Path, out_path: Path | None = None) -> str:
    runs_dir = Path(runs_dir)
    runs = suite_data(runs_dir)
    base = (out_path or runs_dir / "suite.html").resolve().parent  # run report links are relative to the page
    title = f"suite · {runs_dir}"
    parts = [f"<h1>Suite report: {esc(runs_dir.resolve().name)}</h1>",
             f'<p class="muted">{len(runs)} runs under <code>{esc(runs_dir)}</code> · written {datetime.now().isoformat(timespec="seconds")} · '
             "HNS = (score − random) / (human − random), Atari57 reference scores.</p>"]  # fmt: skip
    if not runs:
        parts.append(f'<section><p>No runs under {esc(runs_dir)} (expected &lt;game&gt;/&lt;obs&gt;/&lt;run_id&gt;/trials.jsonl).</p></section>')
        return page(title, "".join(parts))
    parts.append(best_per_game_section(runs, base))
    script, div = suite_plot(runs)
    parts.append(curve_section(div))
    parts.append(runs_section(runs, base))
    return page(title, "".join(parts), script)


def write_suite(runs_dir: str | Path, out: str | Path | None = None) -> Path:
    runs_dir = Path(runs_dir)
    path = Path(out) if out else runs_dir / "suite.html"
    return write_page(path, render_suite(runs_dir, path))


# -- the sections, top to bottom ---------------------------------------------------------------------


def best_per_game_section(runs: list[dict], base: Path) -> str:
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
    return ('<h2>Best score per game, obs mode and protocol</h2><section id="suite-table">' + table(
        ["game", "obs", "protocol", "best dev score", "HNS", "holdout", "env steps to best", "env steps (all runs)",
         "published HL best (hl)", "runs", "reports"], rows, num={3, 4, 5, 6, 7, 8, 9}) + "</section>")  # fmt: skip


def curve_section(div: str) -> str:
    return (f'<h2>Median HNS against env steps</h2><section><div id="suite-curve">{div}</div>'
            '<p class="muted">Solid: median over this suite\'s Atari57 games of each game\'s best running-best HNS '
            '(a game with no score yet counts as 0); dashed and squares: the published Heuristic Learning median '
            'curves and the PPO references at 10M steps (PPO steps are usually 4 frames each, HL steps single frames). '
            "Thin lines with small dots: each run's own running best. A dot on the suite's median where it changes and "
            "where its longest run ends. Click a legend entry to hide it.</p></section>")  # fmt: skip


def runs_section(runs: list[dict], base: Path) -> str:
    runs_rows = [[_run_link(r, base), esc(r["game"]), esc(r["obs"]), esc(r["protocol"]), esc(fmt_num(r["best"])),
                  esc(f"{r['hns']:.3f}" if r["hns"] is not None else "–"), esc(fmt_num(r["steps"])),
                  esc("; ".join(r["damage"]) or "")] for r in runs]  # fmt: skip
    return ('<h2>Runs</h2><section id="runs">' + table(["run", "game", "obs", "protocol", "best", "HNS", "env steps", "damage"],
                                                       runs_rows, num={4, 5, 6}) + "</section>")  # fmt: skip


def _run_link(r: dict, base: Path) -> str:
    """A link to the run's report, relative to the page; without a report, the command that writes it."""
    target = r["run_dir"].resolve() / "report.html"
    if not r["has_report"]:
        return f'<span class="muted" title="python -m graph.report {esc(r["run_dir"])}">{esc(r["run_id"])}</span>'
    return f'<a href="{esc(os.path.relpath(target, base))}">{esc(r["run_id"])}</a>'
