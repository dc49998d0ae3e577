"""``modprobe -vv``, ``-q``, ``-s`` and failing install/remove commands: lkm against kmod 34.

kmod 34's modprobe shows libkmod's INFO lines at ``-vv``: its logging function registered (after
the configuration's own complaints, before the indexes'), the context released at a normal end
(not after a FATAL, where it exits). Two of them hold memory addresses, which can never match:
those two are ``0xADDR`` on both sides (differential.addresses_hidden), and nothing else, so the
CRCs of ``--show-exports`` and ``--show-modversions`` are compared. A remove command that fails
is a FATAL (a WARNING with ``-a``) without the command or its status. Everything runs without a
kernel: a fake ``/sys/module`` and kernel command line (see support/modprobe_world.py), install and
remove commands instead of system calls. tests/vm/test_vm_cmdline.py covers the same on a real
kernel.
"""

from __future__ import annotations

import shutil

import pytest

from support import world
from support.differential import COMPARED, Result, addresses_hidden, assert_same
from support.modprobe_world import (
    SCRATCH,
    TREE,
    Loaded,
    make_state,
    run_kmod,
    run_lkm,
    scratch,
    tree_args,
)

pytestmark = pytest.mark.slow

FAILING = """\
install dummy echo install-failing $MODPROBE_MODULE >&2; echo out; exit 3
install loop /bin/false
remove dummy echo remove-failing $MODPROBE_MODULE >&2; echo removing; exit 3
remove loop /bin/false
"""
BAD = """\
bogus line here
options vfat utf8=1
"""
CMDLINE = 'BOOT_IMAGE=/vmlinuz dummy.numdummies=2 "vfat.iocharset=a b" modprobe.blacklist=dummy'
FAT = "kernel/fs/fat/fat.ko.xz"

# (label, state, arguments after the tree's): {conf} is the configuration directory, {fail}
# and {bad} the files above, {badidx} a copy of the tree's indexes with a bad alias index,
# {fat} fat's module file. State "empty" has nothing loaded, "loaded" dummy and loop.
CASES = (
    ("dry-run-vv", "empty", "-C {conf} -vv -n vfat"),
    ("dry-run-vvv", "empty", "-C {conf} -vvv -n vfat"),
    ("dry-run-q-vv", "empty", "-C {conf} -vv -q -n vfat"),
    ("dry-run-q-first", "empty", "-C {conf} -q -vvv -n vfat"),
    ("dry-run-q-v", "empty", "-C {conf} -q -v -n vfat"),
    ("show-depends-vv", "empty", "-C {conf} -vv -D vfat"),
    ("show-depends-q", "empty", "-C {conf} -q -vv -D vfat"),
    ("resolve-vv", "empty", "-C {conf} -vv -R dummy"),
    ("show-config-vv", "empty", "-C {fail} -vv -c"),
    ("show-config-vvv-syslog", "empty", "-C {fail} -vvv -s -c"),
    ("not-found-vv", "empty", "-C {conf} -vv -n nosuch"),
    ("not-found-all-vv", "empty", "-C {conf} -vv -a -n nosuch vfat"),
    ("not-found-syslog", "empty", "-C {conf} -vv -s -n nosuch"),
    ("missing-vv", "empty", "-C {bad} -vv"),
    ("missing-syslog", "empty", "-C {bad} -vv -s"),
    ("exports-vv", "empty", "-C {bad} -vv --show-exports {fat}"),
    ("modversions-vv", "empty", "-C {bad} -vv --show-modversions {fat}"),
    ("modversions-missing-vv", "empty", "-C {bad} -vv --show-modversions /nonexist.ko"),
    ("bad-config-vv", "empty", "-C {bad} -vv -n vfat"),
    ("bad-config-syslog", "empty", "-C {bad} -vv -s -n vfat"),
    ("bad-config-q", "empty", "-C {bad} -vv -q -n vfat"),
    ("bad-index-config", "empty", "-d {badidx} -C {bad} -vv -c"),
    ("bad-index-dry-run", "empty", "-d {badidx} -C {bad} -vv -n loop"),
    ("bad-index-resolve", "empty", "-d {badidx} -C {bad} -vv -R loop"),
    ("bad-index-exports", "empty", "-d {badidx} -C {bad} -vv --show-exports {fat}"),
    ("bad-index-remove", "empty", "-d {badidx} -C {bad} -vv -r -n nosuch"),
    ("rm-dry-not-found", "empty", "-C {conf} -vv -r -n nosuch dummy"),
    ("rm-dry-not-found-all", "empty", "-C {conf} -vv -r -a -n nosuch dummy"),
    ("install-exit3", "empty", "-C {fail} dummy"),
    ("install-exit3-v", "empty", "-C {fail} -v dummy"),
    ("install-exit3-vv", "empty", "-C {fail} -vv dummy"),
    ("install-exit3-q", "empty", "-C {fail} -q dummy"),
    ("install-false-vv", "empty", "-C {fail} -vv loop"),
    ("install-all-vv", "empty", "-C {fail} -a -vv dummy loop"),
    ("install-syslog", "empty", "-C {fail} -s -vv dummy"),
)
REMOVALS = (
    ("rm-exit3", "-C {fail} -r dummy"),
    ("rm-exit3-v", "-C {fail} -r -v dummy"),
    ("rm-exit3-vv", "-C {fail} -r -vv dummy"),
    ("rm-exit3-vvv", "-C {fail} -r -vvv dummy"),
    ("rm-exit3-q", "-C {fail} -r -q dummy"),
    ("rm-exit3-syslog", "-C {fail} -r -s -v dummy"),
    ("rm-false", "-C {fail} -r loop"),
    ("rm-false-vv", "-C {fail} -r -vv loop"),
    ("rm-stops", "-C {fail} -r -v dummy loop"),
    ("rm-all", "-C {fail} -r -a -vv dummy loop dummy"),
    ("rm-not-found-stops", "-C {fail} -r -vv nosuch dummy"),
    ("rm-not-found-all", "-C {fail} -r -a -vv nosuch loop"),
    ("rm-dry", "-C {fail} -r -n -vv dummy loop"),
)
ALL_CASES = CASES + tuple(
    (f"{label}-{state}", state, args) for state in ("empty", "loaded") for label, args in REMOVALS
)


@pytest.fixture(scope="module")
def world_files() -> dict[str, str]:
    """The configurations, states and the bad-index tree (chroot paths), made once."""
    tree = world.tree(TREE)
    base = scratch("verbose")
    conf = base / "conf"
    conf.mkdir()
    (base / "failing.conf").write_text(FAILING)
    (base / "bad.conf").write_text(BAD)
    badidx = base / "badidx" / str(tree.moddir.relative_to(tree.root))
    badidx.mkdir(parents=True)
    for index in tree.moddir.glob("modules.*.bin"):
        shutil.copy(index, badidx)
    with open(badidx / "modules.alias.bin", "r+b") as stream:
        stream.write(b"XXXX")  # the magic
    make_state(base / "empty", CMDLINE)
    make_state(base / "loaded", CMDLINE, [Loaded("dummy"), Loaded("loop")])
    inside = f"/{SCRATCH}/verbose"
    return {
        "conf": f"{inside}/conf",
        "fail": f"{inside}/failing.conf",
        "bad": f"{inside}/bad.conf",
        "badidx": f"{inside}/badidx",
        "fat": f"{tree.chroot_path(tree.moddir)}/{FAT}",
        "state": str(base),
    }


def hidden(result: Result) -> Result:
    return Result(addresses_hidden(result.stdout), addresses_hidden(result.stderr), result.status)


@pytest.mark.parametrize(("label", "state", "args"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_like_kmod(world_files: dict[str, str], label: str, state: str, args: str) -> None:
    words = args.format(**world_files).split()
    # A -d given by the case replaces the tree's.
    argv = [*tree_args()[2:], *words] if "-d" in words else [*tree_args(), *words]
    state_dir = world.CHROOT / SCRATCH / "verbose" / state / ".state"
    expected = hidden(run_kmod(argv, state_dir))
    assert_same(expected, hidden(run_lkm(argv, state_dir)))
    COMPARED["modprobe -vv, -q, -s and failing commands without a kernel (runs)"] += 1


def test_cases_show_what_they_are_about(world_files: dict[str, str]) -> None:
    """Spot checks on kmod's side that each case reached the behaviour it names."""

    def kmod(state: str, args: str) -> Result:
        words = args.format(**world_files).split()
        state_dir = world.CHROOT / SCRATCH / "verbose" / state / ".state"
        return hidden(run_kmod([*tree_args(), *words], state_dir))

    shown = kmod("empty", "-C {conf} -vv -n vfat")
    assert shown.stderr == (
        b"modprobe: INFO: custom logging function 0xADDR registered\n"
        b"modprobe: INFO: context 0xADDR released\n"
    )
    assert b'iocharset="a b"' in shown.stdout
    failed = kmod("loaded", "-C {fail} -r -vv dummy loop")
    assert failed.stderr.endswith(
        b"remove-failing dummy\nmodprobe: FATAL: Error running remove command for dummy\n"
    )
    assert failed.stdout == (
        b"remove echo remove-failing $MODPROBE_MODULE >&2; echo removing; exit 3\nremoving\n"
    )
