"""A dependency that fails to load, against kmod 34: the messages name the module asked for.

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
