"""``lkm sandbox``: run one lkm command in a throwaway VM booting a chosen kernel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

PROG = "sandbox"

OPTIONS = (
    Option("k", "kernel", has_arg=True, kind="file"),
    Option("m", "modules", has_arg=True, kind="directory"),
    Option("d", "deb", has_arg=True, kind="file"),
    Option("w", "workdir", has_arg=True, kind="directory"),
    Option("t", "timeout", has_arg=True, kind="text"),
    Option(None, "keep"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\tlkm sandbox [--deb PACKAGE.deb | --kernel VMLINUZ --modules DIR] [options] COMMAND [ARGS...]
Boots a kernel in QEMU with this machine's root (writable in the guest, changes discarded),
runs `lkm COMMAND ARGS...` there in the current directory and reports its output, exit
status, kernel log lines and taint. With no kernel named, the distribution's current kernel
package is downloaded with apt-get and kept in $XDG_CACHE_HOME/lkm for the next run.
KVM when /dev/kvm works, software emulation (TCG) otherwise.
Options:
\t-d, --deb=PACKAGE.deb  a Debian kernel image package to boot
\t-k, --kernel=VMLINUZ   a kernel image to boot, instead of a package
\t-m, --modules=DIR      its module tree (.../lib/modules/<release>)
\t-w, --workdir=DIR      keep the guest's files in DIR (default: a temporary directory)
\t    --keep             keep the temporary directory too
\t-t, --timeout=SECONDS  give up on the VM after this long (default: 300)
\t-h, --help             show this help
"""


def main(args: Sequence[str], prog: str = PROG) -> int:
    printer = Printer(f"lkm {prog}")
    try:
        # Options end at the command: the rest belongs to it.
        parsed, operands = getopt_long(args, OPTIONS, permute=False)
    except UsageError as err:
        printer.raw_error(f"lkm {prog}: {err}")
        return 1
    values = dict(parsed)
    if "h" in values:
        printer.out(USAGE)
        return 0
    if not operands:
        printer.error("missing command to run in the sandbox.")
        return 1
    try:
        return _run(printer, values, list(operands))
    finally:
        printer.stdout.flush()


class _Progress:
    """Stages and the seconds of the boot, on one rewritten line of a terminal."""

    def __init__(self, stream: TextIO, prog: str) -> None:
        self.stream = stream
        self.prog = prog
        self.line = ""
        self.shown = -1  # the whole seconds last shown

    def step(self, text: str) -> None:
        self.end()
        self.line = f"{self.prog}: {text} ..."
        self.stream.write(self.line)
        self.stream.flush()

    def tick(self, seconds: float) -> None:
        if int(seconds) == self.shown:
            return
        self.shown = int(seconds)
        self.stream.write(f"\r{self.line} {seconds:.0f} s")
        self.stream.flush()

    def end(self) -> None:
        if self.line:
            self.stream.write("\n")
            self.stream.flush()
            self.line = ""


def _run(printer: Printer, values: dict[str, str | None], command: list[str]) -> int:
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    from lkm import sandbox, sandbox_kernel
    from lkm.errors import LkmError

    try:
        timeout = float(values.get("t") or 300)
    except ValueError:
        printer.error(f"expected a number of seconds for --timeout, found '{values.get('t')}'")
        return 1
    deb, vmlinuz, moddir = values.get("d"), values.get("k"), values.get("m")
    if (deb and (vmlinuz or moddir)) or bool(vmlinuz) != bool(moddir):
        printer.error("expected --deb, or both --kernel and --modules, or no kernel named.")
        return 1
    progress = _Progress(sys.stderr, printer.prog) if sys.stderr.isatty() else None
    named = values.get("w")
    workdir = Path(named) if named else None
    try:
        sandbox_kernel.check_tools(deb=bool(deb), apt=not (deb or vmlinuz))
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="lkm-sandbox-"))
        step = progress.step if progress else None
        if deb:
            kernel = sandbox_kernel.kernel_from_deb(Path(deb), workdir / "kernel", step)
        elif vmlinuz and moddir:
            kernel = sandbox_kernel.GuestKernel(Path(vmlinuz), Path(moddir))
            if not kernel.vmlinuz.is_file() or not kernel.moddir.is_dir():
                raise sandbox_kernel.SandboxError(
                    f"expected a kernel image {vmlinuz} and a module directory {moddir}"
                )
        else:
            cache = sandbox_kernel.cache_dir()
            package = sandbox_kernel.distribution_kernel(cache / "debs", step)
            kernel = sandbox_kernel.kernel_from_deb(package, cache / "kernels", step)
            sandbox_kernel.drop_other_kernels(cache / "kernels", package)
        tick = progress.tick if progress else None
        outcome = sandbox.run_lkm(
            kernel, command, workdir / "guest", timeout=timeout, progress=step, tick=tick
        )
    except LkmError as err:
        if progress:
            progress.end()
        printer.error(str(err))
        for line in getattr(err, "details", ()):
            printer.raw_error(f"  {line}")
        return 1
    finally:
        if progress:
            progress.end()
        if workdir is not None and not named and "keep" not in values:
            shutil.rmtree(workdir, ignore_errors=True)
    letters = outcome.taint_letters
    kept = named or "keep" in values
    report = [
        f"kernel: {kernel.release}",
        f"command: lkm {' '.join(command)}",
        f"status: {outcome.status}",
        "stdout:",
        *("  " + line for line in outcome.stdout.splitlines()),
        "stderr:",
        *("  " + line for line in outcome.stderr.splitlines()),
        "kernel log:",
        *("  " + line for line in outcome.kernel_log),
        f"taint: {outcome.taint}" + (f" ({letters})" if letters else ""),
        f"machine: {outcome.accelerator}",
        *([f"files: {workdir / 'guest'}"] if kept else []),
    ]
    printer.out("\n".join(report) + "\n")
    return outcome.status if outcome.status is not None else 1
