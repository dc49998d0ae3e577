"""lkm closure on the real trixie tree against kmod 34: the load order is ``modprobe -D``'s
(softdeps included, each module at its first place) and every module's firmware list is
``modinfo -F firmware``'s."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lkm.closure import ClosureModule, closure
from lkm.config import load_config
from lkm.moddir import ModuleDirectory
from support import world
from support.differential import COMPARED

pytestmark = pytest.mark.slow

DRIVERS = (
    "r8169", "e1000e", "iwlwifi", "i915", "amdgpu", "nvme", "ahci", "xhci_pci", "usb_storage",
    "btusb", "snd_hda_intel", "ext4", "btrfs", "xfs", "vfat", "dm_crypt", "virtio_net", "bnx2x",
    "mlx5_core", "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00", "fs-vfat",
)  # fmt: skip


def names_with_softdeps(tree: world.Tree) -> list[str]:
    lines = (tree.moddir / "modules.softdep").read_text().splitlines()
    return sorted({line.split()[1] for line in lines if line.startswith("softdep ")})


def test_order_is_modprobe_show_depends_and_firmware_is_modinfos(trixie: world.Tree) -> None:
    moddir = ModuleDirectory(str(trixie.moddir))
    config = load_config([], module_dir=moddir.path, cmdline=None)
    for name in [*DRIVERS, *names_with_softdeps(trixie)]:
        records = closure([name], moddir, config, softdeps=True, basedir=str(trixie.root))
        modules = [r for r in records if isinstance(r, ClosureModule)]
        assert not [m for m in modules if m.error], name
        shown = world.kmod("modprobe", "-D", "-d", trixie.chroot_root, "-S", trixie.kver, name)
        expected: list[str] = []
        for line in shown.stdout.decode().splitlines():
            words = line.split()
            step = words[1] if words[0] == "insmod" else f"builtin {words[1]}"
            if step not in expected:
                expected.append(step)
        got = [
            f"builtin {m.name}" if m.builtin else trixie.chroot_path(str(m.path)) for m in modules
        ]
        assert got == expected, name
        COMPARED["closure order (modprobe -D)"] += 1
        paths = [m.path for m in modules if m.path is not None]
        for module in modules:
            if module.path is None:
                continue
            fields = world.kmod("modinfo", "-F", "firmware", trixie.chroot_path(module.path))
            assert module.firmware == tuple(fields.stdout.decode().splitlines()), module.name
            COMPARED["closure firmware (modinfo -F firmware)"] += 1
        assert paths


def test_a_tree_indexed_by_lkm_gives_the_records_of_one_indexed_by_kmod(
    trixie: world.Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 modules' closure on a copy of the tree indexed by lkm's depmod (its cache serving
    every module's firmware fields, none read) is the closure on kmod's indexes, every module
    read: the same records, paths aside."""
    import lkm.bulk
    from lkm.cli.depmod import main as depmod
    from lkm.depmod import cache as depmod_cache
    from lkm.system import System

    order = (trixie.moddir / "modules.order").read_text().split()
    names = [Path(line).name.split(".", 1)[0] for line in order[:: len(order) // 600][:600]]
    copy = tmp_path / "root"
    shutil.copytree(trixie.moddir, copy / "lib/modules" / trixie.kver, symlinks=True)
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "1")
    monkeypatch.setattr(depmod_cache, "RACY_NS", 0)  # the copy is a moment old
    assert depmod(["-b", str(copy), trixie.kver], system=System.under(str(copy))) == 0

    def records(root: Path) -> list[str]:
        moddir = ModuleDirectory(str(root / "lib/modules" / trixie.kver))
        config = load_config([], module_dir=moddir.path, cmdline=None)
        with moddir:
            found = closure(names, moddir, config, softdeps=True, weakdeps=True,
                            basedir=str(root), release=trixie.kver)  # fmt: skip
        return [repr(record).replace(str(root), "ROOT") for record in found]

    kmods = records(trixie.root)
    read: list[str] = []
    real = lkm.bulk.firmware_many

    def recording(paths: list[str], **options: object) -> object:
        read.extend(paths)
        return real(paths, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(lkm.bulk, "firmware_many", recording)
    try:
        assert records(copy) == kmods
        assert read == []
        assert sum("firmware=('" in record for record in kmods) > 20
    finally:
        shutil.rmtree(copy)
