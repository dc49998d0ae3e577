"""``lkm sandbox``: run one lkm command in a throwaway VM booting a chosen kernel."""

from __future__ import annotations

from collections.abc import Sequence

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

PROG = "sandbox"

OPTIONS = (
    Option("k", "kernel", has_arg=True),
    Option("m", "modules", has_arg=True),
    Option("d", "deb", has_arg=True),
    Option("w", "workdir", has_arg=True),
    Option("t", "timeout", has_arg=True),
    Option("h", "help"),
)

USAGE = """\
Usage:
\tlkm sandbox (--kernel VMLINUZ --modules DIR | --deb PACKAGE.deb) [options] COMMAND [ARGS...]
Boots the kernel in QEMU (software emulation) with this machine's root read-only, runs
`lkm COMMAND ARGS...` there and reports its output, exit status, kernel log lines and taint.
Options:
\t-k, --kernel=VMLINUZ   kernel image to boot
\t-m, --modules=DIR      its module tree (.../lib/modules/<release>)
\t-d, --deb=PACKAGE.deb  a Debian kernel image package instead of -k and -m
\t-w, --workdir=DIR      where the guest's files are kept (default: a new temporary one)
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


def _run(printer: Printer, values: dict[str, str | None], command: list[str]) -> int:
    import tempfile
    from pathlib import Path

    from lkm.errors import LkmError
    from lkm.sandbox import GuestKernel, kernel_from_deb, run_lkm

    workdir = Path(values.get("w") or tempfile.mkdtemp(prefix="lkm-sandbox-"))
    try:
        timeout = float(values.get("t") or 300)
    except ValueError:
        printer.error(f"expected a number of seconds for --timeout, found '{values.get('t')}'")
        return 1
    try:
        deb, vmlinuz, moddir = values.get("d"), values.get("k"), values.get("m")
        if deb and not (vmlinuz or moddir):
            kernel = kernel_from_deb(Path(deb), workdir / "kernel")
        elif vmlinuz and moddir and not deb:
            kernel = GuestKernel(Path(vmlinuz), Path(moddir))
        else:
            printer.error("expected either --deb, or both --kernel and --modules.")
            return 1
        outcome = run_lkm(kernel, command, workdir / "guest", timeout=timeout)
    except LkmError as err:
        printer.error(str(err))
        return 1
    status = "none (the command did not finish)" if outcome.status is None else outcome.status
    letters = outcome.taint_letters
    report = [
        f"kernel: {kernel.release}",
        f"command: lkm {' '.join(command)}",
        f"status: {status}",
        "stdout:",
        *("  " + line for line in outcome.stdout.splitlines()),
        "stderr:",
        *("  " + line for line in outcome.stderr.splitlines()),
        "kernel log:",
        *("  " + line for line in outcome.kernel_log),
        f"taint: {outcome.taint}" + (f" ({letters})" if letters else ""),
        f"files: {workdir / 'guest'}",
    ]
    printer.out("\n".join(report) + "\n")
    return 1 if outcome.status is None else outcome.status
