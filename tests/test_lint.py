"""The code base stays ruff- and strict-mypy-clean; README and CI agree on the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=" ".join,
)
def test_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_test_command_is_what_ci_runs() -> None:
    """README names CI's script and the command it ends in; the two stay in agreement."""
    readme = (ROOT / "README.md").read_text()
    script = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert "bash .ci/run" in readme
    assert script[-2:] == [". .venv/bin/activate", "python -m pytest -ra"]
    assert f"`{script[-1]}`, run with that venv's" in readme
