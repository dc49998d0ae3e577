"""Real image builders of Debian trixie, to compare ``lkm closure`` with: initramfs-tools'
``mkinitramfs`` (modules and firmware chosen by ``dracut-install``) and mkosi 25.3's
``mkosi.kmod.resolve_module_dependencies``.

They run in a trixie system of their own, ``$LKM_TEST_CACHE/image-builders`` (beside the kmod 34
chroot of :mod:`support.world`, which stays as it is): debootstrap with initramfs-tools, mkosi and
four firmware packages, then the real kernel package of the trixie tree unpacked into it
(``dpkg-deb -x``: its modules and ``/boot/config``, no maintainer script run) and indexed by the
system's own depmod. Prepared once, under the world's lock, and kept.

Commands run chrooted in a private mount namespace where the root is a mount point and has
``/proc``, ``/sys`` and ``/dev`` (mkosi's sandbox needs all three); nothing stays mounted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from support import world

ROOT = world.CACHE / "image-builders"
PACKAGES = (
    "initramfs-tools", "zstd", "cpio", "kmod", "xz-utils", "mkosi",
    "firmware-realtek", "firmware-iwlwifi", "firmware-bnx2", "firmware-brcm80211",
)  # fmt: skip

# mkosi's own choice of the files an initrd keeps when its modules are chosen by name
# (``KernelModulesInclude=`` with every other module excluded), as ``mkosi.kmod`` makes it:
# module paths matched by regular expressions, then ``resolve_module_dependencies`` (modinfo
# in a sandbox chrooted in ``root``), then the targets of firmware links.
MKOSI_CALL = """\
import json, os, re, sys
from pathlib import Path
from types import SimpleNamespace
from mkosi.kmod import gen_required_kernel_modules
config = SimpleNamespace(
    output_format=SimpleNamespace(is_extension_image=lambda: False), overlay=False
)
context = SimpleNamespace(root=Path("/"), config=config)
include = [rf"/{re.escape(name).replace('_', '[_-]')}\\.ko" for name in sys.argv[2:]]
kept = gen_required_kernel_modules(context, sys.argv[1], include=include, exclude=[".*"])
files = [str(p) for p in kept if not Path("/", p).is_dir() or Path("/", p).is_symlink()]
modules = [p for p in files if p.startswith("usr/lib/modules/") and ".ko" in os.path.basename(p)]
firmware = [p for p in files if p.startswith("usr/lib/firmware/")]
print(json.dumps({"modules": sorted(modules), "firmware": sorted(firmware)}))
"""


class Image(NamedTuple):
    """What an image holds: module names (underscores) and files below usr/lib/firmware."""

    modules: frozenset[str]
    firmware: frozenset[str]


def kernel_release() -> str:
    deb = world.download(world.SPECS["trixie-amd64"])
    return deb.name.split("_")[0].removeprefix("linux-image-")


def ensure() -> tuple[Path, str]:
    """The builders' system and the kernel release installed in it."""
    release = kernel_release()
    with world.locked():
        if not (ROOT / ".ready").exists():
            if ROOT.exists():
                shutil.rmtree(ROOT)
            world.log("debootstrap trixie with initramfs-tools, mkosi and firmware")
            world.run(
                [
                    "debootstrap", "--variant=minbase", "--components=main,non-free-firmware",
                    "trixie", ROOT, world.mirror(),
                ]
            )  # fmt: skip
            # The packages through apt, not debootstrap's --include: only apt chooses a package
            # for a virtual dependency (python3-cryptography's python3-cffi-backend-api-min,
            # systemd-container's dbus-system-bus), and debootstrap then fails.
            _install(PACKAGES)
            deb = world.download(world.SPECS["trixie-amd64"])
            world.run(["dpkg-deb", "-x", deb, ROOT])
            world.run(["chroot", ROOT, "depmod", release])
            (ROOT / ".ready").write_text("\n".join(PACKAGES))
        if (ROOT / ".ready").read_text() != "\n".join(PACKAGES):
            # Prepared with fewer packages: add the others.
            world.log("installing into the image builders' system: " + " ".join(PACKAGES))
            _install(PACKAGES)
            (ROOT / ".ready").write_text("\n".join(PACKAGES))
    return ROOT, release


def _install(packages: Sequence[str]) -> None:
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    world.run(["chroot", ROOT, "apt-get", "update"], env=quiet)
    world.run(
        ["chroot", ROOT, "apt-get", "install", "-y", "--no-install-recommends", *packages],
        env=quiet,
    )


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    """``cmd`` chrooted in the builders' system (see the module docstring)."""
    root = str(ROOT)
    script = (
        'mount --bind "$0" "$0" && mount -t proc proc "$0/proc" && mount -t sysfs sys "$0/sys"'
        ' && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"'
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, root, *cmd],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="lkm-closure-", dir=ROOT / "tmp"))


def _inside(path: Path) -> str:
    return "/" + os.fspath(path.relative_to(ROOT))


def mkinitramfs(modules: list[str], release: str) -> Image:
    """Build an initramfs with ``MODULES=list`` and ``modules`` as the list, unpack it and
    report what it holds."""
    scratch = _scratch()
    try:
        conf = scratch / "conf"
        for sub in ("conf.d", "hooks", "scripts"):
            (conf / sub).mkdir(parents=True)
        (conf / "initramfs.conf").write_text("MODULES=list\nBUSYBOX=n\nCOMPRESS=zstd\n")
        (conf / "modules").write_text("".join(f"{m}\n" for m in modules))
        image = _inside(scratch / "initrd.img")
        run("mkinitramfs", "-d", _inside(conf), "-o", image, release)
        run("unmkinitramfs", image, _inside(scratch / "unpacked"))
        unpacked = scratch / "unpacked"
        names = {
            name.partition(".ko")[0].replace("-", "_")
            for _, _, files in os.walk(unpacked / "usr/lib/modules")
            for name in files
            if ".ko" in name
        }
        firmware = unpacked / "usr/lib/firmware"
        files = set()
        for directory, dirs, found in os.walk(firmware):
            links = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
            for name in [*found, *links]:
                files.add(os.path.relpath(os.path.join(directory, name), firmware))
        return Image(frozenset(names), frozenset(files))
    finally:
        shutil.rmtree(scratch)


def mkosi(modules: list[str], release: str) -> Image:
    """mkosi's choice of module files and firmware files for the modules named (``_`` and
    ``-`` alike, as mkosi's own expressions for loaded modules take them)."""
    scratch = _scratch()
    try:
        (scratch / "call.py").write_text(MKOSI_CALL)
        done = run("python3", _inside(scratch / "call.py"), release, *modules)
        found = json.loads(done.stdout)
        names = {Path(p).name.partition(".ko")[0].replace("-", "_") for p in found["modules"]}
        files = {os.path.relpath(p, "usr/lib/firmware") for p in found["firmware"]}
        return Image(frozenset(names), frozenset(files))
    finally:
        shutil.rmtree(scratch)
