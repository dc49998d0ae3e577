"""``depmod``: write a release's module dependency and map files, like kmod 34's depmod."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

PROG = "depmod"

OPTIONS = (
    Option("a", "all"),
    Option("A", "quick"),
    Option("b", "basedir", has_arg=True),
    Option("m", "moduledir", has_arg=True),
    Option("o", "outdir", has_arg=True),
    Option("C", "config", has_arg=True),
    Option("E", "symvers", has_arg=True),
    Option("F", "filesyms", has_arg=True),
    Option("e", "errsyms"),
    Option("n", "show"),
    Option(None, "dry-run", key="n"),
    Option("P", "symbol-prefix", has_arg=True),
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

_VERSION = re.compile(r"\d+\.\d+")


@dataclass(frozen=True)
class Settings:
    basedir: str
    moduledir: str
    outdir: str | None
    config: tuple[str, ...] | None
    symvers: str | None
    system_map: str | None
    errsyms: bool
    dry_run: bool
    prefix: str | None
    verbose: bool
    quick: bool
    all: bool
    release: str
    files: tuple[str, ...]


def _absolute(path: str) -> str:
    return path if path.startswith("/") else os.getcwd() + "/" + path


def parse(args: Sequence[str], printer: Printer) -> Settings | int:
    try:
        parsed, operands = getopt_long(args, OPTIONS)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    basedir = ""
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
            from lkm.cli import print_version

            print_version(printer)
            return 0
        elif key == "h":
            printer.out(USAGE.format(prog=printer.prog))
            return 0
    release = os.uname().release
    files: list[str] = []
    if operands:
        if _VERSION.match(operands[0]):
            release = operands[0]
            files = operands[1:]
        else:
            printer.error(f"Bad version passed {operands[0]}")
            return 1
    return Settings(
        basedir, moduledir, outdir, None if config is None else tuple(config), symvers,
        system_map, errsyms, dry_run, prefix, verbose, quick, all_modules, release, tuple(files),
    )  # fmt: skip


def _up_to_date(moddir: str, printer: Printer) -> bool:
    """``-A``: modules.dep exists and no module file is newer than it (in whole seconds).

    kmod 34 looks only in the module directory, at every module file of it, depmod.d's
    ``exclude`` lines notwithstanding (only ``build`` and ``source`` are skipped), and at
    no ``external`` directory; it stops at the first newer file."""
    from lkm.depmod import walk_modules

    try:
        reference = int(os.stat(f"{moddir}/modules.dep").st_mtime)
    except OSError as err:
        reason = os.strerror(err.errno or 0)
        printer.error(f"could not fstatat({moddir}, modules.dep): {reason}")
        return False
    with contextlib.closing(walk_modules(moddir, report=printer.error)) as paths:
        for path in paths:
            try:
                if int(os.stat(path).st_mtime) > reference:
                    return False
            except OSError:
                continue
    return True


def run(settings: Settings, printer: Printer) -> int:
    from lkm.depmod import (
        DependencyCycleError,
        ModuleArgumentError,
        Reporter,
        build,
        default_jobs,
        load_kernel_symbols,
        read_builtin,
        read_builtin_modinfo,
    )
    from lkm.depmod_config import load_config
    from lkm.depmod_output import (
        TEXT_FILES,
        OutputError,
        builtin_alias_index,
        builtin_index,
        render,
        write_outputs,
    )

    moddir = f"{settings.basedir}{settings.moduledir}/{settings.release}"
    outroot = settings.outdir if settings.outdir is not None else settings.basedir
    outdir = f"{outroot}{settings.moduledir}/{settings.release}"
    if settings.quick and settings.dry_run:
        # kmod 34 does nothing at all for -A with -n, whatever the times.
        return 0
    if settings.quick and _up_to_date(moddir, printer):
        return 0
    from lkm.config import load_config as load_modprobe_config

    # kmod's depmod opens a libkmod context on the module directory, which reads modprobe.d
    # and the directory's modules.softdep and modules.weakdep, reporting their bad lines.
    for problem in load_modprobe_config(module_dir=moddir).problems:
        printer.raw_error(f"libkmod: ERROR: {problem.message}")
    # With -a or -A, module files named on the command line are ignored: all are looked at.
    files = None if settings.all or settings.quick else list(settings.files) or None
    if settings.errsyms and settings.symvers is None and settings.system_map is None:
        printer.message("WARNING", "-e needs -E or -F")

    def verbose(line: str) -> None:
        printer.out(line)

    reporter = Reporter(printer.message, verbose if settings.verbose else None)
    kernel = None
    if settings.symvers is not None or settings.system_map is not None:
        try:
            kernel = load_kernel_symbols(
                settings.system_map, settings.symvers, settings.prefix, reporter
            )
        except OSError as err:
            name = settings.symvers if settings.symvers is not None else settings.system_map
            printer.message("FATAL", f"could not load {name}: {os.strerror(err.errno or 0)}")
            return 1
    if files is None and not os.path.isdir(moddir):
        try:
            os.listdir(moddir)
        except OSError as err:
            reason = os.strerror(err.errno or 0)
            printer.error(f"could not open directory {moddir}: {reason}")
            printer.message("FATAL", f"could not search modules: {reason}")
            return 1

    config = load_config(settings.config, settings.release, reporter.error)
    try:
        # The builtin files are read as their indexes are written (below), as kmod does.
        result = build(
            moddir,
            config,
            reporter,
            files=files,
            kernel=kernel,
            errsyms=settings.errsyms,
            prefix=settings.prefix,
            builtin=False,
        )
    except DependencyCycleError as err:
        printer.error(str(err))
        return 1
    except ModuleArgumentError as err:
        printer.message("FATAL", str(err))
        return 1
    # Above a few hundred modules a second process pays for its start.
    outputs = render(result, default_jobs() if len(result.modules) >= 256 else 1)
    if settings.dry_run:
        shown = dict(outputs)
        for name in TEXT_FILES:
            printer.stdout.write(shown[name])
        return 0
    later = {
        "modules.builtin.bin": lambda: builtin_index(read_builtin(moddir, reporter)),
        "modules.builtin.alias.bin": lambda: builtin_alias_index(
            read_builtin_modinfo(moddir, reporter)
        ),
    }
    try:
        write_outputs(outdir, [(name, later.get(name, data)) for name, data in outputs])
    except OutputError as err:
        for number, message in enumerate(err.messages, 1):
            last = number == len(err.messages)
            printer.message("FATAL" if err.fatal and last else "ERROR", message)
        return 1
    return 0


def main(args: Sequence[str], prog: str = PROG) -> int:
    import gc

    printer = Printer(prog)
    # A short run that allocates a great many small objects and makes no reference cycles:
    # the cyclic collector would only cost time (and, in forked workers, copied pages).
    gc.disable()
    try:
        parsed = parse(args, printer)
        if isinstance(parsed, int):
            return parsed
        return run(parsed, printer)
    except BrokenPipeError:
        return 1
    finally:
        with contextlib.suppress(BrokenPipeError):
            printer.stdout.flush()
