"""``lkm drivers`` in a real Linux 6.12 (Debian trixie) guest with emulated devices.

One boot (drivers_guest.py): a network card, a virtio disk, AHCI and NVMe controllers, an xHCI
controller with a keyboard and a USB disk, HD audio (a controller and its codec) and AC97. The
guest loads every device's modules with kmod 34 as udev's coldplug does (and as the kernel asks
for them), then runs ``lkm drivers --json`` and kmod 34's
``modprobe -R`` on each modalias, and records its sysfs as the archive kept with the tests is
recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# Drivers of the emulated devices that must end up bound, each found among its device's
# candidates.
EXPECTED_DRIVERS = {
    "ahci", "e1000", "nvme", "sd_mod", "snd_hda_intel", "usb_storage", "usbhid", "virtio_blk",
    "xhci_pci",
}  # fmt: skip
# Devices a module makes for itself once loaded (the floppy driver registers its own platform
# device, matched by name): no alias leads to them.
SELF_MADE = {("platform", "floppy.0")}
# Devices whose driver another one asks the kernel for by name: snd_hda_intel finds QEMU's codec
# (vendor 1af4, no codec driver's table names it) and loads snd-hda-codec-generic for it
# (request_module), so no alias leads to the driver bound to it.
BOUND_BY_NAME = {("hdaudio", "hdaudioC0D0"): "snd_hda_codec_generic"}


class GuestRun:
    def __init__(self, out: Path, moddir: Path) -> None:
        self.out = out
        self.moddir = moddir

    def text(self, name: str) -> str:
        return (self.out / name).read_text()

    def records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = json.loads(self.text("drivers.json"))["records"]
        return records


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory: pytest.TempPathFactory) -> GuestRun:
    import drivers_guest

    out = tmp_path_factory.mktemp("drivers-vm")
    moddir = drivers_guest.boot(out)  # ~2 min under TCG on a quiet machine
    return GuestRun(out, moddir)


def test_lkm_drivers_ran_in_the_guest(guest_run: GuestRun) -> None:
    from support.schemas import validate_output

    assert guest_run.text("drivers.rc").strip() == "0", guest_run.text("drivers.err")
    assert guest_run.text("drivers.err") == ""
    document = validate_output("drivers", guest_run.text("drivers.json"))
    modaliases = set(guest_run.text("modaliases").split())
    assert {r["modalias"] for r in document["records"]} == modaliases
    assert len(modaliases) >= 40
    # The text shows one block per device.
    assert guest_run.text("drivers.txt").count("\n\n") == len(document["records"])


def test_candidates_are_what_kmod_34_resolves_in_the_guest(guest_run: GuestRun) -> None:
    import drivers_guest

    from support.differential import COMPARED
    from support.drivers_tree import once_each

    kmod = drivers_guest.resolved(guest_run.out)
    for record in guest_run.records():
        modules = [c["module"] for c in record["candidates"]]
        assert modules == once_each(kmod[record["modalias"]]), record
        COMPARED["devices of a real 6.12 guest resolved as modprobe -R (QEMU)"] += 1


def test_bound_drivers_are_among_the_candidates(guest_run: GuestRun) -> None:
    """Each bound driver's module is a candidate of its device, unless built in (Linux 6.12
    writes only MODULE_ALIAS lines of built-in code to modules.builtin.modinfo, so no index
    has the device-table matches of built-in drivers) or the device is one its module made."""
    builtin = {
        line.rsplit("/", 1)[-1].removesuffix(".ko").replace("-", "_")
        for line in (guest_run.moddir / "modules.builtin").read_text().split()
    }
    matched = set()
    for record in guest_run.records():
        module = record["driver_module"]
        if module is None:
            continue
        if module in {c["module"] for c in record["candidates"]}:
            matched.add(module)
        else:
            device = (record["bus"], record["name"])
            assert module in builtin or device in SELF_MADE or device in BOUND_BY_NAME, record
    assert matched >= EXPECTED_DRIVERS


def test_the_hd_audio_codec_is_a_device_of_its_own(guest_run: GuestRun) -> None:
    """The HD-audio controller's codec appears on the hdaudio bus with its own modalias
    (``hdaudio:vVENDORrREVISIONaAFG``), bound to the generic codec driver; no module's alias
    matches QEMU's codec, for kmod 34 (``modprobe -R``, compared above) as for lkm."""
    (codec,) = [r for r in guest_run.records() if r["bus"] == "hdaudio"]
    assert codec["modalias"].startswith("hdaudio:v1AF40022r"), codec
    assert codec["devpath"].startswith("/devices/pci0000:00/"), codec
    assert (codec["candidates"], codec["driver_module"]) == (
        [],
        BOUND_BY_NAME[(codec["bus"], codec["name"])],
    )
    controller = codec["devpath"].rsplit("/", 1)[0]
    (parent,) = [r for r in guest_run.records() if r["devpath"] == controller]
    assert parent["driver_module"] == "snd_hda_intel"


def test_loaded_and_builtin_are_the_kernels(guest_run: GuestRun) -> None:
    live = {
        line.split()[0] for line in guest_run.text("proc-modules").splitlines() if " Live " in line
    }
    builtin = {
        line.rsplit("/", 1)[-1].removesuffix(".ko").replace("-", "_")
        for line in (guest_run.moddir / "modules.builtin").read_text().split()
    }
    seen = 0
    for record in guest_run.records():
        for candidate in record["candidates"]:
            assert candidate["loaded"] == (candidate["module"] in live), record
            assert candidate["builtin"] == (candidate["module"] in builtin), record
            seen += candidate["loaded"]
    assert seen >= len(EXPECTED_DRIVERS)
    # The configuration blacklists the AC97 driver: modprobe -b left the card alone.
    (ac97,) = [r for r in guest_run.records() if r["candidates"][:1] == [
        {"module": "snd_intel8x0", "loaded": False, "builtin": False, "blacklisted": True}
    ]]  # fmt: skip
    assert ac97["driver"] is None


def test_the_recording_reads_as_the_live_sysfs(guest_run: GuestRun, tmp_path: Path) -> None:
    """lkm on the host, reading the sysfs the guest recorded, finds what lkm found in the
    guest: the recorder keeps everything lkm drivers reads."""
    from lkm.drivers import drivers
    from lkm.jsonable import to_jsonable
    from support import drivers_tree, world

    sysfs = drivers_tree.extract(tmp_path / "sys", guest_run.out / "sysfs.tar")
    tree = world.tree("trixie-amd64")
    conf = world.CHROOT / "scratch-drivers" / "modprobe.d"
    system = drivers_tree.build_system(tmp_path / "root", sysfs)._replace(
        basedir=str(tree.root), release=tree.kver, modprobe_dirs=(str(conf),)
    )
    with system.module_directory() as moddir:
        records = drivers(system, moddir)
    assert [to_jsonable(r) for r in records] == guest_run.records()
