"""The screen-route structure: a cell-archive search whose cells are the shrunk screen plus the
score (tools/screen_cells.py), and the policy that follows its best trajectory
(agents/controllers/atari/screen_route.py). Real ale-py and EnvPool, small budgets; Alien,
a game whose probe finds no RAM byte for the player, so the route structure cannot run.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from agents.controllers import default_params
from agents.controllers.atari import screen_route
from envs.atari.games import resolve_game
from envs.atari.protocols import PROTOCOLS
from evaluation.rollout import run_episodes
from record.meter import StepMeter
from tools.explore import Emulator, affordable, search_route
from tools.screen_cells import CALIBRATION_FRAMES, GRIDS, ScreenCells, screen_cell

ALIEN = resolve_game("alien")
FACTS = {"action_names": ALIEN.action_meanings(), "distinct_actions": list(range(len(ALIEN.action_meanings())))}


@pytest.fixture(scope="module")
def alien_search():
    """One small deterministic search under hl over screen cells."""
    meter = StepMeter(budget=20_000)
    result = search_route(ALIEN, "hl", meter, {}, max_steps=20_000, seed=3, cells=ScreenCells())
    return result, meter


def _write_hs(folder, result, features):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / screen_route.ROUTE_FILE).write_text(screen_route.write_route_module(result, FACTS))
    (folder / "policy.py").write_text(screen_route.write_policy(default_params(screen_route), features, FACTS, "test"))
    return folder / "policy.py"


def test_the_search_charges_every_step_it_emulated_calibration_included(alien_search):
    result, meter = alien_search
    assert result.steps_used == meter.used_steps == meter.steps_by_kind["search"] == result.emulated_steps <= 20_000
    assert meter.used_frames == result.emulated_frames
    assert result.steps_used > CALIBRATION_FRAMES  # the calibration is on the meter too
    assert tuple(result.cell_shape) in GRIDS and result.score > 0 and result.cells > 10
    assert [r.cell for r in result.records[:3]] != [None] * 3  # the route records its cells


@pytest.mark.parametrize("features", [set(), {"resync", "play_on"}])
def test_the_policy_replays_the_searched_score_in_envpool_under_hl(alien_search, tmp_path, features):
    """Under hl every episode is the same game: the follower scores what the search found
    (with or without re-synchronising: the cells always match), whatever the seed."""
    result, _ = alien_search
    policy = _write_hs(tmp_path / "hs", result, features)
    sys.path.insert(0, str(policy.parent))
    try:
        cap = PROTOCOLS["hl"].with_frame_cap(len(result.actions) + 1)
        episodes = run_episodes(policy, ALIEN, cap, "ram", [5, 6])
    finally:
        sys.path.remove(str(policy.parent))
        sys.modules.pop("screen_route", None)
    assert [e.score for e in episodes] == [result.score, result.score]


def test_envpool_frames_give_the_cells_the_search_recorded(alien_search, tmp_path):
    """The policy computes cells from obs.rgb, the search from ale-py's screen: the same."""
    import envpool

    result, _ = alien_search
    env = envpool.make(ALIEN.task_id, env_type="gymnasium", num_envs=1, **PROTOCOLS["hl"].envpool_kwargs())
    obs, _ = env.reset()
    shape = tuple(result.cell_shape)
    for step, action in enumerate(result.actions[:300]):
        assert screen_cell(obs[0].transpose(1, 2, 0), *shape) == result.records[step].cell
        obs, *_ = env.step(np.array([action]))


def test_a_late_game_is_followed_from_the_step_its_screen_shows(alien_search, tmp_path):
    """Sticky actions make the game run a step late: the frame of step k arrives again when
    step k + 1 is expected. The follower with `resync` plays step k's action again (and then
    goes on from k + 1); without it, it plays k + 1 blindly."""
    result, _ = alien_search
    emu = Emulator(ALIEN, PROTOCOLS["hl"])
    emu.reset()
    frames = []
    for action in result.actions[:200]:
        frames.append(emu.ale.getScreenRGB().copy())
        emu.step(action)
    # A step whose cell differs from the next step's and whose action differs too.
    k = next(i for i in range(20, 199) if result.records[i].cell != result.records[i + 1].cell
             and result.actions[i] != result.actions[i + 1])  # fmt: skip
    played = {}
    for features in ({"resync"}, set()):
        policy_path = _write_hs(tmp_path / "-".join(sorted(features) or ["none"]), result, features)
        sys.path.insert(0, str(policy_path.parent))
        try:
            namespace = {"__name__": "policy_under_test"}
            exec(compile(policy_path.read_text(), str(policy_path), "exec"), namespace)
        finally:
            sys.path.remove(str(policy_path.parent))
            sys.modules.pop("screen_route", None)
        policy = namespace["Policy"]()
        policy.reset(0)
        late = frames[: k + 1] + [frames[k]] + frames[k + 1 :]  # step k's screen twice
        played[frozenset(features)] = [policy.act(_Obs(f)) for f in late[: k + 3]]
    assert played[frozenset({"resync"})][k + 1] == result.actions[k]  # the screen says step k
    assert played[frozenset({"resync"})][k + 2] == result.actions[k + 1]  # and it goes on from there
    assert played[frozenset()][k + 1] == result.actions[k + 1]  # the count alone runs ahead


class _Obs:
    def __init__(self, rgb):
        self.rgb = rgb


def test_calibration_refines_the_grid_when_the_screen_hardly_changes():
    """A bowling alley barely changes at the coarsest scale; a busy screen keeps it."""
    grids = {}
    for game in ("bowling", "alien"):
        emu = Emulator(resolve_game(game), PROTOCOLS["hl"])
        cells, steps = ScreenCells().calibrate(emu, seed=0)
        assert steps == emu.steps >= CALIBRATION_FRAMES + 1  # the reset step(s) and the play, to be charged
        assert cells == ScreenCells().calibrate(Emulator(resolve_game(game), PROTOCOLS["hl"]), seed=0)[0]  # seeded
        grids[game] = GRIDS.index(cells.shape)
    assert grids["alien"] == 0 and grids["bowling"] > 2


def test_a_continued_search_keeps_the_scale_its_archive_was_made_at(tmp_path):
    """A first search too small to calibrate keeps the default grid; a longer continuation
    (the critic's "search" direction) goes on with that archive instead of calibrating anew
    (Bowling calibrates to a finer grid, and the archive's cells would not match)."""
    bowling, archive = resolve_game("bowling"), tmp_path / "archive"
    first = search_route(bowling, "hl", StepMeter(budget=3_000), {}, max_steps=3_000, archive_path=archive, cells=ScreenCells())
    assert tuple(first.cell_shape) == ScreenCells().shape
    meter = StepMeter(budget=20_000)
    more = search_route(bowling, "hl", meter, {}, max_steps=20_000, archive_path=archive, cells=ScreenCells())
    assert tuple(more.cell_shape) == ScreenCells().shape and more.cells >= first.cells
    assert meter.used_steps == more.steps_used <= 20_000  # no calibration was played


@pytest.mark.parametrize("room, wanted, best, cell, expected", [
    (1_000, 100, 50, 10, 100),  # plenty of room
    (120, 100, 103, 6, 16),  # the replay of the current best (103 + reset) leaves 16
    (120, 100, 10, 5, 57),  # a new best of 5 + 57 steps still leaves its replay
    (100, 100, 150, 5, 0),  # the current best's replay alone does not fit
])  # fmt: skip
def test_an_exploration_always_leaves_room_for_the_final_replay(room, wanted, best, cell, expected):
    allowed = affordable(room, wanted, best, cell)
    assert allowed == expected
    assert allowed == 0 or allowed + max(best, cell + allowed) + 1 <= room
