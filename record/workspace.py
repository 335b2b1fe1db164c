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


class HeuristicSystem:
    """The run's heuristic system, `hs/`: policy.py, detectors.py, tests/, NOTES.md, as a git
    repo with one commit per accepted change (message = the rationale). A rejected candidate
    is rolled back to the last commit, so the working tree always holds either the accepted
    version or the candidate under evaluation."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _git(self, *args: str) -> str:
        import subprocess

        proc = subprocess.run(
            ["git", "-c", "user.name=hl-workbench", "-c", "user.email=hl-workbench@localhost",
             "-c", "commit.gpgsign=false", *args],
            cwd=self.path, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RunFolderError(f"git {' '.join(args)} failed in {self.path}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def init(self, notes: str) -> str:
        """Create hs/ with NOTES.md and a first commit; idempotent on an existing repo."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / ".git").exists():
            self._git("init", "-q", "-b", "main")
            (self.path / "NOTES.md").write_text(notes)
            self._git("add", "-A")
            self._git("commit", "-q", "-m", "Start the heuristic system")
        return self.head()

    def head(self) -> str:
        return self._git("rev-parse", "HEAD")

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = (self.path / name).resolve()
            if self.path.resolve() not in target.parents:
                raise RunFolderError(f"refusing to write outside hs/: {name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def dirty(self) -> bool:
        return bool(self._git("status", "--porcelain"))

    def commit(self, message: str) -> str:
        """Commit everything in the working tree with `message` (the rationale)."""
        self._git("add", "-A")
        if self.dirty():
            self._git("commit", "-q", "-m", message)
        return self.head()

    def rollback(self) -> str:
        """Discard the uncommitted candidate: back to the last accepted version."""
        if not (self.path / ".git").exists():
            return ""  # nothing written yet, nothing to roll back
        self._git("reset", "-q", "--hard", "HEAD")
        self._git("clean", "-q", "-fd")
        return self.head()

    def log(self) -> list[tuple[str, str]]:
        out = self._git("log", "--format=%H%x09%s")
        return [tuple(line.split("\t", 1)) for line in out.splitlines() if line]

    def diff(self, a: str, b: str = "HEAD") -> str:
        return self._git("diff", a, b)
