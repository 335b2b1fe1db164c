"""Game names resolve the way people type them; unknown names fail with close matches."""

import csv

import pytest

from conftest import SHARED_DATA
from envs.atari.games import REFERENCE_CSV, UnknownGameError, atari57, resolve_game


@pytest.mark.parametrize(
    "typed, task_id",
    [
        ("montezuma", "MontezumaRevenge-v5"),
        ("MontezumaRevenge", "MontezumaRevenge-v5"),
        ("space-invaders", "SpaceInvaders-v5"),
        ("Space Invaders", "SpaceInvaders-v5"),
        ("Breakout-v5", "Breakout-v5"),
        ("ALE/Pong-v5", "Pong-v5"),
        ("BreakoutNoFrameskip-v4", "Breakout-v5"),
        ("up_n_down", "UpNDown-v5"),
        ("pitfall", "Pitfall-v5"),  # exact name wins over the Pitfall2 prefix
        ("adventure", "Adventure-v5"),  # an ALE game outside Atari57
    ],
)
def test_resolves_typed_names(typed, task_id):
    assert resolve_game(typed).task_id == task_id


@pytest.mark.parametrize(
    "typed, hint",
    [("brekout", "Breakout"), ("montesuma", "MontezumaRevenge"), ("space-invadres", "SpaceInvaders")],
)
def test_unknown_names_suggest_closest(typed, hint):
    with pytest.raises(UnknownGameError) as err:
        resolve_game(typed)
    message = str(err.value)
    assert "\n" not in message and f"unknown game {typed!r}" in message and hint in message


def test_ambiguous_prefix_is_refused():
    with pytest.raises(UnknownGameError):
        resolve_game("b")  # Bowling, Boxing, Breakout, ...


def test_atari57_metadata_matches_shared_reference():
    games = atari57()
    assert len(games) == 57
    source = SHARED_DATA / "atari57_reference.csv"
    rows = list(csv.DictReader(open(source if source.exists() else REFERENCE_CSV)))
    for row in rows:
        spec = resolve_game(row["game"])
        assert spec.random_score == float(row["random_score"]) and spec.human_score == float(row["human_score"])
    pong = resolve_game("pong")
    assert pong.hns(pong.human_score) == pytest.approx(1.0) and pong.hns(pong.random_score) == pytest.approx(0.0)
    assert resolve_game("adventure").hns(10) is None


def test_action_meanings_come_from_the_minimal_action_set():
    assert resolve_game("breakout").action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    assert len(resolve_game("montezuma").action_meanings()) == 18
