"""The builtin prober discovers actions, player, objects and RAM of a game it knows nothing about.

Every claim is checked against the game itself, not against numbers copied from a report:
movement labels against what the action names mean in Breakout (and what they are known to
mean in Pong, where RIGHT moves the paddle up), RAM maps by predicting positions in a fresh
rollout found by a separate, simpler detector, the lives byte against info["lives"], and the
step count against a counter wrapped around the envs the probe creates.

Budget policy under test (documented in probe/atari/): a spent meter raises BudgetExhausted
before any work; a budget that runs out midway gives a report with partial=True, never more
steps than the budget.
"""

import json

import numpy as np
import pytest

from probe.atari import metered_env, perturb
from envs.atari.games import resolve_game
from envs.atari.protocols import PROTOCOLS
from record.meter import BudgetExhausted, StepMeter
from probe.atari import ProbeConfig, ProbeReport, find_blobs, find_groups, probe_game
from envs.atari import make_env
from envs.atari.emulator import make_ale

BUDGET = 30_000


# ------------------------------------------------------------------------------------------
# Helpers: independent step counting, fresh rollouts, a deliberately simple player detector
# ------------------------------------------------------------------------------------------


class StepCounter:
    """Wraps the env factories the probe uses and counts every step taken through them."""

    def __init__(self):
        self.envpool_steps = 0
        self.ale_frames = 0

    def make_env(self, task_id, protocol, seeds, **kwargs):
        return _CountingEnv(make_env(task_id, protocol, seeds, **kwargs), len(seeds), self)

    def make_ale(self, rom, seed):
        return _CountingALE(make_ale(rom, seed), self)


class _CountingEnv:
    def __init__(self, env, n, counter):
        self._env, self._n, self._counter = env, n, counter

    def step(self, actions, env_id=None):
        self._counter.envpool_steps += self._n if env_id is None else len(env_id)
        return self._env.step(actions) if env_id is None else self._env.step(actions, env_id)

    def __getattr__(self, name):
        return getattr(self._env, name)


class _CountingALE:
    def __init__(self, ale, counter):
        self._ale, self._counter = ale, counter

    def act(self, *args):
        self._counter.ale_frames += 1
        return self._ale.act(*args)

    def __getattr__(self, name):
        return getattr(self._ale, name)


def run_probe(game_name: str, out_dir, obs_mode: str = "ram", config: ProbeConfig | None = None):
    """Probe a game with counting wrappers; returns (report, meter, counter)."""
    counter = StepCounter()
    meter = StepMeter(budget=BUDGET)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metered_env, "make_env", counter.make_env)
        mp.setattr(perturb, "make_ale", counter.make_ale)
        report = probe_game(resolve_game(game_name), out_dir, meter, obs_mode=obs_mode, config=config)
    return report, meter, counter


def fresh_rollout(task_id: str, num_actions: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (HWC), RAM and lives of a rollout the probe never saw: random actions held
    for random spells (another generator seed than the probe's), up to the episode's end."""
    rng = np.random.default_rng(seed)
    env = make_env(task_id, PROTOCOLS["hl"], [0])
    obs, info = env.reset()
    frames, rams, lives = [], [], []
    action, left = 0, 0
    for _ in range(steps):
        if left == 0:
            action, left = int(rng.integers(num_actions)), int(rng.integers(1, 40))
        left -= 1
        obs, _, terminated, truncated, info = env.step(np.array([action], dtype=np.int32))
        frames.append(obs[0].transpose(1, 2, 0))
        rams.append(info["ram"][0].copy())
        lives.append(int(info["lives"][0]))
        if terminated[0] or truncated[0]:
            break
    env.close()
    return np.stack(frames), np.stack(rams), np.asarray(lives)


def simple_player_positions(frames: np.ndarray, report: ProbeReport) -> np.ndarray:
    """The player's centre along its moving axis, by a detector that shares no code with the
    probe: pixels of the player's colour in the band where the player lives, split into runs
    along the moving axis; a frame counts only if exactly one run has the player's full length."""
    player = report.player
    assert report.player_moves_x != report.player_moves_y, "this detector handles one moving axis"
    colour = np.array(player.colour, dtype=np.uint8)
    mask = (frames == colour).all(axis=-1)  # (T, H, W)
    if report.player_moves_x:  # band of rows around the fixed y; runs along x
        lo, hi = int(player.y_range[0] - player.height), int(player.y_range[1] + player.height) + 1
        line, size = mask[:, lo:hi, :].any(axis=1), player.width
    else:  # band of columns around the fixed x; runs along y
        lo, hi = int(player.x_range[0] - player.width), int(player.x_range[1] + player.width) + 1
        line, size = mask[:, :, lo:hi].any(axis=2), player.height
    out = np.full(len(frames), np.nan)
    for t, row in enumerate(line):
        edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1
        full = [(s + e) / 2 for s, e in zip(starts, ends) if abs((e - s + 1) - size) <= 1]
        if len(full) == 1:
            out[t] = full[0]
    return out


def verify_ram_map(report: ProbeReport, label: str, seed: int) -> tuple[float, float, int]:
    """Predict the player's pixel position from the reported RAM byte in a fresh rollout;
    returns (median error, 90th percentile error, frames compared)."""
    fit = report.best_ram(label)
    frames, rams, _ = fresh_rollout(report.task_id, len(report.action_names), 1500, seed)
    seen = simple_player_positions(frames, report)
    ram = rams[:, fit.address].astype(float)
    if fit.lag:
        ram = np.concatenate([[np.nan], ram[:-1]])
    err = np.abs(fit.a * ram + fit.b - seen)
    err = err[~np.isnan(err)]
    return float(np.median(err)), float(np.percentile(err, 90)), err.size


def effect(report: ProbeReport, name: str):
    return report.actions[report.action_names.index(name)]


# ------------------------------------------------------------------------------------------
# Probes shared by the tests (one per game, each well under 30 s)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def breakout(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "breakout"
    report, meter, counter = run_probe("breakout", out)
    return report, meter, counter, out


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "pong"
    report, meter, counter = run_probe("pong", out)
    return report, meter, counter, out


# ------------------------------------------------------------------------------------------
# Blobs
# ------------------------------------------------------------------------------------------


def test_find_blobs_segments_one_colour_8_connected_components():
    keys = np.zeros((12, 12), dtype=np.int32)
    keys[1:3, 1:5] = 7  # a 2x4 bar
    keys[3, 5] = 7  # touches the bar diagonally: same blob
    keys[1:3, 6:8] = 9  # touches the bar's colour region but is another colour
    keys[8:11, 8:10] = 7  # far away: another blob of colour 7
    blobs = find_blobs(keys, ignore=keys == 0)
    found = sorted(zip(blobs.colour.tolist(), blobs.area.tolist(), blobs.x0.tolist(), blobs.y0.tolist()))
    assert found == [(7, 6.0, 8, 8), (7, 9.0, 1, 1), (9, 4.0, 6, 1)]
    big = int(np.argmax(blobs.area))
    ys, xs = np.nonzero(keys == 7)
    near = ys < 5
    assert blobs.cx[big] == pytest.approx(xs[near].mean()) and blobs.cy[big] == pytest.approx(ys[near].mean())


def test_find_groups_keeps_a_banded_sprite_whole():
    mask = np.zeros((20, 10), dtype=bool)
    mask[2:4, 2:7] = mask[6:8, 2:7] = mask[10:12, 2:7] = True  # red bands cut by 2-row belts
    mask[18, 2:7] = True  # 6 rows further down: a separate thing
    groups = find_groups(mask, colour=1)
    assert sorted(groups.area.tolist()) == [5.0, 30.0]


# ------------------------------------------------------------------------------------------
# Breakout
# ------------------------------------------------------------------------------------------


def test_breakout_movement_actions(breakout):
    report = breakout[0]
    right, left = effect(report, "RIGHT"), effect(report, "LEFT")
    assert right.dx > 0 and right.direction == "right"
    assert left.dx < 0 and left.direction == "left"
    assert report.movement.right == right.index and report.movement.left == left.index
    assert report.movement.up is None and report.movement.down is None
    assert effect(report, "NOOP").is_noop
    assert report.player_moves_x and not report.player_moves_y


def test_breakout_player_x_ram_predicts_the_paddle_in_a_fresh_rollout(breakout):
    report = breakout[0]
    fit = report.best_ram("player_x")
    assert fit is not None and abs(fit.r) > 0.95
    median, p90, n = verify_ram_map(report, "player_x", seed=123)
    assert n >= 300, f"only {n} frames with a clearly visible paddle"
    assert median <= 1.5 and p90 <= 3.0, (median, p90)


def test_breakout_ball_ram_found(breakout):
    report = breakout[0]
    assert_ball_ram_found(report)


def test_breakout_lives_byte_tracks_info_lives(breakout):
    report = breakout[0]
    assert report.lives is not None
    _, rams, lives = fresh_rollout(report.task_id, len(report.action_names), 3000, seed=7)
    assert lives[-1] < lives[0], "the check needs a rollout that loses lives"
    byte = rams[:, report.lives.address].astype(int)
    expected = np.array([report.lives.value_by_lives.get(int(n), -1) for n in lives])
    assert np.mean(byte == expected) >= 0.99
    assert np.array_equal(np.diff(byte) != 0, np.diff(lives) != 0), "the byte changes exactly when lives do"


def test_breakout_step_accounting(breakout):
    report, meter, counter, _ = breakout
    assert 0 < report.env_steps <= BUDGET
    assert counter.envpool_steps == report.envpool_steps > 0
    assert counter.ale_frames == report.ale_frames
    assert meter.used_steps == report.env_steps == counter.envpool_steps + counter.ale_frames
    assert meter.steps_by_kind["probe"] == report.env_steps
    assert not report.partial


def test_breakout_outputs(breakout):
    report, _, _, out = breakout
    loaded = ProbeReport.model_validate_json((out / "probe.json").read_text())
    assert loaded == report
    assert json.loads((out / "probe.json").read_text())["game"] == "Breakout"
    markdown = (out / "probe.md").read_text()
    for name in report.action_names:
        assert name in markdown
    assert str(report.best_ram("player_x").address) in markdown
    for image in report.images:
        assert (out / image).stat().st_size > 0
    assert {"objects.png", "actions.png"} <= set(report.images)


def test_probe_refuses_to_overwrite_before_spending(breakout):
    out = breakout[3]
    meter = StepMeter(budget=BUDGET)
    with pytest.raises(FileExistsError):
        probe_game(resolve_game("breakout"), out, meter)
    assert meter.used_steps == 0


# ------------------------------------------------------------------------------------------
# Pong
# ------------------------------------------------------------------------------------------


def test_pong_movement_actions(pong):
    report = pong[0]
    # Pong's names are misleading: RIGHT (2) moves our paddle up, LEFT (3) down.
    assert report.actions[2].dy < 0 and report.actions[2].direction == "up"
    assert report.actions[3].dy > 0 and report.actions[3].direction == "down"
    assert report.actions[2].name_matches_direction is False
    assert report.movement.up == 2 and report.movement.down == 3
    assert report.movement.left is None and report.movement.right is None
    assert effect(report, "FIRE").is_noop
    assert report.player_moves_y and not report.player_moves_x


def test_pong_player_y_ram_predicts_the_paddle_in_a_fresh_rollout(pong):
    report = pong[0]
    fit = report.best_ram("player_y")
    assert fit is not None and abs(fit.r) > 0.95
    median, p90, n = verify_ram_map(report, "player_y", seed=321)
    assert n >= 300, f"only {n} frames with a clearly visible paddle"
    assert median <= 1.5 and p90 <= 3.0, (median, p90)


def test_pong_ball_ram_found(pong):
    assert_ball_ram_found(pong[0])


def test_pong_has_no_lives_and_counts_its_steps(pong):
    report, meter, counter, _ = pong
    assert report.lives is None and report.lives_start == 0
    assert meter.used_steps == report.env_steps == counter.envpool_steps + counter.ale_frames > 0


def assert_ball_ram_found(report: ProbeReport) -> None:
    """A small, fast object (the ball) exists and one of its axes has a RAM byte with |r| > 0.9."""
    balls = [o for o in report.objects if o.area <= 16 and o.mean_speed >= 0.5]
    assert balls, [(o.name, o.area, o.mean_speed) for o in report.objects]
    best = max(abs(report.best_ram(label).r) for ball in balls for label in ball.labels if report.best_ram(label))
    assert best > 0.9


# ------------------------------------------------------------------------------------------
# Budget and modes
# ------------------------------------------------------------------------------------------


def test_spent_budget_raises_before_any_work(tmp_path):
    meter = StepMeter(budget=500, used_steps=500)
    with pytest.raises(BudgetExhausted):
        probe_game(resolve_game("breakout"), tmp_path / "p", meter)
    assert meter.used_steps == 500 and not (tmp_path / "p").exists()


def test_small_budget_gives_a_partial_report_within_budget(tmp_path):
    meter = StepMeter(budget=600)
    report = probe_game(resolve_game("breakout"), tmp_path / "p", meter)
    assert report.partial and report.notes
    assert 0 < meter.used_steps == report.env_steps <= 600
    assert ProbeReport.model_validate_json((tmp_path / "p" / "probe.json").read_text()) == report


def test_vision_mode_reads_no_ram(tmp_path):
    report, meter, counter = run_probe("pong", tmp_path / "v", obs_mode="vision", config=ProbeConfig(record_steps=1200))
    assert not report.ram_analysis and report.ram_fits == {} and report.lives is None
    assert report.room_candidates == [] and report.ale_frames == 0 == counter.ale_frames
    assert report.movement.up == 2 and report.movement.down == 3
    assert all(e.ram_bytes_changed == [] for e in report.actions)
    assert "RAM analysis skipped" in (tmp_path / "v" / "probe.md").read_text()
    assert meter.used_steps == report.env_steps == counter.envpool_steps


# ------------------------------------------------------------------------------------------
# Other games (slower; python -m pytest -m slow)
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_space_invaders(tmp_path):
    report, meter, _ = run_probe("space_invaders", tmp_path / "si")
    assert report.warmup_steps > 0  # the game ignores input at first
    assert effect(report, "RIGHT").dx > 0 and effect(report, "LEFT").dx < 0
    assert report.movement.fire is not None and effect(report, "FIRE").spawns_object
    assert abs(report.best_ram("player_x").r) > 0.95
    assert report.lives is not None
    assert meter.used_steps == report.env_steps <= BUDGET


@pytest.mark.slow
def test_montezuma(tmp_path):
    report, meter, _ = run_probe("montezuma", tmp_path / "mr")
    m = report.movement
    assert (m.left, m.right, m.up, m.down) == tuple(report.action_names.index(n) for n in ("LEFT", "RIGHT", "UP", "DOWN"))
    assert abs(report.best_ram("player_x").r) > 0.95 and abs(report.best_ram("player_y").r) > 0.95
    assert report.room_candidates and report.room_candidates[0].layout_change > 0.15
    assert report.lives is not None
    assert meter.used_steps == report.env_steps <= BUDGET
