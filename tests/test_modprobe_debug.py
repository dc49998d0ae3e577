"""``lkm modprobe -vv``, ``-q`` and failing remove commands, on the fake kernel of
support/modprobe_system.py (quick). The lines are kmod 34's, compared with it in
test_modprobe_verbose.py (no kernel) and tests/vm/test_vm_cmdline.py (a real one).
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.differential import ADDRESS_LINE
from support.modprobe_system import CONFIG, System, make_system

Capture = pytest.CaptureFixture[bytes]
REGISTERED = "modprobe: INFO: custom logging function 0xADDR registered\n"
RELEASED = "modprobe: INFO: context 0xADDR released\n"


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    monkeypatch.delenv("MODPROBE_OPTIONS", raising=False)
    return make_system(tmp_path)


def run(system: System, capfdbinary: Capture, *args: str) -> tuple[str, str, int]:
    out, err, status = system.run(*args, capfdbinary=capfdbinary)
    return out, re.sub(ADDRESS_LINE, "0xADDR", err, flags=re.MULTILINE), status


def test_vv_brackets_a_run_with_the_context_lines(system: System, capfdbinary: Capture) -> None:
    out, err, status = run(system, capfdbinary, "-vv", "params")
    assert (err, status) == (REGISTERED + RELEASED, 0)
    assert out == f"insmod {system.path('params')} count=3 \n"
    assert run(system, capfdbinary, "-vvv", "-r", "params") == (
        "rmmod params\n",
        REGISTERED + RELEASED,
        0,
    )


def test_vv_shows_the_file_the_kernel_refused(system: System, capfdbinary: Capture) -> None:
    system.kernel.fail = {"params": errno.ENOEXEC}
    _, err, status = run(system, capfdbinary, "-vv", "params")
    assert (err, status) == (
        REGISTERED
        + f"modprobe: INFO: Failed to insert module '{system.path('params')}': Exec format error\n"
        "modprobe: ERROR: could not insert 'params': Exec format error\n" + RELEASED,
        1,
    )


def test_a_fatal_ends_the_run_without_releasing(system: System, capfdbinary: Capture) -> None:
    text = f"Module nosuch not found in directory {system.moddir}\n"
    assert run(system, capfdbinary, "-vv", "nosuch") == (
        "",
        REGISTERED + f"modprobe: FATAL: {text}",
        1,
    )
    # With -a the same is a warning, and the run goes on to its end.
    _, err, status = run(system, capfdbinary, "-vv", "-a", "nosuch", "params")
    assert (err, status) == (REGISTERED + f"modprobe: WARNING: {text}" + RELEASED, 1)
    assert run(system, capfdbinary, "-vv", "-r", "nosuch", "params") == (
        "",
        REGISTERED + "modprobe: FATAL: Module nosuch not found.\n",
        1,
    )
    assert system.loaded() == ["params"]  # left alone after the FATAL


def test_quiet_hides_the_verbose_lines(system: System, capfdbinary: Capture) -> None:
    assert run(system, capfdbinary, "-q", "-vvv", "-n", "params") == ("", "", 0)
    assert run(system, capfdbinary, "-vv", "-q", "params") == ("", "", 0)
    assert system.loaded() == ["params"]


def test_failing_remove_command(system: System, capfdbinary: Capture) -> None:
    (system.root / "t.conf").write_text(CONFIG + "remove params echo no >&2; exit 3\n")
    assert run(system, capfdbinary, "params") == ("", "", 0)
    # kmod names neither the command nor its status, and stops at the FATAL.
    assert run(system, capfdbinary, "-r", "-v", "params", "busy") == (
        "remove echo no >&2; exit 3\n",
        "no\nmodprobe: FATAL: Error running remove command for params\n",
        1,
    )
    assert run(system, capfdbinary, "-r", "-q", "params") == ("", "no\n", 1)
    # With -a a warning, and the next name is removed.
    assert run(system, capfdbinary, "-r", "-a", "-vv", "params", "busy") == (
        "remove echo no >&2; exit 3\nremove echo removing $MODPROBE_MODULE\nremoving busy\n",
        REGISTERED + "no\nmodprobe: WARNING: Error running remove command for params\n" + RELEASED,
        1,
    )
    assert system.loaded() == ["params"]
    assert system.kernel.calls[1:] == []


def test_output_held_even_when_python_is_unbuffered(system: System) -> None:
    # kmod's stdout is a C stream held until exit: a failing install command's output first.
    (system.root / "t.conf").write_text("install params echo out; exit 3\n")
    base = ["-d", str(system.root), "-S", "1.0", "-C", str(system.root / "t.conf")]
    code = "import sys; from lkm.cli.modprobe import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, *base, "-v", "params"],
        capture_output=True,
        check=False,
        env=env,
    )
    assert done.stdout == b"out\ninstall echo out; exit 3 \n"
    assert done.returncode == 1
