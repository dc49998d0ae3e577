"""depmod.d: where depmod looks for modules and which of two same-named modules wins.

Files are collected like every kmod configuration: ``*.conf`` files (no dotfiles) of the
directories in priority order, merged and sorted by basename, a basename seen in a higher
directory hiding the same name lower down. ``-C`` replaces the directories; a file given there
is read as it is.
"""

from __future__ import annotations

import os

from lkm.dataclasses_lite import dataclass
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["CONFIG_DIRS", "DepmodConfig", "External", "Override", "config_files", "parse_config"]

CONFIG_DIRS = (
    "/etc/depmod.d",
    "/run/depmod.d",
    "/usr/local/lib/depmod.d",
    "/usr/lib/depmod.d",
    "/lib/depmod.d",
)
BUILT_IN = "built-in"
EXTERNAL = "external"


@dataclass(frozen=True)
class Override:
    """``override MODULE KVER SUBDIR``: the copy of MODULE under SUBDIR wins."""

    module: str
    subdir: str


@dataclass(frozen=True)
class External:
    """An absolute directory searched for modules at the ``external`` rank."""

    path: str


@dataclass(frozen=True)
class DepmodConfig:
    """What depmod.d says for one kernel release."""

    search: tuple[str, ...] = ("updates", BUILT_IN)
    overrides: tuple[Override, ...] = ()
    externals: tuple[External, ...] = ()
    excludes: tuple[str, ...] = ()


def config_files(paths: Sequence[str] = CONFIG_DIRS) -> list[str]:
    """The files to read, in order: ``*.conf`` of the directories (or files) ``paths``."""
    chosen: dict[str, str] = {}
    for path in paths:
        if not os.path.isdir(path):
            if os.path.isfile(path):
                chosen.setdefault(os.path.basename(path), path)
            continue
        try:
            names = os.listdir(path)
        except OSError:
            continue
        for name in names:
            if name.startswith(".") or not name.endswith(".conf"):
                continue
            full = f"{path}/{name}"
            if os.path.isdir(full):
                continue
            chosen.setdefault(name, full)
    return [chosen[name] for name in sorted(chosen)]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) with trailing-backslash continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, physical in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
        if physical.endswith("\\"):
            pending += physical[:-1]
            continue
        stripped = (pending + physical).strip()
        pending = ""
        if stripped and not stripped.startswith("#"):
            out.append((start, stripped))
    if pending.strip() and not pending.strip().startswith("#"):
        out.append((start, pending.strip()))
    return out


def _release_matches(pattern: str, release: str) -> bool:
    if pattern == "*":
        return True
    # Here: a release pattern other than ``*`` is rare, and ``re`` costs every run's start-up.
    import fnmatch
    import re

    try:
        return re.fullmatch(pattern, release) is not None
    except re.error:
        return fnmatch.fnmatchcase(release, pattern)


def parse_config(
    texts: Sequence[tuple[str, str]],
    release: str,
    error: Callable[[str], None] = lambda message: None,
) -> DepmodConfig:
    """Parse depmod.d files given as (path, text) pairs, in order, for ``release``."""
    search: list[str] = []
    overrides: list[Override] = []
    externals: list[External] = []
    excludes: list[str] = []
    for path, text in texts:
        for number, line in _logical_lines(text):
            words = line.split()
            command, args = words[0], words[1:]
            if command == "search":
                search.extend(args)
            elif command == "override" and len(args) >= 3:
                if _release_matches(args[1], release):
                    overrides.append(Override(args[0].replace("-", "_"), args[2]))
            elif command == "external" and len(args) >= 2:
                if _release_matches(args[0], release):
                    externals.extend(External(d) for d in args[1:])
            elif command == "exclude":
                excludes.extend(args)  # kmod 34 takes a bare ``exclude`` silently
            else:
                error(f"{path}:{number}: ignoring bad line starting with '{command}'")
    if not search:
        search = ["updates", BUILT_IN]
    elif BUILT_IN not in search:
        search.append(BUILT_IN)
    return DepmodConfig(tuple(search), tuple(overrides), tuple(externals), tuple(excludes))


def load_config(
    paths: Sequence[str] | None,
    release: str,
    error: Callable[[str], None] = lambda message: None,
) -> DepmodConfig:
    """Read and parse the depmod.d files under ``paths`` (default: the standard directories)."""
    texts = []
    for name in config_files(CONFIG_DIRS if paths is None else paths):
        try:
            with open(name, "rb") as stream:
                texts.append((name, stream.read().decode("utf-8", "surrogateescape")))
        except OSError:
            continue
    return parse_config(texts, release, error)
