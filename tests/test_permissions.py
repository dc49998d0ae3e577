"""Files a tool may not read and directories it may not write: lkm against kmod 34.

Both tools run held to file modes (support/unprivileged.py: root without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH), so these paths are taken on CI too, which runs as root. kmod runs in its
chroot on the same files as lkm; every output, error message and exit status is compared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import world
from support.depmod_trees import module_elf, write_tree
from support.differential import COMPARED, HASH_SEED, Result, addresses_hidden, assert_same
from support.unprivileged import held_to_modes

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-permissions"
INSIDE = "/" + SCRATCH.name
TREE = "trixie-amd64"
FAT = "kernel/fs/fat/fat.ko.xz"
RELEASE = "1.0.0"
LOCKED = f"{INSIDE}/locked.ko.xz"


def _run(command: list[str]) -> Result:
    done = subprocess.run(
        held_to_modes(command),
        capture_output=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": HASH_SEED},
    )
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def hidden(result: Result) -> Result:
    return Result(addresses_hidden(result.stdout), addresses_hidden(result.stderr), result.status)


def both(tool: str, *args: str) -> Result:
    """kmod (chroot paths) and lkm (the same files by their host paths), both held to file
    modes; ``{tree}`` is the trixie tree's root as each sees it, ``{kver}`` its release."""
    tree = world.tree(TREE)
    kmod_args = [a.format(tree=tree.chroot_root, kver=tree.kver) for a in args]
    lkm_args = [
        str(world.CHROOT) + a if a.startswith(("/scratch-", "/trees/")) else a for a in kmod_args
    ]
    expected = _run(["chroot", str(world.CHROOT), tool, *kmod_args])
    actual = _run([sys.executable, "-m", "lkm", tool, *lkm_args])
    assert_same(hidden(expected), hidden(actual))
    COMPARED["files a tool may not read or write (runs)"] += 1
    return expected


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """Locked files and directories (mode 0, or 0555 for a directory to write into)."""
    tree = world.tree(TREE)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir()
    (SCRATCH / "locked.ko.xz").write_bytes((tree.moddir / FAT).read_bytes())
    (SCRATCH / "locked.conf").write_text("options vfat utf8=1\n")
    conf = SCRATCH / "conf"
    conf.mkdir()
    (conf / "a.conf").write_text("options vfat utf8=1\n")
    (conf / "b.conf").write_text("blacklist vfat\n")
    (SCRATCH / "lockeddir").mkdir()
    (SCRATCH / "lockeddir" / "a.conf").write_text("options vfat utf8=1\n")
    # A copy of the tree's indexes, each locked in turn by the tests; the modules are the
    # tree's (a relative link, the same from the host and from the chroot).
    indexes = SCRATCH / "indexes" / tree.moddir.relative_to(tree.root)
    indexes.mkdir(parents=True)
    for index in tree.moddir.glob("modules.*"):
        if index.is_file():
            shutil.copy(index, indexes)
    (indexes / "kernel").symlink_to(os.path.relpath(tree.moddir / "kernel", indexes))
    # A small tree for depmod: one module locked, one directory locked.
    moddir = write_tree(
        SCRATCH / "dtree",
        RELEASE,
        {
            "kernel/a.ko": module_elf(exports=["a_fn"], modinfo=["alias=lkm-a"]),
            "kernel/b.ko": module_elf(imports=["a_fn"]),
            "kernel/locked.ko": module_elf(exports=["c_fn"]),
            "kernel/sub/d.ko": module_elf(imports=["a_fn"]),
        },
    )
    for path in (SCRATCH / "locked.ko.xz", SCRATCH / "locked.conf", conf / "b.conf"):
        path.chmod(0)
    (SCRATCH / "lockeddir").chmod(0)
    (moddir / "kernel/locked.ko").chmod(0)
    yield SCRATCH
    shutil.rmtree(SCRATCH, ignore_errors=True)


def test_modinfo_of_an_unreadable_module(scratch: Path) -> None:
    shown = both("modinfo", LOCKED)
    assert b"Permission denied" in shown.stderr
    both("modinfo", "-F", "vermagic", LOCKED)
    both("modinfo", "-0", "-n", LOCKED)


@pytest.mark.parametrize("option", ["--show-modversions", "--show-exports"])
def test_modprobe_lists_of_an_unreadable_module(scratch: Path, option: str) -> None:
    assert b"Permission denied" in both("modprobe", option, LOCKED).stderr


@pytest.mark.parametrize(
    "config",
    [f"{INSIDE}/locked.conf", f"{INSIDE}/conf", f"{INSIDE}/lockeddir"],
    ids=["file", "file-in-directory", "directory"],
)
@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["", "q"])
def test_modprobe_unreadable_configuration(scratch: Path, config: str, quiet: list[str]) -> None:
    """(Dry runs of a module the host has not loaded: kmod's chroot has no /sys.)"""
    shown = both(
        "modprobe", *quiet, "-C", config, "-d", "{tree}", "-S", "{kver}", "-n", "-v", "vfat"
    )
    assert b"insmod" in shown.stdout or quiet


@pytest.mark.parametrize(
    "index", ["modules.dep.bin", "modules.alias.bin", "modules.builtin.bin", "modules.dep"]
)
@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("modprobe", ["-n", "-v", "vfat"]),
        ("modprobe", ["-n", "-v", "fs-vfat"]),
        ("modprobe", ["-R", "fs-vfat"]),
        ("modprobe", ["-D", "vfat"]),
        ("modinfo", ["-F", "depends", "vfat"]),
        ("modinfo", ["-F", "depends", "fs-vfat"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else value,
)
def test_unreadable_index(scratch: Path, index: str, tool: str, args: list[str]) -> None:
    tree = world.tree(TREE)
    locked = scratch / "indexes" / tree.moddir.relative_to(tree.root) / index
    locked.chmod(0)
    try:
        root = f"{INSIDE}/indexes"
        if tool == "modprobe":
            both(tool, "-C", f"{INSIDE}/none", "-d", root, "-S", "{kver}", *args)
        else:
            both(tool, "-b", root, "-k", "{kver}", *args)
    finally:
        locked.chmod(0o644)


def test_depmod_with_an_unreadable_module(scratch: Path) -> None:
    shown = both("depmod", "-n", "-b", f"{INSIDE}/dtree", RELEASE)
    assert b"kernel/b.ko: kernel/a.ko" in shown.stdout


def test_depmod_into_a_directory_it_cannot_create(scratch: Path) -> None:
    """The module directory cannot be made (EACCES; EROFS is in test_depmod_bad.py)."""
    out = scratch / "out-none"
    out.mkdir()
    out.chmod(0o555)
    shown = both("depmod", "-b", f"{INSIDE}/dtree", "-o", f"{INSIDE}/{out.name}", RELEASE)
    assert b"Permission denied" in shown.stderr
    assert os.listdir(out) == []


# kmod's temporary names: <file>.<pid>.<number>.<number>.
_TEMPORARY = re.compile(rb"(modules\.[a-z.]+)\.\d+\.\d+\.\d+")


def test_depmod_into_a_directory_it_may_not_write(scratch: Path) -> None:
    """No output file can be created, in kmod's words (temporary names aside); the old file
    stays. kmod then exits 0, lkm 1 (a deliberate difference: an image build must notice)."""
    out = scratch / "out-readonly"
    moddir = out / "lib/modules" / RELEASE
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_bytes(b"old\n")
    moddir.chmod(0o555)
    args = ["-b", f"{INSIDE}/dtree", "-o", f"{INSIDE}/{out.name}", RELEASE]
    expected = _run(["chroot", str(world.CHROOT), "depmod", *args])
    host = [str(world.CHROOT) + a if a.startswith(INSIDE) else a for a in args]
    actual = _run([sys.executable, "-m", "lkm", "depmod", *host])
    assert _TEMPORARY.sub(rb"\1.N", actual.stderr) == _TEMPORARY.sub(rb"\1.N", expected.stderr)
    assert expected.stderr.count(b", 301, 644): Permission denied") == 11
    assert (expected.stdout, actual.stdout) == (b"", b"")
    assert (expected.status, actual.status) == (0, 1)
    assert os.listdir(moddir) == ["modules.dep"]
    COMPARED["files a tool may not read or write (runs)"] += 1
