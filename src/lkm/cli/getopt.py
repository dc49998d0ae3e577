"""Command-line parsing with the behaviour and messages of glibc's ``getopt_long``.

kmod's tools parse their arguments with ``getopt_long``, and scripts see its exact messages and
its argument permutation, so lkm reproduces both rather than using argparse.
"""

from __future__ import annotations

from lkm.errors import LkmError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence


class UsageError(LkmError):
    """A command line getopt rejects; the message is getopt's own, without the program name."""


# What an option's value can be: any text, a file, a directory, a kernel release (one with a
# module directory), or one of the option's ``choices``.
KINDS = ("text", "file", "directory", "release", "choice")


class Option(NamedTuple):
    """One option: its short letter (or None), long name (or None), and whether it takes a value.

    ``key`` is what the parser reports back for the option; it defaults to the short letter or
    the long name. ``kind`` and ``choices`` say what an option's value is, for the completion
    scripts and manual pages (the parser ignores them): ``kind`` one of :data:`KINDS`, ``choices``
    the words it takes when there are only a few.
    """

    short: str | None
    long: str | None
    has_arg: bool = False
    key: str = ""
    kind: str = ""
    choices: tuple[str, ...] = ()

    @property
    def ident(self) -> str:
        return self.key or self.short or self.long or ""


def getopt_long(
    args: Sequence[str], options: Sequence[Option], *, permute: bool = True
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Parse ``args`` (without the program name) into ``([(key, value)], operands)``.

    Operands may be mixed with options unless ``permute`` is false (a leading ``+`` in getopt's
    option string), and ``--`` ends the options. Raises UsageError with getopt's message.
    """
    shorts = {opt.short: opt for opt in options if opt.short}
    longs = [opt for opt in options if opt.long]
    parsed: list[tuple[str, str | None]] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = _match_long(name, longs, arg)
            if opt.has_arg:
                if not eq:
                    if i >= len(args):
                        raise UsageError(f"option '--{opt.long}' requires an argument")
                    value = args[i]
                    i += 1
                parsed.append((opt.ident, value))
            else:
                if eq:
                    raise UsageError(f"option '--{opt.long}' doesn't allow an argument")
                parsed.append((opt.ident, None))
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                j += 1
                short = shorts.get(letter)
                if short is None:
                    raise UsageError(f"invalid option -- '{letter}'")
                if not short.has_arg:
                    parsed.append((short.ident, None))
                    continue
                if j < len(arg):
                    parsed.append((short.ident, arg[j:]))
                elif i < len(args):
                    parsed.append((short.ident, args[i]))
                    i += 1
                else:
                    raise UsageError(f"option requires an argument -- '{letter}'")
                break
            continue
        if not permute:
            operands.append(arg)
            operands.extend(args[i:])
            break
        operands.append(arg)
    return parsed, operands


def _match_long(name: str, longs: Sequence[Option], arg: str) -> Option:
    exact = [opt for opt in longs if opt.long == name]
    if exact:
        return exact[0]
    candidates = [opt for opt in longs if opt.long and opt.long.startswith(name)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"unrecognized option '{arg}'")
    # Abbreviations shared by options that behave identically are not ambiguous to getopt.
    first = candidates[0]
    if all((c.ident, c.has_arg) == (first.ident, first.has_arg) for c in candidates):
        return first
    names = " ".join(f"'--{c.long}'" for c in candidates)
    raise UsageError(f"option '{arg.partition('=')[0]}' is ambiguous; possibilities: {names}")
