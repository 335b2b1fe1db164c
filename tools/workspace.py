"""The run folder: `runs/<game>/<obs>/<run_id>/`, created once and never overwritten."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from pathlib import Path

DEFAULT_RUNS_DIR = Path("runs")
RUN_SUBDIRS = ("videos", "sheets", "traces")


class RunFolderError(ValueError):
    pass


def new_run_id(prefix: str = "") -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def create_run_dir(runs_dir: str | Path, game_slug: str, obs_mode: str, run_id: str | None = None) -> Path:
    """Make a fresh run folder; refuses an existing one so nothing is overwritten."""
    run_id = run_id or new_run_id()
    run_dir = Path(runs_dir) / game_slug / obs_mode / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunFolderError(f"run folder {run_dir} already exists; pick another run id") from None
    except OSError as err:
        raise RunFolderError(f"cannot create run folder {run_dir}: {err.strerror}") from None
    for sub in RUN_SUBDIRS:
        (run_dir / sub).mkdir()
    return run_dir


def unique_path(path: Path) -> Path:
    """`path` if free, else `name-2.ext`, `name-3.ext`, ...: never overwrite a record."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def policy_hash(policy_path: str | Path) -> str:
    """Hash of the policy file and the Python modules beside it (its detectors, helpers)."""
    policy_path = Path(policy_path)
    digest = hashlib.sha256()
    files = [policy_path] + sorted(p for p in policy_path.parent.glob("*.py") if p != policy_path)
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
