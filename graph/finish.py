"""The end of a run: evaluate the best policy once on holdout seeds (with a video), then,
when the run's protocol plays every seed the same (Atari's hl), once more on holdout seeds
under the family's robustness protocol (ale-v5, sticky actions) so a memorised score shows;
and write the run's README.md: best score, budget used, how to reproduce, the policy's logic
in words, the main failed directions, and why the run stopped."""

from __future__ import annotations

import ast
import time
from contextlib import contextmanager

from evaluation.evaluate import refresh_reports
from graph.report import write_report
from runtime import steps
from runtime.context import RunContext


def _summary(r) -> dict:
    return dict(trial=r.trial, status=r.status, score_mean=r.score_mean, scores=r.scores, episodes=r.episodes,
                video=r.artifacts.get("video"))  # fmt: skip


def _holdout(ctx: RunContext, best: dict | None) -> dict | None:
    if not best:
        return None
    r = steps.evaluate_holdout(ctx, ctx.hs.path / "policy.py", best["policy_hash"])
    return _summary(r) if r is not None else None


def _robustness(ctx: RunContext, best: dict | None) -> dict | None:
    if not best:
        return None
    r = steps.evaluate_robustness(ctx, ctx.hs.path / "policy.py", best["policy_hash"])
    return _summary(r) if r is not None else None


def _holdout_line(holdout: dict | None, best: dict | None) -> str:
    """What became of the holdout, in words: a score, or why there is none."""
    if not best:
        return "none: no policy scored"
    if holdout is None:
        return "none: no budget was left for it"
    n = len(holdout["scores"])
    if holdout["score_mean"] is None or not n:
        return f"none: cut by the budget ({holdout['status']}) before an episode finished"
    if holdout["status"] == "budget_stop":  # played in turn: the episodes that finished before the budget ran out
        return f"{_fmt_score(holdout['score_mean'])} over {n} of {holdout.get('episodes', n)} holdout episodes (the budget ran out)"
    return f"{_fmt_score(holdout['score_mean'])} over {n} holdout episode{'s' if n != 1 else ''}"


def _robustness_line(ctx: RunContext, robust: dict | None, best: dict | None) -> str | None:
    """The robustness check in words (None when the run's protocol has none)."""
    protocol = ctx.config.robustness_protocol
    if protocol is None:
        return None
    line = _holdout_line(robust, best)
    if robust and robust["score_mean"] is not None:
        if best and robust["score_mean"] < best["score"]:
            line += f" (dev {_fmt_score(best['score'])} under {ctx.config.protocol}, where every seed is the same game)"
    return line


def policy_logic(ctx: RunContext) -> str:
    """The policy's own docstring: the builtin policy-writer keeps it a plain-words account."""
    path = ctx.hs.path / "policy.py"
    if not path.exists():
        return "(no policy was written)"
    try:
        return ast.get_docstring(ast.parse(path.read_text())) or "(the policy has no docstring)"
    except SyntaxError:
        return "(policy.py does not parse)"


@contextmanager
def _phase(ctx: RunContext, name: str, iteration: int, outcome: dict):
    """One step of the finish, labelled on the live display and recorded in the trace like a
    graph node (start/end with env steps), so `graph.trace` shows the holdout and the report."""
    if ctx.display:
        ctx.display.phase(name)
    steps_before, started = ctx.meter.used_steps, time.time()
    ctx.tracer.event("start", name, iteration=iteration, env_steps_total=steps_before)
    try:
        yield outcome
    except Exception as err:
        ctx.tracer.event("error", name, error=f"{type(err).__name__}: {err}", seconds=round(time.time() - started, 3))
        raise
    ctx.tracer.event("end", name, seconds=round(time.time() - started, 3), env_steps=ctx.meter.used_steps - steps_before,
                     env_steps_total=ctx.meter.used_steps, summary=outcome.get("summary", ""))  # fmt: skip


def _remember_structures(ctx: RunContext, state: dict, best: dict | None) -> None:
    """Tell memory which structure won among those tried, on this kind of game (by its probe
    features): later runs on other games of the kind try it first."""
    from agents.controllers import facts_module
    from runtime.remember import remember_structures

    facts = state.get("detectors")
    kind_of_game = getattr(facts_module(ctx.family.name), "kind_of_game", None) if facts else None
    if kind_of_game is None:
        return  # no facts, or a family whose facts name no kind of game
    tried = ["pattern"] * bool(state.get("baseline")) + list(state.get("structures_tried") or [])
    winner = ((best or {}).get("policy") or {}).get("controller")
    remember_structures(ctx, state.get("run_id", ctx.run_dir.name), kind_of_game(facts), tried, winner)


def finish_run(ctx: RunContext, state: dict, started: float) -> dict:
    """Holdout, reports and README. The wall time is the command's: `started` is when it began."""
    best = state.get("best")
    iteration = state.get("iteration", 0)
    _remember_structures(ctx, state, best)
    with _phase(ctx, "holdout", iteration, {}) as outcome:
        holdout = _holdout(ctx, best)
        outcome["summary"] = f"holdout {_holdout_line(holdout, best)}"
    robust = None
    if ctx.config.robustness_protocol is not None:
        with _phase(ctx, "robustness", iteration, {}) as outcome:
            robust = _robustness(ctx, best)
            outcome["summary"] = f"{ctx.config.robustness_protocol} holdout {_robustness_line(ctx, robust, best)}"
    with _phase(ctx, "report", iteration, {"summary": "reports, README and report.html"}):
        return _write_outputs(ctx, state, best, holdout, started, robust)


def _write_outputs(ctx: RunContext, state: dict, best, holdout, started: float, robust: dict | None = None) -> dict:
    refresh_reports(ctx.run_dir, title=f"{ctx.game.name} · {ctx.config.obs_mode} · {ctx.config.protocol}")
    history = state.get("history", [])
    # From the ledger, not the state: the first dev evaluation (by any role) that reached the
    # best score, so a best found by the simplifier or a tuning trial is dated correctly.
    records = ctx.ledger.records()
    reached = [r.cumulative_env_steps for r in records
               if best and r.role != "finish" and r.status == "ok" and r.score_mean is not None and r.score_mean >= best["score"]]  # fmt: skip
    summary = dict(
        run_id=state.get("run_id", ctx.run_dir.name), game=ctx.game.name, obs_mode=ctx.config.obs_mode,
        protocol=ctx.config.protocol, best_score=best["score"] if best else None,
        best_hns=round(ctx.game.hns(best["score"]), 3) if best and ctx.game.hns(best["score"]) is not None else None,
        env_steps_to_best=min(reached) if reached else None, env_steps=ctx.meter.used_steps,
        frames=ctx.meter.used_frames, budget=ctx.config.budget, iterations=state.get("iteration", 0),
        accepted=sum(h["outcome"] == "accepted" for h in history), rejected=sum(h["outcome"] == "rejected" for h in history),
        holdout=_holdout_line(holdout, best),
        holdout_score=holdout["score_mean"] if holdout else None,
        robustness_protocol=ctx.config.robustness_protocol, robustness=_robustness_line(ctx, robust, best),
        robustness_score=robust["score_mean"] if robust else None,
        structure=((best or {}).get("policy") or {}).get("controller"),
        memory_at_start=state.get("memory_at_start"),
        wall_seconds=round(time.time() - started, 1), stop_reason=state.get("stop_reason"),
        model=ctx.config.model, tokens=int((state.get("usage") or {}).get("tokens", 0)),
        cost_usd=round(float((state.get("usage") or {}).get("cost_usd", 0.0)), 6),
        usage_by_node={node: {k: round(v, 6) if isinstance(v, float) else v for k, v in u.items()}
                       for node, u in (state.get("usage_by_node") or {}).items()},
        run_dir=str(ctx.run_dir), policy=str(ctx.hs.path / "policy.py"), readme=str(ctx.run_dir / "README.md"),
        video=str(ctx.run_dir / holdout["video"]) if holdout and holdout.get("video") else None,
        curve=str(ctx.run_dir / "sample_efficiency.png"),
    )  # fmt: skip
    _write_readme(ctx, summary, history, records)
    write_report(ctx.run_dir, on_error=lambda m: (ctx.tracer.event("warning", "report", message=m), ctx.say(m)))  # never crashes the run
    return summary


def _knob_prefix(cfg) -> str:
    """HL_* settings of this run that differ from the defaults, as a shell prefix."""
    return "".join(f"{k}={v} " for k, v in cfg.knob_overrides().items())


def _fmt_score(score) -> str:
    return "none" if score is None else f"{score:.4g}" if isinstance(score, float) and score != int(score) else f"{score:g}"


def _brains(cfg) -> str:
    llm = [r for r, k in cfg.brains.items() if k == "llm"]
    return f"llm {cfg.model} for {', '.join(llm)}" if cfg.model and llm else "builtin"


def _model_flags(ctx: RunContext) -> str:
    cfg = ctx.config
    if not cfg.model:
        return " --model builtin"
    if (ctx.run_dir / "cassette.jsonl").exists():
        return f" --model replay:{ctx.run_dir / 'cassette.jsonl'}"  # the recorded conversation, no network
    brains = ",".join(f"{r}={k}" for r, k in cfg.brains.items())
    return f" --model {cfg.model} --brains {brains}"


def _robustness_bullet(s: dict) -> str:
    """The README line of the robustness check (a score under hl can be memorisation)."""
    if not s.get("robustness_protocol"):
        return ""
    return f"\n- **Holdout under {s['robustness_protocol']} (seeds differ):** {s['robustness']}"


def _write_readme(ctx: RunContext, s: dict, history: list[dict], records: list | None = None) -> None:
    """README.md: its first lines say the score, what capped it (a stall, the episode cap, a
    plateau) and why the run stopped; repeated directions are one line with their count.
    `history`: the run's iterations (the state's); `records`: the ledger's rows (read if not given)."""
    from graph.report.outcome import cap_headline, failed_direction_lines, score_caps

    cfg = ctx.config
    records = ctx.ledger.records() if records is None else records
    rejected = [h for h in history if h["outcome"] == "rejected"]
    caps = score_caps(records, s["stop_reason"])
    held = "\n".join(f"- {c}" for c in caps) or "- nothing found: no stall, episode cap or plateau (see why it stopped)"
    failed = "\n".join(failed_direction_lines(rejected)) or "- no direction was rejected (what held the score back is above)"
    to_best = f"{s['env_steps_to_best']:,}" if s["env_steps_to_best"] is not None else "no"
    text = f"""# {s['game']} · {s['obs_mode']} · {s['protocol']} · run {s['run_id']}

- **Best dev score:** {_fmt_score(s['best_score'])} (HNS {s['best_hns']}), reached after {to_best} env steps
- **What capped it:** {cap_headline(records, s['stop_reason'])}
- **Why it stopped:** {s['stop_reason']}
- **Holdout:** {s['holdout'] or 'not evaluated (no best policy or no budget left)'}{_robustness_bullet(s)}
- **Budget used:** {s['env_steps']:,} of {s['budget']:,} env steps ({s['frames']:,} emulator frames), {s['wall_seconds']} s
- **Iterations:** {s['iterations']} ({s['accepted']} accepted, {s['rejected']} rejected)
- **Brains:** {_brains(cfg)}; {s['tokens']:,} tokens, ${s['cost_usd']:.4f}

## Reproduce

    {_knob_prefix(cfg)}python -m graph.run --game {s['game']} --obs {cfg.obs_mode} --protocol {cfg.protocol} --budget {cfg.budget} --seed {cfg.seed}{_model_flags(ctx)}
    python -m tools.evaluate --game {s['game']} --obs {cfg.obs_mode} --protocol {cfg.protocol} --policy {ctx.run_dir}/hs/policy.py --episodes 3

## The policy's logic

{policy_logic(ctx)}

## What held the score back

{held}

## Main failed directions

{failed}

## Files

`hs/` (git: one commit per accepted change; `hs/NOTES.md` the changes in words), `trials.jsonl`, `summary.csv`,
`sample_efficiency.png`, `report.html` (`python -m graph.report {s['run_id']}`), `trace.jsonl`
(`python -m graph.trace {s['run_id']}`), `videos/`, `sheets/`, `probe/`.
"""
    path = ctx.run_dir / "README.md"
    path.write_text(text)  # regenerated from the ledger and state: safe to rewrite
    _close_notes(ctx, s, caps, history)


def _close_notes(ctx: RunContext, s: dict, caps: list[str], history: list[dict]) -> None:
    """hs/NOTES.md gets how the run ended (the builtin notes-keeper's notes; never a stub)."""
    from agents.roles.notes_keeper import close_notes
    from graph.report.outcome import failed_direction_lines

    rejected = [h for h in history if h.get("outcome") != "accepted"]
    ending = [f"- Why it stopped: {s['stop_reason']}.", f"- Best dev score {_fmt_score(s['best_score'])}; holdout {s['holdout']}."]
    if s.get("robustness_protocol"):
        ending.append(f"- Holdout under {s['robustness_protocol']}: {s['robustness']}.")
    if caps:
        ending += ["- What capped the score:"] + [f"  - {c}" for c in caps]
    if rejected:
        ending += ["- Tried and rejected:"] + ["  " + line for line in failed_direction_lines(rejected)]
    close_notes(ctx, history, ending)
