"""``lkm closure``: the module files and firmware an initramfs needs for some modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option

if TYPE_CHECKING:
    from lkm.cli.output import Printer
    from lkm.closure import Record
    from lkm.system import System

USAGE = """\
Usage:
\t{prog} [options] MODULE|ALIAS...

Everything an initramfs needs for the modules named: their files and their dependencies'
in load order (built-in modules noted), and the firmware they ask for, found where the
kernel looks for it (missing firmware listed).

Options:
      --softdeps         add soft dependencies (modprobe.d and modules.softdep)
      --weakdeps         add weak dependencies (modprobe.d and modules.weakdep)
      --firmware-dir=DIR search DIR for firmware instead of the kernel's directories
                         (may be repeated; searched in the order given)
      --no-cache         read every module file, keeping nothing (by default modules'
                         firmware fields are taken from lkm depmod's cache in the module
                         directory, and kept in $XDG_CACHE_HOME/lkm/firmware, each
                         read again once its file changes)
"""
OPTIONS = (
    Option(None, "softdeps"),
    Option(None, "weakdeps"),
    Option(None, "firmware-dir", has_arg=True, kind="directory"),
    Option(None, "no-cache"),
)


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm closure``; ``system`` is the one looked at (default: the running one)."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse, print_json
    from lkm.errors import LkmError

    printer = Printer("lkm closure")
    parsed = parse("closure", args, USAGE, OPTIONS, printer=printer)
    if isinstance(parsed, int):
        return parsed
    if not parsed.operands:
        printer.error("missing module or alias name")
        return 1
    softdeps = weakdeps = False
    cache = True
    firmware_dirs: list[str] = []
    for key, value in parsed.options:
        if key == "softdeps":
            softdeps = True
        elif key == "weakdeps":
            weakdeps = True
        elif key == "no-cache":
            cache = False
        elif key == "firmware-dir" and value is not None:
            firmware_dirs.append(value)
    try:
        dirs = firmware_dirs or None
        records = _closure(
            parsed.system(system),
            parsed,
            softdeps=softdeps,
            weakdeps=weakdeps,
            firmware_dirs=dirs,
            cache=cache,
        )
    except LkmError as err:
        printer.error(str(err))
        return 1
    from lkm.closure import ClosureError, ClosureModule

    if parsed.json:
        print_json(printer, "closure", records)
    else:
        _print_text(printer, records)
    failed = any(
        isinstance(r, ClosureError) or (isinstance(r, ClosureModule) and r.error) for r in records
    )
    return 1 if failed else 0


def _closure(
    system: System,
    parsed: object,
    *,
    softdeps: bool,
    weakdeps: bool,
    firmware_dirs: list[str] | None,
    cache: bool,
) -> list[Record]:
    import errno
    import os

    from lkm.cli.verb import VerbArgs
    from lkm.closure import closure
    from lkm.config import load_config
    from lkm.errors import ModuleDirectoryError
    from lkm.firmware_cache import default_directory

    assert isinstance(parsed, VerbArgs)
    moddir = parsed.module_directory(system)
    if not os.path.isdir(moddir.path):
        code = errno.ENOTDIR if os.path.exists(moddir.path) else errno.ENOENT
        raise ModuleDirectoryError(moddir.path, code)
    config = load_config(system.modprobe_dirs, module_dir=moddir.path, cmdline=None)
    with moddir:
        return closure(
            parsed.operands,
            moddir,
            config,
            softdeps=softdeps,
            weakdeps=weakdeps,
            firmware_dirs=firmware_dirs,
            basedir=system.basedir,
            release=system.kernel_release(),
            cache_dir=default_directory() if cache else None,
            depmod_cache=cache,
        )


def _print_text(printer: Printer, records: Sequence[Record]) -> None:
    """One line a record: ``module NAME PATH (REASON)``, ``builtin NAME (REASON)``,
    ``firmware NAME PATH``, each link as ``  link PATH`` and its target as ``  target PATH``,
    ``missing NAME (for MODULES)``; errors go to stderr."""
    from lkm.closure import ClosureError, ClosureFirmware, ClosureModule

    lines: list[str] = []
    for record in records:
        if isinstance(record, ClosureModule):
            why = record.reason.value
            if record.wanted_by is not None:
                why += f" of {record.wanted_by}"
            if record.builtin:
                lines.append(f"builtin {record.name} ({why})")
            elif record.path is None:
                lines.append(f"nofile {record.name} ({why})")
            else:
                lines.append(f"module {record.name} {record.path} ({why})")
        elif isinstance(record, ClosureFirmware):
            if record.path is None:
                lines.append(f"missing {record.name} (for {', '.join(record.modules)})")
                continue
            pattern = f" ({record.pattern})" if record.pattern is not None else ""
            lines.append(f"firmware {record.name} {record.path}{pattern}")
            for link in record.links:
                if link != record.path:
                    lines.append(f"  link {link}")
            if record.target is not None and record.target != record.path:
                lines.append(f"  target {record.target}")
    if lines:
        printer.out("\n".join(lines) + "\n")
    for record in records:
        if isinstance(record, ClosureModule) and record.error:
            printer.error(f"{record.name}: {record.error}")
        elif isinstance(record, ClosureError):
            printer.error(record.error)
