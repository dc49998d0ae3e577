"""A guest with devices for ``lkm drivers``, and a recorder of the sysfs it shows.

One boot of the trixie kernel with a network card, storage controllers, USB and sound
(``QEMU_DEVICES``) loads the modules of every device as udev's coldplug does (kmod 34's
``modprobe -b`` on each modalias, a few rounds, since a USB controller's driver makes its
devices appear, and the HD-audio one its codec; the kernel's own requests go to kmod 34 too),
then runs ``lkm drivers --json`` and kmod 34's ``modprobe -R`` on each modalias, and records
the parts of ``/sys`` that ``lkm drivers`` reads as a tar archive.

``python tests/vm/drivers_guest.py record`` boots once and writes the archive kept with the
tests (``tests/data/sysfs-qemu-trixie.tar.xz``); run in the guest, ``drivers_guest.py SYSFS
OUT.tar`` is the recorder itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
from pathlib import Path

# A drive with no file behind it: reads give zeros, nothing is kept.
_NULL = "driver=null-co,if=none,read-zeroes=on,size=67108864,id="
QEMU_DEVICES = (
    "-netdev", "user,id=net0", "-device", "e1000,netdev=net0",
    "-drive", _NULL + "vblk", "-device", "virtio-blk-pci,drive=vblk",
    "-device", "ich9-ahci,id=ahci0",
    "-drive", _NULL + "nvme", "-device", "nvme,serial=lkm0001,drive=nvme",
    "-device", "qemu-xhci,id=xhci",
    "-device", "usb-kbd,bus=xhci.0",
    "-drive", _NULL + "ustor", "-device", "usb-storage,bus=xhci.0,drive=ustor",
    "-audiodev", "none,id=snd0",
    "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0",
    "-device", "AC97,audiodev=snd0",
)  # fmt: skip

# The modprobe.d both tools read in the guest (``{conf}``): the same files for lkm (on the
# host's root) and kmod 34 (in its chroot). The PIIX3 ISA bridge has no driver; an alias of
# the configuration gives it a module that does not exist, which shadows the indexes.
CONFIG = """\
alias pci:v00008086d00007000sv*sd*bc*sc*i* lkm_drivers_no_such_module
blacklist snd_intel8x0
"""

COLDPLUG_ROUNDS = 3

# snd_hda_intel finds the codecs on the HD-audio link in a work item after it binds, and only
# then do they appear on the hdaudio bus: wait for one (at most a minute under TCG) so that
# the next rounds load the codec's driver as udev would.
CODEC_WAIT = (
    "for i in $(seq 30); do ls /sys/bus/hdaudio/devices/* > /dev/null 2>&1 && break; sleep 2; done"
)


# The kernel loads some modules itself (request_module: snd_hda_intel asks for the driver of
# the codecs it finds, snd-hda-codec-generic for QEMU's, and gives the card up when none binds)
# by running /proc/sys/kernel/modprobe in the root of the guest's first process: the sandbox's
# initramfs, where the host's root is /host and there is no /sbin/modprobe. As a real system's
# /sbin/modprobe would, this runs kmod 34's in its chroot on the guest's module tree.
KERNEL_MODPROBE = (
    "printf '#!/bin/busybox sh\\nexec /bin/busybox chroot /host%s /sbin/modprobe -d %s \"$@\"\\n'"
    ' "${{KMOD#chroot }}" {kmod_root} > $OUT/kernel-modprobe'
)


def guest_script(python: str, root: str, conf: str, kmod_conf: str, kmod_root: str) -> str:
    """The guest's steps; ``root``/``conf`` are lkm's paths, ``kmod_*`` the chroot's."""
    recorder = Path(__file__).resolve()
    modaliases = "cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u"
    kmod = f"$KMOD modprobe -d {kmod_root} -C {kmod_conf}"
    lines = [
        KERNEL_MODPROBE.format(kmod_root=kmod_root),
        "chmod 755 $OUT/kernel-modprobe",
        "echo /host$OUT/kernel-modprobe > /proc/sys/kernel/modprobe",
    ]
    for round_ in range(1, COLDPLUG_ROUNDS + 1):
        lines += [
            f"{modaliases} > /tmp/modaliases.{round_}",
            f"{kmod} -a -b -q $(cat /tmp/modaliases.{round_}) 2> /tmp/coldplug.{round_}.err",
            "sleep 3",
        ]
        if round_ == 1:
            lines.append(CODEC_WAIT)
    lines += [
        "dmesg > /tmp/dmesg",
        f"{modaliases} > /tmp/modaliases",
        f"$LKM drivers -b {root} -C {conf} --json > /tmp/drivers.json 2> /tmp/drivers.err;"
        " echo $? > /tmp/drivers.rc",
        f"$LKM drivers -b {root} -C {conf} > /tmp/drivers.txt 2> /tmp/drivers.txt.err",
        "while read -r alias; do"
        f' echo "== $alias"; {kmod} -R "$alias" 2>&1; echo "rc=$?";'
        " done < /tmp/modaliases > /tmp/resolved",
        "cat /proc/modules > /tmp/proc-modules",
        f"{python} {recorder} /sys /tmp/sysfs.tar",
    ]
    return "\n".join(lines) + "\n"


def _member(name: str, kind: bytes, *, link: str = "", data: bytes = b"") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 0
    info.uname = info.gname = "root"
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    elif kind == tarfile.SYMTYPE:
        info.mode = 0o777
        info.linkname = link
    else:
        info.mode = 0o444
        info.size = len(data)
    return info


def record(sysfs: str, out: str) -> None:
    """Write the parts of ``sysfs`` that ``lkm drivers`` reads to the tar ``out``: each
    ``bus/*/devices/*`` link, the device directories with their ``modalias`` and ``driver``
    link, the drivers' ``module`` links, and ``module/*`` with each ``initstate``. Links keep
    their (relative) text; every directory on the way is a member."""
    dirs: set[str] = set()
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}

    def add_dir(path: str) -> None:
        while path and path not in dirs:
            dirs.add(path)
            path = os.path.dirname(path)

    def inside(base: str, link: str) -> str:
        return os.path.normpath(os.path.join(os.path.dirname(base), link))

    for bus in sorted(os.listdir(f"{sysfs}/bus")):
        devices = f"bus/{bus}/devices"
        if not os.path.isdir(f"{sysfs}/{devices}"):
            continue
        add_dir(devices)
        for name in sorted(os.listdir(f"{sysfs}/{devices}")):
            entry = f"{devices}/{name}"
            links[entry] = os.readlink(f"{sysfs}/{entry}")
            device = inside(entry, links[entry])
            add_dir(device)
            with contextlib.suppress(OSError):
                files[f"{device}/modalias"] = Path(f"{sysfs}/{device}/modalias").read_bytes()
            if os.path.islink(f"{sysfs}/{device}/driver"):
                links[f"{device}/driver"] = os.readlink(f"{sysfs}/{device}/driver")
                driver = inside(f"{device}/driver", links[f"{device}/driver"])
                add_dir(driver)
                if os.path.islink(f"{sysfs}/{driver}/module"):
                    links[f"{driver}/module"] = os.readlink(f"{sysfs}/{driver}/module")
    add_dir("module")
    for module in sorted(os.listdir(f"{sysfs}/module")):
        add_dir(f"module/{module}")
        with contextlib.suppress(OSError):
            files[f"module/{module}/initstate"] = Path(
                f"{sysfs}/module/{module}/initstate"
            ).read_bytes()
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(dirs | set(files) | set(links)):
            if path in links:
                tar.addfile(_member(path, tarfile.SYMTYPE, link=links[path]))
            elif path in files:
                data = files[path]
                tar.addfile(_member(path, tarfile.REGTYPE, data=data), io.BytesIO(data))
            else:
                tar.addfile(_member(path, tarfile.DIRTYPE))


def resolved(out: Path) -> dict[str, list[str]]:
    """kmod 34's ``modprobe -R`` of each modalias in the guest (see ``guest_script``)."""
    from support.drivers_tree import parse_resolved

    return parse_resolved((out / "resolved").read_text())


def small_tree(out: Path, moddir: Path) -> dict[str, object]:
    """What the quick tests need of the guest's module tree: every alias (pattern, module,
    priority) of modules.alias.bin belonging to a module kmod found for a modalias, all of
    modules.builtin.alias.bin, and the built-in modules drivers in the archive belong to."""
    from lkm.index import Index

    answers = resolved(out)
    wanted = {module for modules in answers.values() for module in modules}
    with Index.open(moddir / "modules.alias.bin") as index:
        aliases = [
            (key, value.value, value.priority)
            for key, values in index.items()
            for value in values
            if value.value in wanted
        ]
    with Index.open(moddir / "modules.builtin.alias.bin") as index:
        builtin_aliases = [
            (key, value.value, value.priority) for key, values in index.items() for value in values
        ]
    builtin = set((moddir / "modules.builtin").read_text().split())
    builtin_names = {path.rsplit("/", 1)[-1].removesuffix(".ko") for path in builtin}
    with tarfile.open(out / "sysfs.tar") as tar:
        modules = {m.linkname.rsplit("/", 1)[-1] for m in tar if m.name.endswith("/module")}
    return {
        "release": moddir.name,
        "config": CONFIG,
        "aliases": aliases,
        "builtin_aliases": builtin_aliases,
        "builtin": sorted(name.replace("-", "_") for name in builtin_names & modules),
        "resolved": answers,
    }


def save(out: Path, moddir: Path) -> None:
    """Keep a boot's recording with the tests: the archive, and the small tree with kmod's
    answers."""
    import json
    import lzma

    from support.drivers_tree import ARCHIVE, SMALL_TREE

    ARCHIVE.write_bytes(lzma.compress((out / "sysfs.tar").read_bytes()))
    data = small_tree(out, moddir)
    # One alias or answer a line: the file stays small and its diffs readable.
    fields = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
            rows = ",\n  ".join(json.dumps(row) for row in value)
            text = f"[\n  {rows}\n ]"
        elif isinstance(value, dict):
            rows = ",\n  ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            text = f"{{\n  {rows}\n }}"
        else:
            text = json.dumps(value)
        fields.append(f" {json.dumps(key)}: {text}")
    SMALL_TREE.write_text("{\n" + ",\n".join(fields) + "\n}\n")


def boot(out: Path) -> Path:
    """Boot the guest once with ``QEMU_DEVICES`` and run ``guest_script``; ``out`` gets its
    files. Returns the module directory the guest used."""
    import harness

    from support import world

    guest = harness.guest("trixie-amd64")
    tree = world.tree("trixie-amd64")
    conf = world.CHROOT / "scratch-drivers" / "modprobe.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "drivers.conf").write_text(CONFIG)
    script = guest_script(
        sys.executable, str(tree.root), str(conf), tree.chroot_path(conf), tree.chroot_root
    )
    run = harness.boot(guest, script, out, timeout=1800, qemu_args=QEMU_DEVICES)
    assert run.status == 0, run.console[-3000:]
    return tree.moddir


if __name__ == "__main__":
    if sys.argv[1:] == ["record"]:
        import tempfile

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        out = Path(tempfile.mkdtemp(prefix="drivers-vm-"))
        save(out, boot(out))
        print("kept the recording of", out)
    else:
        record(sys.argv[1], sys.argv[2])
