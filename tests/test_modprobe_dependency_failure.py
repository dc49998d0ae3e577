"""A dependency that fails to load, against kmod 34: the messages name the module asked for;
a softdep (or anything a softdep needs) that fails stops nothing.

kmod reports ``could not insert 'vfat': ...`` when it was asked for vfat and vfat's dependency
fat is what failed (seen on a real kernel too: tests/vm/test_vm_trixie.py, loading without
CAP_SYS_MODULE). An install command on the dependency makes it fail here without a kernel.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

CONFIGS = {
    "false": "install fat /bin/false\n",
    "status-3": "install fat echo fat-command >&2; exit 3\n",
    "alias": "install fat /bin/false\nalias dosfs vfat\n",
    # Softdeps that fail: a module the kernel refuses, an install command, a softdep's own
    # dependency; loading goes on past each, and stops at vfat itself.
    "softdeps": (
        "install fat echo fat\nsoftdep vfat pre: msdos mpa ext4 mpc post: mpb\n"
        "install mpa echo a; false\ninstall mpb echo b\ninstall mpc echo c\n"
        "install mbcache echo mbcache; exit 2\n"
    ),
    # A softdep whose install command is ignored (it has softdeps itself) and that has no
    # file: nothing to load, an error, and loading goes on; asked for itself, it fails.
    "nothing-to-load": (
        "install fat echo fat\nsoftdep vfat pre: mpc post: mpb\ninstall mpc echo c\n"
        "softdep mpc pre: mpd\ninstall mpd echo d; false\ninstall mpb echo b\n"
        "alias dosfs nonexistent\n"
    ),
}
ARGS = (
    ("vfat",),
    ("-v", "vfat"),
    ("-q", "vfat"),
    ("-vv", "vfat"),
    ("-a", "vfat", "msdos"),
    ("-a", "-v", "msdos", "fat"),
    ("dosfs",),
    ("--first-time", "vfat"),
    ("mpc",),
    ("-q", "mpc"),
    ("-a", "mpc", "dosfs", "fat"),
    ("-n", "-v", "dosfs"),
)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_dependency_failure_matches_kmod(config: str) -> None:
    from support import world
    from support.differential import COMPARED, Result, addresses_hidden, assert_same, kmod, lkm

    tree = world.tree("bookworm-amd64")
    scratch = world.CHROOT / "scratch-dependency-failure"
    scratch.mkdir(exist_ok=True)
    (scratch / f"{config}.conf").write_text(CONFIGS[config])
    base = ["-C", f"/{scratch.relative_to(world.CHROOT)}/{config}.conf", "-S", tree.kver]
    for args in ARGS:
        expected = kmod("modprobe", *base, "-d", tree.chroot_root, *args)
        host = [str(scratch / f"{config}.conf") if a.startswith("/scratch") else a for a in base]
        actual = lkm("modprobe", *host, "-d", str(tree.root), *args)
        assert_same(
            Result(expected.stdout, addresses_hidden(expected.stderr), expected.status),
            Result(actual.stdout, addresses_hidden(actual.stderr), actual.status),
        )
        COMPARED["modprobe with a failing dependency"] += 1
