"""``lkm drivers`` on the sysfs recorded in a QEMU guest, with the whole trixie tree it was
recorded with, against kmod 34's ``modprobe -R`` of each modalias on the same tree and
configuration (support/drivers_tree.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkm.drivers import drivers
from support import drivers_tree, world

pytestmark = pytest.mark.slow


def kmod_resolve(tree: world.Tree, conf: Path, modaliases: list[str]) -> dict[str, list[str]]:
    """kmod 34's ``modprobe -R`` of each modalias, in one process of the chroot's shell."""
    loop = (
        'for a; do echo "== $a"; modprobe -d "$ROOT" -S "$KVER" -C "$CONF" -R "$a" 2>&1;'
        ' echo "rc=$?"; done'
    )
    done = world.kmod(
        "env", f"ROOT={tree.chroot_root}", f"KVER={tree.kver}", f"CONF={tree.chroot_path(conf)}",
        "sh", "-c", loop, "sh", *modaliases, check=True,
    )  # fmt: skip
    return drivers_tree.parse_resolved(done.stdout.decode())


def test_candidates_are_kmod_34s_on_the_whole_tree(trixie: world.Tree, tmp_path: Path) -> None:
    from support.differential import COMPARED

    conf = world.CHROOT / "scratch-drivers" / "modprobe.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "drivers.conf").write_text(drivers_tree.recorded()["config"])
    sysfs = drivers_tree.extract(tmp_path / "sys")
    system = drivers_tree.build_system(tmp_path / "root", sysfs)._replace(
        basedir=str(trixie.root), release=trixie.kver, modprobe_dirs=(str(conf),)
    )
    with system.module_directory() as moddir:
        assert moddir.path.startswith(str(trixie.root))
        records = drivers(system, moddir)
    modaliases = sorted({d.modalias for d in records if d.modalias})
    kmod = kmod_resolve(trixie, conf, modaliases)
    # The host's kmod 34 answers as the guest's did when the archive was recorded.
    assert kmod == drivers_tree.recorded()["resolved"]
    for device in records:
        assert device.modalias is not None and device.error is None, device
        assert [c.module for c in device.candidates] == drivers_tree.once_each(
            kmod[device.modalias]
        ), device
        COMPARED["modaliases of a recorded sysfs resolved as modprobe -R (trixie tree)"] += 1
    assert len(modaliases) >= 40
