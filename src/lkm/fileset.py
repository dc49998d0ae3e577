"""depmod's output files as one set: a run replaces all of them or, to lkm's readers, none.

Each output file is written whole to a temporary name in its directory, as kmod does. Renamed
one by one, the files would still not change together: a run killed between two renames would
leave modules.dep new and modules.alias.bin old. So a run renames nothing until every file is
written and flushed to disk, and then commits them in one burst:

1. It writes the commit record ``modules.lkm-commit.bin`` (atomically: a temporary name,
   flushed, renamed), listing each temporary name with the name it replaces, and flushes the
   directory.
2. It renames every temporary file over its final name, flushes the directory again and
   removes the record.

While the record exists, the set in the directory is the new one: for each name the record
lists, its temporary file while it is still there, else the final file (renamed already).
Readers (``open_set``) take the set that way, so they never mix old and new files; kmod's
readers, which know nothing of the record, see each file whole and can see a mix only during
the burst itself, or after a run killed inside it until the next run. The next lkm depmod
(``recover``, at its start and before its own commit) rolls such an interrupted commit
forward: it renames what is left and removes the record. The record's name matches the
``modules.*.bin`` that Debian's kernel packages remove on purge (as lkm's module cache does);
the output files' temporary names are kmod's own.

Writers take an exclusive ``flock`` on the directory for the commit (and the recovery), so two
runs over one tree commit one after the other and the last one's set stays; readers take no
lock. A reader opens the files and then checks that nothing moved under it (``open_set``): the
record it read is still the same (byte for byte: each record holds a random number, so no two
commits write the same one) and, when there was none, each final name
still names the file it opened (renames never bring a replaced file back). Between the opens
and that check it reads the record once more; a commit caught in between makes it try again.

Temporary files of a run killed before its commit (its record never written) are removed by
the next run's ``recover``, but only those of a process that is gone: their names hold the
writer's process id (``<name>.<pid>.<n>.<n>``, kmod's own form, and
``modules.lkm-commit-<pid>.tmp.bin`` and ``modules.lkm-cache-<pid>.tmp.bin`` of the record
and the module cache), so a run never takes the files of one still writing. (A depmod in
another process id namespace writing the same directory could lose its temporary files so.)
"""

from __future__ import annotations

import os
import time

from lkm.typing_lite import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["RECORD", "CommitFailed", "commit", "open_set", "read_record", "recover"]

RECORD = "modules.lkm-commit.bin"
# Its first line, followed by a random number: no two commits write the same record.
_HEADER = b"lkm depmod commit 1 "
# Temporary names of lkm's record and cache, around their writer's pid (see _writer).
_LKM_TEMPORARY = ("modules.lkm-cache-", "modules.lkm-commit-")
_LKM_TEMPORARY_END = ".tmp.bin"
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz.")
# How long a writer waits for another's commit before it commits without the lock (anyone
# who can read the directory can hold it; a commit takes milliseconds).
LOCK_WAIT = 10.0
# How often a reader tries again when a commit moved files under it.
_ATTEMPTS = 100

T = TypeVar("T")
# (device, inode, size, mtime_ns, ctime_ns) of a file opened, None when it was missing.
Identity = tuple[int, int, int, int, int]


class CommitFailed(Exception):
    """A rename of the burst failed: the files before it are in place, the record is gone,
    no temporary file is left. ``position`` is the failed pair's, ``error`` the rename's."""

    def __init__(self, position: int, error: OSError) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


# -- the record -------------------------------------------------------------------------------


def _render(pairs: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{_random_number()}\n", *(f"{temporary} {final}\n" for temporary, final in pairs)]
    return _HEADER + "".join(lines).encode()


def _parse(data: bytes) -> list[tuple[str, str]] | None:
    """The (temporary, final) pairs of a record; None for anything lkm did not write whole."""
    if not data.startswith(_HEADER) or not data.endswith(b"\n"):
        return None
    pairs = []
    for line in data[len(_HEADER) : -1].split(b"\n")[1:]:
        fields = line.decode("utf-8", "replace").split(" ")
        if len(fields) != 2 or not all(_plain(name) for name in fields):
            return None
        pairs.append((fields[0], fields[1]))
    return pairs


def _plain(name: str) -> bool:
    return name.startswith("modules.") and "/" not in name


def read_record(directory: str) -> bytes | None:
    """The record's bytes, None when there is none (or it cannot be read)."""
    try:
        with open(f"{directory}/{RECORD}", "rb") as stream:
            return stream.read()
    except OSError:
        return None


# -- writing ----------------------------------------------------------------------------------


def _locked(directory: str) -> contextlib.AbstractContextManager[None]:
    """The directory's writer lock, for at most LOCK_WAIT seconds of waiting."""
    import contextlib  # here: readers, on every command's start-up, need none of this

    return contextlib.contextmanager(_holding_lock)(directory)


def _holding_lock(directory: str) -> Iterator[None]:
    import fcntl

    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield  # the commit's own calls report what is wrong with the directory
        return
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            except OSError:
                break  # a file system without locks: commit anyway
        yield
    finally:
        os.close(fd)  # releases the lock


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot flush a directory has nothing more to give
    finally:
        os.close(fd)


def commit(directory: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Rename each (temporary, final) of ``pairs`` in ``directory`` as one commit (see the
    module's text); the temporary files are written and flushed already. A failed rename stops
    the burst there (CommitFailed); OSError when the record itself cannot be written (then
    nothing was renamed and the temporary files are removed)."""
    import contextlib

    if not pairs:
        return
    with _locked(directory):
        _roll_forward(directory)
        record = f"modules.lkm-commit-{os.getpid()}.tmp.bin"
        try:
            _write_file(f"{directory}/{record}", _render(pairs))
            os.rename(f"{directory}/{record}", f"{directory}/{RECORD}")
        except OSError:
            for temporary in [record, *(temporary for temporary, _ in pairs)]:
                with contextlib.suppress(OSError):
                    os.unlink(f"{directory}/{temporary}")
            raise
        _sync_directory(directory)
        for position, (temporary, final) in enumerate(pairs):
            try:
                os.rename(f"{directory}/{temporary}", f"{directory}/{final}")
            except OSError as err:
                # The files after it stay old, as kmod leaves them: the record goes first, so
                # no reader takes a temporary file that is about to be removed.
                _finish(directory)
                for left, _ in pairs[position:]:
                    with contextlib.suppress(OSError):
                        os.unlink(f"{directory}/{left}")
                raise CommitFailed(position, err) from err
        _finish(directory)
        _remove_stale(directory)


def _finish(directory: str) -> None:
    import contextlib

    _sync_directory(directory)
    with contextlib.suppress(OSError):  # a directory that cannot change: the reader follows
        os.unlink(f"{directory}/{RECORD}")


def _write_file(path: str, data: bytes) -> None:
    # A file of this name is a dead run's: its name holds this process's id.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(directory: str) -> None:
    """Finish a commit a killed run left (its record), and remove the temporary files of runs
    that are gone. Failures are left for the run's own writing to report."""
    if not os.path.isdir(directory):
        return
    with _locked(directory):
        _roll_forward(directory)
        _remove_stale(directory)


def _roll_forward(directory: str) -> None:
    """Complete the commit of the record in ``directory``, if any (lock held). A file that
    cannot be renamed (gone, or a directory in its way) stays as it is."""
    import contextlib

    data = read_record(directory)
    if data is None:
        return
    for temporary, final in _parse(data) or ():
        with contextlib.suppress(OSError):
            os.rename(f"{directory}/{temporary}", f"{directory}/{final}")
    _finish(directory)


def _remove_stale(directory: str) -> None:
    """Remove temporary files whose writer is gone (lock held, no record)."""
    import contextlib

    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        pid = _writer(name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(f"{directory}/{name}")


def _writer(name: str) -> int | None:
    """The pid in a temporary file's name: kmod's form ``modules.NAME.PID.N.N`` (NAME of
    lowercase letters and dots), lkm's ``modules.lkm-cache-PID.tmp.bin`` and
    ``modules.lkm-commit-PID.tmp.bin``; None for any other name. Read by hand: ``re`` would
    cost each depmod run its import and a compilation, at the end of its serial part."""
    for prefix in _LKM_TEMPORARY:
        if name.startswith(prefix) and name.endswith(_LKM_TEMPORARY_END):
            pid = name[len(prefix) : -len(_LKM_TEMPORARY_END)]
            return int(pid) if pid.isdecimal() else None
    parts = name.rsplit(".", 3)
    if len(parts) != 4 or not all(part.isdecimal() for part in parts[1:]):
        return None
    kind = parts[0].removeprefix("modules.")
    if kind == parts[0] or not kind or not _LOWER.issuperset(kind):
        return None
    return int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _random_number() -> int:
    return int.from_bytes(os.urandom(4), "little") >> 1


# -- reading ----------------------------------------------------------------------------------


class Opened(Generic[T]):
    """What ``open_set`` found for one name: ``value``, or ``error`` when opening it failed."""

    __slots__ = ("error", "value")

    def __init__(self, value: T | None, error: Exception | None) -> None:
        self.value = value
        self.error = error


def open_set(
    directory: str,
    names: Sequence[str],
    opener: Callable[[int, str, int], T],
    close: Callable[[T], None],
) -> dict[str, Opened[T]]:
    """Each of ``names`` in ``directory`` opened as one set: all from before a commit or all
    from after it (see the module's text).

    ``opener(fd, name, size)`` makes the value from an open file (``name``: the final path,
    for messages); what it raises is kept as that name's error, as is the OSError of a file
    that cannot be opened. ``close`` releases the values of an attempt that is tried again.
    """
    result: dict[str, Opened[T]] = {}
    for attempt in range(1, _ATTEMPTS + 1):
        before = read_record(directory)
        pending = _pending(before)
        result = {}
        identities: dict[str, Identity | None] = {}
        for name in names:
            result[name], identities[name] = _open_one(directory, name, pending, opener)
        middle = read_record(directory)
        if middle == before and (
            before is not None
            or all(
                _identity_at(f"{directory}/{name}") == identity
                for name, identity in identities.items()
            )
        ):
            return result
        if attempt == _ATTEMPTS:
            break  # a directory committed to without pause: the last attempt is kept
        for opened in result.values():
            if opened.value is not None:
                close(opened.value)
        time.sleep(0.001)
    return result


def _pending(record: bytes | None) -> dict[str, str]:
    """final -> temporary of a record's pairs."""
    if record is None:
        return {}
    return {final: temporary for temporary, final in _parse(record) or ()}


def _open_one(
    directory: str, name: str, pending: dict[str, str], opener: Callable[[int, str, int], T]
) -> tuple[Opened[T], Identity | None]:
    final = f"{directory}/{name}"
    candidates = [final]
    if name in pending:
        candidates.insert(0, f"{directory}/{pending[name]}")
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as err:
            if path == final:
                return Opened(None, err), None
            continue  # renamed already: the final name holds it
        except OSError as err:
            # A file that is there but cannot be opened (its mode) keeps its identity, so that
            # the check after opening the set sees it unchanged.
            return Opened(None, err), _identity_at(path)
        try:
            status = os.fstat(fd)
            identity = (
                status.st_dev,
                status.st_ino,
                status.st_size,
                status.st_mtime_ns,
                status.st_ctime_ns,
            )
            try:
                return Opened(opener(fd, final, status.st_size), None), identity
            except Exception as err:  # the opener's own failure: kept for the caller
                return Opened(None, err), identity
        finally:
            os.close(fd)
    raise AssertionError("unreachable: the final name is always tried")


def _identity_at(path: str) -> Identity | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
