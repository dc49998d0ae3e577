"""``lkm completion SHELL``: the shell completion script shipped with lkm, and the two hidden
commands the scripts call for names only a module tree knows (``lkm complete-modules``,
``lkm complete-releases``).

The scripts are generated from the table of commands (``python -m lkm.cli.docs``) and kept in
the package under ``share/completions``; this prints the one asked for, as it is installed.
"""

from __future__ import annotations

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

PROG = "completion"

SHELLS = {"bash": "bash/lkm", "zsh": "zsh/_lkm", "fish": "fish/lkm.fish"}

OPTIONS = (Option("h", "help"),)

USAGE = """\
Usage:
\t{prog} bash|zsh|fish
Prints lkm's completion script for the shell: commands, their options and the values they
take, module names from the module tree the command line names (-b, -k), or the running
kernel's, and its aliases once a prefix is typed; rmmod and modprobe -r complete the loaded
modules.
\teval "$(lkm completion bash)"               in ~/.bashrc
\tlkm completion zsh > ~/.zfunc/_lkm          with ~/.zfunc on $fpath, before compinit
\tlkm completion fish > ~/.config/fish/completions/lkm.fish
Options:
\t-h, --help   show this help
"""

# The hidden helpers: a tree as -b and -k name it (modinfo's spelling), then a prefix;
# complete-modules also takes --aliases (the tree's aliases too) and --loaded (the loaded
# modules instead of the tree's).
HELPER_OPTIONS = (
    Option("b", "basedir", has_arg=True),
    Option("k", "set-version", has_arg=True),
    Option(None, "aliases"),
    Option(None, "loaded"),
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


def _helper_args(args: Sequence[str]) -> tuple[dict[str, str | None], str] | None:
    """The options (by key) and the prefix of a helper's command line; None for one it cannot
    use."""
    try:
        parsed, operands = getopt_long(args, HELPER_OPTIONS)
    except UsageError:
        return None
    if len(operands) > 1:
        return None
    return dict(parsed), operands[0] if operands else ""


def loaded_names(procfs: str, prefix: str) -> list[str]:
    """The modules ``procfs``/modules lists that start with ``prefix``, spelled as
    :meth:`lkm.moddir.ModuleDirectory.module_names` spells them; sorted. Only the first word of
    each line is read (the helper runs on every TAB)."""
    with open(f"{procfs}/modules", "rb") as stream:
        names = [line.split(b" ", 1)[0].decode("utf-8", "replace") for line in stream]
    dashed = "-" in prefix
    key = prefix.replace("-", "_")
    return sorted(n.replace("_", "-") if dashed else n for n in names if n.startswith(key))


def modules_main(args: Sequence[str]) -> int:
    """``lkm complete-modules [-b DIR] [-k VER] [--aliases] [--loaded] [PREFIX]``: one name a
    line: the tree's modules (with ``--aliases``, and its aliases when PREFIX is not empty), or
    with ``--loaded`` the loaded modules (``/proc/modules``).

    A completion must never print an error into the line being edited: a tree that cannot be
    read gives no names and status 1, and nothing on stderr.
    """
    from lkm.errors import LkmError
    from lkm.system import System

    parsed = _helper_args(args)
    if parsed is None:
        return 1
    options, prefix = parsed
    system = System.running()
    try:
        if "loaded" in options:
            names = loaded_names(system.procfs, prefix)
        else:
            with system.module_directory(options.get("b"), options.get("k")) as moddir:
                names = moddir.module_names(prefix)
                if "aliases" in options:
                    names = sorted({*names, *moddir.alias_names(prefix)})
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
    options, prefix = parsed
    printer = Printer("lkm")
    found = releases(options.get("b"))
    printer.out("".join(f"{name}\n" for name in found if name.startswith(prefix)))
    printer.stdout.flush()
    return 0
