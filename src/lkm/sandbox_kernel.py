"""The kernel a sandbox boots, and what the sandbox needs on the host.

A Debian kernel image package is unpacked with ``dpkg-deb`` and given the index files its
installation would make; with no kernel named, the distribution's current package is found
and downloaded with ``apt-cache`` and ``apt-get`` and kept, unpacked, in the user's cache
directory for the next run. The host's tools are checked before any of this starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkm.errors import LkmError

BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")
# Debian's metapackage depending on the current kernel image package of the distribution.
KERNEL_METAPACKAGE = "linux-image-amd64"

Progress = Callable[[str], None]  # told each stage ("unpacking ...") as it starts


class SandboxError(LkmError):
    """The virtual machine could not be prepared or did not finish.

    ``details`` are lines to show after the message (the console's last lines).
    """

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)


@dataclass(frozen=True)
class GuestKernel:
    """A kernel image and the module tree (``.../lib/modules/<release>``) built with it."""

    vmlinuz: Path
    moddir: Path

    @property
    def release(self) -> str:
        return self.moddir.name


def _is_static(path: str) -> bool:
    """Whether the ELF file at ``path`` has no program interpreter (is statically linked)."""
    import struct

    with open(path, "rb") as file:
        head = file.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        order = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        file.seek(phoff)
        table = file.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from(order + "I", table, i * phentsize)[0] != pt_interp
        for i in range(len(table) // phentsize if phentsize else 0)
    )


def static_busybox() -> str:
    """The host's static busybox, which the initramfs runs as its only program."""
    found = [path for path in BUSYBOX if os.path.exists(path)]
    for path in found:
        if _is_static(path):
            return path
    if found:
        raise SandboxError(f"expected a static busybox, found {found[0]} dynamically linked "
                           "(install busybox-static)")  # fmt: skip
    raise SandboxError("expected busybox, found none (install busybox-static)")


def check_tools(*, deb: bool = False, apt: bool = False) -> None:
    """Fail before any work when a program the sandbox needs is missing.

    ``deb``: a kernel package is to be unpacked (``dpkg-deb``); ``apt``: the distribution's
    kernel is to be found and downloaded (``apt-cache``, ``apt-get``).
    """
    needed = ["qemu-system-x86_64"]
    needed += ["dpkg-deb"] if deb or apt else []
    needed += ["apt-cache", "apt-get"] if apt else []
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        hint = " (install qemu-system-x86)" if "qemu-system-x86_64" in missing else ""
        raise SandboxError(f"expected {', '.join(missing)} on PATH, found none{hint}")
    static_busybox()


def cache_dir() -> Path:
    """Where downloaded and unpacked kernels are kept between runs: ``$XDG_CACHE_HOME/lkm``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lkm"


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, errors="replace", check=False
    )


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def distribution_kernel(cache: Path, progress: Progress | None = None) -> Path:
    """The distribution's current kernel image package, downloaded with apt into ``cache``.

    The current package is what ``linux-image-amd64`` depends on. A package already in the
    cache is used again; older ones there are removed once a newer one is downloaded.
    """
    done = _run(["apt-cache", "depends", KERNEL_METAPACKAGE])
    match = re.search(r"^\s*Depends: (linux-image-\S+)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        reason = last_line(done.stderr) if done.returncode else "it depends on no kernel image"
        raise SandboxError(f"could not find the distribution's kernel package with apt-cache "
                           f"({KERNEL_METAPACKAGE}: {reason}); run apt-get update, or name a "
                           "kernel with --deb or --kernel and --modules")  # fmt: skip
    package = match.group(1)
    cache.mkdir(parents=True, exist_ok=True)
    cached = sorted(cache.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    if progress:
        progress(f"downloading {package} with apt-get")
    # apt-get writes the file where it runs: a fresh directory, so a broken download is no
    # cached package.
    import tempfile

    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        done = _run(["apt-get", "download", package], cwd=Path(tmp))
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise SandboxError(f"could not download {package} with apt-get: "
                               f"{last_line(done.stderr)}")  # fmt: skip
        target = cache / debs[-1].name
        os.replace(debs[-1], target)
    for old in cache.glob("linux-image-*.deb"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def find_moddir(root: Path) -> Path:
    """The single ``[usr/]lib/modules/<release>`` below ``root``."""
    for base in (root / "lib/modules", root / "usr/lib/modules"):
        if base.is_dir():
            releases = sorted(p for p in base.iterdir() if p.is_dir())
            if len(releases) == 1:
                return releases[0]
    raise SandboxError(f"expected one lib/modules/<release> directory under {root}, found none")


def kernel_from_deb(deb: Path, workdir: Path, progress: Progress | None = None) -> GuestKernel:
    """A Debian kernel image package (``linux-image-*.deb``), unpacked once into ``workdir``.

    It is unpacked and indexed in a temporary directory renamed into place when complete, so
    an interrupted run leaves no half tree to be taken for a whole one.
    """
    import tempfile

    target = workdir / deb.name.removesuffix(".deb")
    if not target.is_dir():
        if not deb.is_file():
            raise SandboxError(f"could not unpack {deb}: no such file")
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=workdir, prefix=".unpack-"))
        try:
            if progress:
                progress(f"unpacking {deb.name}")
            done = _run(["dpkg-deb", "-x", str(deb), str(tmp)])
            if done.returncode != 0:
                raise SandboxError(f"could not unpack {deb}: {last_line(done.stderr)}")
            moddir = find_moddir(tmp)
            if not (moddir / "modules.dep.bin").exists():
                if progress:
                    progress(f"indexing the modules of {moddir.name} (depmod)")
                _depmod(tmp, moddir)
            try:
                tmp.rename(target)
            except OSError:
                if not target.is_dir():  # not another run that got there first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    moddir = find_moddir(target)
    vmlinuz = target / "boot" / f"vmlinuz-{moddir.name}"
    if not vmlinuz.exists():
        raise SandboxError(f"expected a kernel image {vmlinuz.name} in {deb}, found none")
    return GuestKernel(vmlinuz, moddir)


def _depmod(base: Path, moddir: Path) -> None:
    """The index files a package's installation would make (Debian's ship none), so that
    modprobe works in the guest."""
    from lkm.depmod import DepmodError, DepmodOptions, Reporter, run_depmod

    modules_root = "/" + str(moddir.parent.relative_to(base))
    options = DepmodOptions(moddir.name, str(base.absolute()), modules_root)
    reporter = Reporter()
    try:
        run_depmod(options, reporter)
    except DepmodError as err:
        said = "; ".join(text for _, text in [*reporter.records, *err.lines])
        raise SandboxError(f"depmod failed for {moddir}: {said}") from err


def drop_other_kernels(kernels: Path, keep: Path) -> None:
    """Remove the unpacked kernels in ``kernels`` other than the one of package ``keep``."""
    if kernels.is_dir():
        for tree in kernels.iterdir():
            if tree.name != keep.name.removesuffix(".deb") and not tree.name.startswith("."):
                shutil.rmtree(tree, ignore_errors=True)
