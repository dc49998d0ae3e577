"""The fuzzing harness runs: a few thousand executions of every target, with a fixed seed.

The long runs (``python -m fuzz TARGET --runs 1000000``, see fuzz/README.md) are not part of the
suite; this keeps their harness from rotting and catches a parser that breaks on the first
mutations of its own seeds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (
    "certificate", "cmdline", "decompress", "depmod.d", "elf", "index", "modinfo", "modprobe.d",
    "module", "modules-load.d", "pkcs7", "signature",
)  # fmt: skip


def test_every_target_survives_a_short_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", "all", "--engine", "builtin", "--seeds-only",
         "--runs", "1500", "--seed", "1", "--findings", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(TARGETS)
    for line in lines:
        assert ", 1500 executions in " in line, line
        assert line.endswith("findings: none"), line
    assert not list(tmp_path.iterdir())
