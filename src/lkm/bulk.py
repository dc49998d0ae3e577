"""Reading many module files at once, in parallel worker processes.

Image builders and driver matchers ask for the information of thousands of modules. Nearly all
the time goes into decompression (xz above all), which runs in C but holds one core, so the files
are shared out among worker processes; each worker sends back only the small, picklable summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

from lkm.errors import LkmError
from lkm.module import ModuleFile, kmod_errno
from lkm.signature import ModuleSignature


class ModuleSummary(NamedTuple):
    """What modinfo shows of one module file; ``error`` says why it could not be read."""

    path: str
    modinfo: tuple[tuple[str, str], ...]
    signature: ModuleSignature | None
    error: str | None = None
    errno: int | None = None


def summarize(path: str) -> ModuleSummary:
    """Read one module file (in this process)."""
    try:
        module = ModuleFile.from_path(path)
        return ModuleSummary(path, module.modinfo, module.signature)
    except LkmError as err:
        return ModuleSummary(path, (), None, str(err), kmod_errno(err))


def firmware(path: str) -> tuple[tuple[str, ...], str | None]:
    """One module file's ``firmware:`` fields in file order, and why it could not be read
    (None: it was)."""
    try:
        fields = ModuleFile.from_path(path).modinfo
    except LkmError as err:
        return (), str(err)
    return tuple(value for key, value in fields if key == "firmware"), None


def _firmware_chunk(paths: Sequence[str]) -> list[tuple[tuple[str, ...], str | None]]:
    return [firmware(path) for path in paths]


def firmware_many(
    paths: Sequence[str], *, jobs: int | None = None, chunk: int = 16
) -> list[tuple[tuple[str, ...], str | None]]:
    """:func:`firmware` of each of ``paths``, in order, read by ``jobs`` processes (default:
    every core) as :func:`summarize_many` reads them; only the few names travel back."""
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(paths) <= chunk:
        return [firmware(path) for path in paths]
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [result for results in pool.map(_firmware_chunk, chunks) for result in results]


def _summarize_chunk(paths: Sequence[str]) -> list[ModuleSummary]:
    return [summarize(path) for path in paths]


def summarize_many(
    paths: Iterable[str | os.PathLike[str]], *, jobs: int | None = None, chunk: int = 32
) -> Iterator[ModuleSummary]:
    """Summaries of ``paths``, in the order given, read by ``jobs`` processes (default: every
    core). With one job, or few files, everything happens in this process.

    A file that cannot be read does not stop the others: its summary has empty ``modinfo``, no
    ``signature``, ``error`` set to the reason (the LkmError's one-line message, such as
    ``could not read '/x.ko': No such file or directory``) and ``errno`` to the code kmod's
    modinfo reports for it (ENOENT there); a file read well has ``error`` and ``errno`` None.
    """
    names = [os.fspath(path) for path in paths]
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(names) <= chunk:
        yield from map(summarize, names)
        return
    chunks = [names[i : i + chunk] for i in range(0, len(names), chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for summaries in pool.map(_summarize_chunk, chunks):
            yield from summaries
