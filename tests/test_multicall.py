"""One program, many tools: dispatch on the command word or on the name it was started by."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lkm import __version__
from modinfo_cases import GOOD

SCRIPT = Path(sys.executable).parent / "lkm"


def run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, check=False)


def test_version() -> None:
    done = run([sys.executable, "-m", "lkm", "--version"])
    assert done.stdout.decode().splitlines()[0] == f"lkm version {__version__}"
    assert done.returncode == 0


def test_unknown_command() -> None:
    done = run([sys.executable, "-m", "lkm", "frobnicate"])
    assert done.stderr == b"lkm: ERROR: unknown command 'frobnicate'\n"
    assert done.returncode == 1


def test_started_through_a_link_named_modinfo(tmp_path: Path) -> None:
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    link = tmp_path / "modinfo"
    link.symlink_to(SCRIPT)  # the console script pip installs beside the interpreter
    done = run([str(link), "-F", "license", str(module)])
    assert (done.stdout, done.stderr, done.returncode) == (b"GPL\n", b"", 0)


def test_module_entry_point_and_console_script_agree(tmp_path: Path) -> None:
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    by_module = run([sys.executable, "-m", "lkm", "modinfo", str(module)])
    assert by_module.returncode == 0
    assert by_module.stdout.startswith(b"filename:       " + os.fsencode(module) + b"\n")
    assert run([str(SCRIPT), "modinfo", str(module)]).stdout == by_module.stdout
