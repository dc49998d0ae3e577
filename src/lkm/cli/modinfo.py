"""``modinfo``: show what a module file says about itself, like kmod 34's modinfo."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer
from lkm.errors import DecompressionError, LkmError
from lkm.moddir import (
    BuiltinModule,
    ModuleDirectory,
    absolute,
    is_module_filename,
    module_name_from_path,
    normalize_name,
)

PROG = "modinfo"

OPTIONS = (
    Option("a", "author"),
    Option("d", "description"),
    Option("l", "license"),
    Option("p", "parameters"),
    Option("n", "filename"),
    Option("0", "null"),
    Option("m", "modname"),
    Option("F", "field", has_arg=True),
    Option("k", "set-version", has_arg=True),
    Option("b", "basedir", has_arg=True),
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


class Param(NamedTuple):
    name: str
    description: str | None
    type: str | None


def collect_params(pairs: Iterable[tuple[str, str]], printer: Printer) -> list[Param]:
    """Merge ``parm`` and ``parmtype`` strings per parameter, in kmod's order.

    The last description and type of a parameter win; parameters come out newest first (in
    reverse order of first appearance), as kmod lists them.
    """
    order: list[str] = []
    found: dict[str, list[str | None]] = {}
    for key, value in pairs:
        if key not in ("parm", "parmtype"):
            continue
        name, colon, text = value.partition(":")
        if not colon:
            printer.error(f"Found invalid \"{key}={value}\": missing ':'")
            continue
        if name not in found:
            found[name] = [None, None]
            order.append(name)
        found[name][0 if key == "parm" else 1] = text
    return [Param(name, found[name][0], found[name][1]) for name in reversed(order)]


def _param_line(param: Param, *, field_only: bool) -> str:
    # kmod's two code paths differ for a parameter that has a type but no description.
    if param.type is not None and (param.description is not None or field_only):
        return f"{param.name}:{param.description or ''} ({param.type})"
    if param.description is not None:
        return f"{param.name}:{param.description}"
    return f"{param.name}:{param.type}"


class ModinfoPrinter:
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

    def fields(self, pairs: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]]) -> None:
        field = self.settings.field
        if field == "parm" or field is None:
            params = collect_params(pairs, self.printer)
        if field is None:
            for key, value in (*pairs, *extra):
                if key not in ("parm", "parmtype"):
                    self.line(key, value)
            for param in params:
                self.line("parm", _param_line(param, field_only=False), padded=True)
        elif field == "parm":
            for param in params:
                self.line("parm", _param_line(param, field_only=True))
        else:
            for key, value in (*pairs, *extra):
                if key == field:
                    self.line(key, value)

    def module_file(self, path: str, name: str | None) -> bool:
        """Print a module file's information; False after reporting a failure."""
        from lkm.module import ModuleFile, kmod_errno

        field = self.settings.field
        if field is None or field == "filename":
            self.line("filename", path, padded=True)
            if field == "filename":
                return True
        try:
            module = ModuleFile.from_path(path)
            if not module.has_modinfo:
                raise _NoData()
            pairs = module.modinfo
            signature = module.signature
        except (LkmError, _NoData) as err:
            code = errno.ENODATA if isinstance(err, _NoData) else kmod_errno(err)
            if isinstance(err, DecompressionError):
                self._libkmod_decompress_error(err)
            shown = name if name is not None else module_name_from_path(path)
            self.printer.error(f"could not get modinfo from '{shown}': {os.strerror(code)}")
            return False
        extra = signature.modinfo_fields() if signature is not None else ()
        self.fields(pairs, extra)
        return True

    def _libkmod_decompress_error(self, err: DecompressionError) -> None:
        prefix = _DECOMPRESS_PREFIX.get(err.method)
        if prefix and err.reason:
            self.printer.raw_error(f"libkmod: ERROR: {prefix}: {err.reason}")

    def builtin(self, module: BuiltinModule) -> bool:
        field = self.settings.field
        if field is None:
            self.line("name", module.name, padded=True)
            self.line("filename", "(builtin)", padded=True)
        elif field == "name":
            self.printer.out(module.name + self.settings.separator)
        elif field == "filename":
            self.printer.out("(builtin)" + self.settings.separator)
            return True
        self.fields(module.modinfo, ())
        return True


class _NoData(Exception):
    """The file is a module without a ``.modinfo`` section (kmod: ENODATA)."""


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def show(name: str, moddir: ModuleDirectory, out: ModinfoPrinter) -> bool:
    settings = out.settings
    if not settings.by_name and is_module_filename(name) and _is_regular_file(name):
        return out.module_file(absolute(name), None)
    targets = lookup_by_name(moddir, name) if settings.by_name else lookup(moddir, name)
    _report_missing_dependencies(moddir, targets, out.printer)
    if not targets:
        what = "Module name" if settings.by_name else "Module"
        out.printer.error(f"{what} {name} not found.")
        return False
    ok = True
    for target in targets:
        if isinstance(target, BuiltinModule):
            ok = out.builtin(target) and ok
        else:
            ok = out.module_file(target[1], target[0]) and ok
    return ok


Target = tuple[str, str] | BuiltinModule


def _report_missing_dependencies(
    moddir: ModuleDirectory, targets: Sequence[Target], printer: Printer
) -> None:
    """kmod reads the modules.dep line of each module it finds, and reports the first file on
    it that is missing (see lkm.resolve), once per module; what it shows is unchanged."""
    from lkm.resolve import MissingDependency, Resolver

    def missing(problem: MissingDependency) -> None:
        # The context's address is lkm's own: kmod's can never be matched.
        printer.raw_error(
            f"libkmod: ERROR: kmod_module_parse_depline: ctx={id(moddir):#x} "
            f"path={problem.path} error={os.strerror(problem.errno)}"
        )

    resolver = Resolver(moddir, on_missing=missing)
    for target in targets:
        if not isinstance(target, BuiltinModule):
            resolver.dependencies(target[0])


def lookup(moddir: ModuleDirectory, name: str) -> list[Target]:
    """What a name means to kmod's modinfo: modprobe's lookup without any configuration (modinfo
    reads none), each module with its file, or, without one, shown as kmod shows a module it knows
    no file for: like a builtin one."""
    from lkm.resolve import Resolver

    targets: list[Target] = []
    for match in Resolver(moddir).lookup(name, paths=False):
        path = moddir.module_path(match.name)
        targets.append((match.name, path) if path is not None else moddir.builtin(match.name))
    return targets


def lookup_by_name(moddir: ModuleDirectory, name: str) -> list[Target]:
    """``-m``: a module name only (modules.dep.bin), else a builtin module or builtin alias."""
    path = moddir.module_path(name)
    if path is not None:
        return [(normalize_name(name), path)]
    if moddir.is_builtin(name):
        return [moddir.builtin(name)]
    return [moddir.builtin(mod) for mod in moddir.builtin_alias_owners(name)]


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


def main(args: Sequence[str], prog: str = PROG) -> int:
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
        with ModuleDirectory.for_release(
            settings.basedir, settings.release, strict=False
        ) as moddir:
            for name in names:
                ok = show(name, moddir, out) and ok
        return 0 if ok else 1
    finally:
        printer.stdout.flush()
