"""``lkm modprobe`` loading and removing for real, against a fake kernel and a fake /sys.

The module directory and configuration are built under tmp_path; the fake kernel records its
system calls and keeps the fake ``/sys/module`` up to date (initstate, refcnt, holders), so the
checks modprobe makes between its steps see what the calls did. The messages are kmod 34's, as
seen on a real kernel (tests/vm/test_vm_modprobe.py compares the two there).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from support.modprobe_system import System, make_system


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    monkeypatch.delenv("MODPROBE_OPTIONS", raising=False)
    return make_system(tmp_path)


def test_dependencies_load_first_with_verbose_lines(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    out, err, status = system.run("-v", "consumer", capfdbinary=capfdbinary)
    assert (out, err, status) == (
        f"insmod {system.path('provider')} \ninsmod {system.path('consumer')} \n",
        "",
        0,
    )
    assert [c[:2] for c in system.kernel.calls] == [
        ("finit_module", "provider"),
        ("finit_module", "consumer"),
    ]
    assert system.loaded() == ["consumer", "provider"]


def test_loaded_modules_are_skipped_and_first_time_fails(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    system.run("consumer", capfdbinary=capfdbinary)
    system.kernel.calls.clear()
    assert system.run("-v", "consumer", capfdbinary=capfdbinary) == ("", "", 0)
    assert system.kernel.calls == []
    assert system.run("--first-time", "provider", capfdbinary=capfdbinary) == (
        "",
        "modprobe: ERROR: could not insert 'provider': Module already in kernel\n",
        1,
    )
    assert system.run("-q", "--first-time", "provider", capfdbinary=capfdbinary) == ("", "", 1)


def test_command_line_options_with_spaces_are_quoted(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    out, _, _ = system.run("-v", "params", "word=a b", capfdbinary=capfdbinary)
    assert out == f'insmod {system.path("params")} count=3 word="a b"\n'
    assert system.kernel.calls[-1][2] == 'count=3 word="a b"'


def test_options_from_config_alias_and_command_line(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    system.run("params", "level=2", "word=a b", capfdbinary=capfdbinary)
    system.run("-r", "params", capfdbinary=capfdbinary)
    system.run("ptest", capfdbinary=capfdbinary)
    loads = [c[:3] for c in system.kernel.calls if c[0] == "finit_module"]
    assert loads == [
        ("finit_module", "params", 'count=3 level=2 word="a b"'),
        ("finit_module", "params", "count=3 "),
    ]


def test_blacklist_applies_to_aliases_and_with_b(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert system.run("-v", "prov", capfdbinary=capfdbinary) == ("", "", 0)
    assert system.run("-b", "provider", capfdbinary=capfdbinary) == ("", "", 0)
    assert system.loaded() == []
    # A dependency is never filtered, a name without -b neither.
    system.run("consumer", capfdbinary=capfdbinary)
    assert system.loaded() == ["consumer", "provider"]


def test_install_and_remove_commands_run_through_the_shell(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    out, err, status = system.run("-v", "busy", "a=1", capfdbinary=capfdbinary)
    # modprobe's own line waits in its buffer, as kmod's does: the command's output first.
    assert (out, err, status) == (
        "installing busy a=1\ninstall echo installing $MODPROBE_MODULE $CMDLINE_OPTS a=1\n",
        "",
        0,
    )
    out, err, status = system.run("-r", "-v", "busy", capfdbinary=capfdbinary)
    assert (out, err, status) == ("remove echo removing $MODPROBE_MODULE\nremoving busy\n", "", 0)
    assert system.kernel.calls == []


def test_command_output_order_through_a_pipe(system: System) -> None:
    # kmod's lines wait in its stdout buffer while an install command prints, but come
    # before a remove command's output (seen on a real kernel with stdout a file).
    import subprocess
    import sys

    base = ["-d", str(system.root), "-S", "1.0", "-C", str(system.root / "t.conf")]
    code = "import sys; from lkm.cli.modprobe import main; sys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

    def run(*args: str) -> bytes:
        done = subprocess.run(
            [sys.executable, "-c", code, *base, *args], capture_output=True, check=False, env=env
        )
        assert (done.stderr, done.returncode) == (b"", 0)
        return done.stdout

    assert run("-v", "busy", "a=1") == (
        b"installing busy a=1\ninstall echo installing $MODPROBE_MODULE $CMDLINE_OPTS a=1\n"
    )
    assert run("-r", "-v", "busy") == b"remove echo removing $MODPROBE_MODULE\nremoving busy\n"


def test_failing_install_command(system: System, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert system.run("failing", capfdbinary=capfdbinary) == (
        "",
        "modprobe: ERROR: Error running install command 'false' for module failing: retcode 1\n"
        "modprobe: ERROR: could not insert 'failing': Invalid argument\n",
        1,
    )


def test_kernel_refusals_have_kmods_messages(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    system.kernel.fail = {"params": errno.ENOENT, "provider": errno.ENOEXEC}
    assert system.run("params", capfdbinary=capfdbinary)[1:] == (
        "modprobe: ERROR: could not insert 'params': Unknown symbol in module, "
        "or unknown parameter (see dmesg)\n",
        1,
    )
    # The dependency failed, the message names the module asked for (kmod 34, on a real kernel).
    assert system.run("consumer", capfdbinary=capfdbinary)[1:] == (
        "modprobe: ERROR: could not insert 'consumer': Exec format error\n",
        1,
    )
    assert system.loaded() == []


NO_SIZE = "Failed to determine decompression size"


@pytest.mark.parametrize(
    ("contents", "note"),
    [
        (b"", ""),
        (b"abc", ""),
        (bytes.fromhex("fd377a585a"), ""),  # xz's magic cut short
        (bytes.fromhex("fd377a585a00"), "modprobe: ERROR: xz: Unexpected end of input\n"),
        (bytes.fromhex("28b52ffd") + b"\x08junk", f"modprobe: ERROR: zstd: {NO_SIZE}\n"),
    ],
)
def test_tiny_files_are_refused_before_the_kernel(
    system: System, capfdbinary: pytest.CaptureFixture[bytes], contents: bytes, note: str
) -> None:
    """Fewer than six bytes: EINVAL without a system call; a magic alone: the decompressor's
    complaint first (not with -q), as kmod 34 prints them."""
    Path(system.path("params")).write_bytes(contents)
    refused = "modprobe: ERROR: could not insert 'params': Invalid argument\n"
    assert system.run("params", capfdbinary=capfdbinary)[1:] == (note + refused, 1)
    assert system.run("-q", "params", capfdbinary=capfdbinary)[1:] == ("", 1)
    assert system.kernel.calls == []


def test_softdeps_load_before_the_target(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    out, _, status = system.run("-v", "top", capfdbinary=capfdbinary)
    assert status == 0
    assert out.splitlines() == [
        f"insmod {system.path('provider')} ",
        f"insmod {system.path('consumer')} ",
        f"insmod {system.path('params')} count=3 ",
        f"insmod {system.path('top')} ",
    ]


def test_remove_takes_unused_dependencies(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    system.run("consumer", capfdbinary=capfdbinary)
    system.kernel.calls.clear()
    assert system.run("-r", "provider", capfdbinary=capfdbinary) == (
        "",
        "modprobe: FATAL: Module provider is in use.\n",
        1,
    )
    assert system.run("-r", "-v", "consumer", capfdbinary=capfdbinary) == (
        "rmmod consumer\nrmmod provider\n",
        "",
        0,
    )
    assert [c[1] for c in system.kernel.calls] == ["consumer", "provider"]
    assert system.loaded() == []
    assert system.run("-r", "consumer", capfdbinary=capfdbinary) == ("", "", 0)
    assert system.run("-r", "--first-time", "consumer", capfdbinary=capfdbinary) == (
        "",
        "modprobe: FATAL: Module consumer is not in kernel.\n",
        1,
    )


def test_remove_holders_removes_a_shared_dependency_twice_as_kmod(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # The holder's removal takes its unused dependency, the very module asked for: kmod 34
    # then removes it again and fails (seen on a real 6.1 kernel).
    system.run("consumer", capfdbinary=capfdbinary)
    out, err, status = system.run(
        "-r", "-v", "--remove-holders", "provider", capfdbinary=capfdbinary
    )
    assert (out, err, status) == (
        "rmmod consumer\nrmmod provider\nrmmod provider\n",
        "modprobe: ERROR: could not remove 'provider': No such file or directory\n",
        1,
    )
    assert system.loaded() == []


def test_remove_with_wait_gives_up_silently(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    system.run("params", capfdbinary=capfdbinary)
    system.kernel.add_ref("params", 1)
    assert system.run("-r", "-w", "50", "params", capfdbinary=capfdbinary) == ("", "", 0)
    deletes = [c for c in system.kernel.calls if c[0] == "delete_module"]
    assert len(deletes) > 1  # asked again while waiting
    assert system.loaded() == ["params"]
    system.kernel.add_ref("params", -1)
    assert system.run("-r", "-w", "50", "params", capfdbinary=capfdbinary) == ("", "", 0)
    assert system.loaded() == []


def test_force_flags_reach_the_kernel_separately(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    flags = []
    finit = system.kernel.finit_module

    def record(fd: int, params: str, flag: int) -> None:
        flags.append(flag)
        finit(fd, params, flag)

    system.kernel.finit_module = record  # type: ignore[method-assign,assignment]
    for option in ("--force-vermagic", "--force-modversion", "-f"):
        system.run(option, "params", capfdbinary=capfdbinary)
        system.run("-r", "params", capfdbinary=capfdbinary)
    assert flags == [2, 1, 3]


def test_not_found_and_all(system: System, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    moddir = system.moddir
    assert system.run("nosuch", capfdbinary=capfdbinary) == (
        "",
        f"modprobe: FATAL: Module nosuch not found in directory {moddir}\n",
        1,
    )
    out, err, status = system.run("-a", "-v", "nosuch", "params", capfdbinary=capfdbinary)
    assert err == f"modprobe: WARNING: Module nosuch not found in directory {moddir}\n"
    assert (out, status) == (f"insmod {system.path('params')} count=3 \n", 1)
    assert system.run("-r", "nosuch", capfdbinary=capfdbinary) == (
        "",
        "modprobe: FATAL: Module nosuch not found.\n",
        1,
    )


def test_a_failing_softdep_stops_nothing(
    system: System, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """kmod 34 goes on past a softdep the kernel refuses (saying nothing of it below -vv) and
    past one with nothing to load (its install command ignored, as it has softdeps itself); a
    hard dependency refused still stops a load (test_kernel_refusals_have_kmods_messages)."""
    conf = system.root / "t.conf"
    text = conf.read_text().replace(
        "softdep top pre: params", "softdep top pre: params post: nothing"
    )
    conf.write_text(text + "install nothing echo x\nsoftdep nothing pre: params\n")
    system.kernel.fail = {"params": errno.ENOEXEC}
    out, err, status = system.run("-v", "top", capfdbinary=capfdbinary)
    assert (err, status) == ("modprobe: ERROR: could not find module by name='nothing'\n", 0)
    assert out.splitlines() == [
        f"insmod {system.path('provider')} ",
        f"insmod {system.path('consumer')} ",
        f"insmod {system.path('params')} count=3 ",
        f"insmod {system.path('top')} ",
    ]
    assert system.loaded() == ["consumer", "provider", "top"]
