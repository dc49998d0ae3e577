"""A throwaway virtual machine: boot a chosen Linux kernel in QEMU and run commands in it.

The guest has no disk. A busybox initramfs (a newc cpio archive written here) loads the modules
the kernel needs to reach the host over virtio 9p, mounts the host's root read-only at ``/host``
and a writable host directory over ``/host/tmp``, mounts proc, sysfs, devtmpfs and a tmpfs in
``/host`` (and in any extra roots below it, such as a chroot), runs a shell script there with
``chroot /host``, and powers off. Whatever the script writes to ``/tmp`` comes back to the host.

Software emulation only (TCG): nested KVM is not dependable. Needs ``qemu-system-x86_64`` and a
static ``busybox`` on the host; a Debian kernel package is unpacked with ``dpkg-deb``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lkm.errors import LkmError

BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")
# What the initramfs needs to mount the host: the virtio PCI transport and 9p over virtio.
SHARE_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
# Kernel taint bits and their letters (the kernel's taint flags, in bit order).
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
CMDLINE = "console=ttyS0 panic=-1 loglevel=4"  # the guest kernel's command line, before extras


class SandboxError(LkmError):
    """The virtual machine could not be prepared or did not finish."""


@dataclass(frozen=True)
class GuestKernel:
    """A kernel image and the module tree (``.../lib/modules/<release>``) built with it."""

    vmlinuz: Path
    moddir: Path

    @property
    def release(self) -> str:
        return self.moddir.name


def find_moddir(root: Path) -> Path:
    """The single ``[usr/]lib/modules/<release>`` below ``root``."""
    for base in (root / "lib/modules", root / "usr/lib/modules"):
        if base.is_dir():
            releases = sorted(p for p in base.iterdir() if p.is_dir())
            if len(releases) == 1:
                return releases[0]
    raise SandboxError(f"expected one lib/modules/<release> directory under {root}, found none")


def kernel_from_deb(deb: Path, workdir: Path) -> GuestKernel:
    """A Debian kernel image package (``linux-image-*.deb``), unpacked once into ``workdir``."""
    target = workdir / deb.name.removesuffix(".deb")
    if not (target / ".unpacked").exists():
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        done = subprocess.run(
            ["dpkg-deb", "-x", str(deb), str(target)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SandboxError(f"could not unpack {deb}: {done.stderr.strip()}")
        (target / ".unpacked").touch()
    moddir = find_moddir(target)
    vmlinuz = target / "boot" / f"vmlinuz-{moddir.name}"
    if not vmlinuz.exists():
        raise SandboxError(f"expected a kernel image {vmlinuz.name} in {deb}, found none")
    if not (moddir / "modules.dep.bin").exists():
        _depmod(target, moddir)
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


def share_modules(moddir: Path) -> list[Path]:
    """The module files giving the guest 9p over virtio, dependencies first.

    Built-in modules are skipped; dependencies come from each module's ``depends=``, so the
    tree needs no depmod output.
    """
    from lkm.moddir import module_name_from_path
    from lkm.module import ModuleFile

    files: dict[str, Path] = {}
    for dirpath, _dirs, names in os.walk(moddir):
        for name in names:
            if ".ko" in name:
                files.setdefault(module_name_from_path(name), Path(dirpath) / name)
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        path = files.get(name.replace("-", "_"))
        if path is None:
            return  # built in (or absent: the boot then fails, saying which mount failed)
        depends = dict(ModuleFile.from_path(path).modinfo).get("depends", "")
        for dependency in filter(None, depends.split(",")):
            visit(dependency)
        order.append(path)

    for name in SHARE_MODULES:
        visit(name)
    return order


def _cpio_entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    header = b"070701" + b"".join(f"{value:08X}".encode() for value in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def initramfs(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A gzip-compressed newc archive of ``{path: (mode, data)}`` (directories: data b"")."""
    out = b"".join(
        _cpio_entry(path, mode, data, ino)
        for ino, (path, (mode, data)) in enumerate(files.items(), 1)
    )
    out += _cpio_entry("TRAILER!!!", 0)
    return gzip.compress(out, compresslevel=1, mtime=0)


# The host's root is mounted with cache=loose: it is read-only and does not change while the
# guest runs, and caching its lookups in the guest makes each Python start there 2 to 3 times
# faster (every import looks along sys.path over 9p). The results directory stays uncached.
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /mods/$m.ko || echo "initramfs: insmod $m failed"; done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose host /host
for root in /host {roots}; do
  mount -t proc proc $root/proc; mount -t sysfs sysfs $root/sys; mount -t devtmpfs dev $root/dev
  mount -t tmpfs tmp $root/tmp
done
mount -t 9p -o trans=virtio,version=9p2000.L out /host/tmp
chroot /host /bin/sh /tmp/script.sh > /host/tmp/console.log 2>&1
echo $? > /host/tmp/status
sync
echo o > /proc/sysrq-trigger
sleep 10
"""


@dataclass(frozen=True)
class Boot:
    console: str  # what QEMU printed: the kernel's log on the serial console
    out: Path  # the directory the guest wrote into (its /tmp)
    status: int | None  # the script's exit status; None if it never finished


def boot(
    kernel: GuestKernel,
    script: str,
    out: Path,
    *,
    roots: tuple[str, ...] = (),
    shares: dict[str, Path] | None = None,
    timeout: float = 300,
    memory_mb: int = 1024,
    append: str = "",
) -> Boot:
    """Boot ``kernel``, run ``script`` (sh, in the host's root, cwd ``/tmp`` = ``out``).

    ``roots`` are host directories (such as a chroot) that get their own proc, sys, dev and
    tmp mounts too; ``shares`` are more host directories, read-only, that the script can mount
    by their tag (``mount -t 9p -o trans=virtio,version=9p2000.L,ro TAG DIR``); ``append`` adds
    words to the kernel command line (``/proc/cmdline`` in the guest). Raises
    SandboxError when QEMU or busybox is missing or the VM hangs.
    """
    from lkm.compress import decompress

    qemu = shutil.which("qemu-system-x86_64")
    busybox = next((path for path in BUSYBOX if os.path.exists(path)), None)
    if qemu is None or busybox is None:
        raise SandboxError("expected qemu-system-x86_64 and a static busybox, found none")
    out.mkdir(parents=True, exist_ok=True)
    (out / "script.sh").write_text("export PATH=/usr/sbin:/usr/bin:/sbin:/bin\ncd /tmp\n" + script)
    for stale in ("status", "console.log"):
        (out / stale).unlink(missing_ok=True)
    files: dict[str, tuple[int, bytes]] = {}
    for directory in ("bin", "proc", "sys", "dev", "mods", "host", "tmp"):
        files[directory] = (0o40755, b"")
    files["bin/busybox"] = (0o100755, Path(busybox).read_bytes())
    names = []
    for path in share_modules(kernel.moddir):
        name = path.name.split(".ko")[0]
        # busybox's insmod takes the plain ELF file only.
        files[f"mods/{name}.ko"] = (0o100644, decompress(path.read_bytes(), path=str(path)))
        names.append(name)
    init = INIT.format(modules=" ".join(names), roots=" ".join(f"/host{r}" for r in roots))
    files["init"] = (0o100755, init.encode())
    initrd = out / "initrd.gz"
    initrd.write_bytes(initramfs(files))
    command = [
        qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2",
        "-m", str(memory_mb), "-nographic", "-no-reboot", "-kernel", str(kernel.vmlinuz),
        "-initrd", str(initrd), "-append", " ".join(filter(None, (CMDLINE, append))),
        "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={out},mount_tag=out,security_model=none,multidevs=remap",
    ]  # fmt: skip
    for tag, path in (shares or {}).items():
        command += [
            "-virtfs",
            f"local,path={path},mount_tag={tag},security_model=none,readonly=on,multidevs=remap",
        ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise SandboxError(f"the virtual machine did not power off within {timeout:g} s") from err
    status_file = out / "status"
    status = int(status_file.read_text()) if status_file.exists() else None
    return Boot(done.stdout + done.stderr, out, status)


def lkm_runner(python: str = sys.executable) -> str:
    """A shell command running this lkm with this Python in the guest (on the host's root).

    The guest cannot write bytecode, so lkm's is compiled here first.
    """
    import lkm

    source = Path(lkm.__file__).resolve().parent
    subprocess.run(
        [python, "-m", "compileall", "-q", str(source)], capture_output=True, check=False
    )
    return f"env PYTHONPATH={source.parent} PYTHONDONTWRITEBYTECODE=1 {python} -m lkm"


def taint_letters(mask: int) -> str:
    """The letters of the kernel taint bits set in ``mask`` (``12288`` is ``OE``)."""
    return "".join(letter for bit, letter in enumerate(TAINT_LETTERS) if mask >> bit & 1)


@dataclass(frozen=True)
class Outcome:
    """One lkm command run in a sandbox."""

    status: int | None
    stdout: str
    stderr: str
    kernel_log: tuple[str, ...]  # the kernel's log lines printed while the command ran
    taint: int  # /proc/sys/kernel/tainted afterwards
    console: str

    @property
    def taint_letters(self) -> str:
        return taint_letters(self.taint)


def _shell_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def run_lkm(kernel: GuestKernel, argv: list[str], out: Path, *, timeout: float = 300) -> Outcome:
    """Run ``lkm ARGV...`` in a fresh VM of ``kernel``; ``out`` keeps the guest's files."""
    command = " ".join(_shell_quote(word) for word in argv)
    # The guest sees this machine's root, whose /lib/modules has no tree for the guest's
    # kernel: put the kernel's own tree there, as an installed kernel would have it.
    release = _shell_quote(kernel.release)
    script = (
        f"mount -t tmpfs lkm-modules /lib/modules && mkdir /lib/modules/{release} && "
        f"mount -t 9p -o trans=virtio,version=9p2000.L,ro modules /lib/modules/{release}\n"
        "dmesg > /tmp/dmesg.before\n"
        f"{lkm_runner()} {command} > /tmp/stdout 2> /tmp/stderr; echo $? > /tmp/rc\n"
        "dmesg > /tmp/dmesg.after\ncat /proc/sys/kernel/tainted > /tmp/tainted\n"
    )
    result = boot(kernel, script, out, shares={"modules": kernel.moddir}, timeout=timeout)

    def read(name: str) -> str:
        path = out / name
        return path.read_text(errors="replace") if path.exists() else ""

    before = read("dmesg.before").splitlines()
    after = read("dmesg.after").splitlines()
    rc = read("rc").strip()
    tainted = read("tainted").strip()
    return Outcome(
        status=int(rc) if rc.isdigit() else None,
        stdout=read("stdout"),
        stderr=read("stderr") or read("console.log"),
        kernel_log=tuple(after[len(before) :]),
        taint=int(tainted) if tainted.isdigit() else 0,
        console=result.console,
    )
