"""The exploration controller: cell-archive search (tools/explore.py) and the closed-loop route
policy generated from it (agents/controllers/route.py). Real ale-py and EnvPool, small budgets.

Montezuma's RAM addresses are written out here instead of running the probe (10 s) in every
test; they are what `python -m probe.atari --game montezuma` reports (player x = ram[42],
y = ram[43], skull x = ram[47], room = ram[3], lives = ram[58]), and one test checks that
`route_facts_from_probe` builds this structure from a ProbeReport.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from agents.controllers import default_params
from agents.controllers.atari import route as route_controller
from envs.atari.games import resolve_game
from envs.atari.protocols import PROTOCOLS
from tools.explore import CellSpec, route_facts_from_probe, search_route
from record.meter import BudgetExhausted, StepMeter
from probe.atari import LivesByte, MovementLabels, ObjectInfo, ProbeConfig, ProbeReport, RamFit, RoomCandidate
from evaluation.rollout import run_episodes

MONTEZUMA = resolve_game("montezuma")
FACTS = {
    "ram": {
        "player_x": {"address": 42, "a": 0.9835, "b": 3.883, "r": 0.9998},
        "player_y": {"address": 43, "a": -0.9969, "b": 317.137, "r": -0.9999},
        "room": {"address": 3},
        "lives": {"address": 58},
        "objects": [
            {"name": "obj0", "axis": "x", "address": 47, "a": 1.0022, "b": 35.387, "r": 0.9997},
            {"name": "obj0", "axis": "y", "address": None, "a": 0.0, "b": 172.4, "r": None, "constant": True},
        ],
    },
    "movement": {"left": 4, "right": 3, "up": 2, "down": 5, "fire": None, "jump": 1},
    "action_names": MONTEZUMA.action_meanings(),
    "moves": [True, True],
}


@pytest.fixture(scope="module")
def hl_search(tmp_path_factory):
    """One small deterministic search under hl, shared by the replay and policy tests."""
    meter = StepMeter(budget=60_000)
    result = search_route(MONTEZUMA, "hl", meter, FACTS, max_steps=60_000, seed=1)
    return result, meter


def _write_hs(folder, result, params=None, features=None):
    folder.mkdir(parents=True, exist_ok=True)
    params = params or default_params(route_controller)
    features = route_controller.initial_features(FACTS) if features is None else features
    (folder / "detectors.py").write_text(route_controller.write_route_detectors(FACTS))
    (folder / "route.py").write_text(route_controller.write_route_module(result, FACTS))
    (folder / "policy.py").write_text(route_controller.write_policy(params, features, FACTS, "test"))
    return folder / "policy.py"


def _closest_approach(rams: np.ndarray, target) -> float:
    """Nearest the player came (px, same room) to the route's end point over an episode."""
    spec = CellSpec.from_facts(FACTS)
    best = np.inf
    for ram in rams:
        room, x, y = spec.position(ram)
        if room == target.room:
            best = min(best, float(np.hypot(x - target.x, y - target.y)))
    return best


# --- the search and the meter -----------------------------------------------------------------


def test_search_charges_exactly_the_steps_it_emulated():
    meter = StepMeter()
    result = search_route(MONTEZUMA, "ale-v5", meter, FACTS, max_steps=4_000)
    assert result.steps_used == meter.used_steps == meter.steps_by_kind["search"] == result.emulated_steps
    assert meter.used_frames == result.emulated_frames == result.frames_used
    assert 0 < result.steps_used <= 4_000
    assert result.stop_reason == "max_steps"
    assert len(result.records) == len(result.actions) + 1


def test_search_keeps_a_step_counter_and_a_killed_search_is_counted(tmp_path):
    from evaluation.evaluate import reconcile_interrupted
    from record.ledger import Ledger
    from evaluation.sandbox import read_step_counter

    meter = StepMeter()
    counter = tmp_path / "run" / "search" / "call" / "steps-0.counter"
    result = search_route(MONTEZUMA, "hl", meter, FACTS, max_steps=2_000, counter_path=counter)
    assert read_step_counter(counter) == result.steps_used == meter.used_steps
    # No ledger row names this call (as if the run was killed before writing it): on resume
    # its steps become an "invalid" row, so the cumulative total counts them.
    ledger = Ledger(tmp_path / "run" / "trials.jsonl")
    ledger.append(run_id="run", game="MontezumaRevenge", role="prober", kind="probe", protocol="hl", obs_mode="ram",
                  env_steps=100)  # fmt: skip
    added = reconcile_interrupted(tmp_path / "run")
    assert [(r.kind, r.env_steps, r.artifacts) for r in added] == [("invalid", result.steps_used, {"counter": "search/call"})]
    assert "search call was interrupted" in added[0].failure
    assert ledger.records()[-1].cumulative_env_steps == 100 + result.steps_used
    assert reconcile_interrupted(tmp_path / "run") == []  # counted once


def test_search_stops_cleanly_at_the_meter_allowance():
    meter = StepMeter(budget=3_000)
    result = search_route(MONTEZUMA, "hl", meter, FACTS, max_steps=1_000_000)
    assert result.stop_reason == "budget"
    assert meter.used_steps <= 3_000
    assert result.cells >= 1 and result.actions is not None
    with pytest.raises(BudgetExhausted):
        search_route(MONTEZUMA, "hl", StepMeter(budget=0), FACTS, max_steps=1_000)


def test_best_route_is_the_top_score_soonest_or_the_furthest_without_a_loss():
    """A pure rule on a hand-made archive: with points gained, the highest score reached in
    the fewest steps; in a game whose rewards are only penalties (nothing above the start),
    the longest trajectory that lost nothing, not the reset."""
    from tools.explore_archive import Archive, Cell

    def archive(*cells):
        return Archive(cells={(i,): Cell((i,), score, bytes(length), None, 3) for i, (score, length) in enumerate(cells)})

    assert archive((0, 0), (100, 50), (100, 40), (20, 90)).best().actions == bytes(40)
    assert archive((0, 0), (0, 70), (-1, 300), (0, 120), (-5, 900)).best().actions == bytes(120)
    assert archive((0, 0), (0, 30)).best().actions == bytes(30)


def test_archive_continues_from_disk_without_recharging(tmp_path):
    archive = tmp_path / "archive.pkl"
    first_meter = StepMeter()
    first = search_route(MONTEZUMA, "ale-v5", first_meter, FACTS, max_steps=3_000, archive_path=archive)
    assert archive.exists()
    second_meter = StepMeter()  # a new process would start with a fresh meter like this one
    second = search_route(MONTEZUMA, "ale-v5", second_meter, FACTS, max_steps=3_000, archive_path=archive)
    assert second_meter.used_steps <= 3_000  # the first call's steps are not charged again
    assert second.steps_total == first.steps_total + second_meter.used_steps
    assert second.cells >= first.cells
    assert second.score >= first.score

    # States that cannot be restored (another ale-py) are rebuilt from actions, and charged.
    data = pickle.loads(archive.read_bytes())
    data["meta"]["ale_py"] = "0.0.0"
    archive.write_bytes(pickle.dumps(data))
    rebuild_cost = sum(len(c["actions"]) + 1 for c in data["cells"])
    third_meter = StepMeter()
    search_route(MONTEZUMA, "ale-v5", third_meter, FACTS, max_steps=rebuild_cost + 500, archive_path=archive)
    assert third_meter.used_steps >= rebuild_cost


def test_found_trajectory_replays_exactly_in_envpool_under_hl(hl_search, tmp_path):
    result, _ = hl_search
    (tmp_path / "replay.py").write_text(
        "from route import ROUTE\n"
        "class Policy:\n"
        "    def reset(self, seed): pass\n"
        "    def act(self, obs): return ROUTE[obs.step][4] if obs.step < len(ROUTE) else 0\n"
    )
    (tmp_path / "route.py").write_text(route_controller.write_route_module(result, FACTS))
    episodes = run_episodes(tmp_path / "replay.py", MONTEZUMA, PROTOCOLS["hl"].with_frame_cap(len(result.actions) + 2),
                            "ram", [7], trace_dir=tmp_path / "trace")  # fmt: skip
    sys.path.remove(str(tmp_path))
    trace = np.load(tmp_path / "trace" / "7.npz")
    n = len(result.actions)
    assert episodes[0].length >= n
    assert float(trace["rewards"][:n].sum()) == result.score
    spec = CellSpec.from_facts(FACTS)
    seen = [spec.position(r) for r in trace["ram"][: n + 1]]  # RAM the policy saw before each action
    assert seen == [(r.room, pytest.approx(r.x, abs=0.01), pytest.approx(r.y, abs=0.01)) for r in result.records]
    assert list(trace["ram"][n]) == result.final_ram


def test_every_reset_of_the_search_emulator_is_a_fresh_envpool_reset():
    """In BeamRider a second reset_game() keeps 33 bytes of RAM from the game before, so a
    search that reset after its calibration found routes EnvPool never replays (440 in the
    search, 132 in evaluation). Every reset of the search's emulator is the first one's."""
    from envs.atari import make_env
    from tools.explore import Emulator

    game, protocol = resolve_game("beam_rider"), PROTOCOLS["hl"]
    env = make_env(game.task_id, protocol, [0])
    obs, info = env.reset()
    emu = Emulator(game, protocol)
    emu.reset()
    rng = np.random.default_rng(0)
    for _ in range(2000):
        emu.step(int(rng.integers(len(emu.actions))))
    emu.reset()
    assert emu.steps == 2002  # each reset is one env step, as EnvPool's is
    assert list(emu.ram()) == list(info["ram"][0])
    assert (emu.screen() == obs[0].transpose(1, 2, 0)).all()  # restoreState does not redraw: the first reset's screen


def test_route_facts_from_a_probe_report():
    def fit(label, address, a, b, lag=0, r=0.999):
        return RamFit(label=label, address=address, r=r, r_inliers=r, inliers=1.0, a=a, b=b, lag=lag, rmse=0.3, within_2px=1.0, n=100)

    skull = ObjectInfo(name="obj0", colour=[1, 2, 3], colour_hex="#010203", width=8, height=11, area=50,
                       instances_per_frame=1, visible_fraction=1, mean_speed=0.3, speed_p95=1,
                       x_range=[57, 107], y_range=[171.5, 173.3])  # fmt: skip
    report = ProbeReport(
        game="MontezumaRevenge", task_id="MontezumaRevenge-v5", protocol="hl", obs_mode="ram", seed=0,
        config=ProbeConfig(), action_names=["NOOP", "FIRE", "UP"], hold_steps=32, ram_analysis=True,
        movement=MovementLabels(left=4, right=3, up=2, down=5), player_moves_x=True, player_moves_y=True,
        objects=[skull],
        ram_fits={
            "player_x": [fit("player_x", 42, 0.98, 3.9, lag=1), fit("player_x", 96, 12, 76, r=0.57)],
            "player_y": [fit("player_y", 43, -1.0, 317, lag=1, r=-0.999)],
            "obj0_x": [fit("obj0_x", 47, 1.0, 35.4, lag=1)],
        },
        lives=LivesByte(address=58, f1=0.9, events=5, consistency=1.0),
        room_candidates=[RoomCandidate(address=9, n_values=3, changes=2, screen_change_agreement=0.2),
                         RoomCandidate(address=3, n_values=1, changes=0, layout_change=0.26)],
    )  # fmt: skip
    facts = route_facts_from_probe(report)
    ram = facts["ram"]
    assert (ram["player_x"]["address"], ram["player_y"]["address"]) == (42, 43)
    assert ram["room"] == {"address": 3} and ram["lives"] == {"address": 58}
    assert [(o["name"], o["axis"], o["address"]) for o in ram["objects"]] == [("obj0", "x", 47), ("obj0", "y", None)]
    assert ram["objects"][1]["b"] == pytest.approx(172.4)
    assert route_controller.suits(facts)
    CellSpec.from_facts(facts)  # the search accepts it


# --- the generated route policy ---------------------------------------------------------------


def test_generated_policy_runs_in_the_harness_and_follows_the_route(hl_search, tmp_path):
    from evaluation.evaluate import evaluate
    from evaluation.rollout import load_trace

    result, _ = hl_search
    policy = _write_hs(tmp_path / "hs", result)
    record = evaluate(policy, MONTEZUMA, tmp_path / "run", obs_mode="ram", protocol="hl", episodes=1,
                      max_frames=len(result.actions) + 60, workers=1)  # fmt: skip
    assert record.status == "ok", record.failure
    assert record.scores == [result.score]
    trace = load_trace(tmp_path / "run" / record.artifacts["traces"] / f"{record.seeds[0]}.npz")
    # Without perturbation the closed-loop policy plays the route exactly.
    assert list(trace["actions"][: len(result.actions)]) == result.actions


def test_route_policy_is_closed_loop(hl_search, tmp_path):
    """The player is first walked off the route (LEFT for 30 steps), then the policy plays: the
    route policy finds its way back from what it reads and gets to the route's end; the open-loop
    replay of the same actions (started after the push) does not."""
    result, _ = hl_search
    policy = _write_hs(tmp_path / "hs", result)
    push, left = 30, FACTS["movement"]["left"]
    wrapper = (
        "from policy import Policy as RoutePolicy\n"
        "from route import ROUTE\n"
        "class Policy:\n"
        "    def reset(self, seed):\n"
        "        self.inner = RoutePolicy(); self.inner.reset(seed)\n"
        "    def act(self, obs):\n"
        f"        if obs.step < {push}:\n"
        f"            return {left}\n"
        "        if MODE == 'closed':\n"
        "            return self.inner.act(obs)\n"
        f"        k = obs.step - {push}\n"
        "        return ROUTE[k][4] if k < len(ROUTE) else 0\n"
    )  # fmt: skip
    end = result.records[-1]
    approach = {}
    for mode in ("closed", "open"):
        path = policy.parent / f"{mode}.py"
        path.write_text(f"MODE = {mode!r}\n" + wrapper)
        proto = PROTOCOLS["hl"].with_frame_cap(3 * len(result.actions) + 400)
        run_episodes(path, MONTEZUMA, proto, "ram", [0], trace_dir=tmp_path / mode)
        approach[mode] = _closest_approach(np.load(tmp_path / mode / "0.npz")["ram"], end)
    sys.path.remove(str(policy.parent))
    # Within half a search cell of the route's end (a mid-air point: jump timing may differ),
    # and nearer than the open-loop replay gets.
    assert approach["closed"] <= result.cell_px / 2, approach
    assert approach["open"] > approach["closed"] + 4.0, approach


def test_controller_interface_and_generated_code():
    params = default_params(route_controller)
    assert set(params) == set(route_controller.PARAMS)
    assert route_controller.INT_PARAMS <= set(params)
    for kind, directions in route_controller.DIRECTIONS.items():
        for name, hypothesis, change in directions:
            assert set(change) <= {"params", "features", "search"}
            assert all(p in route_controller.PARAMS for p in change.get("params", {}))
            assert all(f[1:] in route_controller.FEATURES for f in change.get("features", set()))
    # A disabled feature leaves neither its code nor its parameters in policy.py.
    bare = route_controller.write_policy(params, set(), FACTS, "bare")
    assert "TIMED" not in bare and "hazard_tolerance" not in bare and "stall_frames" not in bare
    assert not route_controller.param_used("hazard_tolerance", set())
    full = route_controller.write_policy(params, set(route_controller.FEATURES), FACTS, "full")
    for name in params:
        assert f"{name!r}:" in full
    compile(full, "policy.py", "exec")
    compile(route_controller.write_route_detectors(FACTS), "detectors.py", "exec")


def test_after_the_route_the_follower_plays_on_with_held_random_actions(tmp_path):
    """Boxing at 200k: the search's route scored 20 in its 2,107 steps, then the follower stood
    still for the rest of the bout and ended at -43. With play_on it plays random distinct
    actions, each held after_hold frames, seeded by the episode."""
    import importlib
    from types import SimpleNamespace

    (tmp_path / "route.py").write_text("FRAME_SKIP = 1\nSCORE = 0\nROUTE = [(0, 0.0, 10.0, 10.0, 3, ())]\n")
    (tmp_path / "detectors.py").write_text("def read_position(obs):\n    return 0, 10.0, 10.0\n\ndef read_objects(obs):\n    return ()\n")
    params = {**default_params(route_controller), "after_hold": 4}
    (tmp_path / "policy.py").write_text(route_controller.write_policy(params, {"play_on"}, FACTS, "test"))
    sys.path.insert(0, str(tmp_path))
    try:
        for module in ("policy", "route", "detectors"):
            sys.modules.pop(module, None)
        policy_module = importlib.import_module("policy")
        obs = SimpleNamespace(last_reward=0.0, lives=5)
        played = {}
        for seed in (0, 1):
            policy = policy_module.Policy()
            policy.reset(seed)
            played[seed] = [policy.act(obs) for _ in range(41)]
    finally:
        sys.path.remove(str(tmp_path))
        for module in ("policy", "route", "detectors"):
            sys.modules.pop(module, None)
    actions = played[0]
    assert actions[0] == 3  # the route's one step
    after = actions[1:]
    assert all(len(set(after[i : i + 4])) == 1 for i in range(0, 40, 4))  # each held 4 frames
    assert len(set(after)) > 1 and set(after) <= set(range(len(FACTS["action_names"])))
    assert played[0] != played[1]  # seeded by the episode
    assert "stands still" in route_controller.write_policy(params, set(), FACTS, "bare")

    # Random play after the route is the default; a held action (the parameter search's choice)
    # is played as written.
    assert params["after_action"] == -1
    held = {**params, "after_action": 2}
    code = route_controller.write_policy(held, {"play_on"}, FACTS, "test")
    assert f"it holds {FACTS['action_names'][2]}" in code and "'after_hold'" not in code
    namespace: dict = {}
    exec(compile(code.replace("from detectors import read_objects, read_position", "read_position = lambda obs: (0, 10.0, 10.0)")
                 .replace("from route import FRAME_SKIP, ROUTE", "FRAME_SKIP, ROUTE = 1, [(0, 0.0, 10.0, 10.0, 3, ())]"), "policy.py", "exec"), namespace)  # fmt: skip
    policy = namespace["Policy"]()
    policy.reset(0)
    assert [policy.act(SimpleNamespace(last_reward=0.0, lives=5)) for _ in range(6)] == [3, 2, 2, 2, 2, 2]


def test_recovery_in_a_game_without_one_of_the_moves_still_returns_an_action():
    """Gravitar's probe found LEFT, RIGHT and UP but no DOWN; off the route above its point, the
    recovery returned DOWN, None, and the ale-v5 check failed on an invalid action."""
    from types import SimpleNamespace

    facts = {**FACTS, "movement": {**FACTS["movement"], "down": None}}
    code = route_controller.write_policy(default_params(route_controller), set(route_controller.initial_features(facts)), facts, "test")
    namespace: dict = {}
    exec(compile(code.replace("from detectors import read_objects, read_position",
                              "read_position = lambda obs: (0, 10.0, -20.0)\nread_objects = lambda obs: ()")
                 .replace("from route import FRAME_SKIP, ROUTE", "FRAME_SKIP, ROUTE = 1, [(0, 0.0, 10.0, 10.0, 3, ())]"), "policy.py", "exec"), namespace)  # fmt: skip
    policy = namespace["Policy"]()
    policy.reset(0)
    played = [policy.act(SimpleNamespace(last_reward=0.0, lives=5)) for _ in range(40)]
    assert all(isinstance(a, int) for a in played), played
