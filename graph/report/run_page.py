"""The run report: one self-contained HTML page for a run, `report.html` in the run folder
(also written at the end of every run). The run folder is read once (`read_run`), then each
section of the page is one function below, in the order the page shows them."""

from __future__ import annotations

import io
import json
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from graph.report.graph_svg import graph_svg
from graph.report.html import data_uri, esc, fmt_num, highlight, page, table, write_page
from graph.report.outcome import group_runs, score_caps
from graph.report.plots import sample_efficiency_caption, sample_efficiency_plot
from graph.report.run_files import best_video, candidate_params_diff, failure_sheets, md_fields, memory_entries, read_json
from graph.trace import diagnosis_text, final_state, load_run, policy_versions
from record.ledger import is_holdout, is_robustness

MAX_VIDEO_BYTES = 40 * 1024 * 1024  # larger replays are linked, not embedded
SHEET_MAX_WIDTH = 960


@dataclass
class Run:
    """A run folder, read once: every section of its page draws on this."""

    dir: Path
    trace: dict  # graph.trace.load_run's: rows (node executions), records (the ledger), entries, damage
    cfg: dict  # config.json
    state: dict  # the last checkpointed state
    history: list[dict]  # one entry per decided iteration
    versions: list[dict]  # hs/ commits, oldest first

    @property
    def rows(self) -> list[dict]:
        return self.trace["rows"]

    @property
    def records(self) -> list:
        return self.trace["records"]

    @property
    def game_name(self) -> str:
        return self.cfg.get("game") or (self.records[0].game if self.records else "?")

    @property
    def obs(self) -> str:
        return self.cfg.get("obs_mode", "?")

    @property
    def title(self) -> str:
        return f"{self.game_name} · {self.obs} · {self.cfg.get('protocol', '?')} · run {self.dir.name}"

    @property
    def finished(self) -> bool:
        return bool(self.state.get("stop_reason")) and not any(r["status"] == "open" for r in self.rows)


def read_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    trace = load_run(run_dir)
    cfg = read_json(run_dir / "config.json")
    state = final_state(run_dir)
    return Run(run_dir, trace, cfg, state, _history(state, trace["rows"]), policy_versions(run_dir))


def _history(state: dict, rows: list[dict]) -> list[dict]:
    """The checkpointed history of iterations or, without one, what the decide nodes' trace
    summaries ('outcome: direction') tell."""
    return state.get("history") or [dict(iteration=r["iteration"] + 1, direction=(r["summary"] or "").split(": ", 1)[-1],
                                         outcome=(r["summary"] or "").split(":", 1)[0], delta=None, trial=None, score=None)
                                    for r in rows if r["node"] == "decide" and r["status"] == "end"]  # fmt: skip


def render_run(run_dir: Path) -> str:
    run = read_run(run_dir)
    script, plot = sample_efficiency_section(run)
    sections = [title_section(run), summary_section(run), graph_section(run), plot, iterations_section(run),
                policy_section(run), versions_section(run), replay_section(run), sheets_section(run),
                memory_section(run), costs_section(run), timeline_section(run)]  # fmt: skip
    return page(run.title, "".join(sections), script)


def write_report(run_dir: str | Path, out: str | Path | None = None, on_error=None) -> Path | None:
    """Render the run's report to `report.html` in its folder (or `out`). With `on_error`
    (the end of a run), a failure is handed to it as one line and None is returned."""
    run_dir = Path(run_dir)
    path = Path(out) if out else run_dir / "report.html"
    try:
        write_page(path, render_run(run_dir))
    except Exception as err:
        if on_error is None:
            raise
        on_error(f"report.html not written: {type(err).__name__}: {err}")
        return None
    return path


# -- the sections, top to bottom ---------------------------------------------------------------------


def title_section(run: Run) -> str:
    parts = [f"<h1>{esc(run.title)}</h1>",
             f'<p class="muted">Run folder <code>{esc(run.dir)}</code> · report written {datetime.now().isoformat(timespec="seconds")} · '
             f'<code>python -m graph.trace {esc(run.dir.name)}</code> for the full trace</p>']  # fmt: skip
    for d in run.trace["damage"]:
        parts.append(f'<div class="damage">damage: {esc(d)}</div>')
    return "".join(parts)


def summary_section(run: Run) -> str:
    """Cards: best dev score, its HNS, holdout, env steps to the best and used, iterations; why it stopped."""
    records, history, cfg, state = run.records, run.history, run.cfg, run.state
    try:
        from envs.registry import resolve_env

        game = resolve_env(run.game_name)
    except Exception:
        game = None
    dev = [r for r in records if r.status == "ok" and r.score_mean is not None and r.role != "finish"]
    best = max(dev, key=lambda r: r.score_mean) if dev else None
    reached = min((r.cumulative_env_steps for r in dev if best and r.score_mean >= best.score_mean), default=None)
    holdout = [r for r in records if is_holdout(r) and r.score_mean is not None]
    robust = [r for r in records if is_robustness(r) and r.score_mean is not None]
    hns = game.hns(best.score_mean) if game and best else None
    last = records[-1] if records else None
    cards = [("best dev score", fmt_num(best.score_mean) if best else "–"), ("HNS", f"{hns:.3f}" if hns is not None else "–"),
             ("holdout", f"{fmt_num(holdout[-1].score_mean)} over {len(holdout[-1].scores)} ep." if holdout else "–"),
             *([(f"holdout under {robust[-1].protocol}", f"{fmt_num(robust[-1].score_mean)} over {len(robust[-1].scores)} ep.")]
               if robust else []),
             ("env steps to best", fmt_num(reached)), ("env steps used", f"{fmt_num(last.cumulative_env_steps) if last else 0} / {fmt_num(cfg.get('budget'))}"),
             ("iterations", f"{len(history)} ({sum(h['outcome'] == 'accepted' for h in history)} accepted)")]  # fmt: skip
    caps = score_caps(records, state.get("stop_reason"))
    capped = (f'<p id="what-capped"><b>What capped the score:</b> {esc(caps[0])}</p>' if len(caps) == 1 else
              '<div id="what-capped"><b>What capped the score:</b><ul class="caps">' + "".join(f"<li>{esc(c)}</li>" for c in caps) + "</ul></div>"
              if caps else "")  # fmt: skip
    return ('<section id="summary"><div class="cards">' + "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="l">{esc(k)}</div></div>' for k, v in cards) + "</div>"
        f'<p><b>Why it stopped:</b> {esc(state.get("stop_reason") or ("killed or still running" if not run.finished else "–"))} · '
        f'<b>Brains:</b> {esc(cfg.get("model") or "builtin")}</p>{capped}</section>')  # fmt: skip


def graph_section(run: Run) -> str:
    return ('<h2>The graph and the path this run took</h2><section id="graph">' + graph_svg(run.rows, run.finished) +
            '<p class="muted">Blue: edges taken (with counts) and nodes run (×executions); dashed grey: not taken.</p></section>')  # fmt: skip


def sample_efficiency_section(run: Run) -> tuple[str, str]:
    """(script, html): the plot's script goes at the end of the page, its div here."""
    script, div = sample_efficiency_plot(run.records, f"{run.game_name} {run.obs}: score against env steps")
    caption = sample_efficiency_caption(run.records)
    return script, (f'<h2>Sample efficiency</h2><section><div id="sample-efficiency">{div}</div>'
                    + (f'<p class="muted" id="sample-efficiency-caption">{esc(caption)}</p>' if caption else "") + "</section>")  # fmt: skip


def iterations_section(run: Run) -> str:
    """One row per iteration: direction tried, outcome, score and delta, the critic's diagnosis,
    and a link to the code diff (hs/ commit) or, for a rejected candidate (rolled back, not in
    hs/), to its parameter diff from the checkpoint, shown under the table. Consecutive
    iterations that repeat each other (same direction, outcome, score and diagnosis) are one
    row with their count."""
    items, cand_diffs = _iteration_items(run)
    it_rows = []
    for group in group_runs(items, lambda i: i["same"]):
        first, last, n = group[0], group[-1], len(group)
        its = esc(first["it"]) if n == 1 else f'{esc(first["it"])}–{esc(last["it"])}'
        direction = esc(first["direction"]) + (f' <span class="count">×{n}</span>' if n > 1 else "")
        trials = list(dict.fromkeys(str(i["trial"]) for i in group if i["trial"] is not None))
        trial = esc(trials[0] if len(trials) == 1 else f"{trials[0]}–{trials[-1]}" if trials else "")
        link = next((i["link"] for i in group if i["link"]), "")
        it_rows.append([its, direction, f'<span class="{esc(first["outcome"])}">{esc(first["outcome"])}</span>', first["score"],
                        first["delta"], trial, esc(first["what"]), esc(first["next"]), link])  # fmt: skip
    return ("<h2>Iterations</h2><section id=\"iterations\">" + (table(
        ["iter", "direction tried", "outcome", "dev score", "Δ best", "trial", "diagnosis of this evaluation", "next direction", "code diff"],
        it_rows, num={0, 3, 4, 5}, table_id="iterations-table") if it_rows else '<p class="muted">No iteration was decided.</p>')
        + "".join(cand_diffs) + "</section>")  # fmt: skip


def _iteration_items(run: Run) -> tuple[list[dict], list[str]]:
    """Each iteration's cells (escaped where they are HTML) and the folded parameter diffs of
    rejected candidates (one per distinct diff)."""
    commit_of_trial = {}
    for v in run.versions:
        m = re.search(r"trial (\d+)", v["message"])
        if m:
            commit_of_trial[int(m.group(1))] = v["version"]
    by_trial = {r.trial: r for r in run.records}
    items, cand_diffs, seen_diffs = [], [], {}
    for h in run.history:
        it = h.get("iteration")
        diag = md_fields(diagnosis_text(run.dir, it - 1 if isinstance(it, int) else None))
        outcome = h.get("outcome", "")
        link = ""
        if h.get("trial") in commit_of_trial:
            v = commit_of_trial[h["trial"]]
            link = f'<a href="#v{v}">version {v}</a>'
        elif outcome != "accepted":
            diff = candidate_params_diff(run.rows, h.get("trial"), by_trial)
            if diff and _diff_body(diff) in seen_diffs:  # the same candidate again: one diff, linked twice
                link = f'<a href="#cand-{seen_diffs[_diff_body(diff)]}">parameter diff</a>'
            elif diff:
                seen_diffs[_diff_body(diff)] = it
                cand_diffs.append(f'<details id="cand-{it}"><summary>iteration {it}: rejected candidate (trial {h.get("trial")}), '
                                  f'parameters against the accepted version</summary>{highlight(diff, "diff")}</details>')  # fmt: skip
                link = f'<a href="#cand-{it}">parameter diff</a>'
        delta = h.get("delta")
        item = dict(it=it, direction=h.get("direction"), outcome=outcome, score=esc(fmt_num(h.get("score"))),
                    delta=esc(f"{delta:+g}" if isinstance(delta, (int, float)) else "–"), trial=h.get("trial"),
                    what=diag.get("what failed", "–"), next=diag.get("direction", "–"), link=link)  # fmt: skip
        item["same"] = (item["direction"], outcome, item["score"], item["delta"], item["what"], item["next"])
        items.append(item)
    return items, cand_diffs


def _diff_body(diff: str) -> str:
    """A parameter diff without its header lines (they name the trial)."""
    return "".join(line for line in diff.splitlines(True) if not line.startswith(("---", "+++")))


def policy_section(run: Run) -> str:
    """The final policy code (and the detectors, folded)."""
    policy = run.dir / "hs" / "policy.py"
    parts = ['<h2>The final policy</h2><section id="policy">']
    parts.append(highlight(policy.read_text(), "python") if policy.exists() else '<p class="muted">No policy was written.</p>')
    detectors = run.dir / "hs" / "detectors.py"
    if detectors.exists():
        parts.append(f"<details><summary>hs/detectors.py</summary>{highlight(detectors.read_text(), 'python')}</details>")
    parts.append("</section>")
    return "".join(parts)


def versions_section(run: Run) -> str:
    """Every hs/ commit with its diff from the one before (none without an hs/ repository)."""
    versions = run.versions
    if not versions:
        return ""
    parts = ['<h2>Policy versions (hs/ commits)</h2><section id="versions">']
    for v in versions:
        if v["version"] == 0:
            continue
        diff = subprocess.run(["git", "diff", versions[v["version"] - 1]["commit"], v["commit"]], cwd=run.dir / "hs",
                              capture_output=True, text=True).stdout  # fmt: skip
        parts.append(f'<details id="v{v["version"]}"><summary>version {v["version"]} · <code>{v["commit"][:8]}</code> · {esc(v["subject"])}</summary>'
                     f'<p class="muted">{esc(v["message"])}</p>{highlight(diff or "(no change)", "diff")}</details>')  # fmt: skip
    parts.append("</section>")
    return "".join(parts)


def replay_section(run: Run) -> str:
    return '<h2>Replay of the best episode</h2><section id="replay">' + _video_html(run.dir, run.records) + "</section>"


def _video_html(run_dir: Path, records: list) -> str:
    """The replay of the best policy's holdout episode, embedded as a data: URI."""
    path, caption = best_video(run_dir, records)
    if path is None or not path.exists():
        return '<p class="muted">No replay video in this run (the final holdout evaluation records one).</p>'
    size = path.stat().st_size
    rel = path.relative_to(run_dir)
    if size > MAX_VIDEO_BYTES:
        return f'<p>The replay is {size / 1e6:.0f} MB, too large to embed: <a href="{esc(rel)}">{esc(rel)}</a>. {esc(caption)}</p>'
    return (f'<video id="best-replay" controls muted loop playsinline preload="auto" width="480" '
            f'src="{data_uri(path.read_bytes(), "video/mp4")}"></video>'
            f'<p class="muted">{esc(caption)} · <code>{esc(rel)}</code> ({size / 1e3:.0f} kB, H.264)</p>')  # fmt: skip


def sheets_section(run: Run) -> str:
    """Contact sheets of the failures the critic found, as data: URIs."""
    sheets = failure_sheets(run.dir, run.history)
    parts = ['<h2>Contact sheets of failures</h2><section id="sheets">']
    if not sheets:
        parts.append('<p class="muted">The critic found no failure with a contact sheet.</p>')
    for rel, caption in sheets:
        if (run.dir / rel).exists():
            parts.append(f'<figure><img class="sheet" alt="{esc(rel)}" src="{_sheet_png(run.dir / rel)}"><figcaption class="muted">{esc(caption)} · <code>{esc(rel)}</code></figcaption></figure>')
    parts.append("</section>")
    return "".join(parts)


def _sheet_png(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > SHEET_MAX_WIDTH:
            im = im.resize((SHEET_MAX_WIDTH, round(im.height * SHEET_MAX_WIDTH / im.width)), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return data_uri(buf.getvalue(), "image/png")


def memory_section(run: Run) -> str:
    """Memory entries this run wrote and those it could read when it started, plus any memory
    tool calls in the trace."""
    started = run.trace["entries"][0]["ts"] if run.trace["entries"] else None
    mem = memory_entries(run.dir, run.cfg, started)
    tool_reads = [e for r in run.rows for e in r["events"] if e.get("event") == "tool" and "memory" in str(e.get("tool"))]
    probe_src = next(((r.get("writes") or {}).get("probe", {}) or {} for r in run.rows if r["node"] == "prober" and r.get("writes")), {})
    parts = ['<h2>Memory</h2><section id="memory">']
    if mem["error"]:
        parts.append(f'<p class="muted">Memory not read: {esc(mem["error"])}</p>')
    if probe_src.get("source") == "memory":
        parts.append("<p>The probe was recalled from memory (no probe steps spent).</p>")
    headers = ["kind", "entry", "outcome", "trial", "run", "time"]
    parts.append(f"<h3>Written by this run ({len(mem['written'])})</h3>")
    parts.append(table(headers, [_memory_row(e) for e in mem["written"]]) if mem["written"] else '<p class="muted">none</p>')
    parts.append(f"<h3>Available to this run when it started ({len(mem['readable'])}): same game and obs mode, earlier runs</h3>"
                 '<p class="muted">The builtin roles read these: the prober and policy-writer recall facts (probe, best policy), '
                 "the critic skips directions remembered as rejected.</p>")  # fmt: skip
    parts.append(table(headers, [_memory_row(e) for e in mem["readable"][-60:]]) if mem["readable"] else '<p class="muted">none</p>')
    if tool_reads:
        parts.append("<h3>Memory tool calls (LLM brains)</h3>" + table(["tool", "arguments", "result"],
                     [[esc(e.get("tool")), esc(json.dumps(e.get("args"))), esc(e.get("result") or e.get("error"))] for e in tool_reads]))  # fmt: skip
    parts.append("</section>")
    return "".join(parts)


def _memory_row(e: dict) -> list[str]:
    """A memory entry in words; a fact's whole value folded under it (JSON), the time to the second."""
    text = esc(e["text"])
    if e.get("full"):
        text += f'<details class="full"><summary>whole value</summary><pre>{esc(e["full"])}</pre></details>'
    when = str(e["timestamp"] or "")[:19].replace("T", " ")
    return [esc(e["kind"]), text, esc(e["extra"]), esc(e["trial"]), esc(e["run_id"]), esc(when)]


def costs_section(run: Run) -> str:
    """Env steps, frames, wall time, tokens, USD and LLM calls, per node and in total."""
    records = run.records
    per_node = _costs_per_node(run.rows, records)
    last = records[-1] if records else None
    times = [e.get("t") for e in run.trace["entries"] if e.get("t")]
    wall = (max(times) - min(times)) if times else 0.0
    cost_rows = [[esc(n), fmt_num(a[0]), f"{a[1]:.1f}", fmt_num(a[2]), fmt_num(a[5]), fmt_num(a[3]), f"{a[4]:.4f}"] for n, a in per_node.items()]
    tokens = sum(a[3] for a in per_node.values())
    usd = sum(a[4] for a in per_node.values())
    cost_rows.append(["<b>total</b>", fmt_num(sum(a[0] for a in per_node.values())), f"{wall:.1f} (wall)",
                      f"<b>{fmt_num(last.cumulative_env_steps if last else 0)}</b>", fmt_num(sum(a[5] for a in per_node.values())),
                      f"<b>{fmt_num(tokens)}</b>", f"<b>{usd:.4f}</b>"])  # fmt: skip
    return ('<h2>Costs</h2><section id="cost">' + table(["node", "executions", "seconds", "env steps", "LLM calls", "tokens", "USD"],
            cost_rows, num={1, 2, 3, 4, 5, 6}, table_id="cost-table") +
            f'<p class="muted">Emulator frames: {fmt_num(last.cumulative_frames if last else 0)} · budget {fmt_num(run.cfg.get("budget"))} env steps · '
            f'ledger: {len(records)} trials · wall time from the first to the last trace entry.</p></section>')  # fmt: skip


def _costs_per_node(rows: list[dict], records: list) -> dict[str, list[float]]:
    """node -> [executions, seconds, env steps, tokens, USD, LLM calls]; the final holdout
    evaluation (ledger rows of role finish, outside any node) as a node of its own."""
    per_node: dict[str, list[float]] = {}
    for r in rows:
        acc = per_node.setdefault(r["node"], [0, 0.0, 0, 0, 0.0, 0])
        acc[0] += 1
        acc[1] += r["seconds"] or 0.0
        acc[2] += r["env_steps"] or 0
        acc[3] += r["tokens"] or 0
        acc[4] += r.get("cost_usd") or 0.0
        acc[5] += sum(1 for e in r["events"] if e.get("event") == "llm_call")
    finish_rows = [r for r in records if r.role == "finish"]
    if finish_rows and "holdout" not in per_node:  # runs whose trace has no holdout phase of its own
        per_node["finish (holdout)"] = [1, sum(r.wall_seconds for r in finish_rows), sum(r.env_steps for r in finish_rows), 0, 0.0, 0]
    return per_node


def timeline_section(run: Run) -> str:
    """Every node execution in order, folded."""
    rows = run.rows
    tl = [[esc(r["index"]), esc(r["iteration"]), esc(r["node"]), esc((r["start"] or "")[11:19]), esc(fmt_num(r["seconds"])),
           esc(fmt_num(r["env_steps"])), esc(fmt_num(r["tokens"])), esc(r["decision"] or ""), esc(r["summary"]),
           esc(", ".join(f"{k}: {v}" for k, v in r["artifacts"].items() if not k.endswith("traces")))] for r in rows]  # fmt: skip
    return (f'<h2>Timeline</h2><section id="timeline"><details><summary>{len(rows)} node executions</summary>' +
            table(["#", "iter", "node", "start", "s", "env steps", "tokens", "decision", "summary", "artifacts"], tl, num={0, 1, 4, 5, 6}) +
            "</details></section>")  # fmt: skip
