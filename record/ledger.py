"""The run's ledger: `trials.jsonl`, one validated row per evaluation, probe or search batch.

Append-only: rows are never rewritten. Each append is flushed and fsynced, so a kill loses
at most the row being written; that torn last line is detected, reported, preserved as it
is, and answered with a new row of kind "invalid" saying what happened. `summary.csv` and
`sample_efficiency.png` are regenerated from the ledger and can always be rebuilt.
"""

from __future__ import annotations

import csv
import fcntl
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from envs.registry import get_family


class TrialRecord(BaseModel):
    """One ledger row. Fields follow DESIGN.md ("Records of a run")."""

    model_config = ConfigDict(extra="forbid")

    trial: int = Field(ge=0)
    timestamp: str
    run_id: str
    game: str
    family: str = "atari"  # the environment family (envs/registry.py); rows before families were Atari
    role: str = "user"
    # "llm": model calls of a role that no evaluation row carries (so every token is on a row)
    # "robustness": the best policy on holdout seeds under another protocol at the end (role "finish")
    kind: Literal["evaluation", "baseline", "probe", "search", "tuning", "llm", "invalid", "robustness"] = "evaluation"
    status: Literal["ok", "failed", "budget_stop", "invalid"] = "ok"
    policy_path: str | None = None
    policy_hash: str | None = None
    protocol: str
    protocol_settings: dict = Field(default_factory=dict)
    obs_mode: str  # one of the family's observation modes (Atari: ram, vision)
    split: str | None = None
    seeds: list[int] = Field(default_factory=list)
    episodes: int = Field(default=0, ge=0)
    env_steps: int = Field(default=0, ge=0)
    frames: int = Field(default=0, ge=0)
    cumulative_env_steps: int = Field(default=0, ge=0)
    cumulative_frames: int = Field(default=0, ge=0)
    score_mean: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    score_std: float | None = None
    scores: list[float] = Field(default_factory=list)
    lengths: list[int] = Field(default_factory=list)
    # The family's failures per episode: lives lost (Atari), falls (a robot). Rows written
    # before families existed call it lives_lost.
    failures: list[int] = Field(default_factory=list, validation_alias=AliasChoices("failures", "lives_lost"))
    truncated: list[str | None] = Field(default_factory=list)  # time_limit | budget | stall | None
    # The rule that cut episodes without progress ({"frames", "watch"}; None: none was
    # applied) and, per episode, the evidence of a cut (since_step, steps, watched, actions).
    stall_rule: dict | None = None
    stalls: list[dict | None] = Field(default_factory=list)
    episode_seconds: list[float] = Field(default_factory=list)
    wall_seconds: float = Field(default=0.0, ge=0)
    tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    change_summary: str = ""
    failure_kind: str | None = None
    failure: str | None = None
    traceback: str | None = None
    failure_analysis: str = ""
    next_hypothesis: str = ""
    artifacts: dict[str, str] = Field(default_factory=dict)  # paths relative to the run folder

    @model_validator(mode="after")
    def _family_obs_mode(self) -> "TrialRecord":
        try:
            modes = get_family(self.family).obs_modes
        except ValueError:
            return self  # a family this process does not know (kept outside the repo): its rows still read
        if self.obs_mode not in modes:
            raise ValueError(f"obs_mode {self.obs_mode!r} is not one of the {self.family} family's: {', '.join(modes)}")
        return self


def is_holdout(r: TrialRecord) -> bool:
    """The final holdout evaluation of the best policy, under the run's own protocol."""
    return r.role == "finish" and r.kind != "robustness"


def is_robustness(r: TrialRecord) -> bool:
    """The best policy on holdout seeds under the robustness protocol (Atari: ale-v5 after hl)."""
    return r.role == "finish" and r.kind == "robustness"


class LedgerDamage(BaseModel):
    line: int  # 1-based line number in trials.jsonl
    reason: str
    text: str  # the damaged line as found


class LedgerContents(BaseModel):
    records: list[TrialRecord]
    damage: list[LedgerDamage]
    torn_tail: bool  # the file ends without a newline: a kill interrupted the last write


def _int_field(text: str, name: str) -> int:
    """Recover an integer field from a torn JSON row (0 if it did not make it to disk)."""
    match = re.search(rf'"{name}":\s*(\d+)', text)
    return int(match.group(1)) if match else 0


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def score_stats(scores: list[float]) -> dict:
    if not scores:
        return dict(score_mean=None, score_min=None, score_max=None, score_std=None)
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return dict(score_mean=mean, score_min=min(scores), score_max=max(scores), score_std=std)


class Ledger:
    """Append-only `trials.jsonl` in a run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> LedgerContents:
        """All valid rows, plus every damaged line (torn or invalid) with its reason."""
        if not self.path.exists():
            return LedgerContents(records=[], damage=[], torn_tail=False)
        raw = self.path.read_bytes()
        torn_tail = bool(raw) and not raw.endswith(b"\n")
        records, damage = [], []
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            text = line.decode("utf-8", errors="replace")
            is_last = number == len(lines)
            try:
                records.append(TrialRecord.model_validate_json(line))
            except ValidationError as err:
                if is_last and torn_tail:
                    reason = "torn last line (the process was killed while writing it)"
                else:
                    reason = "invalid row: " + err.errors()[0]["msg"]
                damage.append(LedgerDamage(line=number, reason=reason, text=text))
        # A torn line that a later row already answered keeps its diagnosis after the newline
        # that closed it made it look like any other invalid row.
        answered = {r.failure.split()[1]: r.trial for r in records if r.failure_kind == "torn_row" and r.failure}
        for d in damage:
            if str(d.line) in answered:
                d.reason = f"torn line (a kill during writing), recorded by trial {answered[str(d.line)]}"
        return LedgerContents(records=records, damage=damage, torn_tail=torn_tail)

    def records(self) -> list[TrialRecord]:
        return self.read().records

    def append(self, **fields) -> TrialRecord:
        """Validate and append one row; fills in trial index, timestamp and cumulative counts.

        If the file ends in a torn line, that line is kept and closed with a newline, and an
        "invalid" row recording the damage is written before this one.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time, even across processes
            try:
                contents = self.read()
                last = contents.records[-1] if contents.records else None
                torn = contents.damage[-1] if contents.torn_tail and contents.damage else None
                if contents.torn_tail:
                    self._write(f, b"\n")  # close the last line; a complete row only missed this
                if torn is not None and torn.reason.startswith("torn"):
                    last = self._append_row(
                        f,
                        last,
                        dict(
                            run_id=fields["run_id"],
                            game=fields["game"],
                            family=fields.get("family", "atari"),
                            protocol=fields["protocol"],
                            obs_mode=fields["obs_mode"],
                            role="ledger",
                            kind="invalid",
                            status="invalid",
                            failure_kind="torn_row",
                            failure=f"line {torn.line} was torn by a kill during writing; kept as found",
                            # The torn row's steps were really taken: keep the totals honest.
                            env_steps=_int_field(torn.text, "env_steps"),
                            frames=_int_field(torn.text, "frames"),
                        ),
                    )
                return self._append_row(f, last, fields)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _append_row(self, f, last: TrialRecord | None, fields: dict) -> TrialRecord:
        record = TrialRecord(
            trial=0 if last is None else last.trial + 1,
            timestamp=fields.pop("timestamp", None) or now_iso(),
            cumulative_env_steps=(last.cumulative_env_steps if last else 0) + fields.get("env_steps", 0),
            cumulative_frames=(last.cumulative_frames if last else 0) + fields.get("frames", 0),
            **fields,
        )
        self._write(f, (record.model_dump_json() + "\n").encode())
        return record

    @staticmethod
    def _write(f, data: bytes) -> None:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


SUMMARY_COLUMNS = [
    "trial", "timestamp", "role", "kind", "status", "policy_hash", "protocol", "obs_mode", "split",
    "episodes", "env_steps", "cumulative_env_steps", "frames", "cumulative_frames", "score_mean",
    "score_min", "score_max", "score_std", "best_so_far", "wall_seconds", "tokens", "cost_usd",
    "change_summary", "failure",
]  # fmt: skip


def write_summary(records: list[TrialRecord], path: str | Path) -> Path:
    """Regenerate summary.csv (one line per trial, with the running best) from ledger rows."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    best = None
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for r in records:
            if r.status == "ok" and r.score_mean is not None:
                best = r.score_mean if best is None else max(best, r.score_mean)
            row = {k: getattr(r, k) for k in SUMMARY_COLUMNS if k != "best_so_far"}
            row["best_so_far"] = best
            writer.writerow(row)
    os.replace(tmp, path)
    return path


def plot_sample_efficiency(records: list[TrialRecord], path: str | Path, title: str = "") -> Path:
    """Score of each trial and the running best against cumulative env steps, from step 0 to
    the run's last (a short run is not a close-up of its last steps); the holdout of the best
    policy a diamond of its own, min-max bars only where a trial's episodes differed, grey
    bands where the run probed or searched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    path = Path(path)
    ok = [r for r in records if r.status == "ok" and r.score_mean is not None]
    dev = [r for r in ok if r.role != "finish"]
    holdout = [r for r in ok if is_holdout(r)]
    failed = [r for r in records if r.status == "failed"]
    end = max((r.cumulative_env_steps for r in records), default=0)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for r in records:
        if r.kind in ("probe", "search") and r.env_steps:
            ax.axvspan(r.cumulative_env_steps - r.env_steps, r.cumulative_env_steps, color="0.85", alpha=0.5, lw=0)
    if dev:
        xs = [r.cumulative_env_steps for r in dev]
        bars = [r for r in dev if r.score_max is not None and r.score_min is not None and r.score_max > r.score_min]
        if bars:
            ax.vlines([r.cumulative_env_steps for r in bars], [r.score_min for r in bars], [r.score_max for r in bars],
                      color="tab:blue", alpha=0.5, label="min-max over its episodes")  # fmt: skip
        ax.scatter(xs, [r.score_mean for r in dev], s=18, color="tab:blue", label="trial mean score (dev seeds)", zorder=3)
        best, running = [], None
        for r in dev:
            running = r.score_mean if running is None else max(running, r.score_mean)
            best.append(running)
        ax.step(xs + [end], best + [best[-1]], where="post", color="tab:orange", linewidth=2, label="running best (dev)")
    if holdout:
        ax.scatter([r.cumulative_env_steps for r in holdout], [r.score_mean for r in holdout], s=70, marker="D",
                   color="tab:green", label="best policy on holdout seeds", zorder=4)  # fmt: skip
    if failed:
        floor = min((r.score_min for r in ok if r.score_min is not None), default=0.0)
        ax.scatter([r.cumulative_env_steps for r in failed], [floor] * len(failed), marker="x",
                   color="tab:red", label="failed trial", zorder=4)  # fmt: skip
    ax.set_xlim(0, max(end, 1) * 1.03)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_xlabel("cumulative env steps (grey: probing and searching)")
    ax.set_ylabel("episode score")
    ax.set_title(title or "sample efficiency")
    ax.grid(alpha=0.3)
    if ok or failed:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
