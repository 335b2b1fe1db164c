"""The tools an LLM brain may call. Each is a plain function with a typed signature and a
docstring (the model reads them as the tool's description), bound to the run by `Toolbox`.

They drive the same capabilities as the builtin brains (tools/ and memory/): every env step
they take goes through the run's meter and gets a ledger row. A tool refuses what the
protocol forbids (paths outside hs/, holdout or audit seeds) by raising `ToolRefused`; the
tool loop turns any tool error into a message for the model, never a crashed run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Literal

from langchain_core.tools import StructuredTool

from runtime.context import RunContext
from runtime.steps import trial_row


class ToolRefused(ValueError):
    """The call is not allowed (outside hs/, holdout seeds, ...); the message says why."""


MAX_READ_CHARS = 20_000


class Toolbox:
    """The run's tools, bound to its context and the current state."""

    def __init__(self, ctx: RunContext, state: dict, role: str):
        self.ctx, self.state, self.role = ctx, state, role
        self.images: list[str] = []  # data URLs the loop shows a multimodal model after a tool call

    # -- files in hs/ --------------------------------------------------------------------
    def _hs_path(self, path: str) -> Path:
        root = self.ctx.hs.path.resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ToolRefused(f"{path!r} is outside hs/: tools may only touch files inside the run's hs/ folder")
        if ".git" in target.relative_to(root).parts:
            raise ToolRefused("hs/.git is managed by the harness (commits and rollbacks happen in decide)")
        return target

    def list_files(self, folder: str = ".") -> str:
        """List the files of the heuristic system (hs/), or of a folder inside it."""
        base = self._hs_path(folder)
        if not base.is_dir():
            raise ToolRefused(f"{folder!r} is not a folder in hs/")
        root = self.ctx.hs.path.resolve()
        files = sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file() and ".git" not in p.parts)
        return "\n".join(files) or "(empty)"

    def read_file(self, path: str) -> str:
        """Read a text file of the heuristic system, e.g. "policy.py" or "detectors.py"."""
        target = self._hs_path(path)
        if not target.is_file():
            raise ToolRefused(f"no file {path!r} in hs/ (list_files shows what exists)")
        text = target.read_text(errors="replace")
        return text if len(text) <= MAX_READ_CHARS else text[:MAX_READ_CHARS] + f"\n... ({len(text)} chars, cut)"

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a file in hs/ with `content` (the whole file)."""
        target = self._hs_path(path)
        if path.endswith(".py"):
            try:
                compile(content, path, "exec")
            except SyntaxError as err:
                raise ToolRefused(f"{path} has a syntax error at line {err.lineno}: {err.msg}; not written") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return f"wrote {path} ({len(content)} chars)"

    def patch_file(self, path: str, old: str, new: str) -> str:
        """Replace the exact text `old` (which must occur once) by `new` in a file of hs/."""
        text = self.read_file(path)
        count = text.count(old)
        if count != 1:
            raise ToolRefused(f"`old` occurs {count} times in {path}; it must occur exactly once (include more context)")
        return self.write_file(path, text.replace(old, new))

    # -- builtin structures ------------------------------------------------------------------
    def _structures(self) -> dict[str, str]:
        """Structure name -> why it is available: the one the probe chose, the challengers that
        read the frame themselves, and the blind pattern (every game)."""
        facts = self.state.get("detectors") or {}
        if not facts:
            raise ToolRefused("no facts yet: the detector-writer derives them from the probe first")
        found = {facts["controller"]: "the structure the probe chose (detectors.py is written for it)"}
        found.update({name: "reads the frame itself: a challenger to the chosen structure" for name in facts.get("challengers") or {}})
        found.setdefault("pattern", "a blind, repeating pattern of actions: suits every game (the baseline)")
        return found

    def structures(self) -> str:
        """The builtin controller structures this game's probe supports, each with its named
        parameters (default, range, meaning), optional features and why it is available. Use
        `write_structure` to write policy.py from one of them."""
        from agents.controllers import get_controller

        out = {}
        for name, why in self._structures().items():
            c = get_controller(name)
            out[name] = dict(why=why, features=c.FEATURES, doc=(c.__doc__ or "").strip().split("\n\n")[0],
                             params={k: dict(default=v[0], low=v[1], high=v[2], meaning=v[3]) for k, v in c.PARAMS.items()})  # fmt: skip
        return json.dumps(out, indent=1)

    def write_structure(self, structure: str, features: list[str] | None = None, params: dict[str, float] | None = None) -> str:
        """Write hs/policy.py from a builtin structure ("pattern", "reactive", the probe's
        choice: see `structures`), with these optional features (None: the structure's own
        first choice) and parameters (the rest at their defaults, the pattern baseline's winner
        where the structure starts from it). Returns the new policy's docstring; evaluate it
        with `evaluate_policy`, or edit it like any file."""
        from agents.controllers import get_controller, starting_params, structure_facts

        available = self._structures()
        if structure not in available:
            raise ToolRefused(f"no structure {structure!r} for this game; available: {', '.join(available)}")
        controller = get_controller(structure)
        facts = structure_facts(self.state["detectors"], structure)
        unknown = sorted(set(features or []) - set(controller.FEATURES)) + sorted(set(params or {}) - set(controller.PARAMS))
        if unknown:
            raise ToolRefused(f"{structure} has no feature or parameter {', '.join(unknown)}")
        route_file = getattr(controller, "ROUTE_FILE", None)
        if route_file and not (self.ctx.hs.path / route_file).exists():
            raise ToolRefused(f"{structure} follows a route a search finds and hs/{route_file} does not exist yet: call `search_route` first")
        chosen = set(features) if features is not None else controller.initial_features(facts)
        values = {**starting_params(controller, facts, self.state.get("baseline")), **(params or {})}
        source = controller.write_policy(values, chosen, facts, f"the {structure} structure, written by the policy-writer")
        self.write_file("policy.py", source)
        return (re.match(r'"""(.*?)"""', source, re.S) or [None, ""])[1].strip()

    def search_route(self, structure: str, env_steps: int) -> str:
        """Run (or continue) the cell-archive search of a searching structure ("route": cells
        from the player's RAM position; "screen_route": cells from the shrunk screen, any game)
        for at most `env_steps` env steps (every step counted; the run keeps what its holdout
        needs) and write its best trajectory to hs/<structure>.py. Returns the route's score;
        then `write_structure` writes the policy that follows it."""
        from agents.controllers import get_controller
        from agents.roles.policy_writer import search_allowance, search_route

        available = self._structures()
        if structure not in available or not hasattr(get_controller(structure), "ROUTE_FILE"):
            searching = [s for s in available if hasattr(get_controller(s), "ROUTE_FILE")]
            raise ToolRefused(f"{structure!r} is not a searching structure of this game; available: {', '.join(searching) or 'none'}")
        allowed = search_allowance(self.ctx, int(env_steps))
        if allowed <= 0:
            raise ToolRefused("the budget left is what the holdout needs: no env steps for a search")
        found = search_route(self.ctx, self.state["detectors"], allowed, "asked for by the policy-writer", structure)
        return json.dumps(found)

    def baseline(self) -> str:
        """The pattern baseline of this run: the blind action pattern that won the screen, its
        dev score (the floor any policy must beat to be accepted) and each screening round."""
        found = self.state.get("baseline")
        if not found:
            raise ToolRefused("no pattern baseline in this run (yet)")
        return json.dumps(found, indent=1, default=str)

    # -- probing, evaluating, testing -------------------------------------------------------
    def run_probe(self) -> str:
        """Probe the game (action semantics, player, objects, RAM bytes, lives, room); costs
        env steps. Returns the probe report (markdown). An earlier probe of this run is reused."""
        from agents.roles.prober import prober

        update = prober(self.state, self.ctx)
        self.state = {**self.state, **{k: v for k, v in update.items() if k != "trace_summary"}}
        return self.probe_report()

    def probe_report(self) -> str:
        """The probe report of this run (markdown), if the game has been probed."""
        path = self.ctx.run_dir / "probe" / "probe.md"
        if not path.exists():
            raise ToolRefused("the game has not been probed yet: call run_probe")
        return path.read_text()[:MAX_READ_CHARS]

    def evaluate_policy(self, episodes: int = 1, split: str = "dev") -> str:
        """Evaluate hs/policy.py on `episodes` dev seeds (costs env steps). Returns the scores,
        episode lengths and the failures found in the traces. Only dev seeds: holdout and
        audit seeds are for the harness's final report, never for tuning."""
        from envs.seeds import split_seeds
        from runtime.steps import evaluate_candidate

        if split != "dev":
            raise ToolRefused(f"{split} seeds are not for tuning: evaluate_policy only uses dev seeds")
        if not 1 <= episodes <= 10:
            raise ToolRefused("episodes must be between 1 and 10")
        result = evaluate_candidate(self.ctx, self.ctx.hs.path / "policy.py", role=self.role,
                                change_summary=f"{self.role}: checking its change", seeds=split_seeds("dev", episodes))  # fmt: skip
        if result is None:
            raise ToolRefused("the env-step budget is spent")
        self.state = {**self.state, "evaluation": result}
        summary = {k: result[k] for k in ("trial", "status", "score_mean", "scores", "env_steps", "failure")}
        if result["status"] == "ok":
            summary["failures"] = self._findings(result)
        return json.dumps(summary, indent=1)

    def _findings(self, evaluation: dict) -> list[dict]:
        from tools.diagnose import analyse_trial

        return [dict(seed=f.seed, score=f.score, length=f.length, lives_lost=f.lives_lost, points_lost=f.points_lost,
                     longest_stall=f.longest_stall, loop_period=f.loop_period, timeout=f.timeout, stall_cut=f.stall,
                     moments=[m.model_dump() for m in f.moments[:8]])
                for f in analyse_trial(self.ctx.run_dir, trial_row(self.ctx, evaluation["trial"]))]  # fmt: skip

    def diagnose_last_evaluation(self) -> str:
        """Failure moments of the last evaluation from its step traces: lives and points lost
        (with the step), the longest reward stall, periodic RAM loops, timeouts, or the crash."""
        evaluation = self.state.get("evaluation")
        if not evaluation:
            raise ToolRefused("there is no evaluation yet")
        if evaluation["status"] != "ok":
            return json.dumps({"trial": evaluation["trial"], "status": evaluation["status"], "failure": evaluation.get("failure")})
        return json.dumps({"trial": evaluation["trial"], "scores": evaluation["scores"], "episodes": self._findings(evaluation)}, indent=1)

    def _trial_row(self, trial: int | None):
        """(trial, its ledger row); the last evaluation's when trial is None."""
        trial = trial if trial is not None else (self.state.get("evaluation") or {}).get("trial")
        row = trial_row(self.ctx, trial)
        if row is None:
            raise ToolRefused(f"no trial {trial}")
        return trial, row

    def view_contact_sheet(self, trial: int | None = None) -> str:
        """Look at the contact sheet of a trial (default: the last evaluation): the frames before
        each life lost. Returns a text description; a model that reads images also sees it."""
        import base64

        trial, row = self._trial_row(trial)
        sheet = row.artifacts.get("sheet")
        if not sheet:
            return f"trial {trial} has no contact sheet (no life was lost, or the trial failed)"
        path = self.ctx.run_dir / sheet
        self.images.append("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode())
        from tools.diagnose import analyse_trial

        moments = []
        for f in analyse_trial(self.ctx.run_dir, row):
            moments += [f"seed {f.seed} step {m.step}: {m.kind} ({m.detail})" for m in f.moments
                        if m.kind in ("life_lost", "stall_cut")][:8]  # fmt: skip
        return (f"contact sheet {sheet}: rows of 16 frames leading up to each life lost, oldest left; "
                f"moments shown: {'; '.join(moments) or 'see the image'}")  # fmt: skip

    def view_frames(self, seed: int, steps: list[int], trial: int | None = None) -> str:
        """Look at single frames of a trial's episode (default: the last evaluation) at full size:
        the trace keeps the frames before each failure, so give steps near a failure moment (the
        nearest kept frame is shown). Returns what was shown; a model that reads images sees them."""
        import base64
        import io

        from PIL import Image

        from evaluation.rollout import load_trace

        trial, row = self._trial_row(trial)
        path = self.ctx.run_dir / row.artifacts.get("traces", "") / f"{seed}.npz"
        if not path.is_file():
            raise ToolRefused(f"trial {trial} has no trace for seed {seed} (its seeds: {row.seeds})")
        kept = {}
        for moment in load_trace(path)["moments"]:
            kept.update({int(step): frame for step, frame in zip(moment["steps"], moment["frames"])})
        if not kept:
            return f"trial {trial}, seed {seed}: no frames were kept (no failure moment in this episode)"
        shown = []
        for want in list(steps)[:8]:
            step = min(kept, key=lambda k: abs(k - int(want)))
            buffer = io.BytesIO()
            Image.fromarray(kept[step]).resize((320, 420), Image.NEAREST).save(buffer, format="PNG")
            self.images.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
            shown.append(step)
        return (f"trial {trial}, seed {seed}: frames at steps {shown} (asked {list(steps)[:8]}); frames are kept for "
                f"steps {min(kept)}..{max(kept)} around failures ({len(kept)} in all)")  # fmt: skip

    def run_hs_tests(self) -> str:
        """Run the heuristic system's tests (pytest in hs/tests, sandboxed: no secrets, no
        emulator, a copy of hs/) and return the outcome."""
        from evaluation.sandbox import run_hs_tests

        result = run_hs_tests(self.ctx.hs.path)
        if result.status == "no_tests":
            return "hs/tests does not exist yet"
        return f"{result.status.upper()}\n{result.output}"

    def tune_parameters(self, names: list[str], ranges: dict[str, list[float]], trials: int = 8) -> str:
        """Search the named constants of policy.py's `P = {...}` dict with Optuna on dev seeds
        (each trial is a counted evaluation). `ranges` gives [low, high] per name. The best
        values found are written into policy.py."""
        from runtime.steps import evaluate_candidate
        from record.meter import BudgetExhausted
        from tools.tune import tune

        source = self.read_file("policy.py")
        current = _read_params(source)
        missing = [n for n in names if n not in current]
        if missing or not names:
            raise ToolRefused(f"policy.py's P dict has no {missing or 'names given'}; it has {sorted(current)}")
        space = {}
        for n in names:
            low, high = ranges.get(n, [None, None])[:2]
            if low is None or high is None or low >= high:
                raise ToolRefused(f"give ranges[{n!r}] = [low, high] with low < high")
            space[n] = (float(low), float(high), isinstance(current[n], int))
        folder = self.ctx.run_dir / "tuning" / "llm"
        folder.mkdir(parents=True, exist_ok=True)
        for sibling in self.ctx.hs.path.glob("*.py"):
            if sibling.name != "policy.py":
                shutil.copyfile(sibling, folder / sibling.name)

        def score(params: dict) -> float | None:
            (folder / "policy.py").write_text(_write_params(source, params))
            result = evaluate_candidate(self.ctx, folder / "policy.py", role=self.role, kind="tuning", change_summary=f"tuning {params}")
            if result is None:
                raise BudgetExhausted("budget spent during tuning")
            return result["score_mean"] if result["status"] == "ok" else None

        best, value, ran = tune(space, current, score, trials=max(1, min(trials, 40)), seed=self.ctx.config.seed)
        self.write_file("policy.py", _write_params(source, best))
        return json.dumps({"trials": ran, "best_score": value, "best": {n: best[n] for n in names}})

    # -- memory ----------------------------------------------------------------------------
    def query_memory(self, kind: Literal["failures", "directions", "rejected", "facts"], text: str = "") -> str:
        """What earlier runs on this game (and this run) learned: similar failures, directions
        tried (accepted or rejected, with score deltas), rejected directions, or game facts."""
        memory, game, obs = self.ctx.memory, self.ctx.game.name, self.ctx.config.obs_mode
        if memory is None:
            return "memory is not available in this run"
        if kind == "failures":
            entries = memory.similar_failures(game, obs, text or "failure", k=8)
            return "\n".join(f"- {e.reason} (run {e.run_id})" for e in entries) or "no failures recorded"
        if kind in ("directions", "rejected"):
            entries = memory.directions(game, obs, outcome="rejected" if kind == "rejected" else None)
            return "\n".join(f"- {e.direction}: {e.outcome} ({e.score_delta:+g}) run {e.run_id}" for e in entries[-30:]) or "none recorded"
        facts = memory.facts(game, obs)
        return "\n".join(f"- {name}: {json.dumps(f.value)[:400]}" for name, f in facts.items()) or "no facts recorded"

    def add_memory(self, kind: Literal["failure", "fact"], text: str, name: str = "") -> str:
        """Record a failure reason (text) or a game fact (name and text) for later runs."""
        memory = self.ctx.memory
        if memory is None:
            return "memory is not available in this run"
        run_id = self.state.get("run_id", self.ctx.run_dir.name)
        if kind == "failure":
            memory.add_failure(self.ctx.game.name, self.ctx.config.obs_mode, run_id, text, evidence=f"{self.role} (llm)")
        else:
            if not name:
                raise ToolRefused("a fact needs a name")
            memory.add_fact(self.ctx.game.name, self.ctx.config.obs_mode, run_id, name, {"text": text})
        return "recorded"

    # -- binding -----------------------------------------------------------------------------
    def tools(self, names: list[str]) -> list[StructuredTool]:
        return [StructuredTool.from_function(getattr(self, name), name=name) for name in names]


TOOL_NAMES = ["list_files", "read_file", "write_file", "patch_file", "structures", "write_structure", "search_route", "baseline", "run_probe",
              "probe_report", "evaluate_policy",
              "diagnose_last_evaluation", "view_contact_sheet", "view_frames", "run_hs_tests", "tune_parameters", "query_memory",
              "add_memory"]  # fmt: skip

_P_BLOCK = re.compile(r"^P\s*=\s*\{\n(?P<body>.*?)^\}", re.S | re.M)
_P_LINE = re.compile(r'^(?P<lead>\s*["\'](?P<name>\w+)["\']\s*:\s*)(?P<value>[-+0-9.eE]+)(?P<rest>\s*,.*)$', re.M)


def _read_params(source: str) -> dict:
    block = _P_BLOCK.search(source)
    if not block:
        return {}
    params = {}
    for m in _P_LINE.finditer(block.group("body")):
        text = m.group("value")
        params[m.group("name")] = int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    return params


def _write_params(source: str, params: dict) -> str:
    block = _P_BLOCK.search(source)

    def line(m: re.Match) -> str:
        name = m.group("name")
        if name not in params:
            return m.group(0)
        value = params[name]
        return f"{m.group('lead')}{int(value) if isinstance(value, int) else round(float(value), 4)!r}{m.group('rest')}"

    body = _P_LINE.sub(line, block.group("body"))
    return source[: block.start("body")] + body + source[block.end("body") :]
