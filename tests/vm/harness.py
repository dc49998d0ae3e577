"""Boot a Debian kernel in QEMU and run shell scripts in it, on the host's own root filesystem.

The guest is a throwaway: a busybox initramfs (written here, newc cpio) loads the 9p modules it
needs from the kernel's own tree, mounts the host's root read-only at ``/host`` and a writable
results directory at ``/out``, mounts proc, sysfs and devtmpfs inside ``/host`` and inside the
trixie chroot holding kmod 34, runs the script, and powers off. A writable host directory is
the guest's ``/tmp``: whatever the script writes there comes back to the host. Software
emulation only (nested KVM fails on these machines).

This is meant to grow into ``lkm sandbox``: ``Guest`` takes any vmlinuz and module tree.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import world

VM_CACHE = world.CACHE / "vm"
REPO_SRC = Path(__file__).resolve().parents[2] / "src"
# The modules the initramfs loads, in order, to reach the host over virtio 9p.
NINEP = {
    "trixie-amd64": ("netfs", "9pnet", "9pnet_virtio", "9p"),
    "bookworm-amd64": ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                       "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p"),
}  # fmt: skip


@dataclass(frozen=True)
class Guest:
    """A kernel to boot: its image and the module tree it belongs to."""

    name: str
    vmlinuz: Path
    moddir: Path  # host path of lib/modules/<kver>
    kver: str


def guest(name: str) -> Guest:
    """A Debian kernel package's image, unpacked once beside its module tree (see world.py)."""
    tree = world.tree(name)
    target = VM_CACHE / name
    vmlinuz = target / f"vmlinuz-{tree.kver}"
    if not vmlinuz.exists():
        target.mkdir(parents=True, exist_ok=True)
        deb = world.download(world.SPECS[name])
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            world.run(["dpkg-deb", "-x", deb, tmp])
            shutil.copy(Path(tmp) / "boot" / vmlinuz.name, vmlinuz)
    return Guest(name, vmlinuz, tree.moddir, tree.kver)


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


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /mods/$m.ko || echo "initramfs: insmod $m failed"; done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro host /host
for root in /host /host{chroot}; do
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
class Run:
    console: str  # what QEMU printed (the kernel's log on the serial console)
    out: Path  # the directory the guest wrote into
    status: int | None


def boot(guest: Guest, script: str, out: Path, *, timeout: float = 300) -> Run:
    """Boot ``guest``, run ``script`` (sh, in the host's root) and collect ``out``.

    Inside the script ``/tmp`` is ``out``; ``$KMOD`` runs a kmod 34 tool in the chroot, ``$LKM``
    runs lkm from this source tree with the host's Python.
    """
    from lkm.compress import decompress

    out.mkdir(parents=True, exist_ok=True)
    prelude = (
        f"export KMOD='chroot {world.CHROOT}'\n"
        f"export LKM='env PYTHONPATH={REPO_SRC} PYTHONDONTWRITEBYTECODE=1 "
        f"{sys.executable} -m lkm'\n"
        f"export PATH=/usr/sbin:/usr/bin:/sbin:/bin\ncd /tmp\n"
    )
    (out / "script.sh").write_text(prelude + script)
    files: dict[str, tuple[int, bytes]] = {}
    for directory in ("bin", "proc", "sys", "dev", "mods", "host", "out", "tmp"):
        files[directory] = (0o40755, b"")
    files["bin/busybox"] = (0o100755, Path(shutil.which("busybox") or "/bin/busybox").read_bytes())
    modules = NINEP[guest.name]
    for name in modules:
        found = world.run(["find", guest.moddir, "-name", f"{name}.ko*"]).stdout.split()
        files[f"mods/{name}.ko"] = (0o100644, decompress(Path(found[0]).read_bytes()))
    init = INIT.format(modules=" ".join(modules), chroot=world.CHROOT)
    files["init"] = (0o100755, init.encode())
    initrd = out / "initrd.gz"
    initrd.write_bytes(initramfs(files))
    command = [
        "qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2",
        "-m", "1024", "-nographic", "-no-reboot", "-kernel", str(guest.vmlinuz),
        "-initrd", str(initrd), "-append", "console=ttyS0 panic=-1 loglevel=4",
        "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={out},mount_tag=out,security_model=none,multidevs=remap",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
    )
    status_file = out / "status"
    status = int(status_file.read_text()) if status_file.exists() else None
    return Run(done.stdout + done.stderr, out, status)


if __name__ == "__main__":
    # Quick manual check: python tests/vm/harness.py trixie-amd64 'lsmod; $LKM lsmod'
    run = boot(guest(sys.argv[1]), sys.argv[2], Path(tempfile.mkdtemp(prefix="lkm-vm-")))
    print(run.console[-3000:])
    print("status", run.status, "out", run.out)
    log = run.out / "console.log"
    if log.exists():
        print(log.read_text())
    sys.exit(0)
