"""Failure detection over step traces (tools/diagnose.py), on traces written in the format
evaluation/rollout.py saves."""

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


def test_failure_kinds_come_most_telling_first_with_every_failure_the_episode_shows(tmp_path):
    from agents.roles.replay_critic import failure_kinds

    # Nothing happens for the whole timed-out episode: no ball in play, a stall and a timeout.
    idle = analyse_episode(write_trace(tmp_path / "idle.npz", [0] * 5000, [3] * 5000), seed=0, truncated="time_limit")
    assert [k for k, _ in failure_kinds(idle, set())] == ["serve", "stall", "timeout", "score"]
    # The serve feature already on: serving is no longer the explanation.
    assert [k for k, _ in failure_kinds(idle, {"fire_to_serve"})] == ["stall", "timeout", "score"]
    rewards = [0] * 100
    rewards[10] = 1
    died = analyse_episode(write_trace(tmp_path / "died.npz", rewards, [3] * 50 + [0] * 50), seed=0, truncated=None)
    kinds = failure_kinds(died, set())
    assert [k for k, _ in kinds] == ["lost"] and "at steps [50]" in kinds[0][1]
    fine = analyse_episode(write_trace(tmp_path / "fine.npz", rewards, [0] * 100), seed=0, truncated=None)
    assert [k for k, _ in failure_kinds(fine, set())] == ["none"]
    # The same point is a failure when the blind pattern baseline scored more.
    below = failure_kinds(fine, set(), floor=3)
    assert [k for k, _ in below] == ["score"] and "below the blind pattern baseline's 3" in below[0][1]
    # A game without lives that ends on its clock with no points: a failure, never "none".
    nothing = analyse_episode(write_trace(tmp_path / "nothing.npz", [0] * 100, [0] * 100), seed=0, truncated=None)
    assert [k for k, _ in failure_kinds(nothing, set())] == ["score"]
    # A long stretch without reward is a stall though the episode ended before the cap.
    late = [0] * 5000
    late[100] = 1
    quiet = analyse_episode(write_trace(tmp_path / "quiet.npz", late, [0] * 5000), seed=0, truncated=None)
    assert [k for k, _ in failure_kinds(quiet, set())] == ["stall"] and "4899 steps" in failure_kinds(quiet, set())[0][1]


def test_route_controller_blames_the_route_when_the_policy_scored_all_of_it(tmp_path):
    from agents.controllers.atari import route
    from agents.roles.replay_critic import failure_kinds

    (tmp_path / "route.py").write_text("FRAME_SKIP = 1\nSCORE = 100\nROUTE = []\n")
    assert route.route_score(tmp_path) == 100.0
    rewards = [0] * 5000
    rewards[300] = 100
    done = analyse_episode(write_trace(tmp_path / "done.npz", rewards, [5] * 5000), seed=0, truncated="time_limit")
    ordered = route.order_failures(failure_kinds(done, set()), done, tmp_path)
    assert ordered[0][0] == "timeout" and "route is over" in ordered[0][1]
    assert sorted(k for k, _ in ordered) == ["serve", "stall", "timeout"]  # nothing dropped
    # Scored less than the route: the following failed, the critic's order stands.
    rewards[300] = 0
    stuck = analyse_episode(write_trace(tmp_path / "stuck.npz", rewards, [5] * 5000), seed=0, truncated="time_limit")
    assert route.order_failures(failure_kinds(stuck, set()), stuck, tmp_path) == failure_kinds(stuck, set())
    assert route.route_score(tmp_path / "nowhere") is None
    # All of the route scored, then every life lost standing still (no frame cap): still the
    # route that falls short (MsPacman at 200k tuned the follower 24 times instead).
    rewards[300] = 100
    lives = [3] * 2000 + [2] * 1000 + [1] * 1000 + [0] * 1000
    died = analyse_episode(write_trace(tmp_path / "died.npz", rewards, lives), seed=0, truncated=None)
    ordered = route.order_failures(failure_kinds(died, set()), died, tmp_path)
    assert ordered[0][0] == "timeout" and "scored nothing more" in ordered[0][1]
    assert route.DIRECTIONS["timeout"][0][2].get("search"), "the route's answer: search further"
