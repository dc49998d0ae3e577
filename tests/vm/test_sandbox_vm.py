"""``lkm sandbox`` for real: a Debian kernel package booted in QEMU, one lkm command run there."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Runs its arguments in a private mount namespace whose /lib/modules does not exist, as on a
# container or build host: the directory holding it is covered by a tmpfs into which each
# other entry is bound again.
HIDE_LIB_MODULES = r"""
set -eu
mount --make-rprivate /
if [ -e /lib/modules ]; then
  parent=$(dirname "$(realpath /lib/modules)")
  shadow=$LKM_SHADOW
  mount -t tmpfs lkm-shadow "$shadow"
  for entry in "$parent"/* "$parent"/.[!.]*; do
    name=${entry##*/}
    if [ "$name" = modules ] || { [ ! -e "$entry" ] && [ ! -L "$entry" ]; }; then continue; fi
    if [ -L "$entry" ]; then cp -P "$entry" "$shadow/$name"
    elif [ -d "$entry" ]; then mkdir "$shadow/$name" && mount --rbind "$entry" "$shadow/$name"
    else : > "$shadow/$name" && mount --bind "$entry" "$shadow/$name"; fi
  done
  mount --rbind "$shadow" "$parent"
fi
if [ -e /lib/modules ]; then echo "/lib/modules is still there" >&2; exit 99; fi
exec "$@"
"""


def test_sandbox_loads_a_test_module_from_a_deb(
    capfdbinary: pytest.CaptureFixture[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    import harness
    import testmods

    from lkm.cli import main
    from support import world

    deb = world.download(world.SPECS[testmods.GUEST])
    kver = deb.name.split("_")[0].removeprefix("linux-image-")
    module = testmods.build(kver) / "lkm_params.ko"
    workdir = tmp_path_factory.mktemp("sandbox")
    # The package is unpacked once into the cache; the guest's files go to the test's directory.
    kernel_cache = harness.VM_CACHE / "sandbox"
    kernel_cache.mkdir(parents=True, exist_ok=True)
    (workdir / "kernel").symlink_to(kernel_cache)
    args = ["lkm", "sandbox", "--deb", str(deb), "-w", str(workdir), "-t", "600"]
    status = main([*args, "insmod", str(module), "count=5", "word=sandbox"])
    report = capfdbinary.readouterr().out.decode()
    assert status == 0, report
    lines = report.splitlines()
    assert lines[:3] == [f"kernel: {kver}", f"command: lkm insmod {module} count=5 word=sandbox",
                         "status: 0"]  # fmt: skip
    taint = next(line for line in lines if line.startswith("taint: "))
    assert taint.endswith(")") and {"O", "E"} <= set(taint.split("(")[1])
    log = report[report.index("kernel log:") : report.index("taint:")]
    assert "lkm_params: loading out-of-tree module taints kernel." in log
    assert "module verification failed" in log
    assert lines[-2].startswith(("machine: KVM", "machine: TCG (software emulation: "))
    assert lines[-1] == f"files: {workdir / 'guest'}"  # a named work directory is kept


def _newcomer_tree(target: Path) -> None:
    """The repository's files as a fresh clone has them (with this checkout's changes)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        ignore = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__")
        shutil.copytree(REPO, target, ignore=ignore, dirs_exist_ok=True)
        return
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            (target / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / os.fsdecode(name))


def test_readme_sandbox_command_as_a_newcomer() -> None:
    """README's command for a host without module support, run as a newcomer would: a clean
    install into a fresh venv under /tmp, /lib/modules absent, no kernel named (the
    distribution's, downloaded with apt and cached), then a named trixie package."""
    from support import world

    if shutil.which("unshare") is None:
        world.unavailable("needs unshare (util-linux)")
    if os.geteuid() != 0:
        world.unavailable("needs root for a private mount namespace")
    deb = world.download(world.SPECS["trixie-amd64"])
    python = shutil.which("python3") or sys.executable
    home = Path(tempfile.mkdtemp(prefix="lkm-newcomer-", dir="/tmp"))
    try:
        for name in ("repo", "tmp", "shadow"):
            (home / name).mkdir()
        _newcomer_tree(home / "repo")
        venv = home / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [venv / "bin/python", "-m", "pip", "install", "-q", "."],
            cwd=home / "repo", check=True,
        )  # fmt: skip
        env = {
            "PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            # The distribution's kernel is downloaded once for every run of the test suite.
            "XDG_CACHE_HOME": str(world.CACHE / "xdg"),
            "LKM_SHADOW": str(home / "shadow"),
        }
        for named in ([], ["--deb", str(deb)]):
            done = subprocess.run(
                ["unshare", "--mount", "sh", "-c", HIDE_LIB_MODULES, "hide", "lkm", "sandbox",
                 *named, "modprobe", "-v", "vfat"],
                cwd=home, env=env, capture_output=True, text=True, check=False, timeout=1800,
            )  # fmt: skip
            what = f"lkm sandbox {' '.join(named)} modprobe -v vfat"
            assert done.returncode == 0, f"{what}:\n{done.stdout}{done.stderr}"
            lines = done.stdout.splitlines()
            assert lines[1:3] == ["command: lkm modprobe -v vfat", "status: 0"], done.stdout
            # Both modules loaded: modprobe -v names each insmod before it, and exits 0 only
            # when each went into the kernel.
            stdout = lines[lines.index("stdout:") + 1 : lines.index("stderr:")]
            release = lines[0].removeprefix("kernel: ")
            assert [line.split("/")[-1].split(".ko")[0] for line in stdout] == ["fat", "vfat"]
            assert all(line.startswith(f"  insmod /lib/modules/{release}/") for line in stdout)
            assert lines[lines.index("stderr:") + 1] == "kernel log:", done.stdout
            assert list((home / "tmp").iterdir()) == []  # no work directory left behind
        assert any((world.CACHE / "xdg/lkm/debs").glob("linux-image-*.deb"))
    finally:
        shutil.rmtree(home)


def _sandbox(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    from support import world

    env = {**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(world.CACHE / "xdg")}
    return subprocess.run(
        [sys.executable, "-m", "lkm", "sandbox", *args],
        env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def test_guest_failures_are_said_with_their_reason(tmp_path: Path) -> None:
    """A mount failing in the guest stops it with its reason; a guest that does not finish in
    time is reported with the console's last lines; neither leaves a work directory."""
    import harness

    guest = harness.guest("trixie-amd64")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # A module tree without the 9p modules: the guest cannot mount the host's root.
    empty = tmp_path / guest.kver
    empty.mkdir()
    done = _sandbox(["-k", str(guest.vmlinuz), "-m", str(empty), "lsmod"], tmp)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "lkm sandbox: ERROR: could not mount the host's root: "
        "mount: mounting host on /lower failed: No such device"
    ), done.stderr
    assert lines[1:] and all(line.startswith("  ") for line in lines[1:])
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp.iterdir()) == []
    # Too short a time for any boot.
    done = _sandbox(["-k", str(guest.vmlinuz), "-m", str(guest.moddir), "-t", "3", "lsmod"], tmp)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "lkm sandbox: ERROR: the virtual machine did not power off within 3 s; "
        "the console's last lines:"
    ), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp.iterdir()) == []


def test_interrupted_sandbox_leaves_no_machine_and_no_files(tmp_path: Path) -> None:
    """Ctrl-C while the guest boots: lkm dies of SIGINT, as kmod's tools do, without a
    traceback, after stopping QEMU and removing its work directory."""
    import signal
    import time

    import harness

    from support import world

    guest = harness.guest("trixie-amd64")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(world.CACHE / "xdg")}
    args = ["-k", str(guest.vmlinuz), "-m", str(guest.moddir), "lsmod"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lkm", "sandbox", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(tmp.glob("*/guest/initrd.gz")):  # the machine is being started
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    workdir = next(tmp.iterdir())
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT, stderr
    assert stdout == b"" and b"Traceback" not in stderr
    assert list(tmp.iterdir()) == []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            assert str(workdir).encode() not in cmdline.read_bytes()
