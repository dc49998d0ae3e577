"""How a tool's process ends: without the interpreter's teardown, its output and status intact,
and what was registered to run at exit still run."""

from __future__ import annotations

import subprocess
import sys

START = "import sys\nfrom lkm.cli import main\n"
RUN = "sys.exit(main())\n"


def run(code: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, check=False, timeout=60
    )


def test_a_short_command_ends_with_its_output_and_status() -> None:
    done = run(START + RUN, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith(b"Usage: lkm COMMAND")
    assert done.stdout.endswith(b"'lkm COMMAND --help' shows a command's own options.\n")
    assert done.stderr == b""
    failed = run(START + RUN, "no-such-command")
    assert failed.returncode == 1
    assert failed.stderr.startswith(b"lkm: ERROR: unknown command 'no-such-command'\n")


def test_exit_callbacks_still_run() -> None:
    code = START + "import atexit\natexit.register(print, 'at exit')\n" + RUN
    done = run(code, "--version")
    assert done.returncode == 0
    assert done.stdout.endswith(b"at exit\n")
    assert done.stderr == b""


def test_a_caller_keeps_its_process() -> None:
    done = run(START + "status = main(['lkm', '--version'])\nprint('after', status)\n")
    assert done.returncode == 0
    assert done.stdout.endswith(b"after 0\n")
