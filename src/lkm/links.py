"""Links named after kmod's tools that start lkm, in a directory of the user's choice.

Put first on ``PATH``, such a directory makes ``modprobe``, ``modinfo`` and the rest run lkm
while kmod stays installed and untouched. Only symbolic links to lkm are ever replaced or
removed: any other file under one of the names stops an install before it changes anything.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lkm.errors import LkmError


class LinkError(LkmError):
    """A link could not be made or removed; ``path`` is the file in the way, or the link."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class Change(enum.Enum):
    CREATED = "created"
    REPLACED = "replaced"  # a link to another lkm (one installed elsewhere before)
    UNCHANGED = "unchanged"  # already a link to this lkm
    REMOVED = "removed"
    ABSENT = "absent"  # nothing there to remove
    NOT_OURS = "not ours"  # a file that is not a link to lkm: left alone


@dataclass(frozen=True)
class LinkRecord:
    path: Path
    target: Path | None  # what the link points at (None: no link there)
    change: Change


def install_links(directory: Path, program: Path, names: Sequence[str]) -> list[LinkRecord]:
    """A symbolic link ``directory/NAME`` to ``program`` (lkm) for each name, the directory
    made if missing. Raises LinkError, before changing anything, when one of the names is
    taken by a file that is not a link to lkm."""
    program = Path(os.path.abspath(program))
    plans = []
    for name in names:
        path = directory / name
        current = _link_target(path)
        if current is None and os.path.lexists(path):
            raise LinkError(path, "exists and is not a link to lkm; not replaced")
        if current is not None and not _is_lkm(current, path, program):
            raise LinkError(path, f"is a link to {current}, not to lkm; not replaced")
        plans.append((path, current))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LinkError(directory, f"cannot make the directory: {err.strerror}") from err
    records = []
    for path, current in plans:
        if current is not None and _same_file(current, path, program):
            records.append(LinkRecord(path, current, Change.UNCHANGED))
            continue
        _symlink_atomically(program, path)
        change = Change.CREATED if current is None else Change.REPLACED
        records.append(LinkRecord(path, program, change))
    return records


def remove_links(directory: Path, program: Path, names: Sequence[str]) -> list[LinkRecord]:
    """Remove ``directory/NAME`` for each name where it is a symbolic link to lkm (this
    ``program``, or any file named ``lkm``); any other file there is left, and reported so."""
    program = Path(os.path.abspath(program))
    records = []
    for name in names:
        path = directory / name
        current = _link_target(path)
        if current is None:
            change = Change.NOT_OURS if os.path.lexists(path) else Change.ABSENT
            records.append(LinkRecord(path, None, change))
        elif not _is_lkm(current, path, program):
            records.append(LinkRecord(path, current, Change.NOT_OURS))
        else:
            try:
                path.unlink()
            except OSError as err:
                raise LinkError(path, f"cannot remove: {err.strerror}") from err
            records.append(LinkRecord(path, current, Change.REMOVED))
    return records


def _link_target(path: Path) -> Path | None:
    """Where a symbolic link points; None when ``path`` is not one (or does not exist)."""
    try:
        return Path(os.readlink(path))
    except OSError:
        return None


def _is_lkm(target: Path, link: Path, program: Path) -> bool:
    # A link to a file named lkm is taken as lkm's even when that lkm moved or is gone (a venv
    # made again elsewhere): it was made by this command, or by hand to the same end.
    return target.name == "lkm" or _same_file(target, link, program)


def _same_file(target: Path, link: Path, program: Path) -> bool:
    resolved = target if target.is_absolute() else link.parent / target
    try:
        return os.path.samefile(resolved, program)
    except OSError:
        return False


def _symlink_atomically(program: Path, path: Path) -> None:
    """Made under a temporary name and renamed over ``path``: never a moment without it."""
    temporary = path.with_name(f".{path.name}.lkm-tmp-{os.getpid()}")
    try:
        if os.path.lexists(temporary):
            temporary.unlink()
        temporary.symlink_to(program)
        os.replace(temporary, path)
    except OSError as err:
        raise LinkError(path, f"cannot make the link: {err.strerror}") from err
