"""The test modules of ``tests/data/testmods``, built against a Debian kernel's headers.

Built at test time (never committed) into a directory inside the kmod chroot, so that lkm on the
host's root and kmod 34 in the chroot load the very same files. Besides the five modules of the
Kbuild file the build leaves two derived files:

- ``lkm_vermagic.ko``: ``lkm_params.ko`` with the ``SMP`` of its ``vermagic=`` overwritten by
  ``xxx`` (same length, so the ELF stays valid): the kernel refuses it unless forced. (A kernel
  with modversions compares vermagic only after the release, so changing the release is not
  enough: seen on 6.1, which loaded such a module without a word.)
- ``lkm_params.ko.xz``: ``lkm_params.ko`` compressed as the kernel's own xz modules are (CRC32
  check), for a kernel that leaves decompression to user space.

``python tests/vm/testmods.py kver`` prints the bookworm release the VM tests boot, so that CI
can install the matching ``linux-headers-<kver>`` package.
"""

from __future__ import annotations

import lzma
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import world

SOURCES = Path(__file__).resolve().parent.parent / "data" / "testmods"
MODULES = ("lkm_params", "lkm_provider", "lkm_consumer", "lkm_initfail", "lkm_busy")
GUEST = "bookworm-amd64"  # the kernel the test modules are built for


def headers(kver: str) -> Path:
    path = Path("/usr/src") / f"linux-headers-{kver}"
    if not (path / "Makefile").exists():
        raise RuntimeError(f"no {path}: install the package linux-headers-{kver} (see .ci/run)")
    return path


def build(kver: str) -> Path:
    """The built modules for release ``kver``, made once (about 8 s) inside the chroot."""
    target = world.CHROOT / "scratch-kernel" / f"testmods-{kver}"
    with world.locked():
        if (target / ".ready").exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for source in SOURCES.iterdir():
            if source.suffix in (".c", "") and source.is_file():
                shutil.copy(source, target / source.name)
        world.log(f"building the test modules against linux-headers-{kver}")
        world.run(["make", "-C", headers(kver), f"M={target}", "modules"])
        params = (target / "lkm_params.ko").read_bytes()
        (target / "lkm_vermagic.ko").write_bytes(wrong_vermagic(params, kver))
        xz = lzma.compress(params, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
        (target / "lkm_params.ko.xz").write_bytes(xz)
        (target / ".ready").touch()
    return target


OTHER = ("lkm_proprietary", "lkm_busy")  # the modules of Kbuild.other


def build_other(kver: str) -> Path:
    """The modules of ``Kbuild.other``, built once in a directory of their own: ``lkm_proprietary``
    (MODULE_LICENSE "Proprietary") and a second build of ``lkm_busy`` (its source and one more
    object, so another GNU build-id)."""
    target = world.CHROOT / "scratch-kernel" / f"testmods-other-{kver}"
    with world.locked():
        if (target / ".ready").exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copy(SOURCES / "Kbuild.other", target / "Kbuild")
        shutil.copy(SOURCES / "lkm_busy.c", target / "lkm_busy_main.c")
        for name in ("lkm_proprietary.c", "lkm_rebuild.c"):
            shutil.copy(SOURCES / name, target / name)
        world.log(f"building the other test modules against linux-headers-{kver}")
        world.run(["make", "-C", headers(kver), f"M={target}", "modules"])
        (target / ".ready").touch()
    return target


def wrong_vermagic(image: bytes, kver: str) -> bytes:
    """``image`` with the first word after the release in its vermagic string overwritten."""
    old = f"vermagic={kver} SMP ".encode()
    if image.count(old) != 1:
        raise RuntimeError(f"expected one {old!r} in the module, found {image.count(old)}")
    return image.replace(old, f"vermagic={kver} xxx ".encode())


# -- a module directory of the test modules for modprobe ---------------------------------------

CONFIG = """\
options lkm_params count=3 word=conf
alias lkmtest lkm_params
alias lkmprov lkm_provider
blacklist lkm_provider
install lkm_busy /bin/echo installing $MODPROBE_MODULE $CMDLINE_OPTS
remove lkm_busy /bin/echo removing $MODPROBE_MODULE
install lkm_initfail /bin/false
"""
SOFTDEP = """\
softdep lkm_consumer pre: lkm_params
options lkm_params word=soft
"""
# Soft dependencies that fail: one the kernel refuses (its init fails), one with no module, and
# a post one whose option the kernel rejects. kmod 34 loads the module all the same.
SOFTFAIL = """\
softdep lkm_consumer pre: lkm_initfail nosuch_soft post: lkm_params
options lkm_params count=abc
"""
TEST_MODULES = ("lkm_params", "lkm_provider", "lkm_consumer", "lkm_initfail", "lkm_busy")


def modprobe_tree(mods: Path, kver: str) -> Path:
    """``lib/modules/<kver>/extra`` with the test modules, indexed by kmod 34's depmod."""
    from support import world

    root = mods / "modprobe-root"
    with world.locked():
        if not (root / ".ready").exists():
            if root.exists():
                shutil.rmtree(root)
            extra = root / "lib" / "modules" / kver / "extra"
            extra.mkdir(parents=True)
            for name in (*TEST_MODULES, "lkm_vermagic"):
                shutil.copy(mods / f"{name}.ko", extra)
            inside = "/" + str(root.relative_to(world.CHROOT))
            world.kmod("depmod", "-b", inside, kver, check=True)
            (root / ".ready").touch()
        (root / "modprobe.conf").write_text(CONFIG)
        (root / "softdep.conf").write_text(SOFTDEP)
        (root / "softfail.conf").write_text(SOFTFAIL)
        orphan = root / "lkm_orphan.ko"  # lkm_consumer under a name modules.dep does not know
        if not orphan.exists():
            shutil.copy(mods / "lkm_consumer.ko", orphan)
    return root


if __name__ == "__main__":
    if sys.argv[1:] != ["kver"]:
        print("usage: testmods.py kver", file=sys.stderr)
        sys.exit(2)
    # The release is in the kernel package's name: linux-image-<kver>_<version>_<arch>.deb.
    deb = world.download(world.SPECS[GUEST])
    print(deb.name.split("_")[0].removeprefix("linux-image-"))
