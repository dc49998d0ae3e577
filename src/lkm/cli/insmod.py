"""``insmod``: give one module file to the kernel, like kmod 34's insmod."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.kernel import Kernel
    from lkm.system import System

PROG = "insmod"

OPTIONS = (
    Option("f", "force"),
    Option("s", "syslog"),
    Option("v", "verbose"),
    Option("V", "version"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\t{prog} [options] filename [module options]
Options:
\t-f, --force       DANGEROUS: forces a module load, may cause
\t                  data corruption and crash your machine
\t-s, --syslog      print to syslog, not stderr
\t-v, --verbose     enables more messages
\t-V, --version     show version
\t-h, --help        show this help
"""

# What kmod says for the kernel's answers that have a module-specific meaning.
_REASONS = {
    errno.ENOEXEC: "Invalid module format",
    errno.ENOENT: "Unknown symbol in module",
    errno.ESRCH: "Module has wrong symbol version",
    errno.EINVAL: "Invalid parameters",
}


def reason(code: int) -> str:
    return _REASONS.get(code) or os.strerror(code)


def join_params(args: Sequence[str]) -> str:
    """Module options as one string; a value with a space is quoted unless it starts with one."""
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        quote = eq and " " in value and not value.startswith('"')
        out.append(f'{key}="{value}"' if quote else arg)
    return " ".join(out)


def main(
    args: Sequence[str],
    prog: str = PROG,
    *,
    kernel: Kernel | None = None,
    sysfs: str | None = None,
    system: System | None = None,
) -> int:
    """insmod on ``system`` (default: the running one; ``sysfs`` replaces its ``/sys``),
    giving the module to ``kernel`` (default: the system calls)."""
    from lkm.cli.common import parse_tool_args
    from lkm.system import System

    sysfs = (system or System()).sysfs if sysfs is None else sysfs

    printer = Printer(prog)
    try:
        arguments = parse_tool_args(args, OPTIONS, printer, USAGE)
        if isinstance(arguments, int):
            return arguments
        parsed, operands = arguments
        force = any(key == "f" for key, _ in parsed)
        if not operands:
            printer.error("missing filename.")
            return 1
        path, params = operands[0], join_params(operands[1:])
        if path == "-":
            printer.error("this tool does not support loading from stdin!")
            return 1
        return insert(printer, path, params, force=force, kernel=kernel, sysfs=sysfs)
    finally:
        printer.stdout.flush()


def insert(
    printer: Printer, path: str, params: str, *, force: bool, kernel: Kernel | None, sysfs: str
) -> int:
    from lkm.cli.common import kernel_compression
    from lkm.errors import LkmError
    from lkm.kernel import KernelCallError, LoadError, SyscallKernel, load_file

    try:
        if kernel is None:
            kernel = SyscallKernel()
        load_file(
            kernel,
            path,
            params,
            force=force,
            kernel_compression=kernel_compression(printer, sysfs),
            decompress_note=printer.error,
        )
    except LoadError as err:
        if not err.opened:
            printer.error(f"could not load module {path}: {os.strerror(err.errno)}")
        else:
            printer.error(f"could not insert module {path}: {reason(err.errno)}")
        return 1
    except KernelCallError as err:
        printer.error(f"could not insert module {path}: {reason(err.errno)}")
        return 1
    except LkmError as err:
        printer.error(str(err))
        return 1
    return 0
