"""systemd's ``modules-load.d``: the modules a system loads at boot, and where each is named.

What systemd-modules-load (252, run black-box) reads:

- Files: ``*.conf`` in its directories (highest precedence first: ``/etc``, ``/run``,
  ``/usr/local/lib``, ``/usr/lib``); a name in a higher directory masks the same name lower
  down (a link to ``/dev/null`` masks and loads nothing); names starting with ``.`` are not
  read; the files are read sorted by name (byte order), whatever their directory.
- Lines end at ``\\n``, ``\\r`` or NUL; each is stripped of spaces, tabs and line ends; an empty
  one, or one starting with ``#`` or ``;``, is skipped; anything else is one name, taken whole
  (``a # b`` is the name ``a # b``; a ``\\`` at the end joins nothing). A name is looked up as
  modprobe looks one up, so an alias counts too.
- The kernel command line: ``modules_load=a,b`` (``modules-load=`` too), empty items skipped;
  ``rd.modules_load=`` only in an initrd (systemd's test: ``/etc/initrd-release`` exists).
  Its names come before the files'.

Given files as arguments (systemd-modules-load 257), it reads those alone, in the order given
(neither the directories nor the kernel command line): an absolute path as it is; any other
(``a.conf``, ``./a.conf``, ``sub/a.conf``, ``../x/a.conf``) is looked for below each
directory in turn, the first that opens wins, never below the working directory. A file that
cannot be opened is ``Failed to open ARG: strerror`` (ENOENT when no directory has it), one
that cannot be read (a directory) ``Failed to read file 'PATH': strerror``; both make the exit
status 1 and the other files are still read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from lkm.typing_lite import NamedTuple

_STRIP = " \t\n\r"


class BootEntry(NamedTuple):
    """One module name systemd-modules-load loads at boot.

    ``path`` is the file naming it (for the kernel command line: the command line file) and
    ``line`` its line number (None on the kernel command line); ``initrd`` is True for
    ``rd.modules_load=``, which only an initrd's systemd reads.
    """

    name: str
    path: str
    line: int | None
    initrd: bool = False


class ConfigProblem(NamedTuple):
    """A configuration file given that could not be read, with systemd's message for it."""

    path: str
    message: str


def find_files(directories: Sequence[str]) -> tuple[str, ...]:
    """The ``*.conf`` files systemd reads from ``directories`` (highest first), masked and
    sorted as it does; directories that are missing or cannot be listed give nothing."""
    chosen: dict[str, str] = {}
    for directory in directories:
        try:
            names = [entry.name for entry in os.scandir(directory)]
        except OSError:
            continue
        for name in names:
            if name.startswith(".") or not name.endswith(".conf") or name in chosen:
                continue
            path = f"{directory}/{name}"
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue
            if not stat.S_ISDIR(mode):
                chosen[name] = path
    return tuple(path for _, path in sorted(chosen.items(), key=lambda i: os.fsencode(i[0])))


def _masked(path: str) -> bool:
    try:
        return os.readlink(path) == os.devnull
    except OSError:
        return False


def parse_file(data: bytes, path: str) -> tuple[BootEntry, ...]:
    """The names one file gives, with their line numbers."""
    text = data.decode("utf-8", "surrogateescape")
    entries = []
    # Lines end at "\r\n", "\n", "\r" or NUL (no ``re``: it is off lkm's start-up path).
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        name = line.strip(_STRIP)
        if name and name[0] not in "#;":
            entries.append(BootEntry(name, path, number))
    return tuple(entries)


def _cmdline_words(text: str) -> list[str]:
    """Words of the kernel command line as systemd splits them: blanks separate, quotes
    (single or double) group and are removed."""
    words: list[str] = []
    current: list[str] = []
    started = False
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "'\"":
            quote = char
            started = True
        elif char in _STRIP:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        words.append("".join(current))
    return words


def parse_cmdline(data: bytes, path: str) -> tuple[BootEntry, ...]:
    """``modules_load=`` (and ``rd.modules_load=``) names of a kernel command line."""
    entries = []
    for word in _cmdline_words(data.decode("utf-8", "surrogateescape")):
        key, eq, value = word.partition("=")
        if not eq:
            continue
        initrd = key.startswith("rd.")
        if key.removeprefix("rd.").replace("-", "_") != "modules_load":
            continue
        entries += [BootEntry(name, path, None, initrd) for name in value.split(",") if name]
    return tuple(entries)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


def boot_entries(directories: Sequence[str], cmdline: str | None) -> tuple[BootEntry, ...]:
    """Every name systemd-modules-load loads, in its order: the kernel command line's first
    (``cmdline`` is its file; None: none), then the files'."""
    entries: list[BootEntry] = []
    if cmdline is not None:
        data = _read(cmdline)
        if data is not None:
            entries += parse_cmdline(data, cmdline)
    for path in find_files(directories):
        if _masked(path):
            continue
        data = _read(path)
        if data is not None:
            entries += parse_file(data, path)
    return tuple(entries)


def in_initrd(root: str = "") -> bool:
    """Whether this is an initrd, as systemd tells: ``/etc/initrd-release`` exists."""
    return os.path.exists(f"{root}/etc/initrd-release")


def argument_entries(
    arguments: Sequence[str], directories: Sequence[str]
) -> tuple[BootEntry | ConfigProblem, ...]:
    """The names of the files given as arguments, found and read as systemd-modules-load
    does (see the module docstring); a problem in place of a file that cannot be read."""
    found: list[BootEntry | ConfigProblem] = []
    for argument in arguments:
        path, code = _open_argument(argument, directories)
        if path is None:
            found.append(ConfigProblem(argument, f"Failed to open {argument}: {os.strerror(code)}"))
            continue
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError as err:
            text = f"Failed to read file '{path}': {os.strerror(err.errno or errno.EIO)}"
            found.append(ConfigProblem(path, text))
            continue
        found += parse_file(data, path)
    return tuple(found)


def _open_argument(argument: str, directories: Sequence[str]) -> tuple[str | None, int]:
    """The path an argument names and 0, or None and the errno of the failure."""
    candidates = (
        [argument] if argument.startswith("/") else [f"{d}/{argument}" for d in directories]
    )
    code = errno.ENOENT
    for candidate in candidates:
        try:
            os.close(os.open(candidate, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as err:
            if argument.startswith("/"):
                code = err.errno or errno.EIO
            continue
        except ValueError:  # a NUL in it: no such file
            continue
        return candidate, 0
    return None, code


__all__ = [
    "BootEntry",
    "ConfigProblem",
    "argument_entries",
    "boot_entries",
    "find_files",
    "in_initrd",
    "parse_cmdline",
    "parse_file",
]
