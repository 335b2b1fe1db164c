"""Every command's --help: every option explained, the description whole, and the options a
message points to exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT

COMMANDS = ["graph.run", "graph.trace", "graph.report", "tools.evaluate", "probe.atari"]


def help_text(module: str) -> str:
    env = {**os.environ, "COLUMNS": "300"}  # one option per line: its help, if any, on the same line
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("module", COMMANDS)
def test_every_option_has_help_and_the_description_is_a_whole_sentence(module):
    text = help_text(module)
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0].strip()
    assert description.endswith((".", ")")), f"{module}: description cut: {description!r}"
    lines = text.splitlines() + [""]
    options = [i for i, line in enumerate(lines) if re.match(r"^  -", line)]
    assert options

    def explained(i: int) -> bool:  # help on the option's line, or on the deeper-indented line below it
        return bool(re.match(r"^  -.*?\S  +\S", lines[i])) or bool(re.match(r"^ {6,}\S", lines[i + 1]))

    bare = [lines[i].strip() for i in options if not explained(i)]
    assert not bare, f"{module}: options without help: {bare}"


def test_graph_run_lists_the_games_the_unknown_game_error_points_to():
    listing = subprocess.run([sys.executable, "-m", "graph.run", "--list"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "Pong" in listing.stdout and "MontezumaRevenge" in listing.stdout
    unknown = subprocess.run([sys.executable, "-m", "graph.run", "--game", "pongg"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert unknown.returncode == 2 and "see --list" in unknown.stderr and "Pong" in unknown.stderr
