"""``lkm completion SHELL``: the shell completion script shipped with lkm, and the two hidden
commands the scripts call for names only a module tree knows (``lkm complete-modules``,
``lkm complete-releases``).

The scripts are generated from the table of commands (``python -m lkm.cli.docs``) and kept in
the package under ``share/completions``; this prints the one asked for, as it is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

PROG = "completion"

SHELLS = {"bash": "bash/lkm", "zsh": "zsh/_lkm", "fish": "fish/lkm.fish"}

OPTIONS = (Option("h", "help"),)

USAGE = """\
Usage:
\t{prog} bash|zsh|fish
Prints lkm's completion script for the shell: commands, their options, module names from
the module tree the command line names (-b, -k), or the running kernel's.
\teval "$(lkm completion bash)"               in ~/.bashrc
\tlkm completion zsh > ~/.zfunc/_lkm          with ~/.zfunc on $fpath, before compinit
\tlkm completion fish > ~/.config/fish/completions/lkm.fish
Options:
\t-h, --help   show this help
"""

# The hidden helpers: a tree as -b and -k name it (modinfo's spelling), then a prefix.
HELPER_OPTIONS = (
    Option("b", "basedir", has_arg=True),
    Option("k", "set-version", has_arg=True),
)


def script(shell: str) -> str:
    """The completion script for ``shell`` (a key of SHELLS), as shipped in the package."""
    from importlib.resources import files

    path = files("lkm").joinpath(f"share/completions/{SHELLS[shell]}")
    return path.read_text(encoding="utf-8")


def main(args: Sequence[str], prog: str = PROG) -> int:
    printer = Printer(f"lkm {prog}")
    try:
        try:
            parsed, operands = getopt_long(args, OPTIONS)
        except UsageError as err:
            printer.raw_error(f"{printer.prog}: {err}")
            printer.raw_error(f"Try '{printer.prog} --help' for more information.")
            return 1
        if parsed:
            printer.out(USAGE.format(prog=printer.prog))
            return 0
        if len(operands) != 1 or operands[0] not in SHELLS:
            printer.error("expected one shell: bash, zsh or fish.")
            return 1
        printer.out(script(operands[0]))
        return 0
    finally:
        printer.stdout.flush()


def _helper_args(args: Sequence[str]) -> tuple[str | None, str | None, str] | None:
    """-b, -k and the prefix of a helper's command line; None for one it cannot use."""
    try:
        parsed, operands = getopt_long(args, HELPER_OPTIONS)
    except UsageError:
        return None
    values = dict(parsed)
    if len(operands) > 1:
        return None
    return values.get("b"), values.get("k"), operands[0] if operands else ""


def modules_main(args: Sequence[str]) -> int:
    """``lkm complete-modules [-b DIR] [-k VER] [PREFIX]``: one module name a line.

    A completion must never print an error into the line being edited: a tree that cannot be
    read gives no names and status 1, and nothing on stderr.
    """
    from lkm.errors import LkmError
    from lkm.system import System

    parsed = _helper_args(args)
    if parsed is None:
        return 1
    basedir, release, prefix = parsed
    try:
        with System.running().module_directory(basedir, release) as moddir:
            names = moddir.module_names(prefix)
    except (LkmError, OSError):
        return 1
    printer = Printer("lkm")
    printer.out("".join(f"{name}\n" for name in names))
    printer.stdout.flush()
    return 0


def releases_main(args: Sequence[str]) -> int:
    """``lkm complete-releases [-b DIR] [PREFIX]``: the releases with a module directory."""
    from lkm.moddir import releases

    parsed = _helper_args(args)
    if parsed is None:
        return 1
    basedir, _release, prefix = parsed
    printer = Printer("lkm")
    printer.out("".join(f"{name}\n" for name in releases(basedir) if name.startswith(prefix)))
    printer.stdout.flush()
    return 0
