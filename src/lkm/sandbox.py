"""A throwaway virtual machine: boot a chosen Linux kernel in QEMU and run commands in it.

The guest has no disk. A busybox initramfs (a newc cpio archive written here) loads the modules
the kernel needs to reach the host over virtio 9p and mounts the host's root read-only at
``/host``, mounts proc, sysfs, devtmpfs (and a tmpfs on ``/tmp``) there and in any extra roots
below it (such as a chroot), mounts a writable host directory for the results, runs a shell
script there with ``chroot /host``, and powers off.

Two layouts: by default the results directory is the guest's ``/tmp``, over a read-only root.
With ``overlay`` the host's root is writable in the guest (an overlay whose changes stay in the
guest's memory), so the guest sees the host's own ``/tmp`` (a Python or a module under it) and
can make any mount point (a module tree where the host has no ``/lib/modules``); the results
directory is then ``/run/lkm-sandbox``.

KVM when a probe boot shows that it works here (see ``kvm_unusable``), software emulation
(TCG) otherwise. Needs ``qemu-system-x86_64`` and a static ``busybox`` on the host; the kernel
to boot comes from ``lkm.sandbox_kernel``.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkm.sandbox_kernel import (
    GuestKernel,
    Progress,
    SandboxError,
    cache_dir,
    last_line,
    static_busybox,
)

# What the initramfs needs to mount the host: the virtio PCI transport and 9p over virtio.
SHARE_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
OVERLAY_MODULES = ("overlay",)  # the writable layer over the host's root
# Kernel taint bits and their letters (the kernel's taint flags, in bit order).
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
CMDLINE = "console=ttyS0 panic=-1 loglevel=4"  # the guest kernel's command line, before extras
OVERLAY_OUT = "/run/lkm-sandbox"  # the results directory in the guest, with ``overlay``
FAILED = "lkm-sandbox: "  # a console line the initramfs prints before it gives up
CONSOLE_TAIL = 10  # console lines shown when the guest did not finish

Tick = Callable[[float], None]  # told the seconds since the boot started, about once a second


def share_modules(moddir: Path, names: Sequence[str] = SHARE_MODULES) -> list[Path]:
    """The module files giving the guest ``names`` (9p over virtio), dependencies first.

    Built-in modules are skipped; dependencies come from each module's ``depends=``, so the
    tree needs no depmod output.
    """
    from lkm.moddir import module_name_from_path
    from lkm.module import ModuleFile

    files: dict[str, Path] = {}
    for dirpath, _dirs, filenames in os.walk(moddir):
        for name in filenames:
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

    for name in names:
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
# A mount that fails stops the guest with a console line saying why (FAILED).
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
fail() {{ echo; echo "{failed}$*"; sync; echo o > /proc/sysrq-trigger; sleep 10; exit 1; }}
for m in {modules}; do insmod /mods/$m.ko || echo "initramfs: insmod $m failed"; done
mkdir -p /host
{root}
{mounts}
mkdir -p /host{out}
err=$(mount -t 9p -o trans=virtio,version=9p2000.L out /host{out} 2>&1) \\
  || fail "could not mount the results directory at {out}: $err"
chroot /host /bin/sh {out}/script.sh > /host{out}/console.log 2>&1
echo $? > /host{out}/status
sync
echo o > /proc/sysrq-trigger
sleep 10
"""
HOST_9P = "trans=virtio,version=9p2000.L,ro,cache=loose host"
ROOT_PLAIN = f"""\
err=$(mount -t 9p -o {HOST_9P} /host 2>&1) || fail "could not mount the host's root: $err"
"""
ROOT_OVERLAY = f"""\
mkdir -p /lower /layer
err=$(mount -t 9p -o {HOST_9P} /lower 2>&1) || fail "could not mount the host's root: $err"
mount -t tmpfs layer /layer && mkdir /layer/upper /layer/work
err=$(mount -t overlay -o lowerdir=/lower,upperdir=/layer/upper,workdir=/layer/work root /host \\
  2>&1) || fail "could not mount a writable layer (overlay) over the host's root: $err"
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")


def console_tail(console: str, count: int = CONSOLE_TAIL) -> list[str]:
    """The last ``count`` non-blank lines of a console log, without terminal escapes."""
    lines = [ANSI.sub("", line).rstrip() for line in console.splitlines()]
    return [line for line in lines if line.strip()][-count:]


@dataclass(frozen=True)
class Boot:
    console: str  # what QEMU printed: the kernel's log on the serial console, QEMU's errors
    out: Path  # the directory the guest wrote into (its /tmp, or /run/lkm-sandbox)
    status: int | None  # the script's exit status; None if it never finished
    accelerator: str = "TCG"  # how the guest ran: "KVM" or "TCG (...why not KVM)"
    qemu_error: str = ""  # QEMU's own messages (its stderr)


KVM_PROBE_SECONDS = 30  # a kernel with KVM reaches its root-mount panic in a few seconds


def kvm_unusable(qemu: str, vmlinuz: Path, progress: Progress | None = None) -> str | None:
    """Why KVM does not work here, or None when it does.

    A ``/dev/kvm`` that opens can still fail (nested virtualization): a KVM guest may stop on
    the first instruction the host must emulate, or hang without a word. So ``vmlinuz`` is
    booted with KVM and no root, and must reach its panic (where QEMU exits) in time. The
    verdict holds until the host reboots and is kept in the cache directory.
    """
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not accessible"
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    verdict_file = cache_dir() / "kvm-probe"
    try:
        kept_id, _, kept = verdict_file.read_text().partition("\n")
        if boot_id and kept_id == boot_id:
            return kept.strip() or None
    except OSError:
        pass
    if progress:
        progress("checking that KVM works")
    command = [
        qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nographic", "-no-reboot",
        "-kernel", str(vmlinuz), "-append", "console=ttyS0 panic=-1 loglevel=1",
    ]  # fmt: skip
    try:
        run = _run_qemu(command, KVM_PROBE_SECONDS, None, kvm=True)
        verdict = None
        if run.kvm_failed is not None:
            verdict = f"KVM failed: {run.kvm_failed}"
        elif "Kernel panic" not in run.stdout:
            # Not a verdict on KVM (a kernel QEMU cannot load, say): the boot will tell.
            return f"KVM failed: {last_line(run.stderr)}"
    except SandboxError:
        verdict = f"a kernel did not start with KVM within {KVM_PROBE_SECONDS} s"
    if boot_id:
        _write_atomic(verdict_file, f"{boot_id}\n{verdict or ''}\n")
    return verdict


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs the next run the probe


@dataclass(frozen=True)
class _Qemu:
    stdout: str
    stderr: str
    kvm_failed: str | None  # what showed that KVM does not work, when it did not


def _run_qemu(command: list[str], timeout: float, tick: Tick | None, kvm: bool) -> _Qemu:
    """Run QEMU, collecting its console (stdout) and messages (stderr) as they come."""
    import selectors
    import time

    start = time.monotonic()
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    kvm_failed: str | None = None
    try:
        with selectors.DefaultSelector() as selector:
            for stream in (proc.stdout, proc.stderr):
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                elapsed = time.monotonic() - start
                if elapsed >= timeout:
                    console = b"".join(chunks[proc.stdout.fileno()]).decode(errors="replace")
                    raise SandboxError(
                        f"the virtual machine did not power off within {timeout:g} s; "
                        "the console's last lines:",
                        console_tail(console),
                    )
                for key, _events in selector.select(min(1.0, timeout - elapsed)):
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fileobj)
                if kvm and kvm_failed is None:
                    # Nested KVM may start, then stop on an instruction it cannot emulate;
                    # QEMU then waits forever.
                    recent = b"".join(chunks[proc.stderr.fileno()][-4:])
                    recent += b"".join(chunks[proc.stdout.fileno()][-4:])
                    found = re.search(rb"KVM internal error[^\r\n]*", recent)
                    if found:
                        kvm_failed = found.group().decode(errors="replace")
                        break
                if tick:
                    tick(time.monotonic() - start)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    stdout, stderr = (b"".join(chunks[fd]).decode(errors="replace") for fd in chunks)
    if kvm and kvm_failed is None and proc.returncode != 0 and "kvm" in stderr.lower():
        kvm_failed = last_line(stderr)  # QEMU could not start KVM at all
    return _Qemu(stdout, stderr, kvm_failed)


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
    overlay: bool = False,
    cwd: str | None = None,
    accel: str = "tcg",
    qemu_args: Sequence[str] = (),
    progress: Progress | None = None,
    tick: Tick | None = None,
) -> Boot:
    """Boot ``kernel``, run ``script`` (sh, in the host's root) and power off.

    The script runs in ``cwd`` (default: the results directory ``$OUT``, which is ``out`` on
    the host: ``/tmp``, or ``/run/lkm-sandbox`` with ``overlay``, see the module's text).
    ``roots`` are host directories (such as a chroot) that get their own proc, sys, dev and
    tmp mounts too; ``shares`` are more host directories, read-only, that the script can mount
    by their tag (``mount -t 9p -o trans=virtio,version=9p2000.L,ro TAG DIR``); ``append`` adds
    words to the kernel command line (``/proc/cmdline`` in the guest). ``accel``: "tcg",
    "kvm", or "auto" (KVM if it works here, else TCG). ``qemu_args`` are more QEMU options
    (devices for the guest to see, say). ``progress`` hears which machine
    boots, ``tick`` the seconds since. Raises SandboxError when QEMU or busybox is missing, a
    mount in the initramfs fails, or the VM hangs.
    """
    from lkm.compress import decompress

    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise SandboxError("expected qemu-system-x86_64 on PATH, found none "
                           "(install qemu-system-x86)")  # fmt: skip
    busybox = static_busybox()
    guest_out = OVERLAY_OUT if overlay else "/tmp"
    out.mkdir(parents=True, exist_ok=True)
    workdir = _shell_quote(cwd) if cwd else "$OUT"
    (out / "script.sh").write_text(
        f"export PATH=/usr/sbin:/usr/bin:/sbin:/bin OUT={guest_out}\n"
        f"cd {workdir} 2>/dev/null || cd /\n" + script
    )
    for stale in ("status", "console.log"):
        (out / stale).unlink(missing_ok=True)
    files: dict[str, tuple[int, bytes]] = {}
    for directory in ("bin", "proc", "sys", "dev", "mods", "host", "tmp"):
        files[directory] = (0o40755, b"")
    files["bin/busybox"] = (0o100755, Path(busybox).read_bytes())
    names = []
    wanted = SHARE_MODULES + (OVERLAY_MODULES if overlay else ())
    for path in share_modules(kernel.moddir, wanted):
        name = path.name.split(".ko")[0]
        # busybox's insmod takes the plain ELF file only.
        files[f"mods/{name}.ko"] = (0o100644, decompress(path.read_bytes(), path=str(path)))
        names.append(name)
    mounts = []
    for root in ("/host", *(f"/host{r}" for r in roots)):
        mounts.append(f"mount -t proc proc {root}/proc; mount -t sysfs sysfs {root}/sys; "
                      f"mount -t devtmpfs dev {root}/dev")  # fmt: skip
        if root != "/host" or not overlay:  # with overlay, the guest sees the host's /tmp
            mounts.append(f"mount -t tmpfs tmp {root}/tmp")
    init = INIT.format(
        failed=FAILED,
        modules=" ".join(names),
        root=ROOT_OVERLAY if overlay else ROOT_PLAIN,
        mounts="\n".join(mounts),
        out=guest_out,
    )
    files["init"] = (0o100755, init.encode())
    initrd = out / "initrd.gz"
    initrd.write_bytes(initramfs(files))
    shared = {"host": Path("/"), **(shares or {})}
    command = [
        qemu, "-m", str(memory_mb), "-smp", "2", "-nographic", "-no-reboot",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
        "-append", " ".join(filter(None, (CMDLINE, append))),
        "-virtfs", f"local,path={out},mount_tag=out,security_model=none,multidevs=remap",
    ]  # fmt: skip
    command += qemu_args
    for tag, path in shared.items():
        command += [
            "-virtfs",
            f"local,path={path},mount_tag={tag},security_model=none,readonly=on,multidevs=remap",
        ]
    tcg = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    why_not_kvm: str | None = "not asked for"
    if accel == "auto":
        why_not_kvm = kvm_unusable(qemu, kernel.vmlinuz, progress)
    if accel == "kvm" or (accel == "auto" and why_not_kvm is None):
        if progress:
            progress(f"booting {kernel.release} with KVM")
        run = _run_qemu([*command, "-accel", "kvm", "-cpu", "host"], timeout, tick, kvm=True)
        accelerator = "KVM"
        if run.kvm_failed is not None and accel == "auto":
            why_not_kvm = f"KVM failed: {run.kvm_failed}"
    if accel == "tcg" or (accel == "auto" and why_not_kvm is not None):
        accelerator = f"TCG (software emulation: {why_not_kvm})"
        if progress:
            progress(f"booting {kernel.release} with {accelerator}")
        run = _run_qemu([*command, *tcg], timeout, tick, kvm=False)
    status_file = out / "status"
    status = int(status_file.read_text()) if status_file.exists() else None
    if status is None:
        # The line may follow the boot loader's last words without a line break.
        for line in run.stdout.splitlines():
            if FAILED in line:
                reason = line[line.index(FAILED) + len(FAILED) :].strip()
                raise SandboxError(reason, console_tail(run.stdout))
    return Boot(run.stdout + run.stderr, out, status, accelerator, run.stderr)


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
    accelerator: str = "TCG"

    @property
    def taint_letters(self) -> str:
        return taint_letters(self.taint)


def _shell_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def run_lkm(
    kernel: GuestKernel,
    argv: list[str],
    out: Path,
    *,
    timeout: float = 300,
    accel: str = "auto",
    progress: Progress | None = None,
    tick: Tick | None = None,
) -> Outcome:
    """Run ``lkm ARGV...`` in a fresh VM of ``kernel``; ``out`` keeps the guest's files.

    The guest sees the host's root as it is, writable (changes stay in the guest), and the
    command runs in the current directory, so that paths on the command line, a Python
    anywhere (a venv under /tmp) and this lkm mean the same there. Raises SandboxError when
    the command did not finish, with QEMU's error and the console's last lines.
    """
    command = " ".join(_shell_quote(word) for word in argv)
    # The guest's kernel needs its own tree at /lib/modules/<release>, as an installed kernel
    # would have it: a tmpfs there hides the host's trees, and the package's is mounted in it.
    # Whether the host has a /lib/modules or not, the writable root can make the mount points.
    modules = f"/lib/modules/{kernel.release}"
    script = (
        'fail() { echo "$*" > "$OUT/failed"; exit 1; }\n'
        "mkdir -p /lib/modules && mount -t tmpfs lkm-modules /lib/modules "
        f"&& mkdir {_shell_quote(modules)} || fail 'could not make {modules} in the guest'\n"
        f"err=$(mount -t 9p -o trans=virtio,version=9p2000.L,ro modules {_shell_quote(modules)} "
        f'2>&1) || fail "could not mount the kernel\'s modules at {modules}: $err"\n'
        'dmesg > "$OUT/dmesg.before"\n'
        f'{lkm_runner()} {command} > "$OUT/stdout" 2> "$OUT/stderr"; echo $? > "$OUT/rc"\n'
        'dmesg > "$OUT/dmesg.after"; cat /proc/sys/kernel/tainted > "$OUT/tainted"\n'
    )
    for stale in ("failed", "rc", "stdout", "stderr", "dmesg.before", "dmesg.after", "tainted"):
        (out / stale).unlink(missing_ok=True)
    result = boot(
        kernel, script, out, shares={"modules": kernel.moddir}, timeout=timeout,
        overlay=True, cwd=os.getcwd(), accel=accel, progress=progress, tick=tick,
    )  # fmt: skip

    def read(name: str) -> str:
        path = out / name
        return path.read_text(errors="replace") if path.exists() else ""

    if read("failed"):
        raise SandboxError(read("failed").strip())
    rc = read("rc").strip()
    if not rc.isdigit():
        why = last_line(result.qemu_error) if result.qemu_error.strip() else ""
        message = "the command did not finish in the virtual machine"
        message += f" (QEMU: {why})" if why else ""
        details = read("console.log").splitlines()[-CONSOLE_TAIL:] or console_tail(result.console)
        raise SandboxError(message + "; the console's last lines:", details)
    before = read("dmesg.before").splitlines()
    after = read("dmesg.after").splitlines()
    tainted = read("tainted").strip()
    return Outcome(
        status=int(rc),
        stdout=read("stdout"),
        stderr=read("stderr"),
        kernel_log=tuple(after[len(before) :]),
        taint=int(tainted) if tainted.isdigit() else 0,
        console=result.console,
        accelerator=result.accelerator,
    )
