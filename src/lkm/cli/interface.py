"""What each command of the table accepts, read from the command itself: its getopt table (the
registry entry's ``option_table``) and the help it prints. Completions and manual pages are
written from this, so a command added to the table gets both without further edits.

The help is the one place an option's words live (kmod's tools print kmod's own text), so the
description and value name of every option are read from its ``-x, --long=VALUE  text`` line;
a verb's shared options (``-b -k -C --json -h``) are found by the text ``lkm.cli.verb`` adds.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import NamedTuple

from lkm.cli.commands import COMMANDS, Command, Kind
from lkm.cli.getopt import Option


class Operands(enum.Enum):
    """What a command's operands are, for completing them."""

    NONE = "none"
    MODULES = "modules"  # module names of the tree the command line names
    FILES = "files"
    MODULES_OR_FILES = "modules-or-files"
    LOADED = "loaded modules"  # the modules loaded now (/proc/modules)
    RELEASES = "releases"  # kernel releases with a module directory
    DIRECTORIES = "directories"
    COMMANDS = "commands"  # an lkm command line


class Value(enum.Enum):
    """What an option's value is, for completing it."""

    TEXT = "text"
    FILE = "file"
    DIRECTORY = "directory"
    RELEASE = "release"
    CHOICE = "choice"


class OptionDoc(NamedTuple):
    """One spelling of an option, with the words its command's help gives it."""

    option: Option
    metavar: str  # the value's name in the help ("DIR"); empty when it takes none
    description: str  # one paragraph
    value: Value
    choices: tuple[str, ...] = ()  # for Value.CHOICE

    @property
    def spellings(self) -> tuple[str, ...]:
        short = (f"-{self.option.short}",) if self.option.short else ()
        return short + ((f"--{self.option.long}",) if self.option.long else ())


class Interface(NamedTuple):
    command: Command
    help: str  # what ``lkm NAME --help`` prints
    options: tuple[OptionDoc, ...]  # every option it takes, its own first
    operands: Operands
    # Words that pick a sub-command (kmod's list, links' install), each with what follows it:
    # the name of a command of the table (its options and operands) or the operands.
    subcommands: tuple[tuple[str, str | Operands], ...] = ()
    aliases: bool = False  # a module's operand may be an alias too
    # The option after which the operands are the loaded modules (modprobe's --remove).
    removing: OptionDoc | None = None

    def spelled(self, long: str) -> OptionDoc | None:
        """The option spelled ``--long``, if the command takes one."""
        return next((doc for doc in self.options if doc.option.long == long), None)


# Operands the words of a synopsis cannot tell: sub-commands and command lines.
SPECIAL: dict[str, tuple[Operands, tuple[tuple[str, str | Operands], ...]]] = {
    "kmod": (
        Operands.NONE,
        (("help", Operands.NONE), ("list", "list"), ("static-nodes", "static-nodes")),
    ),
    "links": (
        Operands.NONE,
        (("install", Operands.DIRECTORIES), ("remove", Operands.DIRECTORIES)),
    ),
    "sandbox": (Operands.COMMANDS, ()),
    "completion": (Operands.NONE, (("bash", Operands.NONE), ("zsh", Operands.NONE),
                                   ("fish", Operands.NONE))),
}  # fmt: skip

# Operands only the loaded modules can be: rmmod's, and modprobe's after this option.
LOADED = {"rmmod": "", "modprobe": "remove"}
# Commands taking an alias where they take a module name whose synopsis does not say so.
ALIASES = frozenset({"modinfo", "modprobe"})

# "-a, --all  text", "    --keep  text", "-0, --null  text", "-w, --wait=<MSEC>  text".
_OPTION_LINE = re.compile(
    r"^\s*(?:-(?P<short>[^\s,-]))?(?:,\s*)?(?:--(?P<long>[\w-]+))?"
    r"(?:=(?P<metavar>\S+)\s+|\s(?P<spaced>[A-Z<]\S*)\s{2,}|\s{2,}|\t+)(?P<text>\S.*)$"
)
_CONTINUATION = re.compile(r"^\s{6,}(?P<text>[^\s-].*)$")
_MODULE_WORDS = re.compile(
    r"\b(mod|module|modulename|modulenames|alias)\b(?!\s+options)", re.IGNORECASE
)
_FILE_WORDS = re.compile(r"\b(filename|file|path)\b", re.IGNORECASE)


def help_text(command: Command) -> str:
    """What ``lkm NAME --help`` prints, captured in this process."""
    import io
    import sys

    buffer = io.BytesIO()
    saved, captured = sys.stdout, io.TextIOWrapper(buffer, encoding="utf-8")
    sys.stdout = captured
    try:
        status = command.load()(["--help"])
    finally:
        sys.stdout = saved
        captured.flush()
        captured.detach()  # closing the wrapper would close the buffer with it
    if status != 0:
        raise RuntimeError(f"lkm {command.name} --help exited with {status}")
    return buffer.getvalue().decode("utf-8")


def option_table(command: Command) -> tuple[Option, ...]:
    import importlib

    module, _, name = command.option_table.partition(":")
    table: tuple[Option, ...] = tuple(getattr(importlib.import_module(module), name))
    return table


def shared_options(command: Command, text: str) -> tuple[Option, ...]:
    """The options ``lkm.cli.verb.parse`` adds for ``command``, judged by the help it added."""
    from lkm.cli.verb import COMMON_HELP, COMMON_OPTIONS, TREE_HELP, TREE_OPTIONS
    from lkm.jsonable import SCHEMAS

    common = COMMON_HELP.format(verb=command.name, version=SCHEMAS.get(command.name, 1))
    if not text.endswith(common):
        return ()
    return (*(TREE_OPTIONS if text.endswith(TREE_HELP + common) else ()), *COMMON_OPTIONS)


def described(text: str) -> dict[str, tuple[str, str]]:
    """``{"-a" or "--author": (metavar, description)}`` from the option lines of a help."""
    found: dict[str, tuple[str, str]] = {}
    last: list[str] = []
    for line in text.expandtabs(8).splitlines():
        match = _OPTION_LINE.match(line)
        if match and (match["short"] or match["long"]) and line.lstrip().startswith("-"):
            metavar = (match["metavar"] or match["spaced"] or "").strip("<>")
            last = [f"-{match['short']}"] if match["short"] else []
            last += [f"--{match['long']}"] if match["long"] else []
            for spelling in last:
                found.setdefault(spelling, (metavar, match["text"].strip()))
            continue
        more = _CONTINUATION.match(line)
        if more and last:
            for spelling in last:
                metavar, words = found[spelling]
                found[spelling] = (metavar, f"{words} {more['text'].strip()}")
            continue
        last = []
    return found


def _value(option: Option) -> tuple[Value, tuple[str, ...]]:
    """What the option's value is, as its getopt table says (``kind``, ``choices``)."""
    if not option.has_arg:
        return Value.TEXT, ()
    return Value(option.kind or "text"), option.choices


def document(options: Sequence[Option], text: str) -> tuple[OptionDoc, ...]:
    """Each option with its words from ``text``; a spelling the help leaves out (an alias
    kmod does not list) borrows them from the spelling it is the same option as."""
    words = described(text)
    docs = []
    for option in options:
        spellings = [f"-{option.short}"] if option.short else []
        spellings += [f"--{option.long}"] if option.long else []
        found = next((words[s] for s in spellings if s in words), None)
        if found is None:
            same = [o for o in options if o.ident == option.ident and o is not option and o.long]
            found = ("", f"same as --{same[0].long}") if same else ("", "")
        metavar, description = found
        if option.has_arg and not metavar:
            metavar = "VALUE"
        value, choices = _value(option)
        docs.append(OptionDoc(option, metavar if option.has_arg else "", description, value,
                              choices))  # fmt: skip
    return tuple(docs)


def synopsis(command: Command, text: str) -> list[str]:
    """The command's usage lines, each as it is typed after ``lkm NAME``."""
    lines = text.expandtabs(8).splitlines()
    found: list[str] = []
    start = next((i for i, line in enumerate(lines) if line.startswith("Usage:")), None)
    if start is None:
        return found
    first = lines[start].removeprefix("Usage:").split()  # "Usage: lkm show [options] MOD..."
    for line in ([" " + " ".join(first)] if first else []) + lines[start + 1 :]:
        if not line.startswith(" "):
            break
        words = line.split()
        while words and words[0] in ("lkm", "kmod", command.name, "or:"):
            words.pop(0)
        found.append(" ".join(words))
    return found


def operands(command: Command, text: str) -> Operands:
    """What the operands are, by the words of the synopsis (``modulename``, ``filename``)."""
    words = " ".join(synopsis(command, text))
    words = re.sub(r"\[?-\w[^\]\s]*\]?", " ", words)  # options named in the synopsis
    modules = bool(_MODULE_WORDS.search(words))
    files = bool(_FILE_WORDS.search(words))
    if re.search(r"version\b", words, re.IGNORECASE):
        return Operands.RELEASES
    if modules and files:
        return Operands.MODULES_OR_FILES
    if modules:
        return Operands.MODULES
    if files:
        return Operands.FILES
    return Operands.NONE


def interface(command: Command) -> Interface:
    text = help_text(command)
    table = (*option_table(command), *shared_options(command, text))
    kind, subcommands = SPECIAL.get(command.name, (operands(command, text), ()))
    docs = document(table, text)
    removing = None
    if command.name in LOADED:
        if LOADED[command.name]:
            removing = next(doc for doc in docs if doc.option.long == LOADED[command.name])
        else:
            kind = Operands.LOADED
    named = command.name in ALIASES or bool(
        re.search(r"\balias\b", " ".join(synopsis(command, text)), re.IGNORECASE)
    )
    aliases = kind in (Operands.MODULES, Operands.MODULES_OR_FILES) and named
    return Interface(command, text, docs, kind, subcommands, aliases, removing)


def interfaces() -> tuple[Interface, ...]:
    """Every command of the table (hidden ones excepted), in its order."""
    return tuple(interface(command) for command in COMMANDS)


__all__ = [
    "Interface",
    "Kind",
    "Operands",
    "OptionDoc",
    "Value",
    "interface",
    "interfaces",
    "synopsis",
]
