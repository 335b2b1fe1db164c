"""What every command shares: bad input is one line on stderr with exit code 2, and an
unexpected internal error is one line too (HL_DEBUG=1 shows its traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


def run_command(body: Callable[[], int], usage_errors: tuple[type[BaseException], ...] = (),
                interrupted: str = "interrupted") -> int:  # fmt: skip
    """Run a command's body; usage errors exit 2, anything unexpected exits 1, each one line."""
    try:
        return body()
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
