"""The suite scoreboard and the TensorBoard export, from fake batch folders: real ledger rows
(record.ledger), summary.json files as graph.run writes them and a batch.json written with
graph.batch.manifest; no env step is taken."""

import csv
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT
from envs.registry import resolve_env
from graph.batch.manifest import BatchSettings, Cell, Manifest, write_manifest
from graph.report.scoreboard import aggregates, collect_runs, game_rows, write_scoreboard
from graph.report.stats import aggregate_with_ci, iqm, median
from record.ledger import Ledger, score_stats

PONG, BREAKOUT = resolve_env("pong"), resolve_env("breakout")


def make_run(batch: Path, game: str, obs: str, run_id: str, points: list, holdout=None, memory=0, summary=True,
             structure="intercept", protocol="hl", robust=None) -> Path:  # fmt: skip
    """A run folder: one dev row per (cumulative env steps, score) point (score None: a trial
    that failed), a finish row for the holdout (and one for the robustness check under
    ale-v5 when `robust` is given), config.json and summary.json."""
    spec = resolve_env(game)
    run_dir = batch / spec.slug / obs / run_id
    ledger = Ledger(run_dir / "trials.jsonl")
    base = dict(run_id=run_id, game=spec.name, protocol=protocol, obs_mode=obs)
    done = 0
    for steps, score in points:
        scores = [] if score is None else [score]
        ledger.append(**base, role="evaluate", split="dev", env_steps=steps - done, frames=steps - done, scores=scores,
                      status="ok" if scores else "failed", **score_stats(scores))  # fmt: skip
        done = steps
    if holdout is not None:
        ledger.append(**base, role="finish", split="holdout", env_steps=100, frames=100, scores=[holdout], **score_stats([holdout]))
        done += 100
    if robust is not None:
        ledger.append(**{**base, "protocol": "ale-v5"}, role="finish", kind="robustness", split="holdout", env_steps=100,
                      frames=400, scores=[robust], **score_stats([robust]))  # fmt: skip
        done += 100
    (run_dir / "config.json").write_text(json.dumps({"game": game, "obs_mode": obs, "protocol": protocol}))
    best = max((s for _, s in points if s is not None), default=None)
    if summary:
        (run_dir / "summary.json").write_text(json.dumps(dict(
            run_id=run_id, game=spec.name, obs_mode=obs, protocol=protocol, best_score=best,
            best_hns=spec.hns(best) if best is not None else None, env_steps_to_best=next((x for x, s in points if s == best), None),
            env_steps=done, frames=done, budget=100_000, holdout=f"{holdout} over 1 holdout episode" if holdout is not None else "none",
            holdout_score=holdout, structure=structure if best is not None else None, memory_at_start=memory,
            stop_reason="plateau", wall_seconds=10.0,
            **(dict(robustness_protocol="ale-v5", robustness_score=robust) if robust is not None else {}))))  # fmt: skip
    return run_dir


CELLS = [  # id, game, obs, repeat, state, error
    ("pong-ram-hl-1", "Pong", "ram", 1, "done", None),
    ("pong-ram-hl-2", "Pong", "ram", 2, "done", None),
    ("breakout-ram-hl-1", "Breakout", "ram", 1, "done", None),
    ("breakout-ram-hl-2", "Breakout", "ram", 2, "done", None),
    ("breakout-vision-hl-1", "Breakout", "vision", 1, "done", None),
    ("qbert-ram-hl-1", "Qbert", "ram", 1, "failed", "error: the probe found no player"),
    ("qbert-ram-hl-2", "Qbert", "ram", 2, "pending", None),
    ("pong-vision-hl-1", "Pong", "vision", 1, "running", None),
]


@pytest.fixture
def batch(tmp_path) -> Path:
    """Pong and Breakout done (repeat 2 started with memory), Breakout repeat 2 scored nothing,
    Qbert failed before its ledger and its repeat is pending, Pong vision is running."""
    b = tmp_path / "batch"
    make_run(b, "pong", "ram", "pong-ram-hl-1", [(1000, -21.0), (5000, -10.0), (20000, 3.0)], holdout=2.0, robust=-5.0)
    make_run(b, "pong", "ram", "pong-ram-hl-2", [(2000, -15.0), (30000, 9.0)], holdout=8.0, memory=5, robust=-3.0)
    make_run(b, "breakout", "ram", "breakout-ram-hl-1", [(3000, 5.0), (15000, 30.0)], holdout=25.0)
    make_run(b, "breakout", "ram", "breakout-ram-hl-2", [(3000, None)], memory=3)
    make_run(b, "breakout", "vision", "breakout-vision-hl-1", [(3000, 12.0)], holdout=10.0, structure="shooter")
    make_run(b, "pong", "vision", "pong-vision-hl-1", [(4000, 20.0)], summary=False)  # running: a ledger, no summary
    cells = [Cell(id=i, game=g, obs=o, protocol="hl", repeat=k, run_dir=f"{resolve_env(g).slug}/{o}/{i}", state=s, error=e)
             for i, g, o, k, s, e in CELLS]  # fmt: skip
    write_manifest(b, Manifest(settings=BatchSettings(games=["Pong", "Breakout", "Qbert"], obs=["ram", "vision"], protocols=["hl"]),
                               cells=cells))  # fmt: skip
    return b


# -- the statistics ----------------------------------------------------------------------------------


def test_iqm_and_median_on_known_numbers():
    assert iqm(list(range(1, 9))) == 4.5  # the mean of 3, 4, 5, 6
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == 4.5  # order does not matter
    assert iqm(list(range(1, 10))) == 5.0  # n=9: two cut from each end, mean of 3..7
    assert iqm([0, 0, 1, 1, 1, 1, 100, 100]) == 1.0  # the outliers are trimmed; the mean would be 25.5
    assert iqm([2.0, 4.0]) == 3.0  # fewer than 4 values: nothing to trim
    assert median([1, 2, 3, 10]) == 2.5
    with pytest.raises(ValueError):
        iqm([])


def test_bootstrap_intervals_contain_the_estimate_narrow_with_repeats_and_stay_within_games():
    # One run per game: nothing to resample within a game, so the interval is the point.
    point, low, high = aggregate_with_ci({"a": [np.array([0.2])], "b": [np.array([0.4])], "c": [np.array([0.9])]}, "median")
    assert (point, low, high) == (0.4, 0.4, 0.4)

    centres = np.linspace(0.1, 2.0, 8)

    def suite(repeats: int) -> dict:
        """Each game's runs spread alike (the same three offsets, repeated): only the count differs."""
        return {f"g{i}": [c + np.tile([-0.5, 0.0, 0.5], repeats // 3)] for i, c in enumerate(centres)}

    widths = {}
    for repeats in (3, 30):
        strata = suite(repeats)
        for stat in ("median", "iqm"):
            point, low, high = aggregate_with_ci(strata, stat)
            assert low <= point <= high, (stat, repeats, low, point, high)
            assert aggregate_with_ci(strata, stat) == (point, low, high)  # fixed seed: the same numbers every time
            widths[stat, repeats] = high - low
        assert aggregate_with_ci(strata, "iqm")[0] == pytest.approx(iqm([a[0].mean() for a in strata.values()]))
    assert widths["median", 30] < widths["median", 3] and widths["iqm", 30] < widths["iqm", 3]

    # Stratified: runs are drawn within their game, never across. Every run of a scores 1 and
    # of b 0, so every resample's per-game means are (1, 0): a pooled resample would vary.
    assert aggregate_with_ci({"a": [np.ones(10)], "b": [np.zeros(10)]}, "median") == (0.5, 0.5, 0.5)
    # Curves: one resample draws runs for the whole curve; bootstrapped in chunks of points, the same bands.
    curves = {f"g{i}": [np.cumsum(np.full((4, 10), 0.1 * i), axis=1) + np.arange(4)[:, None]] for i in range(5)}
    whole, chunked = aggregate_with_ci(curves, "iqm", chunk=64), aggregate_with_ci(curves, "iqm", chunk=3)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked)) and whole[0].shape == (10,)
    assert np.all(whole[1] <= whole[0]) and np.all(whole[0] <= whole[2])
    # Best input: per game the better mode's mean.
    assert aggregate_with_ci({"a": [np.array([0.1, 0.3]), np.array([0.5])], "b": [np.array([1.0]), np.array([0.0])]},
                             "median")[0] == pytest.approx(0.75)  # fmt: skip


# -- the scoreboard's numbers ---------------------------------------------------------------------------


def test_rows_per_game_obs_and_protocol(batch):
    rows = {(r["game"], r["obs"]): r for r in game_rows(collect_runs(batch))}
    assert set(rows) == {("Pong", "ram"), ("Pong", "vision"), ("Breakout", "ram"), ("Breakout", "vision"), ("Qbert", "ram")}
    pong = rows["Pong", "ram"]
    assert (pong["runs"], pong["runs_with_policy"], pong["best_score"], pong["mean_best_score"]) == (2, 2, 9.0, 6.0)
    assert pong["hns"] == pytest.approx((PONG.hns(3.0) + PONG.hns(9.0)) / 2)  # mean over runs of each run's best HNS
    assert pong["holdout_score"] == 5.0 and pong["holdout_hns"] == pytest.approx((PONG.hns(2.0) + PONG.hns(8.0)) / 2)
    assert pong["env_steps_to_best_median"] == 25_000 and pong["env_steps"] == 20_200 + 30_200 and pong["wall_seconds"] == 20.0
    assert (pong["structures"], pong["beats_random"], pong["published_hl_best_hl"]) == ("intercept", True, PONG.hl_ram_best_score)
    assert pong["published_hl_hns"] == 1.18 and pong["ppo2_hns"] == 1.17 and pong["notes"] == ""
    breakout = rows["Breakout", "ram"]
    assert breakout["hns"] == pytest.approx(BREAKOUT.hns(30.0) / 2)  # the run that scored nothing counts 0
    assert "1 of 2 runs produced no policy: breakout-ram-hl-2: no policy scored" in breakout["notes"]
    assert rows["Breakout", "vision"]["published_hl_best_hl"] == BREAKOUT.hl_vision_best_score
    qbert = rows["Qbert", "ram"]
    assert (qbert["runs"], qbert["best_score"], qbert["hns"], qbert["beats_random"]) == (1, None, 0.0, False)
    assert "qbert-ram-hl-1 failed: error: the probe found no player" in qbert["notes"] and "1 pending (not counted)" in qbert["notes"]
    running = rows["Pong", "vision"]
    assert running["runs"] == 0 and running["hns"] is None and "1 running (not counted)" in running["notes"]


def test_aggregates_over_all_runs_and_first_runs(batch):
    aggs = {(a["obs"], a["runs"]): a for a in aggregates(collect_runs(batch))}
    assert list(aggs) == [("ram", "all runs"), ("ram", "first runs"), ("vision", "all runs"), ("vision", "first runs"),
                          ("best input", "all runs"), ("best input", "first runs")]  # fmt: skip
    pong_mean, breakout_mean = (PONG.hns(3.0) + PONG.hns(9.0)) / 2, BREAKOUT.hns(30.0) / 2
    every = aggs["ram", "all runs"]
    assert (every["n_runs"], every["games"]) == (5, 3)  # the failed Qbert cell counts (0); the pending one does not
    assert every["median"] == pytest.approx(sorted([pong_mean, breakout_mean, 0.0])[1])
    assert every["iqm"] == pytest.approx((pong_mean + breakout_mean) / 3)  # three games: nothing trimmed
    assert every["median_low"] <= every["median"] <= every["median_high"] and every["iqm_low"] <= every["iqm"] <= every["iqm_high"]
    assert every["median_high"] > every["median_low"]  # two runs of a game differ: the interval has a width
    first = aggs["ram", "first runs"]  # the repeat-2 runs started with memory; the failed cell's memory is unknown
    assert (first["n_runs"], first["games"]) == (2, 2)
    assert first["median"] == pytest.approx((PONG.hns(3.0) + BREAKOUT.hns(30.0)) / 2)
    assert first["median_low"] == first["median"] == first["median_high"]  # one run per game
    assert first["hl_best_input_hns_median"] == pytest.approx((1.18 + 20.35) / 2)  # the published numbers on the same games
    best_input = aggs["best input", "all runs"]  # Breakout: the better of ram (mean 0.49) and vision (one run)
    assert best_input["median"] == pytest.approx(sorted([pong_mean, max(breakout_mean, BREAKOUT.hns(12.0)), 0.0])[1])


# -- the files ---------------------------------------------------------------------------------------


def test_write_scoreboard_writes_the_csv_the_markdown_and_the_curve(batch):
    (batch / "notes.txt").write_text("someone else's")
    paths = write_scoreboard(batch)
    assert {k: p.name for k, p in paths.items()} == {"csv": "suite.csv", "markdown": "suite.md", "curve": "suite_curve.png"}
    assert all(p.parent == batch for p in paths.values()) and (batch / "notes.txt").read_text() == "someone else's"

    with open(paths["csv"], newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [
        "game", "obs", "protocol", "runs", "runs_with_policy", "best_score", "mean_best_score", "hns", "holdout_score",
        "holdout_hns", "robustness_protocol", "robustness_score", "robustness_hns", "env_steps_to_best_median", "env_steps", "wall_seconds", "structures", "beats_random",
        "published_hl_best_hl", "published_hl_hns", "ppo2_hns", "cleanrl_envpool_ppo_hns", "notes"]  # fmt: skip
    assert [(r["game"], r["obs"], r["protocol"]) for r in rows] == [
        ("Breakout", "ram", "hl"), ("Breakout", "vision", "hl"), ("Pong", "ram", "hl"), ("Pong", "vision", "hl"), ("Qbert", "ram", "hl")]  # fmt: skip
    pong = rows[2]
    assert (pong["runs"], pong["best_score"], pong["mean_best_score"], pong["env_steps"], pong["beats_random"]) == ("2", "9", "6", "50400", "yes")
    # The hl policies on ale-v5 holdout seeds, beside their hl holdout (memorisation shows).
    assert (pong["holdout_score"], pong["robustness_protocol"], pong["robustness_score"]) == ("5", "ale-v5", "-4")
    assert rows[0]["robustness_score"] == "" and rows[0]["robustness_protocol"] == ""  # Breakout: no check recorded
    assert float(pong["hns"]) == pytest.approx((PONG.hns(3.0) + PONG.hns(9.0)) / 2, abs=1e-5)
    assert rows[4]["best_score"] == "" and "the probe found no player" in rows[4]["notes"]

    md = paths["markdown"].read_text()
    assert md.index("## Aggregates over Atari57 games") < md.index("## Per game") < md.index("## Runs that produced no policy")
    table = [line for line in md.splitlines() if line.startswith("| ram | hl | first runs |")]
    assert len(table) == 1 and "[" in table[0]  # the first-runs row, with its interval
    assert "a run that produced no policy (failed, or nothing scored) counts 0" in md and "memory_at_start 0" in md
    assert "- Qbert · ram · hl: qbert-ram-hl-1 failed: error: the probe found no player" in md
    assert "- Breakout · ram · hl: breakout-ram-hl-2: no policy scored" in md
    assert "qbert-ram-hl-2 (pending)" in md and "pong-vision-hl-1 (running)" in md
    assert "| Pong | ram | hl | 2 | 2 | 9 | 6 |" in md and "published HL best (hl)" in md

    from PIL import Image

    data = paths["curve"].read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(paths["curve"]) as im:
        im.verify()
    with Image.open(paths["curve"]) as im:
        assert im.size[0] > 600 and np.asarray(im.convert("L")).std() > 10  # a plot, not a blank image
    before = paths["csv"].read_bytes()
    assert write_scoreboard(batch)["csv"].read_bytes() == before  # regenerated whole, the same


def test_a_plain_runs_folder_and_older_runs(tmp_path):
    """No batch.json; a run without summary.json (killed, or older) is read from its ledger."""
    make_run(tmp_path, "pong", "ram", "old-run", [(1000, -20.0), (9000, -5.0)], holdout=-6.0, summary=False)
    (run,) = collect_runs(tmp_path)
    assert (run["state"], run["best"], run["to_best"], run["holdout"], run["steps"]) == ("unfinished", -5.0, 9000, -6.0, 9100)
    assert run["memory_at_start"] is None and "no summary.json" in run["notes"][0]
    paths = write_scoreboard(tmp_path)
    md = paths["markdown"].read_text()
    assert "| ram | hl | first runs | 0 | 0 | – |" in md  # memory at start unknown: not a first run
    assert all(p.exists() for p in paths.values())
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = write_scoreboard(empty)  # no runs at all: the files still say so
    assert "No counted run on an Atari57 game" in paths["markdown"].read_text() and paths["curve"].stat().st_size > 1000
    assert paths["csv"].read_text().count("\n") == 1  # the header only


def test_the_suite_page_shows_the_aggregates_the_scoreboard_and_the_iqm_band(batch):
    from bokeh.models import GlyphRenderer, Step, VAreaStep
    from bokeh.plotting import figure

    from graph.report import write_suite
    from graph.report.plots import _suite_medians

    text = write_suite(batch).read_text()
    for needle in ('id="suite-aggregates"', 'id="aggregates-table"', "first runs", "IQM HNS [95% CI]", 'id="suite-table"',
                   "published HL best (hl)", "CleanRL EnvPool PPO HNS", 'id="no-policy"', "the probe found no player",
                   "this suite, ram, hl: IQM, 95% band", "8 runs"):  # fmt: skip
        assert needle in text, needle
    fig = figure(x_axis_type="log")
    _suite_medians(fig, collect_runs(batch))
    glyphs = [r.glyph for r in fig.renderers if isinstance(r, GlyphRenderer)]
    bands = [r.data_source.data for r in fig.renderers if isinstance(r.glyph, VAreaStep)]
    assert len(bands) == 3 and sum(isinstance(g, Step) for g in glyphs) == 6  # ram, vision, best input: median and IQM each
    ram = fig.renderers[[isinstance(g, VAreaStep) for g in glyphs].index(True)]
    iqm_line = fig.renderers[fig.renderers.index(ram) + 1].data_source.data
    assert np.all(np.asarray(ram.data_source.data["y1"]) <= np.asarray(iqm_line["y"]) + 1e-12)
    assert np.all(np.asarray(iqm_line["y"]) <= np.asarray(ram.data_source.data["y2"]) + 1e-12)
    assert max(ram.data_source.data["x"]) == 30_200  # to the end of the group's longest run


# -- TensorBoard -------------------------------------------------------------------------------------


def read_events(path: Path) -> list:
    """TFRecord framing: u64 length, masked CRC32C of it, the Event proto, masked CRC32C of it."""
    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto.event_pb2 import Event

    def masked(data: bytes) -> int:
        x = crc32c(data) & 0xFFFFFFFF
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    data, i, events = path.read_bytes(), 0, []
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked(header)
        body = data[i + 12:i + 12 + length]
        assert struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] == masked(body)
        events.append(Event.FromString(body))
        i += 16 + length
    return events


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in read_events(path):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_export_reads_back_and_reexport_does_not_duplicate(batch):
    from graph.report.tensorboard import export_tensorboard

    out = export_tensorboard(batch)
    assert out == batch / "tensorboard"
    assert sorted(p.name for p in out.iterdir()) == ["breakout-ram-hl-1", "breakout-ram-hl-2", "breakout-vision-hl-1",
                                                     "pong-ram-hl-1", "pong-ram-hl-2", "pong-vision-hl-1"]  # fmt: skip
    pong = scalars(out / "pong-ram-hl-1")
    assert pong["score/dev"] == [(1000, -21.0), (5000, -10.0), (20000, 3.0)]
    assert pong["score/best"] == [(1000, -21.0), (5000, -10.0), (20000, 3.0)]
    assert [s for s, _ in pong["hns/best"]] == [1000, 5000, 20000]
    assert pong["hns/best"][-1][1] == pytest.approx(PONG.hns(3.0), abs=1e-6)
    assert pong["score/holdout"] == [(20100, 2.0)]
    assert pong["score/holdout_ale-v5"] == [(20200, -5.0)]  # the robustness check, a tag of its own
    assert pong["budget/env_steps"] == [(0, 1000.0), (1, 5000.0), (2, 20000.0), (3, 20100.0), (4, 20200.0)]
    nothing = scalars(out / "breakout-ram-hl-2")  # a failed trial: env steps, no score
    assert "score/dev" not in nothing and nothing["budget/env_steps"] == [(0, 3000.0)]

    (out / "pong-ram-hl-1" / "keep.txt").write_text("not ours")
    (earlier,) = (out / "pong-ram-hl-1").glob("events.out.tfevents.*")
    earlier.rename(earlier.with_name("events.out.tfevents.1000000000.earlier-export"))  # as if exported at another time
    export_tensorboard(batch)
    assert scalars(out / "pong-ram-hl-1") == pong  # replaced, not doubled
    assert len(list((out / "pong-ram-hl-1").glob("events.out.tfevents.*"))) == 1
    assert (out / "pong-ram-hl-1" / "keep.txt").read_text() == "not ours"


# -- the command line ---------------------------------------------------------------------------------


def report_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graph.report", *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT)  # fmt: skip


def test_report_suite_cli_writes_and_prints_every_file(batch, tmp_path):
    proc = report_cli("--suite", batch, "--tensorboard")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [Path(line).name for line in lines] == ["suite.html", "suite.csv", "suite.md", "suite_curve.png", "tensorboard"]
    assert all(Path(line).exists() for line in lines)

    missing = report_cli("--suite", tmp_path / "no-such-batch")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error:") and "no-such-batch" in missing.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "batch.json").write_text('{"something": "else"}')
    other = report_cli("--suite", tmp_path / "other")
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "not a graph.batch manifest" in other.stderr
