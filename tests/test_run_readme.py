"""What a person reads of a run, built from small run folders (no emulator): the README's first
lines say what capped the score (a stall, the episode cap, a plateau) and repeated directions
are grouped with counts; hs/NOTES.md is never a stub; probe.md speaks in words; the report
groups repeated iterations and failure sheets, writes memory facts readably, draws what its
captions name and never makes an empty Bokeh figure; the CLIs explain every option."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import PROJECT_ROOT

STALL = dict(frames=9000, since_step=61_000, steps=9000, watched={"49": 0, "54": 0}, actions={"FIRE": 8990, "NOOP": 10})
PONG_HL = dict(name="hl", frame_skip=1, max_episode_frames=108_000)


def row(trial: int, **kw):
    from record.ledger import TrialRecord

    base = dict(trial=trial, timestamp="2026-12-01T10:00:00+00:00", run_id="r", game="Pong", protocol="hl", obs_mode="ram",
                role="evaluate", kind="evaluation", status="ok", protocol_settings=PONG_HL)  # fmt: skip
    base.update(kw)
    if base["status"] == "ok" and "scores" in base:
        s = base["scores"]
        base.update(score_mean=sum(s) / len(s), score_min=min(s), score_max=max(s))
    return TrialRecord(**base)


def stalled_run_rows() -> list:
    """A probe, an evaluation whose one episode was cut as a stall (the best, 15), a worse
    one, and the holdout of the best policy."""
    return [row(0, role="prober", kind="probe", env_steps=10_000, cumulative_env_steps=10_000, protocol_settings={}),
            row(1, scores=[15.0], lengths=[70_000], truncated=["stall"], stalls=[STALL], stall_rule={"frames": 9000, "watch": [49, 54]},
                env_steps=70_000, cumulative_env_steps=80_000),
            row(2, scores=[3.0], lengths=[20_000], truncated=[None], stalls=[None], env_steps=20_000, cumulative_env_steps=100_000),
            row(3, role="finish", scores=[14.0, 15.0, 16.0], lengths=[70_000] * 3, truncated=["stall", None, None],
                stalls=[STALL, None, None], env_steps=210_000, cumulative_env_steps=310_000, split="holdout")]  # fmt: skip


def fake_run(tmp_path: Path, records: list, brains: dict | None = None):
    """A run folder with a ledger and an hs/ repository, and the context the finish reads."""
    from record.ledger import Ledger
    from record.workspace import HeuristicSystem, create_run_dir
    from runtime.config import RunConfig

    run_dir = create_run_dir(tmp_path / "runs", "pong", "ram", run_id="readme-run")
    (run_dir / "trials.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    hs = HeuristicSystem(run_dir / "hs")
    hs.init("# Heuristic system for Pong (ram mode)\n\npolicy.py (the controller), detectors.py (what it sees), tests/ (pins).\n")
    cfg = RunConfig(game="Pong", budget=400_000, brains=brains or {})
    return SimpleNamespace(config=cfg, run_dir=run_dir, ledger=Ledger(run_dir / "trials.jsonl"), hs=hs)


def summary(stop_reason: str, best=15.0) -> dict:
    return dict(run_id="readme-run", game="Pong", obs_mode="ram", protocol="hl", best_score=best, best_hns=0.9,
                env_steps_to_best=80_000, env_steps=310_000, frames=310_000, budget=400_000, iterations=8, accepted=1,
                rejected=7, holdout="15 over 3 holdout episodes", wall_seconds=12.0, stop_reason=stop_reason, tokens=0,
                cost_usd=0.0)  # fmt: skip


def readme(ctx, s: dict, history: list[dict]) -> str:
    from graph.finish import _write_readme

    _write_readme(ctx, s, history)
    return (ctx.run_dir / "README.md").read_text()


# -- the run's README -------------------------------------------------------------------------------


def test_readme_groups_repeated_directions_and_says_what_capped_the_score(tmp_path):
    ctx = fake_run(tmp_path, stalled_run_rows())
    rejected = [dict(iteration=i, direction="tuned parameters: no change", outcome="rejected", trial=2, score=3.0, delta=-12.0)
                for i in range(2, 8)] + [dict(iteration=8, direction="lead the ball less", outcome="rejected", trial=9, score=1.0)]  # fmt: skip
    text = readme(ctx, summary("plateau: no improvement in 6 iterations, parameter search included"), rejected)
    head = text.split("## Reproduce")[0]
    # The first lines say the stall that capped the score, with its evidence, and the plateau.
    capped = next(line for line in head.splitlines() if line.startswith("- **What capped it:**"))
    assert "cut as a stall" in capped and "9,000 steps from step 61,000" in capped and "tracked bytes (49, 54)" in capped
    assert "FIRE 8,990 times" in capped
    assert "- **Why it stopped:** plateau" in head
    held = text.split("## What held the score back")[1].split("##")[0]
    assert "holdout seeds" in held and "1 of 3 episodes were cut as stalls" in held
    assert "the run stopped on a plateau" in held
    # Six identical rejections are one line with their count.
    failed = text.split("## Main failed directions")[1].split("##")[0]
    assert failed.count("tuned parameters: no change") == 1
    assert "- tuned parameters: no change: 6 times (score 3; trial 2)" in failed
    assert "- lead the ball less (score 1; trial 9)" in failed
    assert "reached after 80,000 env steps" in head


def test_readme_of_a_stalled_run_with_nothing_rejected_does_not_say_none(tmp_path):
    ctx = fake_run(tmp_path, stalled_run_rows())
    text = readme(ctx, summary("budget spent: 90,000 env steps left for the holdout of the best policy (3 episodes)"), [])
    assert "- none\n" not in text
    assert "no direction was rejected" in text
    assert "cut as a stall" in text.split("## Reproduce")[0]


def test_readme_names_the_episode_cap_when_it_held_the_score(tmp_path):
    capped = dict(PONG_HL, max_episode_frames=12_000)
    rows = [row(1, scores=[9.0], lengths=[12_000], truncated=["time_limit"], env_steps=12_000, cumulative_env_steps=22_000,
                protocol_settings=capped),
            row(2, role="finish", scores=[9.0] * 3, lengths=[12_000] * 3, truncated=["time_limit"] * 3, env_steps=36_000,
                cumulative_env_steps=58_000, protocol_settings=capped)]  # fmt: skip
    text = readme(fake_run(tmp_path, rows), summary("budget spent", best=9.0), [])
    capped_line = next(line for line in text.splitlines() if line.startswith("- **What capped it:**"))
    assert "12,000-frame episode cap" in capped_line and "1 of 1 on dev seeds" in capped_line and "3 of 3 on holdout seeds" in capped_line


# -- hs/NOTES.md ------------------------------------------------------------------------------------


def git_log(hs: Path) -> list[str]:
    return subprocess.run(["git", "log", "--format=%s"], cwd=hs, capture_output=True, text=True, check=True).stdout.splitlines()


def test_notes_are_not_a_stub_when_nothing_was_accepted(tmp_path):
    rows = [row(1, status="failed", failure="ZeroDivisionError", env_steps=100, cumulative_env_steps=100)]
    ctx = fake_run(tmp_path, rows)
    readme(ctx, summary("budget spent: no policy scored, so there is no holdout to run", best=None), [])
    notes = (ctx.run_dir / "hs" / "NOTES.md").read_text()
    assert "## How the run ended" in notes and "Nothing was accepted" in notes and "Why it stopped: budget spent" in notes
    assert git_log(ctx.hs.path)[0] == "Notes: how the run ended" and not ctx.hs.dirty()
    readme(ctx, summary("budget spent: no policy scored, so there is no holdout to run", best=None), [])  # written again: replaced
    assert (ctx.run_dir / "hs" / "NOTES.md").read_text().count("## How the run ended") == 1


def test_notes_an_llm_notes_keeper_wrote_are_left_alone(tmp_path):
    ctx = fake_run(tmp_path, stalled_run_rows(), brains={"notes_keeper": "llm"})
    ctx.hs.write({"NOTES.md": "# Notes\n\n## Iteration 1: track the ball\n"})
    ctx.hs.commit("Notes: the model's")
    readme(ctx, summary("budget spent"), [])
    assert (ctx.run_dir / "hs" / "NOTES.md").read_text() == "# Notes\n\n## Iteration 1: track the ball\n"


def test_the_notes_keeper_writes_every_accepted_change_it_missed(tmp_path):
    from agents.roles.notes_keeper import notes_keeper

    ctx = fake_run(tmp_path, [])
    history = [dict(iteration=1, direction="intercept controller", outcome="accepted", trial=2, score=4.0),
               dict(iteration=2, direction="lead less", outcome="accepted", trial=5, score=9.0),
               dict(iteration=3, direction="lead more", outcome="rejected", trial=6, score=1.0),
               dict(iteration=4, direction="aim lower", outcome="accepted", trial=7, score=12.0)]  # fmt: skip
    best = dict(score=12.0, trial=7, env_steps=50_000, commit="x")
    notes_keeper({"best": best, "history": history, "diagnosis": {"what": "a point lost"}}, ctx)
    notes = (ctx.run_dir / "hs" / "NOTES.md").read_text()
    for header in ("## Iteration 1: intercept controller", "## Iteration 2: lead less", "## Iteration 4: aim lower"):
        assert notes.count(header) == 1, header
    assert "lead more" not in notes and "- score 12 (trial 7, 50,000 env steps into the run)" in notes


# -- probe.md ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("game, axes", [("pong", "moves along y (up and down), not along x"),
                                        ("breakout", "moves along x (left and right), not along y")])  # fmt: skip
def test_probe_md_says_how_the_player_moves_in_words(tmp_path, game, axes):
    from probe.atari.markdown import write_markdown
    from probe.atari.report import ProbeReport

    report = ProbeReport.model_validate_json((PROJECT_ROOT / "tests" / "fixtures" / "probes" / f"{game}.json").read_text())
    text = write_markdown(report, tmp_path / "probe.md").read_text()
    assert f"The player {axes}." in text
    assert "True" not in text and "False" not in text


# -- plots and their captions -------------------------------------------------------------------------


def test_the_sample_efficiency_png_spans_the_run_and_draws_the_holdout_apart(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from record.ledger import plot_sample_efficiency

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    plot_sample_efficiency(stalled_run_rows(), tmp_path / "se.png", "Pong")
    (ax,) = figures[0].axes
    assert ax.get_xlim()[0] == 0 and ax.get_xlim()[1] >= 310_000  # step 0 to the run's last, not a close-up
    assert ax.xaxis.get_offset_text().get_text() == ""  # plain step counts, no "1e5" offset
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "best policy on holdout seeds" in labels and "min-max over its episodes" not in labels  # one dev episode per trial
    best_line = next(line for line in ax.get_lines() if line.get_label() == "running best (dev)")
    assert max(best_line.get_ydata()) == 15.0  # the holdout is not a dev trial in the running best


def test_the_run_plot_caption_names_only_what_is_drawn():
    from graph.report.plots import sample_efficiency_caption, sample_efficiency_plot

    rows = stalled_run_rows()
    caption = sample_efficiency_caption(rows)
    assert "green diamond" in caption and "no bars" in caption and "grey bands" in caption
    no_holdout = [r for r in rows if r.role != "finish"]
    caption = sample_efficiency_caption(no_holdout)
    assert "no holdout score, so no diamond" in caption and "green diamond" not in caption
    script, _ = sample_efficiency_plot(no_holdout, "t")
    assert "best policy on holdout seeds" not in script and "over its episodes" not in script
    spread = rows + [row(4, scores=[1.0, 5.0, 9.0], lengths=[10] * 3, env_steps=30, cumulative_env_steps=310_030)]
    assert "vertical bars: min\u2013max" in sample_efficiency_caption(spread)
    script, _ = sample_efficiency_plot(spread, "t")
    assert "over its episodes" in script and '"bounds":[0,' in script  # x from step 0


def test_no_empty_bokeh_figures(caplog):
    from graph.report.plots import sample_efficiency_plot, suite_plot

    with caplog.at_level(logging.WARNING):
        assert sample_efficiency_plot([], "t")[0] == ""
        assert sample_efficiency_plot([row(1, status="budget_stop", env_steps=5)], "t")[0] == ""
        script, div = suite_plot([dict(game="Nope", obs="ram", protocol="hl", steps=10, curve=[], game_spec=None)])
    assert "MISSING_RENDERERS" not in caplog.text


def test_the_suite_curve_of_a_short_run_is_marked_not_a_stub():
    from bokeh.models import GlyphRenderer, Scatter, Step
    from bokeh.plotting import figure

    from envs.atari.games import resolve_game
    from graph.report.plots import _suite_medians

    pong = resolve_game("pong")
    fig = figure(x_axis_type="log")
    _suite_medians(fig, [dict(game="Pong", obs="ram", protocol="hl", steps=60_000, curve=[(55_000, 3.0)], game_spec=pong)])
    glyphs = [r.glyph for r in fig.renderers if isinstance(r, GlyphRenderer)]
    step = next(g for g in glyphs if isinstance(g, Step))
    marks = next(r for r in fig.renderers if isinstance(r.glyph, Scatter))
    assert step.mode == "after"
    assert list(marks.data_source.data["x"]) == [55_000, 60_000]  # where it got, and how far it went


# -- the run report's sections ------------------------------------------------------------------------


def report_run(tmp_path: Path, history: list[dict], records: list | None = None, rows: list | None = None):
    from graph.report.run_page import Run

    run_dir = tmp_path / "pong" / "ram" / "r"
    (run_dir / "diagnoses").mkdir(parents=True, exist_ok=True)
    trace = dict(rows=rows or [], records=records or [], entries=[], damage=[])
    return Run(run_dir, trace, {"game": "Pong", "obs_mode": "ram", "protocol": "hl"}, {}, history, [])


def test_identical_iterations_are_one_row_with_a_count(tmp_path):
    from graph.report.run_page import iterations_section

    history = [dict(iteration=1, direction="intercept", outcome="accepted", trial=2, score=7.0, delta=0.0)]
    history += [dict(iteration=i, direction="tuned parameters: no change", outcome="rejected", trial=43, score=7.0, delta=0.0)
                for i in range(2, 8)]  # fmt: skip
    history += [dict(iteration=8, direction="lead less", outcome="rejected", trial=50, score=1.0, delta=-6.0)]
    html = iterations_section(report_run(tmp_path, history))
    assert html.count("<tr>") == 1 + 3  # header, then three rows
    assert "2–7" in html and "×6" in html and html.count("tuned parameters: no change") == 1


def test_failure_sheets_one_per_kind_of_failure(tmp_path):
    from graph.report.run_files import failure_sheets

    run = report_run(tmp_path, [])
    for i, what in enumerate(["reward stall of 6870 steps from step 1096", "0 lives and 1 points lost (at steps [4618])",
                              "reward stall of 3501 steps from step 0", "0 lives and 2 points lost (at steps [498, 878])"]):  # fmt: skip
        (run.dir / "diagnoses" / f"iteration-{i:03d}.md").write_text(
            f"# Diagnosis, iteration {i}\n\n- **What failed:** {what}\n- **Evidence:** contact sheet sheets/s{i}.png\n")
    sheets = failure_sheets(run.dir, [])
    assert [s for s, _ in sheets] == ["sheets/s3.png", "sheets/s2.png"]  # the newest of each kind
    assert "the same kind of failure 1 more time: iteration-001" in sheets[0][1]


def test_memory_facts_read_as_words_not_cut_json():
    from graph.report.run_files import readable

    value = {"controller": "intercept", "features": ["fire_to_serve"], "params": {"aim_offset": 0.0, "deadband": 2.0, "lead": 0.75},
             "score": 9.0, "actions": [{"dx": 0.0}] * 6, "note": "a very long sentence " * 30}  # fmt: skip
    text = readable(value)
    assert text.startswith("controller intercept · features fire_to_serve · params aim_offset 0, deadband 2, lead 0.75 · score 9")
    assert "actions (6 items)" in text and text.endswith(" …") and "{" not in text and '"' not in text
    assert len(text) <= 230


def test_costs_count_the_holdout_once(tmp_path):
    from graph.report.run_page import costs_section

    rows = [dict(node="holdout", seconds=10.0, env_steps=36_000, tokens=0, cost_usd=0.0, events=[])]
    records = [row(9, role="finish", scores=[9.0], lengths=[12_000], env_steps=36_000, cumulative_env_steps=120_000)]
    html = costs_section(report_run(tmp_path, [], records, rows))
    assert "finish (holdout)" not in html and html.count("36,000") == 1


def test_the_finish_phases_hang_off_end_in_the_graph():
    from graph.report.graph_svg import graph_svg, path_counts

    rows = [dict(node=n, status="end") for n in ("prober", "policy_writer", "evaluate", "decide", "holdout", "report")]
    nodes, edges = path_counts(rows, finished=True)
    assert ("decide", "__end__") in edges and ("__end__", "holdout") in edges and ("holdout", "report") in edges
    assert ("decide", "holdout") not in edges and nodes["holdout"] == 1
    assert 'data-node="report"' in graph_svg(rows, True)


# -- command lines ------------------------------------------------------------------------------------


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)


def test_report_help_is_whole_and_every_option_explained(tmp_path):
    out = cli("graph.report", "--help").stdout
    description = out.split("\n\n")[1]
    assert description.rstrip().endswith("with no network.") and "(`report.html` in the\n\n" not in out
    assert "--runs-dir RUNS_DIR  where to look a run id up" in out
    from tools.evaluate import build_parser

    silent = [a.option_strings for a in build_parser()._actions if not a.help]
    assert silent == []


def test_a_report_of_a_run_with_no_score_prints_no_bokeh_warning(tmp_path):
    run_dir = tmp_path / "pong" / "ram" / "empty"
    run_dir.mkdir(parents=True)
    (run_dir / "trials.jsonl").write_text(json.dumps(json.loads(row(0, status="budget_stop", env_steps=5).model_dump_json())) + "\n")
    proc = cli("graph.report", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "MISSING_RENDERERS" not in proc.stderr + proc.stdout
    assert "nothing to plot" in (run_dir / "report.html").read_text()
