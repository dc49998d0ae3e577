"""Module files' ``firmware:`` fields kept between runs, so that a closure need not decompress
every module again.

Reading a module's ``.modinfo`` means decompressing it whole (an xz stream cannot be entered
in the middle and the section table is at the end), and that is nearly all the time an
initramfs closure takes. Image builders ask again and again about the same tree (every
kernel or firmware package installed rebuilds the initramfs), so what was read is kept in one
file per module directory, each entry under what ``stat`` says of its module file (device,
inode, size, modification and change times): a file replaced, rewritten or touched is read
again. The cache is only an aid: one that cannot be read counts as empty, one that cannot be
written is left as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

VERSION = 1
_Key = tuple[int, int, int, int, int]


def default_directory() -> str:
    """``$XDG_CACHE_HOME/lkm/firmware`` (``~/.cache/lkm/firmware`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lkm", "firmware")


def _key(stat: os.stat_result) -> _Key:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class FirmwareCache:
    """The cache of one module directory, in ``directory`` (see the module docstring)."""

    def __init__(self, directory: str, module_dir: str) -> None:
        import hashlib

        digest = hashlib.sha256(os.fsencode(os.path.realpath(module_dir))).hexdigest()[:32]
        self.path = os.path.join(directory, f"{digest}.json")
        self.module_dir = module_dir
        self._entries: dict[str, list[object]] = self._load()
        self._changed = False

    def _load(self) -> dict[str, list[object]]:
        import json

        try:
            with open(self.path, "rb") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, path: str) -> tuple[str, ...] | None:
        """The firmware kept for ``path``, or None when there is none for the file as it is."""
        entry = self._entries.get(path)
        if not isinstance(entry, list) or len(entry) != 2:
            return None
        try:
            key = _key(os.stat(path))
        except (OSError, ValueError):
            return None
        if entry[0] != list(key) or not isinstance(entry[1], list):
            return None
        return tuple(str(name) for name in entry[1])

    def put(self, path: str, firmware: Sequence[str]) -> None:
        try:
            key = _key(os.stat(path))
        except (OSError, ValueError):
            return
        self._entries[path] = [list(key), list(firmware)]
        self._changed = True

    def save(self) -> None:
        """Write the cache if anything was added (to a temporary name, then renamed)."""
        if not self._changed:
            return
        import json
        import tempfile

        document = {"version": VERSION, "module_dir": self.module_dir, "entries": self._entries}
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".firmware-", dir=directory)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(document, stream, separators=(",", ":"))
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        self._changed = False


__all__ = ["FirmwareCache", "default_directory"]
