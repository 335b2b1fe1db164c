"""Failure detection over step traces (tools/diagnose.py), on traces written in the format
tools/rollout.py saves."""

import numpy as np

from tools.diagnose import analyse_episode


def write_trace(path, rewards, lives, ram=None):
    arrays = dict(actions=np.zeros(len(rewards), np.int8), rewards=np.array(rewards, np.float32),
                  lives=np.array(lives, np.int8))  # fmt: skip
    if ram is not None:
        arrays["ram"] = ram
    np.savez_compressed(path, **arrays)
    return path


def test_lives_and_points_lost_are_found_at_their_steps(tmp_path):
    rewards = [0] * 100
    rewards[10], rewards[40] = 1, -1
    lives = [3] * 50 + [2] * 50
    f = analyse_episode(write_trace(tmp_path / "t.npz", rewards, lives), seed=0, truncated=None)
    assert f.lives_lost == 1 and f.points_lost == 1 and f.score == 0
    assert [(m.kind, m.step) for m in f.moments if m.kind in ("life_lost", "point_lost")] == [("life_lost", 50), ("point_lost", 40)]
    assert f.game_over_with_lives  # it ended (not truncated) with 2 lives left


def test_a_game_over_with_no_lives_left_or_a_cut_episode_is_not_an_early_end(tmp_path):
    path = write_trace(tmp_path / "t.npz", [0] * 10, [1] * 5 + [0] * 5)
    assert not analyse_episode(path, seed=0, truncated=None).game_over_with_lives
    path = write_trace(tmp_path / "u.npz", [0] * 10, [3] * 10)
    cut = analyse_episode(path, seed=0, truncated="time_limit")
    assert cut.timeout and not cut.game_over_with_lives


def test_a_periodic_ram_loop_and_a_reward_stall_are_found(tmp_path):
    period = 37
    cycle = np.random.default_rng(0).integers(0, 256, size=(period, 128), dtype=np.uint8)
    ram = np.concatenate([cycle] * 200)
    rewards = [0] * len(ram)
    rewards[5] = 1
    f = analyse_episode(write_trace(tmp_path / "t.npz", rewards, [3] * len(ram), ram), seed=0, truncated="time_limit")
    assert f.loop_period == period
    assert f.longest_stall == len(ram) - 6 and f.stall_start == 6
    assert {m.kind for m in f.moments} >= {"periodic_loop", "reward_stall", "timeout"}
