"""``lkm modules-load [FILE...]``: systemd-modules-load's job, independent modules in parallel
(see :mod:`lkm.boot_load`)."""

from __future__ import annotations

from collections.abc import Sequence

from lkm.cli.getopt import Option
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from lkm.boot_load import ModuleLoad
    from lkm.cli.output import Printer
    from lkm.kernel import Kernel
    from lkm.system import System

VERB = "modules-load"

OPTIONS = (Option("j", "jobs", has_arg=True, kind="text"),)

USAGE = """\
Usage: {prog} [options] [CONFIGURATION FILE...]

Loads the modules systemd-modules-load loads at boot, as it does: the names in modules-load.d
(/etc, /run, /usr/local/lib, /usr/lib; a file masks the same name lower down) after those of
modules_load= on the kernel command line (rd.modules_load= too in an initrd); with files
given, only theirs (a relative name is looked for in those directories). Each name is looked
up and probed as modprobe does (dependencies, softdeps, options, install commands; blacklisted
modules are not loaded); modules that do not need each other load in parallel.

Each outcome is logged on stderr in systemd-modules-load's words. Exit status: 1 when a module
failed to insert or a file given could not be read, else 0 (a name that finds no module is
logged only).

Options:
  -j, --jobs=N           load with N threads (default: the number of CPUs)
"""


def main(args: Sequence[str], *, system: System | None = None, kernel: Kernel | None = None) -> int:
    """``lkm modules-load`` on ``system`` (default: the running one) through ``kernel``
    (default: the running kernel's system calls)."""
    from lkm.cli.output import Printer

    printer = Printer(f"lkm {VERB}")
    try:
        return _run(args, printer, system, kernel)
    finally:
        printer.stdout.flush()


def _run(
    args: Sequence[str], printer: Printer, system: System | None, kernel: Kernel | None
) -> int:
    import os

    from lkm.boot_load import exit_status, modules_load
    from lkm.cli.verb import parse, print_json
    from lkm.errors import LkmError

    parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
    if isinstance(parsed, int):
        return parsed
    jobs = os.cpu_count() or 1
    for _key, value in parsed.options:
        if value is None or not value.isdigit() or int(value) < 1:
            printer.error(f"--jobs takes a number of threads (1 or more), not '{value}'.")
            return 1
        jobs = int(value)
    try:
        records = modules_load(
            parsed.system(system), arguments=parsed.operands, jobs=jobs, kernel=kernel
        )
    except LkmError as err:
        printer.error(str(err))
        return 1
    if parsed.json:
        print_json(printer, VERB, records)
    else:
        _log(printer, records)
    return exit_status(records)


def _log(printer: Printer, records: Sequence[ModuleLoad]) -> None:
    """systemd-modules-load's lines, in the configuration's order."""
    for record in records:
        for note in record.notes:
            printer.raw_error(note)
        if record.message is not None:
            printer.raw_error(record.message)
