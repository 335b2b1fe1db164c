import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POLICIES = Path(__file__).resolve().parent / "policies"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


@pytest.fixture
def run_dir(tmp_path):
    from record.workspace import create_run_dir

    return create_run_dir(tmp_path / "runs", "pong", "ram", run_id="test-run")


def policy(name: str) -> Path:
    return POLICIES / f"{name}.py"
