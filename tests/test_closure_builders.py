"""lkm closure against the image builders of Debian trixie on the real kernel package's modules
and real firmware packages (support/image_builders.py): initramfs-tools' mkinitramfs with
``MODULES=list`` and mkosi 25.3's module resolution. Where their policies differ from lkm's,
the difference is pinned here (and described in the README)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkm.closure import ClosureFirmware, ClosureModule, Reason, closure
from lkm.config import load_config
from lkm.moddir import ModuleDirectory
from lkm.system import System
from support import image_builders

pytestmark = pytest.mark.slow

# Drivers with firmware in the installed packages (r8169, bnx2, iwlwifi; btusb's Realtek
# firmware goes through symbolic links), with modinfo softdeps (r8169: realtek; ext4's jbd2:
# crc32c, an alias), with firmware no package installed provides (i915), and with wildcard
# patterns among its firmware names (brcmfmac: brcm/brcmfmac*-pcie.*.bin and others).
DRIVERS = [
    "r8169", "bnx2", "iwlwifi", "ext4", "btusb", "nvme", "e1000e", "xhci_pci", "i915", "brcmfmac",
]  # fmt: skip
# A modprobe.d softdep and weakdep of the image's system: dracut-install (through libkmod)
# takes both, mkosi does not read modprobe.d. (Trixie's modules declare no weakdep.)
MODPROBE_D = "softdep e1000e post: vfat\nweakdep e1000e msdos\n"


@pytest.fixture(scope="module")
def builders() -> Iterator[tuple[Path, str]]:
    root, release = image_builders.ensure()
    conf = root / "etc/modprobe.d/lkm-closure-test.conf"
    conf.write_text(MODPROBE_D)
    try:
        yield root, release
    finally:
        conf.unlink()


@pytest.fixture(scope="module")
def images(builders: tuple[Path, str]) -> tuple[image_builders.Image, image_builders.Image]:
    """mkinitramfs with an empty list (what its hooks add whatever the list says) and with
    DRIVERS, built once for every test here: each build takes minutes."""
    _root, release = builders
    return image_builders.mkinitramfs([], release), image_builders.mkinitramfs(DRIVERS, release)


def lkm_closure(root: Path, release: str, names: list[str], **options: bool) -> list[object]:
    system = System.under(str(root), release)
    moddir = ModuleDirectory.for_release(str(root), release)
    config = load_config(system.modprobe_dirs, module_dir=moddir.path, cmdline=None)
    with moddir:
        return list(closure(names, moddir, config, basedir=str(root), release=release, **options))


def module_names(records: list[object]) -> set[str]:
    return {r.name for r in records if isinstance(r, ClosureModule) and not r.builtin}


def firmware_files(root: Path, records: list[object], *, links: bool = True) -> set[str]:
    """Files below the system's firmware directory: each found firmware's path, the links
    followed from it (``links``) and the file finally reached."""
    base = os.path.realpath(root / "usr/lib/firmware")
    files = set()
    for record in records:
        if isinstance(record, ClosureFirmware) and record.path is not None:
            assert record.target is not None
            for path in {record.path, record.target, *(record.links if links else ())}:
                real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
                files.add(os.path.relpath(real, base))
    return files


def test_mkinitramfs_holds_the_closure_with_soft_and_weak_dependencies_and_firmware(
    builders: tuple[Path, str], images: tuple[image_builders.Image, image_builders.Image]
) -> None:
    root, release = builders
    # The baseline: what the image holds whatever the list says (modules its hooks add).
    baseline, image = images
    names = DRIVERS + sorted(baseline.modules)
    records = lkm_closure(root, release, names, softdeps=True, weakdeps=True)
    assert not [r for r in records if getattr(r, "error", None)]
    # initramfs-tools adds "hidden dependencies" of its own (hook-functions): vmd for nvme,
    # which no dependency, softdep or weakdep of nvme names.
    assert image.modules - module_names(records) == {"vmd"}
    assert module_names(records) <= image.modules
    assert {"vfat", "fat", "msdos", "realtek", "crc32c_generic"} <= image.modules
    assert image.firmware == firmware_files(root, records)
    # Links were followed: btusb's Realtek firmware comes as links and their targets.
    assert any(r.links for r in records if isinstance(r, ClosureFirmware))
    # Firmware nobody installed is missing for lkm and absent from the image, silently.
    missing = {r.name for r in records if isinstance(r, ClosureFirmware) and r.missing}
    assert any(name.startswith("i915/") for name in missing)
    assert not missing & image.firmware
    # A wildcard pattern stands for every file it matches.
    matched = [r for r in records if isinstance(r, ClosureFirmware) and r.pattern and r.path]
    assert {r.pattern for r in matched} >= {"brcm/brcmfmac*-pcie.*.bin"}


def test_mkinitramfs_takes_soft_and_weak_dependencies_that_lkm_adds_only_when_asked(
    builders: tuple[Path, str], images: tuple[image_builders.Image, image_builders.Image]
) -> None:
    root, release = builders
    baseline, image = images
    hard = module_names(lkm_closure(root, release, DRIVERS))
    soft = lkm_closure(root, release, DRIVERS, softdeps=True, weakdeps=True)
    reached_softly = {
        r.name
        for r in soft
        if isinstance(r, ClosureModule)
        and r.reason in (Reason.SOFTDEP_PRE, Reason.SOFTDEP_POST, Reason.WEAKDEP)
    }
    # Everything reached through a softdep, and their own dependencies (fat, for vfat).
    assert image.modules - baseline.modules - hard == module_names(soft) - hard | {"vmd"}
    assert {"realtek", "crc32c_generic", "crc32c_intel", "vfat", "msdos"} <= reached_softly


def test_mkosi_picks_the_closure_without_softdeps(builders: tuple[Path, str]) -> None:
    root, release = builders
    picked = image_builders.mkosi(DRIVERS, release)
    records = lkm_closure(root, release, DRIVERS)
    assert picked.modules == module_names(records)
    # mkosi 25.3 reads ``--null`` output as ``key: value`` first, and kmod 34 prints
    # ``softdep=pre: realtek`` there: every modinfo softdep is lost (r8169 -> realtek), and
    # modprobe.d is not read at all (e1000e -> vfat, msdos).
    assert not {"realtek", "crc32c_generic", "vfat", "msdos"} & picked.modules
    # Firmware: the file found and the link's final target, not the links in between.
    assert picked.firmware == firmware_files(root, records, links=False)
