"""Protocol presets reach EnvPool exactly as DESIGN.md defines them, and behave as claimed."""

import json

import numpy as np
import pytest

from conftest import policy
from envs.atari.games import resolve_game
from envs.atari.protocols import MAX_EPISODE_FRAMES, PROTOCOLS, UnknownProtocolError, get_protocol
from evaluation.evaluate import evaluate
from envs.atari import make_env


def _config(protocol):
    env = make_env("Pong-v5", protocol, [0])
    config = env.spec.config
    env.close()
    return config


def test_hl_settings_reach_envpool():
    c = _config(PROTOCOLS["hl"])
    assert (c.frame_skip, c.noop_max, c.repeat_action_probability) == (1, 1, 0.0)
    assert c.use_fire_reset and not c.episodic_life and not c.reward_clip and not c.full_action_space
    assert (c.img_height, c.img_width, c.gray_scale, c.stack_num) == (210, 160, False, 1)
    # EnvPool counts env steps: at frame_skip 1 the cap must be the full 108,000 frames.
    assert c.max_episode_steps == MAX_EPISODE_FRAMES == 108_000


def test_ale_v5_settings_reach_envpool():
    c = _config(PROTOCOLS["ale-v5"])
    assert (c.frame_skip, c.repeat_action_probability) == (4, 0.25)
    assert not c.use_fire_reset and not c.episodic_life and not c.reward_clip
    assert c.max_episode_steps * c.frame_skip == 108_000


def test_frame_cap_is_in_frames_not_steps():
    assert PROTOCOLS["ale-v5"].with_frame_cap(4000).max_episode_steps == 1000
    assert PROTOCOLS["hl"].with_frame_cap(4000).max_episode_steps == 4000


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(UnknownProtocolError, match="hl, ale-v5"):
        get_protocol("v4")


def _ram_after(protocol, seed, steps=400):
    env = make_env("Breakout-v5", protocol, [seed])
    env.reset()
    for t in range(steps):
        *_, info = env.step(np.array([(t * 7) % 4], dtype=np.int32))
    return info["ram"][0]


def test_hl_is_the_same_game_whatever_the_seed_and_ale_v5_is_not():
    hl, ale = PROTOCOLS["hl"], PROTOCOLS["ale-v5"]
    assert np.array_equal(_ram_after(hl, 0), _ram_after(hl, 12345))
    assert not np.array_equal(_ram_after(ale, 0), _ram_after(ale, 12345))
    # ...but each ale-v5 seed is reproducible.
    assert np.array_equal(_ram_after(ale, 7), _ram_after(ale, 7))


def test_every_trial_records_its_protocol(run_dir):
    record = evaluate(policy("noop"), "pong", run_dir, protocol="ale-v5", episodes=1, max_frames=2000)
    assert record.protocol == "ale-v5"
    assert record.protocol_settings["frame_skip"] == 4
    assert record.protocol_settings["repeat_action_probability"] == 0.25
    assert record.frames == record.env_steps * 4
    row = json.loads((run_dir / "trials.jsonl").read_text().splitlines()[-1])
    assert row["protocol_settings"]["max_episode_frames"] == 2000


def test_hl_frames_include_the_fire_reset_frame(run_dir):
    record = evaluate(policy("noop"), resolve_game("pong"), run_dir, episodes=2, max_frames=500)
    assert record.lengths == [500, 500] and record.truncated == ["time_limit", "time_limit"]
    assert record.frames == 2 * 500 + 2
