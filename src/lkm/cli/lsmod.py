"""``lsmod`` (and ``kmod list``): the loaded modules, like kmod 34's lsmod."""

from __future__ import annotations

from lkm.cli.getopt import Option
from lkm.cli.output import Printer, encode
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.system import System

PROG = "lsmod"

OPTIONS = (
    Option("s", "syslog"),
    Option("v", "verbose"),
    Option("V", "version"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\t{prog} [options]
Options:
\t-s, --syslog      print to syslog, not stderr
\t-v, --verbose     enables more messages
\t-V, --version     show version
\t-h, --help        show this help
"""

HEADER = "Module                  Size  Used by\n"


def row(name: str, size: int, refcount: int, holders: Sequence[str]) -> str:
    """One line as kmod prints it: ``%-19s %8ld  %d`` and the holders after one space."""
    # C pads by bytes, so a name that is not plain ASCII pads by its encoded length.
    pad = " " * max(0, 19 - len(encode(name)))
    line = f"{name}{pad} {size:>8}  {refcount}"
    if holders:
        line += " " + ",".join(holders)
    return line + "\n"


def main(
    args: Sequence[str],
    prog: str = PROG,
    *,
    procfs: str | None = None,
    sysfs: str | None = None,
    system: System | None = None,
) -> int:
    """lsmod on ``system`` (default: the running one; ``procfs`` and ``sysfs`` replace its
    ``/proc`` and ``/sys``)."""
    from lkm.cli.common import parse_tool_args
    from lkm.system import System

    system = system or System()
    procfs = system.procfs if procfs is None else procfs
    sysfs = system.sysfs if sysfs is None else sysfs

    printer = Printer(prog)
    try:
        arguments = parse_tool_args(args, OPTIONS, printer, USAGE)
        if isinstance(arguments, int):
            return arguments
        _parsed, operands = arguments
        if operands:
            printer.error("too many arguments provided.")
            return 1
        return list_modules(printer, procfs=procfs, sysfs=sysfs)
    finally:
        printer.stdout.flush()


def list_modules(printer: Printer, *, procfs: str, sysfs: str) -> int:
    from lkm.cli.common import kernel_compression
    from lkm.state import StateError, listed, read_proc_modules

    kernel_compression(printer, sysfs)  # read as libkmod starts up; only its complaint shows
    try:
        modules = read_proc_modules(procfs)
    except StateError as err:
        printer.error(str(err))
        printer.error(f"could not get list of modules: {err.strerror_text}")
        return 1
    printer.out(HEADER)
    for module in modules:
        errors: list[StateError] = []
        shown = listed(module, sysfs, errors)
        for error in errors:
            printer.error(str(error))
        printer.out(row(shown.name, shown.size, shown.refcount, shown.holders))
    return 0
