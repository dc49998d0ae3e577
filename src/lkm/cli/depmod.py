"""``depmod``: write a release's module dependency and map files, like kmod 34's depmod."""

from __future__ import annotations

import contextlib
import os

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.depmod import DepmodOptions
    from lkm.system import System

PROG = "depmod"

OPTIONS = (
    Option("a", "all"),
    Option("A", "quick"),
    Option("b", "basedir", has_arg=True, kind="directory"),
    Option("m", "moduledir", has_arg=True, kind="directory"),
    Option("o", "outdir", has_arg=True, kind="directory"),
    Option("C", "config", has_arg=True, kind="file"),
    Option("E", "symvers", has_arg=True, kind="file"),
    Option("F", "filesyms", has_arg=True, kind="file"),
    Option("e", "errsyms"),
    Option("n", "show"),
    Option(None, "dry-run", key="n"),
    Option("P", "symbol-prefix", has_arg=True, kind="text"),
    Option("v", "verbose"),
    Option("w", "warn"),
    Option("V", "version"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\t{prog} -[aA] [options] [forced_version]

If no arguments (except options) are given, "depmod -a" is assumed

depmod will output a dependency list suitable for the modprobe utility.

Options:
\t-a, --all            Probe all modules
\t-A, --quick          Only does the work if there's a new module
\t-e, --errsyms        Report not supplied symbols
\t-n, --show           Write the dependency file on stdout only
\t-P, --symbol-prefix  Architecture symbol prefix
\t-C, --config=PATH    Read configuration from PATH
\t-v, --verbose        Enable verbose mode
\t-w, --warn           Warn on duplicates
\t-V, --version        show version
\t-h, --help           show this help

The following options are useful for people managing distributions:
\t-b, --basedir=DIR    Root path (default: /).
\t-m, --moduledir=DIR  Module directory (default: /lib/modules).
\t-o, --outdir=DIR     Output root path (default: same as <basedir>).
\t-F, --filesyms=FILE  Use the file instead of the
\t                     current kernel symbols.
\t-E, --symvers=FILE   Use Module.symvers file to check
\t                     symbol versions.
"""


def _is_version(word: str) -> bool:
    """Whether ``word`` starts as a release does: digits, a dot, a digit (``\\d+\\.\\d``, any
    decimal digit as ``re`` has it, without importing ``re`` on every start-up)."""
    digits = 0
    while digits < len(word) and word[digits].isdecimal():
        digits += 1
    return (
        digits > 0
        and word[digits : digits + 1] == "."
        and word[digits + 1 : digits + 2].isdecimal()
    )


def _absolute(path: str) -> str:
    return path if path.startswith("/") else os.getcwd() + "/" + path


def parse(
    args: Sequence[str], printer: Printer, system: System | None = None
) -> DepmodOptions | int:
    """The options of one run; what they leave out is ``system``'s (default: the running
    one's release, root and configuration)."""
    from lkm.system import System

    system = system or System()
    try:
        parsed, operands = getopt_long(args, OPTIONS)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    basedir = system.basedir
    moduledir = "/lib/modules"
    outdir: str | None = None
    config: list[str] | None = None
    symvers = system_map = prefix = None
    errsyms = dry_run = verbose = quick = all_modules = False
    for key, value in parsed:
        assert value is not None or key in "aAenvwVh"
        if key == "a":
            all_modules = True
        elif key == "b":
            basedir = _absolute(value or "")
        elif key == "m":
            moduledir = value or ""
            if not moduledir.startswith("/"):
                moduledir = "/" + moduledir
        elif key == "o":
            outdir = _absolute(value or "")
        elif key == "C":
            config = [*(config or []), value or ""]
        elif key == "E":
            symvers = value
        elif key == "F":
            system_map = value
        elif key == "e":
            errsyms = True
        elif key == "n":
            dry_run = True
        elif key == "P":
            prefix = value
        elif key == "v":
            verbose = True
        elif key == "A":
            quick = True
        elif key == "V":
            from lkm.cli.common import print_version

            print_version(printer)
            return 0
        elif key == "h":
            printer.out(USAGE.format(prog=printer.prog))
            return 0
    release = system.kernel_release()
    files: list[str] = []
    if operands:
        if _is_version(operands[0]):
            release = operands[0]
            files = operands[1:]
        else:
            printer.error(f"Bad version passed {operands[0]}")
            return 1
    from lkm.depmod import DepmodOptions
    from lkm.depmod.cache import enabled

    return DepmodOptions(
        release=release,
        basedir=basedir,
        moduledir=moduledir,
        outdir=outdir,
        config=system.depmod_dirs if config is None else tuple(config),
        modprobe_config=system.modprobe_dirs,
        cmdline=system.cmdline,
        symvers=symvers,
        system_map=system_map,
        errsyms=errsyms,
        dry_run=dry_run,
        prefix=prefix,
        verbose=verbose,
        quick=quick,
        all_modules=all_modules,
        files=tuple(files),
        cache=enabled(),
    )


def run(options: DepmodOptions, printer: Printer) -> int:
    """The run, its messages rendered in kmod's lines as they come."""
    from lkm.depmod import DepmodError, Reporter, run_depmod

    def library_error(text: str) -> None:
        printer.raw_error(f"libkmod: ERROR: {text}")

    reporter = Reporter(printer.message, printer.out, library_error)
    from lkm.cli import ends_process

    if ends_process():
        import gc

        # The run pauses the collector and turns it back on at its end, when every object the
        # run made is still young: the next allocation would start a collection walking them
        # all, just before the process exits. Off for good, it never does.
        gc.disable()
    try:
        done = run_depmod(options, reporter)
    except DepmodError as err:
        for level, text in err.lines:
            printer.message(level, text)
        return 1
    printer.stdout.write(done.shown)
    from lkm.cli import exit_now

    # With ``done`` (and all it was made of) still alive: nothing is freed one object at a time.
    exit_now(0)
    return 0


def main(args: Sequence[str], prog: str = PROG, *, system: System | None = None) -> int:
    """depmod on ``system`` (default: the running one)."""
    printer = Printer(prog)
    try:
        parsed = parse(args, printer, system)
        if isinstance(parsed, int):
            return parsed
        return run(parsed, printer)
    except BrokenPipeError:
        return 1
    finally:
        with contextlib.suppress(BrokenPipeError):
            printer.stdout.flush()
