"""A Linux kernel that decompresses zstd modules itself, built at test time for the VM tests.

No Debian kernel is built with ``CONFIG_MODULE_COMPRESS_ZSTD`` (bookworm up to experimental all
compress with xz), so one is built here from Debian trixie's ``linux-source-6.12`` package (the
kernel decompresses zstd modules from 6.2 on): ``tinyconfig`` plus what the sandbox needs, built
in, and a few real modules (fat, vfat, msdos, loop) installed as ``.ko.zst``, together with the
test modules of ``tests/data/testmods`` built against it. The kernel checks module signatures
(``CONFIG_MODULE_SIG``) and trusts one test key, made with the build and kept beside the image
(``signing_key.pem``: key and certificate); nothing is signed by the build, so its modules load
as unsigned ones (tainting the kernel with ``E``) unless the command line enforces signatures.

Made once per machine (a few minutes on two cores): the sources, build directory and image under
``CACHE/vm/zstd-kernel-<version>``, the module tree inside the kmod chroot at
``scratch-kernel/zstd-<version>`` (so kmod 34 there reads the very files lkm reads), indexed by
kmod 34's depmod. Needs gcc, make, flex, bison, bc, libelf-dev (objtool) and zstd (see .ci/run).

``python tests/vm/zstdkernel.py`` builds it and prints where everything is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import world

PACKAGE = "linux-source-6.12"
LOCALVERSION = "-lkm-zstd"  # the release says what this kernel is: 6.12.<n>-lkm-zstd
SOURCES = Path(__file__).resolve().parent.parent / "data" / "testmods"
TEST_MODULES = ("lkm_params", "lkm_provider", "lkm_consumer", "lkm_initfail", "lkm_busy")

# Switched on over tinyconfig. Built in: the serial console, the initramfs (gzip), what busybox
# and the host's CPython need, 9p over virtio PCI for the host's root (lkm.sandbox loads only
# the modules it finds in the tree, so these must not be modules), ACPI so that the sandbox's
# sysrq power-off stops QEMU, and module support that decompresses zstd.
BUILT_IN = (
    "64BIT", "PRINTK", "TTY", "SERIAL_8250", "SERIAL_8250_CONSOLE",
    "BLK_DEV_INITRD", "RD_GZIP", "BINFMT_ELF", "BINFMT_SCRIPT",
    "PROC_FS", "SYSFS", "SYSFS_SYSCALL", "TMPFS", "DEVTMPFS", "SHMEM", "FUTEX", "EPOLL",
    "EVENTFD", "SIGNALFD", "TIMERFD", "MULTIUSER", "POSIX_TIMERS", "FILE_LOCKING",
    "NET", "UNIX", "PCI", "VIRTIO_MENU", "VIRTIO_PCI", "NETWORK_FILESYSTEMS",
    "NET_9P", "NET_9P_VIRTIO", "9P_FS", "MAGIC_SYSRQ", "ACPI", "BLOCK", "BLK_DEV", "NLS",
    "MODULES", "MODULE_UNLOAD", "MODULE_FORCE_UNLOAD", "MODULE_FORCE_LOAD",
    "MODULE_COMPRESS", "MODULE_COMPRESS_ZSTD", "MODULE_DECOMPRESS",
    "UNWINDER_GUESS",
    "MODULE_SIG", "CRYPTO_RSA", "CRYPTO_SHA256", "CRYPTO_SHA512",
)  # fmt: skip
# Real modules to load: vfat needs fat, loop has parameters.
MODULES = ("FAT_FS", "VFAT_FS", "MSDOS_FS", "BLK_DEV_LOOP")
# Modules are left unsigned (the tests sign what they need); no ORC tables (the guessing
# unwinder, see BUILT_IN).
DISABLED = ("MODULE_SIG_ALL", "UNWINDER_ORC")
# Part of the cache's name: a build of another configuration is another build.
FLAVOUR = "sig"
# The kernel build's certs/default_x509.genkey, with the test key's name.
GENKEY = """\
[ req ]
default_bits = 2048
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
CN = lkm test kernel key

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


@dataclass(frozen=True)
class ZstdKernel:
    """The built kernel: its image, module tree and test modules."""

    vmlinuz: Path
    root: Path  # host path of the tree's base directory (inside the chroot; depmod's -b)
    kver: str
    testmods: Path  # the test modules built against it (lkm_params.ko.zst and the plain .ko)
    signing_key: Path  # PEM: the private key the kernel trusts, and its certificate

    @property
    def moddir(self) -> Path:
        return self.root / "lib" / "modules" / self.kver

    @property
    def chroot_root(self) -> str:
        return "/" + str(self.root.relative_to(world.CHROOT))


def source_package() -> Path:
    """Debian trixie's kernel source package, the version apt names, downloaded once."""
    world.DEBS.mkdir(parents=True, exist_ok=True)
    opts = world.apt_options("trixie", "amd64")
    shown = world.run(["apt-cache", *opts, "show", "--no-all-versions", PACKAGE]).stdout
    match = re.search(r"^Version: (\S+)$", shown, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"apt knows no {PACKAGE} in trixie")
    deb = world.DEBS / f"{PACKAGE}_{match.group(1)}_all.deb"
    if not deb.exists():
        world.log(f"downloading {PACKAGE} {match.group(1)}")
        world.run(["apt-get", *opts, "download", PACKAGE], cwd=world.DEBS)
    if not deb.exists():
        raise RuntimeError(f"apt-get download {PACKAGE} left no {deb.name} in {world.DEBS}")
    return deb


def build() -> ZstdKernel:
    """The kernel, built once (see the module docstring)."""
    deb = source_package()
    version = deb.name.split("_")[1]
    work = world.CACHE / "vm" / f"zstd-kernel-{version}-{FLAVOUR}"
    root = world.CHROOT / "scratch-kernel" / f"zstd-{version}-{FLAVOUR}"
    with world.locked():
        if not (work / ".ready").exists() or not (root / ".ready").exists():
            started = time.monotonic()
            for stale in (work, root):
                if stale.exists():
                    shutil.rmtree(stale)
            _compile(deb, work, root)
            world.log(f"zstd kernel built in {time.monotonic() - started:.0f} s")
            (root / ".ready").touch()
            (work / ".ready").touch()
    kver = (work / "kver").read_text().strip()
    return ZstdKernel(
        work / f"vmlinuz-{kver}", root, kver, root / "testmods", work / "signing_key.pem"
    )


def _compile(deb: Path, work: Path, root: Path) -> None:
    work.mkdir(parents=True)
    world.log(f"unpacking {deb.name}")
    world.run(["dpkg-deb", "-x", deb, work / "pkg"])
    tarball = next((work / "pkg" / "usr" / "src").glob(f"{PACKAGE}.tar.*"))
    world.run(["tar", "-xf", tarball, "-C", work])
    shutil.rmtree(work / "pkg")
    src = work / PACKAGE
    out = work / "build"
    jobs = str(len(os.sched_getaffinity(0)) + 1)
    make: list[str | Path] = ["make", "-C", src, f"O={out}", "ARCH=x86_64"]
    make.append(f"LOCALVERSION={LOCALVERSION}")
    world.run([*make, "tinyconfig"])
    config: list[str | Path] = [src / "scripts" / "config", "--file", out / ".config"]
    for option in BUILT_IN:
        config += ["-e", option]
    for option in MODULES:
        config += ["-m", option]
    for option in DISABLED:
        config += ["-d", option]
    key = _signing_key(work)
    config += ["--set-str", "MODULE_SIG_KEY", key, "--set-str", "SYSTEM_TRUSTED_KEYS", key]
    world.run(config)
    world.run([*make, "olddefconfig"])
    _check_config(out / ".config")
    world.log(f"building {PACKAGE} (bzImage, modules) with {jobs} jobs")
    world.run([*make, f"-j{jobs}", "bzImage", "modules"])
    kver = world.run([*make, "-s", "kernelrelease"]).stdout.strip()
    # depmod comes from kmod 34 in the chroot below, not from the host.
    world.run([*make, f"INSTALL_MOD_PATH={root}", "DEPMOD=true", "modules_install"])
    # modules_install links build/ to the objects, removed below.
    (root / "lib" / "modules" / kver / "build").unlink(missing_ok=True)
    shutil.copy(out / "arch" / "x86" / "boot" / "bzImage", work / f"vmlinuz-{kver}")
    _test_modules(make, root / "testmods")
    inside = "/" + str(root.relative_to(world.CHROOT))
    world.kmod("depmod", "-b", inside, kver, check=True)
    (work / "kver").write_text(kver + "\n")
    # The sources and objects are not needed again (about 1.5 GB); the image is kept.
    shutil.rmtree(src)
    shutil.rmtree(out)


def _signing_key(work: Path) -> Path:
    """The test key the kernel trusts, made as the kernel's build makes its own."""
    (work / "x509.genkey").write_text(GENKEY)
    key = work / "signing_key.pem"
    world.run(
        ["openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "36500", "-batch",
         "-x509", "-config", work / "x509.genkey", "-outform", "PEM", "-out", key,
         "-keyout", key]
    )  # fmt: skip
    return key


def _check_config(path: Path) -> None:
    """Every option asked for made it through olddefconfig (a dependency may have dropped it)."""
    text = path.read_text()
    wanted = [f"CONFIG_{o}=y" for o in BUILT_IN] + [f"CONFIG_{o}=m" for o in MODULES]
    missing = [line for line in wanted if line not in text.splitlines()]
    if missing:
        raise RuntimeError(f"expected {', '.join(missing)} in {path}, found otherwise")


def _test_modules(make: list[str | Path], target: Path) -> None:
    """The test modules built against the tree, ``lkm_params`` also compressed as the kernel
    compresses its own (``zstd``, default level)."""
    target.mkdir(parents=True)
    for source in SOURCES.iterdir():
        if source.suffix in (".c", "") and source.is_file():
            shutil.copy(source, target / source.name)
    world.run([*make, f"M={target}", "modules"])
    world.run(["zstd", "-q", "-k", target / "lkm_params.ko"])


if __name__ == "__main__":
    done = build()
    print(f"vmlinuz {done.vmlinuz}\nmoddir {done.moddir}\ntestmods {done.testmods}")
    subprocess.run(["find", str(done.moddir), "-name", "*.ko*"], check=False)
