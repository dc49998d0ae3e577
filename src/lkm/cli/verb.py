"""What lkm's own verbs (``lkm show``, ``lkm closure``, ...) share on the command line.

Each verb is a library call that returns records; its command line only parses arguments,
makes the :class:`~lkm.system.System` it looks at, and renders the records as text or, with
``--json``, as the versioned document of :mod:`lkm.jsonable`. Ideas kmod's tools already have
keep kmod's spellings: ``-b/--basedir`` and ``-k/--set-version`` (modinfo's) for the module
tree, ``-C/--config`` (modprobe's) for the configuration.
"""

from __future__ import annotations

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer
from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.moddir import ModuleDirectory
    from lkm.system import System

TREE_OPTIONS = (
    Option("b", "basedir", has_arg=True, kind="directory"),
    Option("k", "set-version", has_arg=True, kind="release"),
    Option("C", "config", has_arg=True, kind="file"),
)
COMMON_OPTIONS = (Option(None, "json"), Option("h", "help"))

TREE_HELP = """\
  -b, --basedir=DIR      use DIR as filesystem root for /lib/modules
  -k, --set-version=VER  use VER as kernel version instead of the running one
  -C, --config=PATH      modprobe configuration file or directory (may be repeated)
"""
COMMON_HELP = """\
      --json             print the records as JSON (schema lkm/{verb}/{version})
  -h, --help             show this help
"""


class VerbArgs(NamedTuple):
    """A verb's parsed command line: the shared options, then the verb's own ones in order."""

    basedir: str | None
    release: str | None
    config: tuple[str, ...]  # -C, in order given; empty: the system's directories
    json: bool
    options: list[tuple[str, str | None]]  # every other option, as getopt reported it
    operands: list[str]

    def system(self, system: System | None = None) -> System:
        """``system`` (the running one by default) as these options change it."""
        from lkm.system import System

        system = system or System.running()
        if self.basedir is not None:
            system = system._replace(basedir=self.basedir)
        if self.release is not None:
            system = system._replace(release=self.release)
        if self.config:
            system = system._replace(modprobe_dirs=self.config)
        return system

    def module_directory(self, system: System) -> ModuleDirectory:
        """The module tree ``-b``/``-k`` name on ``system``."""
        return system.module_directory(self.basedir, self.release)


def parse(
    verb: str,
    args: Sequence[str],
    usage: str,
    options: Sequence[Option] = (),
    *,
    tree: bool = True,
    printer: Printer | None = None,
) -> VerbArgs | int:
    """Parse a verb's arguments: :class:`VerbArgs`, or the exit status when the command line
    already decided it (``--help``: 0; a usage error: 1, with getopt's message and a pointer to
    ``--help``). ``usage`` is the help text; ``{prog}`` in it becomes ``lkm VERB``."""
    printer = printer or Printer(f"lkm {verb}")
    table = [*(TREE_OPTIONS if tree else ()), *COMMON_OPTIONS, *options]
    try:
        parsed, operands = getopt_long(args, table)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        printer.raw_error(f"Try '{printer.prog} --help' for more information.")
        return 1
    basedir = release = None
    config: list[str] = []
    json = False
    rest: list[tuple[str, str | None]] = []
    for key, value in parsed:
        if key == "h":
            text = usage + (TREE_HELP if tree else "") + COMMON_HELP
            from lkm.jsonable import SCHEMAS  # only help names the schema: not loaded otherwise

            printer.out(text.format(prog=printer.prog, verb=verb, version=SCHEMAS.get(verb, 1)))
            return 0
        if key == "b":
            basedir = value
        elif key == "k":
            release = value
        elif key == "C" and value is not None:
            config.append(value)
        elif key == "json":
            json = True
        else:
            rest.append((key, value))
    return VerbArgs(basedir, release, tuple(config), json, rest, operands)


def print_json(printer: Printer, verb: str, records: Sequence[object]) -> None:
    """Write ``records`` as ``verb``'s JSON document."""
    from lkm.jsonable import dumps

    printer.out(dumps(verb, records))


__all__ = ["COMMON_OPTIONS", "TREE_OPTIONS", "VerbArgs", "parse", "print_json"]
