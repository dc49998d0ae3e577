"""Ctrl-C and a closed standard output: every tool dies of the signal, silently, as kmod 34's do.

kmod's tools leave SIGINT and SIGPIPE at their default action, so the caller's waitpid sees a
death by that signal (a shell reports 130 and 141) and nothing is printed about it. Each case
runs lkm as a separate process; the slow cases run kmod 34 on the same input beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

from support import world
from support.modinfo_cases import GOOD

LKM = [sys.executable, "-m", "lkm"]
SCRIPT = Path(sys.executable).parent / "lkm"  # the console script pip installs
# Standard output buffered as a C program's is; a Python told to write unbuffered would write,
# and so meet the closed pipe, earlier than kmod.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
KVER = "1.0"


class Ended(NamedTuple):
    status: int  # as subprocess reports it: minus the signal that killed the process
    stdout: bytes
    stderr: bytes


def into_closed_pipe(command: Sequence[str]) -> Ended:
    """``command`` with its stdout a pipe whose reading end is already closed."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            command, stdout=write, stderr=subprocess.PIPE, env=ENV, check=False, timeout=300
        )
    finally:
        os.close(write)
    return Ended(done.returncode, b"", done.stderr)


def interrupt(process: subprocess.Popen[bytes], *, group: bool = False) -> Ended:
    """SIGINT to the process (or, as Ctrl-C on a terminal does, to its whole group)."""
    if group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return Ended(process.returncode, stdout, stderr)


def start(command: Sequence[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        start_new_session=True,  # a process group of its own, as a shell's job has
    )


def interrupted_once_printing(command: Sequence[str]) -> Ended:
    """``command`` interrupted once its first output arrived: it is busy, mid-way."""
    process = start(command)
    assert process.stdout is not None
    first = os.read(process.stdout.fileno(), 1)
    assert first, "the command ended before printing"
    ended = interrupt(process)
    return Ended(ended.status, first + ended.stdout, ended.stderr)


def opening_fifo(pid: int) -> Callable[[], bool]:
    """Whether process ``pid`` waits in open(2) for a FIFO's writer (as kmod does, lkm opens a
    module before reading it; with a writer there, reading a FIFO fails at once with ESPIPE)."""

    def check() -> bool:
        try:
            return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
        except OSError:
            return False

    return check


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Until ``condition()`` holds; the process must not end meanwhile."""
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never got there"
        time.sleep(0.02)


# More than an interpreter reads while it starts (about 2 MiB of bytecode) and less than
# half of the xz tree (about 94 MiB, which lkm's depmod shares between two processes).
_READ_MODULES = 16 << 20


def reading_under(pid: int, part: str) -> Callable[[], bool]:
    """Whether process ``pid`` is reading the files under a path containing ``part``: it has
    one open or mapped, or it has read more bytes than it could have without them.

    Mapped and counted too: a reader that maps a file and closes it at once, or reads a
    small file whole and closes it, holds a descriptor too briefly for the poll to see, and
    a missed read phase leaves the process blocked on its full stdout."""

    def check() -> bool:
        try:
            with open(f"/proc/{pid}/maps") as maps:
                if any(part in line for line in maps):
                    return True
            with open(f"/proc/{pid}/io") as io:
                if int(io.readline().split()[1]) >= _READ_MODULES:  # rchar: bytes read
                    return True
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                if part in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    return True
            except OSError:
                continue
        return False

    return check


def no_traceback(ended: Ended) -> None:
    assert b"Traceback" not in ended.stderr, ended.stderr.decode(errors="replace")


# -- a small module tree of lkm's own, for the quick cases --------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tree")
    moddir = base / "lib/modules" / KVER / "kernel"
    moddir.mkdir(parents=True)
    (moddir / "good.ko").write_bytes(GOOD)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        (moddir.parent / name).write_bytes(b"")  # depmod's warnings for their absence aside
    (base / "good.ko").write_bytes(GOOD)
    (base / "conf").mkdir()
    # The command says when it runs, so that the signal comes while it does.
    (base / "conf/lkm-test.conf").write_text(
        f"install lkmtestcmd touch {base / 'started'}; sleep 2; echo after-sleep\n"
        "options good answer=42\n"
    )
    subprocess.run([*LKM, "depmod", "-b", str(base), KVER], check=True, env=ENV)
    return base


def closed_pipe_commands(base: Path) -> dict[str, list[str]]:
    tree = ["-b", str(base), "-k", KVER]
    modprobe = ["-d", str(base), "-S", KVER, "-C", str(base / "conf")]
    return {
        "modinfo path": ["modinfo", str(base / "good.ko")],
        "modinfo name": ["modinfo", *tree, "good"],
        "modinfo -F": ["modinfo", *tree, "-F", "license", "good"],
        "modinfo one missing": ["modinfo", *tree, "good", "missing"],
        "modprobe -c": ["modprobe", *modprobe, "-c"],
        "modprobe -D": ["modprobe", *modprobe, "-D", "good"],
        "modprobe -n -v": ["modprobe", *modprobe, "-n", "-v", "good"],
        "modprobe --help": ["modprobe", "--help"],
        "depmod -n": ["depmod", "-n", "-b", str(base), KVER],
        "depmod --help": ["depmod", "--help"],
        "lsmod --help": ["lsmod", "--help"],
        "insmod --help": ["insmod", "--help"],
        "rmmod --help": ["rmmod", "--help"],
        "kmod --help": ["kmod", "--help"],
        "kmod -V": ["kmod", "-V"],
        "lkm --help": ["--help"],
        "lkm --version": ["--version"],
        "sandbox --help": ["sandbox", "--help"],
    }


CLOSED_PIPE_CASES = list(closed_pipe_commands(Path("/")))


@pytest.mark.parametrize("case", CLOSED_PIPE_CASES)
def test_a_closed_stdout_kills_silently(tree: Path, case: str) -> None:
    command = closed_pipe_commands(tree)[case]
    ended = into_closed_pipe([*LKM, *command])
    expected = b"modinfo: ERROR: Module missing not found.\n" if "missing" in case else b""
    # Short output waits in the buffer until the end, so the error comes first, as with kmod.
    assert (ended.status, ended.stderr) == (-signal.SIGPIPE, expected)


@pytest.mark.parametrize("how", ["console script", "link named modinfo", "python -m lkm"])
def test_every_way_of_starting_dies_of_sigpipe(tree: Path, tmp_path: Path, how: str) -> None:
    link = tmp_path / "modinfo"
    link.symlink_to(SCRIPT)
    command = {
        "console script": [str(SCRIPT), "modinfo"],
        "link named modinfo": [str(link)],
        "python -m lkm": [*LKM, "modinfo"],
    }[how]
    ended = into_closed_pipe([*command, str(tree / "good.ko")])
    assert (ended.status, ended.stderr) == (-signal.SIGPIPE, b"")


def test_interrupted_while_printing(tree: Path) -> None:
    ended = interrupted_once_printing([*LKM, "modinfo", *[str(tree / "good.ko")] * 20000])
    assert ended.stdout.startswith(b"filename:")
    assert (ended.status, ended.stderr) == (-signal.SIGINT, b"")


@pytest.mark.parametrize("tool", ["insmod", "modprobe"])
def test_interrupted_while_blocked_reading(tmp_path: Path, tool: str) -> None:
    fifo = tmp_path / "blocks.ko"
    os.mkfifo(fifo)
    process = start([*LKM, tool, str(fifo)])
    wait_for(opening_fifo(process.pid), process)
    ended = interrupt(process)
    assert ended == Ended(-signal.SIGINT, b"", b"")


def test_interrupted_through_a_link(tmp_path: Path) -> None:
    fifo = tmp_path / "blocks.ko"
    os.mkfifo(fifo)
    link = tmp_path / "insmod"
    link.symlink_to(SCRIPT)
    process = start([str(link), str(fifo)])
    wait_for(opening_fifo(process.pid), process)
    ended = interrupt(process)
    assert ended == Ended(-signal.SIGINT, b"", b"")


def test_interrupted_depmod_leaves_no_worker_behind(tmp_path: Path) -> None:
    base = tmp_path / "tree"
    moddir = base / "lib/modules" / KVER / "kernel"
    moddir.mkdir(parents=True)
    # Enough modules that reading them, shared out among forked workers, and then computing
    # and writing the indexes outlast the moment the workers are seen.
    for number in range(3000):
        (moddir / f"m{number}.ko").write_bytes(GOOD)
    process = start([*LKM, "depmod", "-b", str(base), KVER])
    wait_for(lambda: len(in_session(process.pid)) > 1, process)
    ended = interrupt(process)
    no_traceback(ended)
    assert ended.status == -signal.SIGINT
    # Nothing of the session is left running: workers went with the process.
    assert in_session(process.pid) == []


def in_session(sid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, check=False)
    return found.stdout.split()


# -- install commands: run as system(3) runs them -----------------------------------------


def test_ctrl_c_stops_an_install_command_not_modprobe(tree: Path) -> None:
    """Ctrl-C reaches the whole foreground job: the command dies of it; modprobe, which keeps
    SIGINT away while the command runs, takes the command's death as success, as kmod does."""
    command = [*LKM, "modprobe", "-d", str(tree), "-S", KVER, "-C", str(tree / "conf")]
    (tree / "started").unlink(missing_ok=True)
    process = start([*command, "lkmtestcmd"])
    wait_for((tree / "started").exists, process)
    ended = interrupt(process, group=True)
    assert ended == Ended(0, b"", b"")


def test_sigint_to_modprobe_alone_waits_for_the_install_command(tree: Path) -> None:
    command = [*LKM, "modprobe", "-d", str(tree), "-S", KVER, "-C", str(tree / "conf")]
    (tree / "started").unlink(missing_ok=True)
    process = start([*command, "lkmtestcmd"])
    wait_for((tree / "started").exists, process)
    ended = interrupt(process)
    assert ended == Ended(0, b"after-sleep\n", b"")


@pytest.mark.parametrize(
    ("command", "status"),
    [("exit 3", 3), ("exit 0", 0), ("kill -TERM $$", 0), ("kill -INT $$", 0), ("exit 300", 44)],
)
def test_install_command_status_is_its_exit_code(command: str, status: int) -> None:
    from lkm.probe import run_shell

    assert run_shell(command, "dummy") == status
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- beside kmod 34 --------------------------------------------------------------------------

SCRATCH = "scratch-signals"


def _both(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The kmod command in the chroot and lkm's on the same files (chroot paths on the host)."""
    tool, rest = args[0], list(args[1:])
    host = [str(world.CHROOT) + arg if arg.startswith("/trees/") else arg for arg in rest]
    return ["chroot", str(world.CHROOT), tool, *rest], [*LKM, tool, *host]


def _strip(ended: Ended) -> Ended:
    prefix = os.fsencode(str(world.CHROOT))
    return Ended(ended.status, ended.stdout, ended.stderr.replace(prefix, b""))


def real_closed_pipe_cases(root: str, kver: str) -> dict[str, list[str]]:
    on_tree = ["-b", root, "-k", kver]
    modprobe = ["-d", root, "-S", kver]
    return {
        "modinfo e1000e": ["modinfo", *on_tree, "e1000e"],
        "modinfo many": ["modinfo", *on_tree, "e1000e", "ext4", "vfat", "xfs", "btrfs"],
        "modinfo vfat missing": ["modinfo", *on_tree, "vfat", "missing"],
        "modinfo e1000e missing": ["modinfo", *on_tree, "e1000e", "missing"],
        "modprobe -c": ["modprobe", *modprobe, "-c"],
        "modprobe -D": ["modprobe", *modprobe, "-D", "ext4"],
        "modprobe --show-depends": ["modprobe", *modprobe, "--show-depends", "i915"],
        "depmod -n": ["depmod", "-n", "-b", root, kver],
        "help": ["modprobe", "--help"],
        "kmod -V": ["kmod", "-V"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", list(real_closed_pipe_cases("/", "")))
def test_a_closed_stdout_as_kmod(trixie: world.Tree, case: str) -> None:
    kmod_command, lkm_command = _both(real_closed_pipe_cases(trixie.chroot_root, trixie.kver)[case])
    kmod = into_closed_pipe(kmod_command)
    lkm = _strip(into_closed_pipe(lkm_command))
    assert kmod.status == -signal.SIGPIPE  # the rule itself, found by these runs
    assert lkm == kmod


# A /proc/modules with the given lines and an empty /sys, under ``root`` (the chroot for kmod,
# the host's own, in a private mount namespace, for lkm).
_FAKE_PROC = """
root=$0; modules=$1; shift
mount -t tmpfs none "$root/proc" && cp "$modules" "$root/proc/modules" || exit 99
mount -t tmpfs none "$root/sys" || exit 99
exec "$@"
"""


@pytest.mark.slow
@pytest.mark.parametrize("tool", [["lsmod"], ["kmod", "list"]])
def test_lsmod_into_a_closed_pipe_as_kmod(tmp_path: Path, tool: list[str]) -> None:
    """Many loaded modules (each without /sys/module, so with an error line each): kmod dies
    at its first full buffer, having said what it could not open until then; so does lkm."""
    modules = tmp_path / "modules"
    modules.write_text("".join(f"mod{n} 16384 0 - Live 0x0000000000000000\n" for n in range(300)))
    script = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _FAKE_PROC]
    chroot = str(world.CHROOT)
    kmod = into_closed_pipe([*script, chroot, str(modules), "chroot", chroot, *tool])
    lkm = into_closed_pipe([*script, "", str(modules), *LKM, *tool])
    assert kmod.status == -signal.SIGPIPE
    assert kmod.stderr.count(b"\n") > 10  # errors came before the first full buffer
    assert lkm == kmod


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["insmod", "modprobe"])
def test_interrupted_while_blocked_as_kmod(tool: str) -> None:
    scratch = world.CHROOT / SCRATCH
    scratch.mkdir(exist_ok=True)
    fifo = scratch / f"{tool}-blocks.ko"
    if not fifo.exists():
        os.mkfifo(fifo)
    results = []
    for command in (
        ["chroot", str(world.CHROOT), tool, f"/{SCRATCH}/{fifo.name}"],
        [*LKM, tool, str(fifo)],
    ):
        process = start(command)
        wait_for(opening_fifo(process.pid), process)
        results.append(interrupt(process))
    assert results[0] == Ended(-signal.SIGINT, b"", b"")
    assert results[1] == results[0]


@pytest.mark.slow
def test_interrupted_depmod_as_kmod(trixie: world.Tree) -> None:
    kmod_command, lkm_command = _both(["depmod", "-n", "-b", trixie.chroot_root, trixie.kver])
    for command in (kmod_command, lkm_command):
        process = start(command)
        wait_for(reading_under(process.pid, f"/lib/modules/{trixie.kver}/"), process)
        ended = interrupt(process)
        assert (ended.status, ended.stderr) == (-signal.SIGINT, b""), command


_STATE = """
root=$0; state=$1; shift
mount -t tmpfs none "$root/proc" || exit 99
echo > "$root/proc/cmdline" || exit 99
mount -t tmpfs none "$root/sys" || exit 99
mkdir "$root/sys/module" || exit 99
exec chroot "$root" "$@"
"""


@pytest.mark.slow
@pytest.mark.parametrize("group", [True, False], ids=["ctrl-c", "sigint to modprobe"])
def test_interrupted_install_command_as_kmod(group: bool) -> None:
    scratch = world.CHROOT / SCRATCH / "install"
    (scratch / "lib/modules" / KVER).mkdir(parents=True, exist_ok=True)
    (scratch / "conf").mkdir(exist_ok=True)
    started = scratch / "started"
    (scratch / "conf/x.conf").write_text(
        # A relative path: kmod runs at the chroot's root, lkm is started there too.
        f"install lkmtestcmd touch {SCRATCH}/install/started; sleep 2; echo after-sleep\n"
    )
    subprocess.run([*LKM, "depmod", "-b", str(scratch), KVER], check=True, env=ENV)
    args = ["modprobe", "-d", f"/{SCRATCH}/install", "-S", KVER, "-C", f"/{SCRATCH}/install/conf"]
    kmod_command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _STATE]
    kmod_command += [str(world.CHROOT), "-", *args, "lkmtestcmd"]
    lkm_args = [str(world.CHROOT) + a if a.startswith(f"/{SCRATCH}") else a for a in args]
    results = []
    for command in (kmod_command, [*LKM, *lkm_args, "lkmtestcmd"]):
        started.unlink(missing_ok=True)
        process = start(command, cwd=world.CHROOT)
        wait_for(started.exists, process)
        results.append(interrupt(process, group=group))
    assert results[0] == Ended(0, b"" if group else b"after-sleep\n", b"")
    assert results[1] == results[0]
