"""``lkm drivers`` on a sysfs recorded in a QEMU guest of the trixie kernel, with a small tree
made of that kernel's aliases (support/drivers_tree.py), and on broken copies of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lkm.drivers import Candidate, Device, DriversError, drivers
from lkm.system import System
from support import drivers_tree
from support.recorded import run_captured
from support.schemas import validate_output

E1000 = "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"
# Modules the guest's devices were bound to, found among their modaliases' candidates.
LOADABLE_DRIVERS = {
    "ahci", "ata_piix", "bochs", "button", "e1000", "i2c_piix4", "nvme",
    "pcspkr", "psmouse", "qemu_fw_cfg", "sd_mod", "snd_hda_intel", "sr_mod", "usb_storage",
    "usbcore", "usbhid", "virtio_blk", "xhci_pci", "hid_generic", "9pnet_virtio",
}  # fmt: skip
# Built-in drivers bound through a device table: Linux 6.12 writes only MODULE_ALIAS lines of
# built-in code to modules.builtin.modinfo, so no index knows these matches.
BUILTIN_DRIVERS = {"atkbd", "virtio_pci"}
# Devices a module makes for itself once loaded (the floppy driver registers its own platform
# device, matched by name): no alias leads to them.
SELF_MADE = {("platform", "floppy.0")}
# Devices whose driver another one asked the kernel for by name: snd_hda_intel loads
# snd-hda-codec-generic for QEMU's codec, which no codec driver's table names.
BOUND_BY_NAME = {("hdaudio", "hdaudioC0D0"): "snd_hda_codec_generic"}


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return drivers_tree.extract(tmp_path / "sys")


@pytest.fixture
def system(tmp_path: Path, sysfs: Path) -> System:
    return drivers_tree.build_system(tmp_path / "root", sysfs)


def found(system: System) -> tuple[Device, ...]:
    with system.module_directory() as moddir:
        return drivers(system, moddir)


def by_name(records: tuple[Device, ...]) -> dict[tuple[str, str | None], Device]:
    return {(d.bus, d.name): d for d in records}


def lkm_drivers(system: System, *args: str) -> tuple[str, str, int]:
    from lkm.cli.drivers import main

    out = run_captured(lambda a: main(a, system=system), list(args))
    return out.stdout.decode(), out.stderr.decode(), out.status


def test_candidates_are_what_kmod_34_resolved(system: System) -> None:
    """Each modalias stands for the modules kmod 34's ``modprobe -R`` printed in the guest,
    each once, in its order (kmod prints a module once per alias of it that matches)."""
    answers = drivers_tree.recorded()["resolved"]
    records = found(system)
    assert {d.modalias for d in records} == set(answers)
    for device in records:
        expected = drivers_tree.once_each(answers[device.modalias])
        assert [c.module for c in device.candidates] == expected, device
    assert any(len(lines) != len(set(lines)) for lines in answers.values())


def test_bound_drivers_are_among_the_candidates(system: System) -> None:
    records = found(system)
    matched = set()
    for device in records:
        assert device.error is None, device
        module = device.driver_module
        if module is None:
            continue
        names = {c.module for c in device.candidates}
        if module in names:
            matched.add(module)
        else:
            key = (device.bus, device.name)
            assert module in BUILTIN_DRIVERS or key in SELF_MADE or key in BOUND_BY_NAME, device
    assert matched == LOADABLE_DRIVERS


def test_the_hd_audio_codec(system: System) -> None:
    """The codec on the HD-audio controller's link is a device of the hdaudio bus, below the
    controller, with a modalias no module's alias matches and the generic codec driver bound."""
    records = by_name(found(system))
    codec = records[("hdaudio", "hdaudioC0D0")]
    assert codec == Device(
        "hdaudio",
        "hdaudioC0D0",
        "/devices/pci0000:00/0000:00:09.0/hdaudioC0D0",
        "hdaudio:v1AF40022r00100101a01",
        (),
        "snd_hda_codec_generic",
        "snd_hda_codec_generic",
        None,
    )
    assert records[("pci", "0000:00:09.0")].driver_module == "snd_hda_intel"


def test_one_record_whole(system: System) -> None:
    device = by_name(found(system))[("pci", "0000:00:04.0")]
    assert device == Device(
        "pci",
        "0000:00:04.0",
        "/devices/pci0000:00/0000:00:04.0",
        E1000,
        (Candidate("e1000", loaded=True, builtin=False, blacklisted=False),),
        "e1000",
        "e1000",
        None,
    )


def test_loaded_builtin_blacklisted_and_configured(system: System) -> None:
    records = by_name(found(system))
    # The guest's modprobe.d blacklists the AC97 driver: modprobe -b left the card alone.
    ac97 = records[("pci", "0000:00:0a.0")]
    assert ac97.candidates == (Candidate("snd_intel8x0", False, False, True),)
    assert ac97.driver is None and ac97.driver_module is None
    # A modprobe.d alias shadows the indexes, and names a module that exists nowhere.
    isa = records[("pci", "0000:00:01.0")]
    assert isa.candidates == (Candidate("lkm_drivers_no_such_module", False, False, False),)
    # A built-in driver with a module link, and one without.
    assert records[("serio", "serio0")][5:7] == ("atkbd", "atkbd")
    assert records[("platform", "i8042")][5:7] == ("i8042", None)
    # Devices are sorted by bus, then name; devices without a modalias are left out.
    keys = list(records)
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] or ""))
    assert ("pci", "0000:00:04.0") in records and not any(b == "cpu" for b, _ in records)


def test_builtin_candidates(tmp_path: Path, sysfs: Path) -> None:
    """A module both loadable-looking and in modules.builtin counts as built in, not loaded."""
    system = drivers_tree.build_system(tmp_path / "root", sysfs)
    with open(f"{system.modprobe_dirs[0]}/drivers.conf", "a") as conf:  # type: ignore[index]
        conf.write("alias platform:i8042 atkbd\n")
    device = by_name(found(system))[("platform", "i8042")]
    assert device.candidates == (Candidate("atkbd", False, True, False),)


def test_json_follows_the_schema(system: System) -> None:
    stdout, stderr, status = lkm_drivers(system, "--json")
    assert (status, stderr) == (0, "")
    document = validate_output("drivers", stdout)
    assert len(document["records"]) == len(found(system))
    e1000 = [r for r in document["records"] if r["modalias"] == E1000]
    assert e1000 == [
        {
            "bus": "pci",
            "name": "0000:00:04.0",
            "devpath": "/devices/pci0000:00/0000:00:04.0",
            "modalias": E1000,
            "candidates": [
                {"module": "e1000", "loaded": True, "builtin": False, "blacklisted": False}
            ],
            "driver": "e1000",
            "driver_module": "e1000",
            "error": None,
        }
    ]


def test_text_has_one_block_per_device(system: System) -> None:
    stdout, stderr, status = lkm_drivers(system)
    assert (status, stderr) == (0, "")
    blocks = stdout.split("\n\n")
    assert blocks[-1] == ""
    assert len(blocks) - 1 == len(found(system))
    assert (
        "pci 0000:00:04.0 /devices/pci0000:00/0000:00:04.0\n"
        f"  modalias: {E1000}\n"
        "  modules:  e1000 (loaded)\n"
        "  driver:   e1000 (module e1000)"
    ) in blocks
    assert (
        "pci 0000:00:0a.0 /devices/pci0000:00/0000:00:0a.0\n"
        "  modalias: pci:v00008086d00002415sv00001AF4sd00001100bc04sc01i00\n"
        "  modules:  snd_intel8x0 (blacklisted)\n"
        "  driver:   (none)"
    ) in blocks
    assert (
        "pci 0000:00:00.0 /devices/pci0000:00/0000:00:00.0\n"
        "  modalias: pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00\n"
        "  modules:  (none)\n"
        "  driver:   (none)"
    ) in blocks


def test_sysfs_option_replaces_the_system_sysfs(system: System, sysfs: Path) -> None:
    elsewhere = system._replace(sysfs="/nonexistent")
    stdout, stderr, status = lkm_drivers(elsewhere, "--sysfs", str(sysfs), "--json")
    assert (status, stderr) == (0, "")
    assert len(validate_output("drivers", stdout)["records"]) == len(found(system))


# -- bad input ----------------------------------------------------------------------------


def test_odd_entries_are_errors_of_their_device(system: System, sysfs: Path) -> None:
    devices = sysfs / "bus/pci/devices"
    (devices / "0000:00:1e.0").symlink_to("../../../devices/pci0000:00/0000:00:1e.0")
    (devices / "0000:00:1f.0").write_text("a file\n")
    (devices / "0000:00:1d.0").symlink_to("../../../devices/pci0000:00/0000:00:1d.0")
    empty = sysfs / "devices/pci0000:00/0000:00:1d.0"
    empty.mkdir()
    (empty / "modalias").write_text("")
    odd = sysfs / "devices/pci0000:00/0000:00:00.0"
    (odd / "modalias").unlink()
    (odd / "modalias").mkdir()
    gone = sysfs / "devices/pci0000:00/0000:00:04.0/driver"
    gone.unlink()
    gone.symlink_to("../../../bus/pci/drivers/gone")
    plain = sysfs / "bus/pci/drivers/ahci/module"
    plain.unlink()
    plain.write_text("")
    records = by_name(found(system))
    errors = {key: d.error for key, d in records.items() if d.error is not None}
    where = f"{sysfs}/bus/pci/devices"
    assert errors == {
        ("pci", "0000:00:00.0"): f"could not read {where}/0000:00:00.0/modalias: Is a directory",
        ("pci", "0000:00:04.0"): f"{where}/0000:00:04.0/driver is a link to "
        "../../../bus/pci/drivers/gone, which does not exist",
        ("pci", "0000:00:06.0"): f"{where}/0000:00:06.0/driver/module is not a link",
        ("pci", "0000:00:1d.0"): f"{where}/0000:00:1d.0/modalias is empty",
        ("pci", "0000:00:1e.0"): f"{where}/0000:00:1e.0 is a link to "
        "../../../devices/pci0000:00/0000:00:1e.0, which does not exist",
        ("pci", "0000:00:1f.0"): f"{where}/0000:00:1f.0 is not a directory",
    }
    # What could be read is still there.
    assert records[("pci", "0000:00:04.0")][3:6] == (
        E1000,
        (Candidate("e1000", True, False, False),),
        "gone",
    )
    assert records[("pci", "0000:00:06.0")][5:7] == ("ahci", None)
    assert records[("pci", "0000:00:1e.0")].devpath == "/devices/pci0000:00/0000:00:1e.0"
    assert records[("pci", "0000:00:1f.0")].devpath == "/bus/pci/devices/0000:00:1f.0"
    assert records[("pci", "0000:00:1d.0")].candidates == ()
    assert records[("pci", "0000:00:08.0")].error is None
    # The command line: every record, one error line each, exit status 1.
    stdout, stderr, status = lkm_drivers(system)
    assert status == 1
    assert stderr == "".join(f"lkm drivers: ERROR: {message}\n" for message in errors.values())
    assert stdout.count("\n\n") == len(records)
    stdout, stderr, status = lkm_drivers(system, "--json")
    assert (status, stderr) == (1, "")
    document = validate_output("drivers", stdout)
    assert [r["error"] for r in document["records"] if r["error"]] == list(errors.values())


def test_a_link_leading_out_of_sysfs_has_no_devpath(system: System, sysfs: Path) -> None:
    (sysfs / "bus/pci/devices/0000:00:1e.0").symlink_to(sysfs.parent)
    assert ("pci", "0000:00:1e.0") not in by_name(found(system))  # no modalias there
    (sysfs.parent / "modalias").write_text("pci:outside\n")
    device = by_name(found(system))[("pci", "0000:00:1e.0")]
    assert device[2:4] == (None, "pci:outside")


def test_unreadable_modalias(system: System, sysfs: Path) -> None:
    from support.unprivileged import held_to_modes

    path = sysfs / "devices/pci0000:00/0000:00:04.0/modalias"
    path.chmod(0)
    code = (
        "import sys\nfrom lkm.cli.drivers import main\nfrom lkm.system import System\n"
        f"sys.exit(main(['--json'], system=System(*{tuple(system)!r})))\n"
    )
    done = subprocess.run(
        held_to_modes([sys.executable, "-c", code]), capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr
    document = validate_output("drivers", done.stdout)
    errors = [(r["name"], r["modalias"], r["error"]) for r in document["records"] if r["error"]]
    assert errors == [
        (
            "0000:00:04.0",
            None,
            f"could not read {sysfs}/bus/pci/devices/0000:00:04.0/modalias: Permission denied",
        )
    ]


def test_empty_and_odd_buses(system: System, sysfs: Path) -> None:
    (sysfs / "bus/empty/devices").mkdir(parents=True)
    (sysfs / "bus/nodevices").mkdir()
    (sysfs / "bus/odd").mkdir()
    (sysfs / "bus/odd/devices").write_text("")
    (sysfs / "bus/afile").write_text("")
    records = found(system)
    odd = [d for d in records if d.bus in ("empty", "nodevices", "odd", "afile")]
    assert odd == [
        Device(
            "afile", None, None, None, (), None, None,
            f"could not open {sysfs}/bus/afile/devices: Not a directory",
        ),
        Device(
            "odd", None, None, None, (), None, None,
            f"could not open {sysfs}/bus/odd/devices: Not a directory",
        ),
    ]  # fmt: skip
    stdout, stderr, status = lkm_drivers(system)
    assert status == 1
    assert stderr.splitlines() == [f"lkm drivers: ERROR: {d.error}" for d in odd]
    assert "afile (bus)\n\n" in stdout


def test_no_bus_directory(system: System, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DriversError, match=f"^could not open {empty}/bus: No such file or"):
        found(system._replace(sysfs=str(empty)))
    for args in ((), ("--json",)):
        stdout, stderr, status = lkm_drivers(system, "--sysfs", str(empty), *args)
        assert (stdout, status) == ("", 1)
        assert stderr == (
            f"lkm drivers: ERROR: could not open {empty}/bus: No such file or directory\n"
        )


def test_a_sysfs_without_devices(system: System, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    (bare / "bus").mkdir(parents=True)
    stdout, stderr, status = lkm_drivers(system, "--sysfs", str(bare), "--json")
    assert (status, stderr) == (0, "")
    assert validate_output("drivers", stdout)["records"] == []
    assert lkm_drivers(system, "--sysfs", str(bare)) == ("", "", 0)


def test_command_line() -> None:
    from lkm.cli.drivers import main

    out = run_captured(main, ["operand"])
    assert (out.stdout, out.stderr, out.status) == (
        b"",
        b"lkm drivers: ERROR: too many arguments provided.\n",
        1,
    )
    out = run_captured(main, ["--sysfs"])
    assert out.status == 1 and out.stderr.startswith(b"lkm drivers: option '--sysfs' requires")
    out = run_captured(main, ["--help"])
    assert out.status == 0 and b"--sysfs=DIR" in out.stdout and b"--json" in out.stdout


def test_running_through_lkm(system: System) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "drivers", "--sysfs", system.sysfs, "-b", system.basedir,
         "-k", str(system.release), "-C", system.modprobe_dirs[0], "--json"],  # type: ignore[index]
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert validate_output("drivers", done.stdout)["records"] == [_json(d) for d in found(system)]


def _json(device: Device) -> object:
    from lkm.jsonable import to_jsonable

    return to_jsonable(device)
