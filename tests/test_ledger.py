"""trials.jsonl is append-only and validated; a torn last line is detected, reported and kept."""

import csv

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from record.ledger import Ledger, TrialRecord, plot_sample_efficiency, score_stats, write_summary

BASE = dict(run_id="r1", game="Pong", protocol="hl", obs_mode="ram")


def _row(ledger, steps, scores=(1.0,), **kw):
    return ledger.append(**BASE, env_steps=steps, frames=steps, scores=list(scores), **score_stats(list(scores)), **kw)


def test_append_only_with_cumulative_counts(tmp_path):
    ledger = Ledger(tmp_path / "trials.jsonl")
    _row(ledger, 100)
    before = ledger.path.read_bytes()
    r = _row(ledger, 50, scores=(3.0, 1.0))
    assert ledger.path.read_bytes().startswith(before)  # earlier rows untouched
    assert (r.trial, r.cumulative_env_steps, r.score_mean, r.score_std) == (1, 150, 2.0, 1.0)
    assert [x.trial for x in ledger.records()] == [0, 1]


def test_schema_is_validated(tmp_path):
    ledger = Ledger(tmp_path / "trials.jsonl")
    with pytest.raises(ValidationError):
        ledger.append(**BASE, env_steps=-5)
    with pytest.raises(ValidationError):
        ledger.append(**BASE, not_a_field=1)
    with pytest.raises(ValidationError):
        TrialRecord(trial=0, timestamp="t", obs_mode="x-ray", **{k: v for k, v in BASE.items() if k != "obs_mode"})
    assert not ledger.path.exists() or ledger.path.read_bytes() == b""


def test_torn_last_line_is_reported_kept_and_answered(tmp_path):
    ledger = Ledger(tmp_path / "trials.jsonl")
    _row(ledger, 100)
    _row(ledger, 70)
    raw = ledger.path.read_bytes()
    ledger.path.write_bytes(raw[:-40])  # a kill in the middle of writing row 1
    contents = ledger.read()
    assert contents.torn_tail
    assert [d.line for d in contents.damage] == [2] and "torn" in contents.damage[0].reason
    assert [r.trial for r in contents.records] == [0]

    r = _row(ledger, 10)
    contents = ledger.read()
    assert not contents.torn_tail
    assert raw[:-40] in ledger.path.read_bytes()  # the torn line is still there, as found
    kinds = [(x.kind, x.env_steps) for x in contents.records]
    # The invalid row recovers the torn row's 70 steps, so cumulative counts stay honest.
    assert kinds == [("evaluation", 100), ("invalid", 70), ("evaluation", 10)]
    assert r.cumulative_env_steps == 180
    assert [d.line for d in contents.damage] == [2] and "invalid row" not in contents.damage[0].reason


def test_corrupt_middle_line_is_reported_not_dropped_silently(tmp_path):
    ledger = Ledger(tmp_path / "trials.jsonl")
    _row(ledger, 1)
    with open(ledger.path, "ab") as f:
        f.write(b'{"trial": "garbage"}\n')
    _row(ledger, 2)
    contents = ledger.read()
    assert [d.line for d in contents.damage] == [2] and contents.damage[0].reason.startswith("invalid row")
    assert [r.trial for r in contents.records] == [0, 1]


def test_summary_and_plot_regenerate_from_ledger(tmp_path):
    ledger = Ledger(tmp_path / "trials.jsonl")
    _row(ledger, 100, scores=(2.0,))
    ledger.append(**BASE, env_steps=30, frames=30, status="failed", failure="ValueError: x")
    _row(ledger, 100, scores=(1.0,))
    _row(ledger, 100, scores=(5.0, 7.0))
    records = ledger.records()
    write_summary(records, tmp_path / "summary.csv")
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert [r["best_so_far"] for r in rows] == ["2.0", "2.0", "2.0", "6.0"]
    assert [r["cumulative_env_steps"] for r in rows] == ["100", "130", "230", "330"]
    assert rows[1]["status"] == "failed" and rows[1]["failure"] == "ValueError: x"
    png = plot_sample_efficiency(records, tmp_path / "sample_efficiency.png", title="Pong")
    with Image.open(png) as image:
        assert image.size == (800, 450)
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # drawn
