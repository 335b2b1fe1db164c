"""What every command shares: bad input is one line on stderr with exit code 2, and an
unexpected internal error is one line too (HL_DEBUG=1 shows its traceback)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


def run_command(body: Callable[[], int], usage_errors: tuple[type[BaseException], ...] = (),
                interrupted: str = "interrupted") -> int:  # fmt: skip
    """Run a command's body; usage errors exit 2, anything unexpected exits 1, each one line; a
    closed pipe ends it quietly."""
    try:
        return body()
    except BrokenPipeError:
        # The reader went away (`... --json | head -1`): stop quietly like any Unix tool, and
        # point stdout at nothing so the interpreter's last flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command its pipe stopped
    except usage_errors as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{interrupted}\n")
        return 130
    except Exception as err:
        if os.environ.get("HL_DEBUG"):
            raise
        sys.stderr.write(f"error: internal error: {type(err).__name__}: {err} (HL_DEBUG=1 for the traceback)\n")
        return 1


# -- argument types shared by the commands (argparse calls them; a bad value is one line) ------


def positive_int(text: str) -> int:
    """A whole number >= 1; "1e6" is accepted."""
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1 or value != float(text):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def env_steps(text: str) -> int:
    """A budget of env steps: a positive whole number, written like 1e6."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of env steps like 1e6, got {text!r}") from None
    if not value >= 1 or value != int(value) or value > 1e12:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of env steps, got {text!r}")
    return int(value)


def usd(text: str) -> float:
    """An amount of US dollars >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected US dollars like 2.50, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative amount, got {text!r}")
    return value
