"""Inspecting a run: the trace CLI (complete, killed and empty runs), the HTML run report and
the suite page opened in headless Chromium (Debian's, --no-sandbox, every non-file request
refused and counted), from a real small run of the learning loop."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT

# HL_UPDATE_SCREENSHOTS=1: the Chromium tests also save their screenshots as docs/img/run-report.png
# and docs/img/suite-page.png (the pictures in README.md come from this test path).
SCREENSHOTS = PROJECT_ROOT / "docs" / "img"



def chromium() -> str:
    """Debian's chromium, installed with apt-get on first use when it is missing (the test
    setup of a fresh machine); a test that needs it fails, never skips, without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run("apt-get update -qq && apt-get install -y -qq chromium", shell=True, env=env,
                       capture_output=True, timeout=1200)  # fmt: skip
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is needed for the report tests: apt-get install chromium (Debian's package)")
    return found


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_"))}
    return {**env, **extra, "PYTHONPATH": str(PROJECT_ROOT)}


def trace_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graph.trace", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip


# -- trace CLI ---------------------------------------------------------------------------------------


def test_trace_complete_run(small_run):
    runs, run_dir, summary = small_run
    proc = trace_cli(run_dir.name, "--runs-dir", runs, "--json")  # by run id
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = out["rows"]
    assert out["damage"] == []
    assert [r["node"] for r in rows[:4]] == ["prober", "detector_writer", "policy_writer", "evaluate"]
    assert all(r["status"] == "end" for r in rows)
    assert rows[-4]["node"] == "decide" and rows[-4]["decision"] == "end"
    # The finish, traced like nodes: the holdout, the robustness check under ale-v5 (a run under hl), the report.
    assert [r["node"] for r in rows[-3:]] == ["holdout", "robustness", "report"]
    assert rows[-3]["env_steps"] > 0 and rows[-3]["summary"].startswith("holdout ")
    assert rows[-2]["env_steps"] > 0 and rows[-2]["summary"].startswith("ale-v5 holdout ")
    assert sum(r["env_steps"] for r in rows) <= summary["env_steps"]
    evaluations = [r for r in rows if r["node"] == "evaluate"]
    assert all(r["trials"] and any(k.endswith("sheet") for k in r["artifacts"]) for r in evaluations)
    assert {"start", "seconds", "env_steps", "tokens", "cost_usd", "decision", "summary", "artifacts"} <= set(rows[0])

    text = trace_cli(run_dir)  # by path, the table
    assert text.returncode == 0 and "replay_critic" in text.stdout and "damage" not in text.stdout

    detail = json.loads(trace_cli(run_dir, "--node", "replay_critic", "--iteration", "1", "--json").stdout)
    (ex,) = detail["executions"]
    assert ex["iteration"] == 1 and "evaluation" in ex["inputs"] and "diagnosis" in ex["outputs"]
    assert ex["diagnosis"].startswith("# Diagnosis, iteration 1")
    details_text = trace_cli(run_dir, "--node", "evaluate")
    assert details_text.returncode == 0 and "inputs" in details_text.stdout and "trial" in details_text.stdout

    only = json.loads(trace_cli(run_dir, "--iteration", "1", "--json").stdout)["rows"]
    assert only and all(r["iteration"] == 1 for r in only)

    diff = json.loads(trace_cli(run_dir, "--diff", "1", "2", "--json").stdout)
    assert diff["a"]["version"] == 1 and diff["b"]["version"] == 2 and "+++ b/policy.py" in diff["diff"]
    assert trace_cli(run_dir, "--diff", "1", "nonsense").returncode == 2


def test_trace_killed_run_reads_up_to_the_damage(small_run, tmp_path):
    _, run_dir, _ = small_run
    killed = tmp_path / run_dir.name
    shutil.copytree(run_dir, killed)
    data = (killed / "trace.jsonl").read_bytes()
    (killed / "trace.jsonl").write_bytes(data[: len(data) - 30])  # the last line torn mid-write
    out = json.loads(trace_cli(killed, "--json").stdout)
    assert any("torn last line" in d for d in out["damage"])
    assert out["rows"][-1]["status"] == "open" and out["rows"][-1]["node"] == "report"  # started, never ended
    assert len(out["rows"]) == len(json.loads(trace_cli(run_dir, "--json").stdout)["rows"])
    text = trace_cli(killed)
    assert text.returncode == 0 and "did not finish" in text.stdout and "torn last line" in text.stdout
    ledger = (killed / "trials.jsonl").read_bytes()
    (killed / "trials.jsonl").write_bytes(ledger[: len(ledger) - 40])
    assert any("trials.jsonl" in d for d in json.loads(trace_cli(killed, "--json").stdout)["damage"])
    from graph.report import write_report

    page = write_report(killed).read_text()
    assert "torn last line" in page and 'class="damage"' in page


def test_trace_with_a_corrupt_line_inside_reports_it_and_reads_the_rest(small_run, tmp_path):
    _, run_dir, _ = small_run
    damaged = tmp_path / run_dir.name
    shutil.copytree(run_dir, damaged)
    lines = (damaged / "trace.jsonl").read_bytes().split(b"\n")
    lines[3] = b'{"event": "end", "node": "evalu\x00\xff'  # garbage in the middle (disk damage, a bad edit)
    (damaged / "trace.jsonl").write_bytes(b"\n".join(lines))
    out = json.loads(trace_cli(damaged, "--json").stdout)
    assert out["damage"] == ["trace.jsonl line 4: not JSON"]
    whole = json.loads(trace_cli(run_dir, "--json").stdout)["rows"]
    assert [r["node"] for r in out["rows"]] == [r["node"] for r in whole]  # in order, the damaged one in its place
    hurt = [r for r in out["rows"] if r["status"] == "open"]
    assert [r["node"] for r in hurt] == ["detector_writer"] and hurt[0]["summary"] == "(end not recorded: damaged trace)"
    assert "line 4: not JSON" in trace_cli(damaged).stdout


@pytest.mark.parametrize("trace", ["empty", "missing"])
def test_trace_empty_run(tmp_path, trace):
    run_dir = tmp_path / "pong" / "ram" / "empty-run"
    run_dir.mkdir(parents=True)
    if trace == "empty":
        (run_dir / "trace.jsonl").write_text("")
    out = json.loads(trace_cli(run_dir, "--json").stdout)
    assert out["rows"] == []
    assert (out["damage"] == []) if trace == "empty" else any("does not exist" in d for d in out["damage"])
    text = trace_cli("empty-run", "--runs-dir", tmp_path)
    assert text.returncode == 0 and "no node executions recorded" in text.stdout
    assert trace_cli("no-such-run", "--runs-dir", tmp_path).returncode == 2
    from graph.report import write_report

    assert "No iteration was decided" in write_report(run_dir).read_text()


# -- HTML pages in a real browser -------------------------------------------------------------------


def open_in_chromium(page_path: Path, screenshot: Path, plot: str, wait_ms: int = 2500) -> dict:
    """Open a page from disk; `plot` is the CSS selector of the element holding its main plot."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    refused, console, errors = [], [], []

    def gate(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", gate)
            page.on("requestfailed", lambda r: None if r.url.startswith(("file:", "data:", "blob:")) or r.url in refused else refused.append(r.url))
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(wait_ms)
            info = page.evaluate("""() => {
                const v = document.querySelector('video');
                return {
                    bokeh_docs: window.Bokeh ? Bokeh.documents.length : 0,
                    bokeh_roots: document.querySelectorAll('[data-root-id]').length,
                    canvases: window.Bokeh ? Bokeh.documents.reduce((n, d) => n + d.roots().length, 0) : 0,
                    video: v ? {readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
                                error: v.error ? v.error.code : null, duration: v.duration} : null,
                    graph: !!document.querySelector('#run-graph'),
                    title: document.title,
                };
            }""")
            if info["video"] is not None:  # play a moment: frames really decode
                info["played"] = page.evaluate("""async () => {
                    const v = document.querySelector('video'); await v.play();
                    await new Promise(r => setTimeout(r, 700)); v.pause(); return v.currentTime; }""")
            plot_png = screenshot.with_name(screenshot.stem + "-plot.png")
            page.locator(plot).screenshot(path=str(plot_png))
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    plot_pixels = np.asarray(Image.open(plot_png).convert("L"), dtype=np.float32)
    info.update(refused=refused, errors=errors + [t for kind, t in console if kind == "error"], pixel_std=float(pixels.std()),
                plot_pixel_std=float(plot_pixels.std()), plot_size=plot_pixels.shape)  # fmt: skip
    return info


def keep_screenshot(png: Path, name: str, max_height: int | None = None) -> None:
    """Save a test's screenshot under docs/img/ when HL_UPDATE_SCREENSHOTS=1 (the top
    `max_height` pixels of a long page)."""
    if os.environ.get("HL_UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with Image.open(png) as im:
        if max_height and im.height > max_height:
            im = im.crop((0, 0, im.width, max_height))
        im.convert("RGB").save(SCREENSHOTS / name, optimize=True)


def test_run_report_in_headless_chromium(small_run, tmp_path):
    runs, run_dir, _ = small_run
    report = run_dir / "report.html"
    assert report.exists()  # written by the run itself, at the end
    text = report.read_text()
    import re

    assert not re.search(r"""<(script|link|img|video|source|iframe)[^>]*\s(src|href)=["']?(https?:)?//""", text)  # nothing fetched
    assert len(text) < 8e6
    for section in ('id="run-graph"', 'id="sample-efficiency"', 'id="iterations-table"', 'id="policy"',
                    'id="best-replay"', 'id="sheets"', 'id="memory"', 'id="cost-table"'):  # fmt: skip
        assert section in text, section
    info = open_in_chromium(report, tmp_path / "run.png", "#sample-efficiency")
    keep_screenshot(tmp_path / "run.png", "run-report.png", max_height=1800)
    assert info["refused"] == [], info["refused"]  # the page asked the network for nothing
    assert info["errors"] == [], info["errors"]
    assert info["bokeh_docs"] == 1 and info["canvases"] >= 1 and info["graph"]
    v = info["video"]
    assert v is not None and v["error"] is None and v["readyState"] >= 2 and v["width"] == 160 and v["height"] == 210
    assert info["played"] > 0  # Debian's chromium decodes the H.264 replay
    assert info["pixel_std"] > 20  # not a blank page
    assert min(info["plot_size"]) > 100 and info["plot_pixel_std"] > 10  # the plot drew something

    # The contents, not only the sections: a row per iteration naming its direction and
    # outcome, links to the highlighted code of each accepted version, the failure sheets.
    history = json.loads(subprocess.run([sys.executable, "-m", "graph.trace", str(run_dir), "--json"], capture_output=True,
                                        text=True, env=clean_env(), cwd=PROJECT_ROOT).stdout)["rows"]  # fmt: skip
    decided = [r for r in history if r["node"] == "decide" and r["summary"]]
    assert decided and all(r["summary"].split(": ", 1)[1] in text for r in decided if ": " in r["summary"])
    links = re.findall(r'href="#(v\d+)"', text)
    assert links and all(f'id="{v}"' in text for v in links) and 'class="hl"' in text
    assert '<img class="sheet"' in text and "data:image/png;base64," in text


def test_suite_report_in_headless_chromium(small_run, tmp_path):
    runs, run_dir, summary = small_run
    from graph.report import write_suite

    # A suite of two: the learning run and a tools.evaluate run of a random Breakout policy
    # (a run folder with a ledger and no report: the page gives the command that writes one).
    suite = tmp_path / "suite"
    shutil.copytree(run_dir, suite / run_dir.relative_to(runs))
    proc = subprocess.run([sys.executable, "-m", "tools.evaluate", "--game", "breakout", "--policy", str(PROJECT_ROOT / "tests" / "policies" / "random_policy.py"),
                           "--episodes", "1", "--max-frames", "2000", "--runs-dir", str(suite)],
                          capture_output=True, text=True, timeout=300, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = write_suite(suite)
    text = page.read_text()
    assert "Pong" in text and run_dir.name in text and "Breakout" in text and "2 runs" in text
    # The reference curves from the shared data are drawn next to this suite's (legend labels in the plot's JSON).
    for label in ("published HL, ram", "CleanRL EnvPool PPO at 10M", "Pong ram hl (runs)", "this suite, ram, hl"):
        assert label in text, label
    # Pong's row: its best score and its human-normalised score from the reference table.
    from envs.atari.games import resolve_game

    hns = resolve_game("pong").hns(summary["best_score"])
    assert f"{hns:.2f}" in text or f"{hns:.3f}" in text
    info = open_in_chromium(page, tmp_path / "suite.png", "#suite-curve")
    keep_screenshot(tmp_path / "suite.png", "suite-page.png")
    assert info["refused"] == [] and info["errors"] == [], info
    assert info["bokeh_docs"] == 1 and info["canvases"] >= 1
    assert info["pixel_std"] > 20 and info["plot_pixel_std"] > 10


def test_what_a_person_reads_of_a_real_run(small_run):
    """The run's README says in its first lines what capped the score and why it stopped, each
    failed direction once; hs/NOTES.md is more than its first line; probe.md is in words; the
    report's plot caption names the marks the plot has."""
    runs, run_dir, summary = small_run
    readme = (run_dir / "README.md").read_text()
    head = readme.splitlines()[:6]
    capped = next(line for line in head if line.startswith("- **What capped it:**"))
    assert "3,000-frame episode cap" in capped  # HL_EVAL_MAX_FRAMES=3000: every episode is cut there
    assert any(line.startswith("- **Why it stopped:**") for line in head)
    failed = readme.split("## Main failed directions")[1].split("##")[0].strip().splitlines()
    assert failed and len(failed) == len(set(failed))
    notes = (run_dir / "hs" / "NOTES.md").read_text()
    assert "## Iteration 1:" in notes and "## How the run ended" in notes and "Why it stopped:" in notes
    probe = (run_dir / "probe" / "probe.md").read_text()
    assert "The player moves along y (up and down), not along x." in probe and "True" not in probe and "False" not in probe
    import re

    report = (run_dir / "report.html").read_text()
    assert 'id="what-capped"' in report
    caption = re.search(r'id="sample-efficiency-caption">([^<]*)<', report).group(1)
    holdout_scored = summary["holdout"].split()[0] not in ("none", "none:")
    assert ("green diamond" in caption) == holdout_scored and ("no diamond" in caption) != holdout_scored


def test_report_cli(small_run, tmp_path):
    runs, run_dir, _ = small_run
    out = tmp_path / "r.html"
    proc = subprocess.run([sys.executable, "-m", "graph.report", run_dir.name, "--runs-dir", str(runs), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 100_000
    bad = subprocess.run([sys.executable, "-m", "graph.report", "no-such-run", "--runs-dir", str(runs)],
                         capture_output=True, text=True, timeout=120, env=clean_env(), cwd=PROJECT_ROOT)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
