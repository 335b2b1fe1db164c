"""Run configuration: one object read from the CLI (and HL_* environment variables for the
knobs the CLI does not expose), recorded in the run folder as config.json."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envs.registry import family_of, resolve_env
from record.workspace import DEFAULT_RUNS_DIR


# field -> (environment variable, default); None: derived (from the protocol) or unset.
KNOBS: dict[str, tuple[str, int | None]] = {
    "dev_episodes": ("HL_DEV_EPISODES", None),
    "holdout_episodes": ("HL_HOLDOUT_EPISODES", None),
    "robustness_episodes": ("HL_ROBUSTNESS_EPISODES", None),
    "tune_trials": ("HL_TUNE_TRIALS", 12),
    "plateau_patience": ("HL_PLATEAU_PATIENCE", 6),
    "simplify_every": ("HL_SIMPLIFY_EVERY", 3),
    "max_iterations": ("HL_MAX_ITERATIONS", 60),
    "search_steps": ("HL_SEARCH_STEPS", 500_000),
    "probe_budget": ("HL_PROBE_BUDGET", 30_000),
    "eval_max_frames": ("HL_EVAL_MAX_FRAMES", None),
    "stall_frames": ("HL_STALL_FRAMES", 9000),
    "eval_workers": ("HL_EVAL_WORKERS", 2),
}


def _knob(name: str) -> int | None:
    env, default = KNOBS[name]
    text = os.environ.get(env)
    if not text:
        return default
    try:
        return int(float(text))
    except ValueError:
        raise ValueError(f"{env}={text!r} is not a number") from None


class RunConfig(BaseModel):
    model_config = ConfigDict(validate_default=True)  # HL_* knobs are checked like CLI values

    game: str  # the env's display name ("Pong"); any name envs.resolve_env knows
    obs_mode: str | None = None  # default: the family's (Atari: ram)
    protocol: str | None = None  # default: the family's (Atari: hl)
    budget: int = Field(default=1_000_000, ge=1)  # env steps
    runs_dir: Path = DEFAULT_RUNS_DIR
    seed: int = 0
    target_score: float | None = None  # stop when the best reaches it (default: game maximum if known)
    memory_url: str | None = None  # Chroma server; default: persistent store in runs_dir/memory
    model: str | None = None  # the chat model of the LLM brains (None: all builtin); "replay:PATH" replays a cassette
    brains: dict[str, str] = Field(default_factory=dict)  # role -> "llm" | "builtin"
    record: bool = False  # write every model request/response to cassette.jsonl
    max_cost_usd: float | None = Field(default=None, ge=0)

    # Evaluation and search knobs (HL_* environment variables, see KNOBS).
    # Episodes per dev evaluation and in the final holdout report: the family's defaults for
    # the protocol (Atari: 1 and 3 under hl, where every seed plays the same game; 3 and 10
    # under ale-v5, where sticky actions make seeds differ).
    dev_episodes: int | None = Field(default_factory=lambda: _knob("dev_episodes"), ge=1)
    holdout_episodes: int | None = Field(default_factory=lambda: _knob("holdout_episodes"), ge=1)
    # Holdout episodes of the best policy under the family's robustness protocol at the end
    # (Atari: ale-v5 for a run under hl, 10 episodes), so a memorised score shows; 0: none.
    robustness_episodes: int | None = Field(default_factory=lambda: _knob("robustness_episodes"), ge=0)
    tune_trials: int = Field(default_factory=lambda: _knob("tune_trials"), ge=0)
    plateau_patience: int = Field(default_factory=lambda: _knob("plateau_patience"), ge=1)
    simplify_every: int = Field(default_factory=lambda: _knob("simplify_every"), ge=1)
    max_iterations: int = Field(default_factory=lambda: _knob("max_iterations"), ge=1)
    search_steps: int = Field(default_factory=lambda: _knob("search_steps"), ge=0)  # per route search
    probe_budget: int = Field(default_factory=lambda: _knob("probe_budget"), ge=1)
    eval_max_frames: int | None = Field(default_factory=lambda: _knob("eval_max_frames"), ge=1)
    # An episode is cut when this many emulator frames pass with no reward and none of the
    # tracked objects moving (evaluation.rollout.StallRule; 0: never cut).
    stall_frames: int = Field(default_factory=lambda: _knob("stall_frames"), ge=0)
    # Sandboxed worker processes an evaluation runs its episodes in (at most one per episode);
    # graph.batch sets it to the CPUs each cell is given.
    eval_workers: int = Field(default_factory=lambda: _knob("eval_workers"), ge=1)

    def knob_overrides(self) -> dict[str, int]:
        """The HL_* variables whose values differ from the defaults (to reproduce the run)."""
        out = {}
        for name, (env, default) in KNOBS.items():
            value = getattr(self, name)
            if name in ("dev_episodes", "holdout_episodes", "robustness_episodes"):
                default = self.protocol_default(name)
            if value != default and value is not None:
                out[env] = value
        return out

    def protocol_default(self, name: str) -> int:
        family = family_of(resolve_env(self.game))
        if name == "robustness_episodes":
            other = family.robustness_protocol(self.protocol)
            return family.default_episodes(other, "holdout") if other else 0
        return family.default_episodes(self.protocol, "dev" if name == "dev_episodes" else "holdout")

    @property
    def robustness_protocol(self) -> str | None:
        """The protocol the best policy is also checked on at the end (None: no such check)."""
        if not self.robustness_episodes:
            return None
        return family_of(resolve_env(self.game)).robustness_protocol(self.protocol)

    @model_validator(mode="after")
    def _family_defaults(self) -> "RunConfig":
        family = family_of(resolve_env(self.game))
        self.obs_mode = self.obs_mode or family.default_obs_mode
        if self.obs_mode not in family.obs_modes:
            raise ValueError(f"obs mode {self.obs_mode!r} is not one of {family.name}'s: {', '.join(family.obs_modes)}")
        self.protocol = family.get_protocol(self.protocol).name
        for name in ("dev_episodes", "holdout_episodes"):
            if not getattr(self, name):
                setattr(self, name, self.protocol_default(name))
        if self.robustness_episodes is None:
            self.robustness_episodes = self.protocol_default("robustness_episodes")
        return self


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    """config.json, replaced atomically (a resume may raise the cost ceiling)."""
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(cfg.model_dump_json(indent=2))
    tmp.replace(run_dir / "config.json")


def first_error(err: ValueError) -> str:
    """One line for a bad setting (pydantic's first error, or the message)."""
    errors = getattr(err, "errors", None)
    if errors:
        first = errors()[0]
        return f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(err).splitlines()[0]
