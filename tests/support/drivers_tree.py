"""The sysfs recorded in a QEMU guest of the trixie kernel, and a small module tree to read it
with (see tests/vm/drivers_guest.py, which records both).

``sysfs-qemu-trixie.tar.xz`` holds what ``lkm drivers`` reads of the guest's ``/sys`` after
udev-style coldplug with kmod 34 (devices, their modaliases and driver links, the drivers'
module links, ``module/*/initstate``). ``sysfs-qemu-trixie.json`` holds every alias of
modules.alias.bin that belongs to a module kmod found for one of those modaliases (with its
priority), modules.builtin.alias.bin whole, the built-in modules the archive's drivers belong
to, the modprobe.d file of the guest, and kmod 34's ``modprobe -R`` output for each modalias.
"""

from __future__ import annotations

import json
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from lkm.index import write_index
from lkm.system import System

DATA = Path(__file__).resolve().parent.parent / "data"
ARCHIVE = DATA / "sysfs-qemu-trixie.tar.xz"
SMALL_TREE = DATA / "sysfs-qemu-trixie.json"


@cache
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SMALL_TREE.read_text())
    return data


def extract(target: Path, archive: Path = ARCHIVE) -> Path:
    """A recorded sysfs (default: the one kept here), unpacked into ``target`` (made);
    returns ``target``."""
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            # Every link in it is relative and stays inside (checked, not trusted).
            if member.issym():
                inside = (target / member.name).parent / member.linkname
                assert str(Path(*_normal(inside.parts))).startswith(str(target)), member.name
            tar.extract(member, target)
    return target


def _normal(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


@cache
def _indexes() -> dict[str, bytes]:
    data = recorded()
    return {
        "modules.alias.bin": write_index(map(tuple, data["aliases"])),
        "modules.builtin.alias.bin": write_index(map(tuple, data["builtin_aliases"])),
        "modules.builtin.bin": write_index((name, "", 0) for name in data["builtin"]),
    }


def build_system(base: Path, sysfs: Path) -> System:
    """A system reading ``sysfs`` with the small tree and the guest's modprobe.d, under
    ``base`` (made)."""
    data = recorded()
    release = data["release"]
    moddir = base / "lib" / "modules" / release
    moddir.mkdir(parents=True)
    for name, content in _indexes().items():
        (moddir / name).write_bytes(content)
    conf = base / "modprobe.d"
    conf.mkdir()
    (conf / "drivers.conf").write_text(data["config"])
    return System(
        sysfs=str(sysfs),
        cmdline=None,
        basedir=str(base),
        release=release,
        modprobe_dirs=(str(conf),),
    )


def parse_resolved(text: str) -> dict[str, list[str]]:
    """kmod 34's ``modprobe -R`` of each modalias, from blocks of ``== MODALIAS``, what
    modprobe printed (stdout and stderr) and ``rc=N``: the modules it printed, in order
    (nothing when it found nothing)."""
    found: dict[str, list[str]] = {}
    for block in text.split("== ")[1:]:
        alias, *lines = block.splitlines()
        found[alias] = [line for line in lines if not line.startswith(("rc=", "modprobe: "))]
    return found


def once_each(names: list[str]) -> list[str]:
    """``modprobe -R``'s lines, each module once, in the order printed first."""
    return list(dict.fromkeys(names))
