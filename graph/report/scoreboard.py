"""The suite's numbers: from a batch folder (or any runs folder) one row per game × obs mode ×
protocol, the aggregates over Atari57 games (median and IQM of the human-normalised score, with
stratified-bootstrap 95% intervals, over all runs and over first runs), and the aggregate
curve against env steps.

    write_scoreboard("runs/pb")   # -> {"csv": suite.csv, "markdown": suite.md, "curve": suite_curve.png}

Conventions (said again in suite.md's captions):
- a run's score on a game is its best dev score (summary.json, else the ledger's best); its
  HNS is (score − random) / (human − random); a game's HNS is the mean over its runs of each
  run's best HNS (the published convention), a run with no score counting 0;
- a failed cell produced no policy (its error says why) and counts 0; pending and running
  cells are listed, not counted;
- first runs are those that started with no memory of their game (`memory_at_start` 0): a run
  that starts from memory skips the probe and starts from an earlier best policy, so its env
  steps to best are not a from-scratch number. Runs whose memory at start is unknown (older
  runs, failed cells) are not first runs.

The run dicts here extend suite_page.suite_data's (game, obs, protocol, steps, curve,
game_spec, ...), so the suite page's plots read either.
"""

from __future__ import annotations

import csv
import statistics
from functools import cache
from pathlib import Path

import numpy as np

from graph.report.run_files import read_json
from graph.report.stats import aggregate_with_ci, iqm
from record.ledger import is_holdout, is_robustness

FILES = {"csv": "suite.csv", "markdown": "suite.md", "curve": "suite_curve.png"}
REFERENCE_COLUMNS = ("hl_best_input_hns", "ppo2_hns", "cleanrl_envpool_ppo_hns")
BEST_INPUT = "best input"
NOT_COUNTED = ("pending", "running")  # cells not finished: listed, not in any number

# suite.csv's columns, in order (one row per game × obs × protocol).
COLUMNS = ["game", "obs", "protocol", "runs", "runs_with_policy", "best_score", "mean_best_score", "hns", "holdout_score",
           "holdout_hns", "robustness_protocol", "robustness_score", "robustness_hns", "env_steps_to_best_median", "env_steps", "wall_seconds", "structures", "beats_random",
           "published_hl_best_hl", "published_hl_hns", "ppo2_hns", "cleanrl_envpool_ppo_hns", "notes"]  # fmt: skip


# -- the runs ---------------------------------------------------------------------------------------


def read_batch_manifest(batch_dir: Path):
    """graph.batch's manifest (batch.json), or None for a plain runs folder. The one place the
    report reads graph.batch's files."""
    from graph.batch.manifest import read_manifest

    return read_manifest(Path(batch_dir))


@cache
def spec_of(game: str):
    from envs.registry import resolve_env

    try:
        return resolve_env(game)
    except Exception:
        return None


def _ledger_curve(records: list) -> list[tuple[int, float]]:
    """(env steps, running best) where the best dev score rose: ok, scored, non-finish rows."""
    curve, running = [], None
    for r in records:
        if r.status == "ok" and r.score_mean is not None and r.role != "finish":
            if running is None or r.score_mean > running:
                running = r.score_mean
                curve.append((r.cumulative_env_steps, running))
    return curve


def _first(*values):
    return next((v for v in values if v not in (None, "")), None)


def _run(run_dir: Path | None, cell=None) -> dict:
    """One run's numbers: summary.json first, the manifest's copy of it, then the ledger for
    what an older or unfinished run lacks; the manifest cell for its state and error."""
    from graph.trace import read_ledger

    records, damage = read_ledger(run_dir) if run_dir and (run_dir / "trials.jsonl").exists() else ([], [])
    cfg = read_json(run_dir / "config.json") if run_dir else {}
    known = {**(cell.result.model_dump() if cell is not None and cell.result else {}), **(read_json(run_dir / "summary.json") if run_dir else {})}
    first = records[0] if records else None
    game = _first(known.get("game"), cell and cell.game, cfg.get("game"), first and first.game, run_dir and run_dir.parent.parent.name)
    spec = spec_of(str(game))
    curve = _ledger_curve(records)
    best = known["best_score"] if "best_score" in known else (curve[-1][1] if curve else None)
    state = cell.state if cell is not None else ("done" if "best_score" in known else "unfinished")
    notes = []
    if state == "failed":
        if best is not None or curve:
            notes.append(f"dev best {fmt_score(_first(best, curve and curve[-1][1]))} before the failure, not counted")
        best, curve = None, []
    elif state == "unfinished":
        notes.append("no summary.json (unfinished or older run)")
    if "env_steps_to_best" in known:
        to_best = known["env_steps_to_best"]
    else:  # an older run: the first dev trial that reached its best
        to_best = next((x for x, y in curve if best is not None and y >= best), None)
    holdouts = [r.score_mean for r in records if is_holdout(r) and r.status == "ok" and r.score_mean is not None]
    holdout = known["holdout_score"] if "holdout_score" in known else (holdouts[-1] if holdouts else None)
    # The robustness check (Atari: the hl policy on holdout seeds under ale-v5).
    robust_rows = [r for r in records if is_robustness(r) and r.status == "ok" and r.score_mean is not None]
    robust = known.get("robustness_score", robust_rows[-1].score_mean if robust_rows else None)
    robust_protocol = known.get("robustness_protocol") or (robust_rows[-1].protocol if robust_rows else None)
    hns = lambda score: spec.hns(score) if spec is not None and score is not None else None  # noqa: E731
    return dict(run_dir=run_dir, run_id=cell.id if cell is not None else run_dir.name, game=spec.name if spec else game,
                obs=_first(known.get("obs_mode"), cell and cell.obs, cfg.get("obs_mode"), first and first.obs_mode, run_dir and run_dir.parent.name),
                protocol=_first(known.get("protocol"), cell and cell.protocol, cfg.get("protocol"), first and first.protocol),
                state=state, error=cell.error if cell is not None else None, best=best, hns=hns(best), holdout=holdout,
                holdout_hns=hns(holdout), robust=robust, robust_hns=hns(robust), robust_protocol=robust_protocol, to_best=to_best if best is not None else None,
                steps=max(int(known.get("env_steps") or 0), records[-1].cumulative_env_steps if records else 0),
                wall_seconds=_first(known.get("wall_seconds"), (cell.wall_seconds or None) if cell is not None else None),
                structure=known.get("structure"), memory_at_start=known.get("memory_at_start"), curve=curve, game_spec=spec,
                damage=damage, notes=notes, has_report=bool(run_dir and (run_dir / "report.html").exists()))  # fmt: skip


def find_runs(runs_dir: Path) -> list[Path]:
    """Run folders (<game>/<obs>/<run_id>/ with a ledger) anywhere under runs_dir, so a folder
    of runs folders (bench/learning_suite.py's) is one suite too."""
    return sorted(p.parent for p in Path(runs_dir).rglob("trials.jsonl") if p.parent.parent.name in ("ram", "vision"))


def collect_runs(batch_dir: str | Path) -> list[dict]:
    """Every run under the folder (any depth, <game>/<obs>/<run_id>/trials.jsonl) and every
    cell of its batch.json that has no such folder yet (pending, or failed before its ledger)."""
    batch_dir = Path(batch_dir)
    manifest = read_batch_manifest(batch_dir)
    cells = {(batch_dir / c.run_dir).resolve(): c for c in manifest.cells} if manifest else {}
    runs = []
    for run_dir in find_runs(batch_dir):
        runs.append(_run(run_dir, cells.pop(run_dir.resolve(), None)))
    for path, cell in cells.items():  # cells without a ledger
        runs.append(_run(path if path.is_dir() else None, cell))
    return sorted(runs, key=lambda r: (str(r["game"]), str(r["obs"]), str(r["protocol"]), r["run_id"]))


def counted(runs: list[dict]) -> list[dict]:
    """The runs every number counts: finished or failed cells, and plain runs."""
    return [r for r in runs if r.get("state") not in NOT_COUNTED]


def first_runs(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r.get("memory_at_start") == 0]


# -- the per-game table -------------------------------------------------------------------------------


@cache
def reference_table() -> dict[str, dict[str, float | None]]:
    """Per Atari57 game (display name): the published HNS columns of atari57_reference.csv."""
    from graph.report.plots import REPO_DATA, SHARED_DATA

    for folder in (SHARED_DATA, REPO_DATA):
        path = folder / "atari57_reference.csv"
        if path.exists():
            with open(path, newline="") as f:
                return {row["game"]: {k: float(row[k]) if row.get(k) else None for k in REFERENCE_COLUMNS} for row in csv.DictReader(f)}
    return {}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def game_rows(runs: list[dict]) -> list[dict]:
    """One row per game × obs × protocol (the keys of COLUMNS)."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((str(r["game"]), str(r["obs"]), str(r["protocol"])), []).append(r)
    rows = []
    for (game, obs, protocol), rs in sorted(groups.items()):
        done = counted(rs)
        scored = [r for r in done if r["best"] is not None]
        spec = rs[0]["game_spec"]
        ref = reference_table().get(spec.name if spec else game, {})
        best = max((r["best"] for r in scored), default=None)
        in57 = spec is not None and spec.hns(0.0) is not None
        structures = sorted({r["structure"] for r in scored if r["structure"]})
        random_score = spec.random_score if spec else None
        to_best = [r["to_best"] for r in scored if r["to_best"] is not None]
        walls = [r["wall_seconds"] for r in rs if r["wall_seconds"] is not None]
        rows.append(dict(
            game=game, obs=obs, protocol=protocol, runs=len(done), runs_with_policy=len(scored), best_score=best,
            mean_best_score=_mean(r["best"] for r in scored),
            hns=_mean(r["hns"] or 0.0 for r in done) if in57 and done else None,
            holdout_score=_mean(r["holdout"] for r in scored), holdout_hns=_mean(r["holdout_hns"] for r in scored),
            robustness_protocol=", ".join(sorted({r["robust_protocol"] for r in scored if r["robust_protocol"]})),
            robustness_score=_mean(r["robust"] for r in scored), robustness_hns=_mean(r["robust_hns"] for r in scored),
            env_steps_to_best_median=statistics.median(to_best) if to_best else None,
            env_steps=sum(r["steps"] for r in rs), wall_seconds=round(sum(walls), 1) if walls else None,
            structures=", ".join(structures),
            beats_random=None if random_score is None else best is not None and best > random_score,
            published_hl_best_hl=getattr(spec, f"hl_{obs}_best_score", None), published_hl_hns=ref.get("hl_best_input_hns"),
            ppo2_hns=ref.get("ppo2_hns"), cleanrl_envpool_ppo_hns=ref.get("cleanrl_envpool_ppo_hns"), notes=_row_notes(rs),
        ))  # fmt: skip
    return rows


def _row_notes(runs: list[dict]) -> str:
    """How many runs produced no policy and why; cells not finished; damage."""
    done = counted(runs)
    reasons = [_no_policy_reason(r) for r in done if r["best"] is None]
    notes = []
    if reasons:
        notes.append(f"{len(reasons)} of {len(done)} runs produced no policy: " + "; ".join(reasons))
    for state in NOT_COUNTED:
        if n := sum(r["state"] == state for r in runs):
            notes.append(f"{n} {state} (not counted)")
    notes += [f"{r['run_id']}: {note}" for r in runs for note in r["notes"]]
    if damaged := [r["run_id"] for r in runs if r["damage"]]:
        notes.append("damaged ledger: " + ", ".join(damaged))
    return "; ".join(notes)


def _no_policy_reason(run: dict) -> str:
    if run["state"] == "failed":
        return f"{run['run_id']} failed: {run['error'] or 'no error recorded'}"
    return f"{run['run_id']}: no policy scored"


def no_policy(runs: list[dict]) -> list[tuple[dict, str]]:
    """(run, reason) for every counted run that produced no policy."""
    return [(r, _no_policy_reason(r)) for r in counted(runs) if r["best"] is None]


# -- aggregates over games ----------------------------------------------------------------------------


def atari57_runs(runs: list[dict]) -> list[dict]:
    return [r for r in counted(runs) if r["game_spec"] is not None and r["game_spec"].hns(0.0) is not None]


def aggregate_groups(runs: list[dict]) -> list[tuple[str, str]]:
    """(obs, protocol) pairs to aggregate: each obs mode under each protocol (hl first, the
    published curves' protocol), and the best input mode under a protocol with both modes."""
    pairs = sorted({(str(r["obs"]), str(r["protocol"])) for r in runs}, key=lambda p: (p[1] != "hl", p[1], p[0]))
    out = []
    for protocol in dict.fromkeys(p for _, p in pairs):
        modes = [obs for obs, p in pairs if p == protocol]
        out += [(obs, protocol) for obs in modes] + ([(BEST_INPUT, protocol)] if len(modes) > 1 else [])
    return out


def in_group(runs: list[dict], obs: str, protocol: str) -> list[dict]:
    return [r for r in runs if r["protocol"] == protocol and obs in (BEST_INPUT, r["obs"])]


def strata(runs: list[dict], values) -> dict[str, list[np.ndarray]]:
    """game -> one array per obs mode of `values(run)` over its runs (HNS, or a curve)."""
    out: dict[str, dict[str, list]] = {}
    for r in runs:
        out.setdefault(str(r["game"]), {}).setdefault(str(r["obs"]), []).append(values(r))
    return {game: [np.asarray(v, dtype=float) for v in by_obs.values()] for game, by_obs in sorted(out.items())}


def aggregates(runs: list[dict], resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Median and IQM HNS over Atari57 games with 95% intervals, per aggregate group, over all
    runs and over first runs; with the published references' median and IQM on the same games."""
    out = []
    pool = atari57_runs(runs)
    for obs, protocol in aggregate_groups(pool):
        for which, chosen in (("all runs", in_group(pool, obs, protocol)), ("first runs", first_runs(in_group(pool, obs, protocol)))):
            row = dict(obs=obs, protocol=protocol, runs=which, n_runs=len(chosen), games=len({r["game"] for r in chosen}))
            if chosen:
                by_game = strata(chosen, lambda r: r["hns"] or 0.0)
                for stat in ("median", "iqm"):
                    point, low, high = aggregate_with_ci(by_game, stat, resamples, seed)
                    row.update({stat: float(point), f"{stat}_low": float(low), f"{stat}_high": float(high)})
                for column in REFERENCE_COLUMNS:
                    ref = [v for g in by_game if (v := reference_table().get(g, {}).get(column)) is not None]
                    row[f"{column}_median"] = float(np.median(ref)) if ref else None
                    row[f"{column}_iqm"] = float(iqm(ref)) if ref else None
            out.append(row)
    return out


# -- the curve against env steps ---------------------------------------------------------------------


def log_grid(runs: list[dict], points: int = 60) -> np.ndarray:
    """Log-spaced env steps from the first score of any run to the end of the longest run."""
    end = max((r["steps"] for r in runs), default=0)
    if end <= 0:
        return np.array([], dtype=float)
    start = min((max(r["curve"][0][0], 1) for r in runs if r["curve"]), default=max(end / 1000, 1))
    return np.unique(np.round(np.geomspace(min(start, end), end, points)))


def running_best_hns(run: dict, grid) -> np.ndarray:
    """The run's running-best HNS at each grid point: 0 before its first score, held after its end."""
    out = np.zeros(len(grid))
    spec = run["game_spec"]
    for steps, best in run["curve"]:
        out[np.asarray(grid) >= steps] = spec.hns(best)
    return out


def aggregate_curve(runs: list[dict], grid, resamples: int = 2000, seed: int = 0) -> dict | None:
    """Median and IQM over games of the per-game mean running-best HNS at each grid point, with
    95% bands (stratified bootstrap); runs of one aggregate group. None without Atari57 runs."""
    runs = atari57_runs(runs)
    if not runs or len(grid) == 0:
        return None
    by_game = strata(runs, lambda r: running_best_hns(r, grid))
    out = dict(x=np.asarray(grid, dtype=float))
    for stat in ("median", "iqm"):
        out[stat], out[f"{stat}_low"], out[f"{stat}_high"] = aggregate_with_ci(by_game, stat, resamples, seed)
    return out


def group_grid(runs: list[dict], grid, limit: int = 400) -> np.ndarray:
    """A group's grid: the suite's log grid up to the group's longest run, every env step where
    one of its runs' best rose (so the steps are where they happened), and its end; the log grid
    alone past `limit` points (the bootstrap holds resamples × games × points numbers)."""
    reach = max((r["steps"] for r in runs), default=0)  # past its longest run the group's value is unknown
    if reach <= 0:
        return np.array([], dtype=float)
    grid = np.asarray(grid, dtype=float)
    base = np.append(grid[grid < reach], reach)
    exact = np.union1d(base, [x for r in runs for x, _ in r["curve"] if x < reach])
    return exact if len(exact) <= limit else base


def suite_curves(runs: list[dict], first_only: bool = False, points: int = 60) -> list[dict]:
    """The aggregate curve of every group on a log grid up to its longest run (the run's end
    the last point)."""
    pool = atari57_runs(runs)
    pool = first_runs(pool) if first_only else pool
    grid = log_grid(pool, points)
    out = []
    for obs, protocol in aggregate_groups(pool):
        subset = in_group(pool, obs, protocol)
        curve = aggregate_curve(subset, group_grid(subset, grid))
        if curve is not None:
            out.append(dict(obs=obs, protocol=protocol, **curve))
    return out


# -- the files ---------------------------------------------------------------------------------------


def write_scoreboard(batch_dir: str | Path) -> dict[str, Path]:
    """suite.csv, suite.md and suite_curve.png in the batch folder (regenerated files,
    rewritten whole each time). Partial batches are fine: pending and running cells are listed."""
    from graph.report.suite_files import write_csv, write_curve_png, write_markdown

    batch_dir = Path(batch_dir)
    runs = collect_runs(batch_dir)
    rows = game_rows(runs)
    aggs = aggregates(runs)
    return {"csv": write_csv(batch_dir / FILES["csv"], rows), "markdown": write_markdown(batch_dir / FILES["markdown"], batch_dir, runs, rows, aggs),
            "curve": write_curve_png(batch_dir / FILES["curve"], runs)}  # fmt: skip


def fmt_score(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"
