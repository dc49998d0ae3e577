"""``modinfo``: show what a module file says about itself, like kmod 34's modinfo."""

from __future__ import annotations

import os

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer
from lkm.errors import DecompressionError
from lkm.moddir import ModuleDirectory
from lkm.modinfo import ModuleRecord, NotFound, Param, Record, Unreadable, find
from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.system import System

PROG = "modinfo"

OPTIONS = (
    Option("a", "author"),
    Option("d", "description"),
    Option("l", "license"),
    Option("p", "parameters"),
    Option("n", "filename"),
    Option("0", "null"),
    Option("m", "modname"),
    Option("F", "field", has_arg=True, kind="text"),
    Option("k", "set-version", has_arg=True, kind="release"),
    Option("b", "basedir", has_arg=True, kind="directory"),
    Option("V", "version"),
    Option("h", "help"),
)
SHORTCUTS = {"a": "author", "d": "description", "l": "license", "p": "parm", "n": "filename"}

USAGE = """\
Usage:
\t{prog} [options] <modulename|filename> [args]
Options:
\t-a, --author                Print only 'author'
\t-d, --description           Print only 'description'
\t-l, --license               Print only 'license'
\t-p, --parameters            Print only 'parm'
\t-n, --filename              Print only 'filename'
\t-0, --null                  Use \\0 instead of \\n
\t-m, --modname               Handle argument as module name instead of alias or filename
\t-F, --field=FIELD           Print only provided FIELD
\t-k, --set-version=VERSION   Use VERSION instead of `uname -r`
\t-b, --basedir=DIR           Use DIR as filesystem root for /lib/modules
\t-V, --version               Show version
\t-h, --help                  Show this help
"""

# Where libkmod says a decompression failed, in the line it prints before giving up.
_DECOMPRESS_PREFIX = {
    "xz": "xz_uncompress_belch: xz",
    "zstd": "kmod_file_load_zstd: zstd",
    "gzip": "kmod_file_load_zlib: zlib",
}


class Settings(NamedTuple):
    field: str | None
    separator: str
    by_name: bool
    release: str | None
    basedir: str | None


def _param_line(param: Param, *, field_only: bool) -> str:
    # kmod's two code paths differ for a parameter that has a type but no description.
    if param.type is not None and (param.description is not None or field_only):
        return f"{param.name}:{param.description or ''} ({param.type})"
    if param.description is not None:
        return f"{param.name}:{param.description}"
    return f"{param.name}:{param.type}"


class ModinfoPrinter:
    """Renders :mod:`lkm.modinfo`'s records as kmod 34's modinfo prints them."""

    def __init__(self, settings: Settings, printer: Printer) -> None:
        self.settings = settings
        self.printer = printer

    def line(self, key: str, value: str, *, padded: bool = False) -> None:
        """One field; filename, parameters and a builtin's name stay padded even with ``-0``."""
        sep = self.settings.separator
        if self.settings.field is not None:
            self.printer.out(value + sep)
        elif sep == "\n" or padded:
            # Padded to 16 bytes, not characters: a key with UTF-8 in it gets fewer spaces.
            pad = " " * (15 - len(key.encode("utf-8", "surrogateescape")))
            self.printer.out(f"{key}:{pad}{value}{sep}")
        else:
            self.printer.out(f"{key}={value}{sep}")

    def record(self, record: Record) -> bool:
        """Print one record; False for a failure (reported on stderr)."""
        if isinstance(record, NotFound):
            self.printer.error(record.message)
            return False
        field = self.settings.field
        if record.filename is None:
            self._builtin_head(record.name)
            if field == "filename":
                return True
        elif field is None or field == "filename":
            self.line("filename", record.filename, padded=True)
            if field == "filename":
                return True
        if isinstance(record, Unreadable):
            if isinstance(record.error, DecompressionError):
                self._libkmod_decompress_error(record.error)
            self.printer.error(record.message)
            return False
        self.fields(record)
        return True

    def _builtin_head(self, name: str) -> None:
        field = self.settings.field
        if field is None:
            self.line("name", name, padded=True)
            self.line("filename", "(builtin)", padded=True)
        elif field == "name":
            self.printer.out(name + self.settings.separator)
        elif field == "filename":
            self.printer.out("(builtin)" + self.settings.separator)

    def fields(self, record: ModuleRecord) -> None:
        field = self.settings.field
        if field == "parm" or field is None:
            for problem in record.param_problems:
                self.printer.error(problem)
        everything = (*record.fields, *record.signature_fields())
        if field is None:
            for key, value in everything:
                if key not in ("parm", "parmtype"):
                    self.line(key, value)
            for param in record.params:
                self.line("parm", _param_line(param, field_only=False), padded=True)
        elif field == "parm":
            for param in record.params:
                self.line("parm", _param_line(param, field_only=True))
        else:
            for key, value in everything:
                if key == field:
                    self.line(key, value)

    def _libkmod_decompress_error(self, err: DecompressionError) -> None:
        prefix = _DECOMPRESS_PREFIX.get(err.method)
        if prefix and err.reason:
            self.printer.raw_error(f"libkmod: ERROR: {prefix}: {err.reason}")


def show(name: str, moddir: ModuleDirectory, out: ModinfoPrinter) -> bool:
    settings = out.settings
    # kmod shows a filename without reading the file.
    read = settings.field != "filename"
    records = find(name, moddir, by_name=settings.by_name, read=read)
    # kmod reads each module's modules.dep line first, and reports a missing file on it.
    for record in records:
        missing = None if isinstance(record, NotFound) else record.missing_dependency
        if missing is not None:
            # The context's address is lkm's own: kmod's can never be matched.
            out.printer.raw_error(
                f"libkmod: ERROR: kmod_module_parse_depline: ctx={id(moddir):#x} "
                f"path={missing.path} error={os.strerror(missing.errno)}"
            )
    ok = True
    for record in records:
        ok = out.record(record) and ok
    return ok


def parse(args: Sequence[str], printer: Printer) -> tuple[Settings, list[str]] | int:
    try:
        parsed, operands = getopt_long(args, OPTIONS)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    field: str | None = None
    separator = "\n"
    by_name = False
    release: str | None = None
    basedir: str | None = None
    for key, value in parsed:
        if key in SHORTCUTS:
            field = SHORTCUTS[key]
        elif key == "F":
            field = value
        elif key == "0":
            separator = "\0"
        elif key == "m":
            by_name = True
        elif key == "k":
            release = value
        elif key == "b":
            basedir = value
        elif key == "V":
            from lkm.cli.common import print_version

            print_version(printer)
            return 0
        elif key == "h":
            printer.out(USAGE.format(prog=printer.prog))
            return 0
    return Settings(field, separator, by_name, release, basedir), operands


def main(args: Sequence[str], prog: str = PROG, *, system: System | None = None) -> int:
    """modinfo on ``system`` (default: the running one: its module directory)."""
    from lkm.system import System

    system = system or System()
    printer = Printer(prog)
    try:
        parsed = parse(args, printer)
        if isinstance(parsed, int):
            return parsed
        settings, names = parsed
        if not names:
            printer.error("missing module or filename.")
            return 1
        out = ModinfoPrinter(settings, printer)
        ok = True
        # Like kmod, a corrupt index only means the name is not found there.
        with system.module_directory(settings.basedir, settings.release) as moddir:
            for name in names:
                ok = show(name, moddir, out) and ok
        return 0 if ok else 1
    finally:
        printer.stdout.flush()
