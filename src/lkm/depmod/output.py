"""depmod's eleven output files: their bytes, and writing them so none is ever half-written.

Text files are built as bytes (module data is written back exactly as it was read); the binary
indexes come from ``lkm.index``. ``write_outputs`` writes each file to a temporary name in the
target directory and flushes it to disk; once all are written, ``lkm.fileset`` renames them
over the old ones as one commit, so lkm's readers (or a crash) see either the old set of files
or the new one, never a mix and never a part of a file.
"""

from __future__ import annotations

import contextlib
import os

from lkm.depmod.order import SYMBOL_BUCKETS, depmod_order, hash_order
from lkm.depmod.records import DepmodError, DepmodResult, FoundModule
from lkm.depmod.scan import ModuleFailure, ModuleScan
from lkm.index import index_bytes
from lkm.moddir import normalize_alias
from lkm.text import decode as _s
from lkm.text import encode as _b
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeAlias

    from lkm.depmod.parallel import Background, Handoff, Pending

__all__ = [
    "TEXT_FILES",
    "BadIndexKey",
    "Content",
    "OutputError",
    "builtin_alias_index",
    "builtin_index",
    "independent_handoff",
    "render",
    "start_render",
    "write_outputs",
]

ALIAS_HEADER = b"# Aliases extracted from modules themselves.\n"
SOFTDEP_HEADER = b"# Soft dependencies extracted from modules themselves.\n"
WEAKDEP_HEADER = b"# Weak dependencies extracted from modules themselves.\n"
SYMBOLS_HEADER = b"# Aliases for symbols, used by symbol_request().\n"
DEVNAME_HEADER = b"# Device nodes to trigger on-demand module loading.\n"
# The files ``-n`` prints, in this order.
TEXT_FILES = (
    "modules.dep",
    "modules.alias",
    "modules.softdep",
    "modules.weakdep",
    "modules.symbols",
    "modules.devname",
)


_Entries = dict[bytes, list[tuple[int, bytes]]]
# A file's bytes, or for an index, the key that stops it from being written.
Content: TypeAlias = "bytes | BadIndexKey"
# What the files that need no other module are made of, of one readable module: its aliases,
# soft and weak dependencies (a ModuleScan's first fields; all a scan worker is sent of the
# modules it did not read).
Own: TypeAlias = "tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]"


class OutputError(DepmodError):
    """Output files could not be written; every old file is untouched.

    ``messages`` holds one line per failure, in kmod 34's words; ``fatal`` is true when the
    last of them ended the run (the directory could not be made, a file could not be renamed
    into place), which kmod reports as FATAL, the others as ERROR.
    """

    def __init__(self, messages: Sequence[str], *, fatal: bool = False) -> None:
        self.messages = tuple(messages)
        self.fatal = fatal
        super().__init__("; ".join(self.messages))

    @property
    def lines(self) -> tuple[tuple[str, str], ...]:
        last = len(self.messages) - 1
        return tuple(
            ("FATAL" if self.fatal and i == last else "ERROR", text)
            for i, text in enumerate(self.messages)
        )


def _dep_lines(result: DepmodResult) -> list[bytes]:
    """Each module's line of modules.dep: everything it needs, directly or not, in rank order
    (``DepmodResult.closure`` for every module, each made from its dependencies' at C speed:
    a module's dependencies rank after it, so from the last rank back, each dependency's
    closure is made before it is needed)."""
    modules = result.modules
    paths = [_b(module.found.relpath) for module in modules]
    rank = [module.sort_index for module in modules]
    closures: list[set[int]] = [set() for _ in modules]
    for index in sorted(range(len(modules)), key=rank.__getitem__, reverse=True):
        deps = modules[index].deps
        if deps:
            closure = closures[index]
            closure.update(deps)
            for dep in deps:
                closure |= closures[dep]
    lines = []
    for path, closure in zip(paths, closures, strict=True):
        if closure:
            needed = sorted(closure, key=rank.__getitem__)
            lines.append(path + b": " + b" ".join(map(paths.__getitem__, needed)))
        else:
            lines.append(path + b":")
    return lines


def render(
    result: DepmodResult, jobs: int = 1, started: Pending[Content] | None = None
) -> list[tuple[str, Content]]:
    """The output files as (name, bytes), in the order kmod 34 writes them.

    With ``jobs`` above one, or ``started`` (from ``start_render`` or ``independent_handoff``),
    the aliases (text and index), the soft and weak dependencies and the device names are laid
    out in another process while this one does the rest (the dependencies, the symbols' index
    and their hash order): about half the work each.
    """
    forked = started
    if forked is None and jobs > 1 and hasattr(os, "fork"):
        forked = start_render(result)
    try:
        return _render(result, forked)
    except BaseException:
        if forked is not None:
            forked.cancel()
        raise


def start_render(result: DepmodResult) -> Background[Content]:
    """Start laying out the part of ``render``'s files that needs no dependencies in a forked
    process: ``result`` needs its modules read and the owners of their exports, its
    dependencies may still be unknown (and are not looked at). Give it to ``render``."""
    from lkm.depmod.parallel import Background

    def produce() -> list[Content]:
        return _independent(result)

    return Background(produce)


def independent_handoff(
    found: Sequence[FoundModule], order_lines: Sequence[str]
) -> Handoff[ModuleScan | ModuleFailure, Own | None, Content]:
    """The part of ``render``'s files that needs no other module, as the work a scan worker
    goes on with once the modules are read (``lkm.depmod.parallel.run_chunks``): ``found``
    are the modules in the order they are read, ``order_lines`` those of ``modules.order``
    (the worker puts them in depmod's order itself). Give its ``pending`` to ``render``."""
    from lkm.depmod.parallel import Handoff

    def finish(own: list[Own | None]) -> list[Content]:
        places = depmod_order(found, order_lines)
        names = [_b(found[i].name) for i in places]
        return independent_files(names, [own[i] for i in places])

    return Handoff(_own, finish)


def _own(scan: ModuleScan | ModuleFailure) -> Own | None:
    return None if isinstance(scan, ModuleFailure) else scan[:3]


def _independent(result: DepmodResult) -> list[Content]:
    names = [_b(module.name) for module in result.modules]
    return independent_files(names, [_own(m.scan) if m.scan else None for m in result.modules])


def independent_files(names: Sequence[bytes], own: Sequence[Own | None]) -> list[Content]:
    """The files that need no other module: modules.alias and its index, modules.softdep,
    modules.weakdep and modules.devname, from each module's name and ``Own`` data (None: the
    module could not be read), in depmod's order."""
    return [*_aliases(names, own), *_module_texts(names, own)]


def _render(result: DepmodResult, forked: Pending[Content] | None) -> list[tuple[str, Content]]:
    dep, dep_bin = _deps(result)
    symbols_bin = _symbols_index(result)
    builtin_bin, builtin_alias_bin = _builtins(result)
    # The symbols' hash order is made here, not in the other process: there it came last, after
    # the alias index, the longest part of the run after the scan, and this process waited.
    symbols = _symbols_text(result, hash_order(result.owners, SYMBOL_BUCKETS))
    if forked is not None:
        alias, alias_bin, softdep, weakdep, devname = forked.result()
    else:
        alias, alias_bin, softdep, weakdep, devname = _independent(result)
    return [
        ("modules.dep", dep),
        ("modules.dep.bin", dep_bin),
        ("modules.alias", alias),
        ("modules.alias.bin", alias_bin),
        ("modules.softdep", softdep),
        ("modules.weakdep", weakdep),
        ("modules.symbols", symbols),
        ("modules.symbols.bin", symbols_bin),
        ("modules.builtin.bin", builtin_bin),
        ("modules.builtin.alias.bin", builtin_alias_bin),
        ("modules.devname", devname),
    ]


def _deps(result: DepmodResult) -> list[Content]:
    dep_lines = _dep_lines(result)
    dep_bin: _Entries = {}
    for module, line in zip(result.modules, dep_lines, strict=True):
        _add(dep_bin, _b(module.name), line, module.index)
    return [b"".join(line + b"\n" for line in dep_lines), _index(dep_bin)]


def _aliases(names: Sequence[bytes], own: Sequence[Own | None]) -> list[Content]:
    alias_text = [ALIAS_HEADER]
    alias_bin: _Entries = {}
    entry = alias_bin.setdefault
    for index, (name, data) in enumerate(zip(names, own, strict=True)):
        if data is not None and data[0]:
            line_end = b" " + name + b"\n"
            value = (index, name)
            for alias in data[0]:
                alias_text.append(b"alias " + alias + line_end)
                # _add's work, inline: this runs for every alias of the tree.
                key = _normalize(alias) if b"-" in alias else alias
                if key.isascii():
                    entry(key, []).append(value)
                elif _BAD_KEY not in alias_bin:
                    alias_bin[_BAD_KEY] = [(0, key)]
    return [b"".join(alias_text), _index(alias_bin)]


def _module_texts(names: Sequence[bytes], own: Sequence[Own | None]) -> list[Content]:
    softdep_text = [SOFTDEP_HEADER]
    weakdep_text = [WEAKDEP_HEADER]
    devname_text: list[bytes] = []
    for name, data in zip(names, own, strict=True):
        if data is None:
            continue
        aliases, softdeps, weakdeps = data
        for softdep in softdeps:
            softdep_text.append(b"softdep " + name + b" " + softdep + b"\n")
        for weakdep in weakdeps:
            weakdep_text.append(b"weakdep " + name + b" " + weakdep + b"\n")
        devname = _devname(name, aliases)
        if devname is not None:
            # The header comes with the first entry: no device names, an empty file.
            devname_text.extend((DEVNAME_HEADER, devname) if not devname_text else (devname,))
    return [b"".join(softdep_text), b"".join(weakdep_text), b"".join(devname_text)]


def _symbols_text(result: DepmodResult, order: list[bytes]) -> bytes:
    """modules.symbols: the symbols in ``order``, kmod's hash order of them."""
    names = [_b(module.name) for module in result.modules]
    owners = result.owners
    lines = [SYMBOLS_HEADER]
    for symbol in order:
        lines.append(b"alias symbol:" + symbol + b" " + names[owners[symbol]] + b"\n")
    return b"".join(lines)


def _symbols_index(result: DepmodResult) -> Content:
    """modules.symbols.bin: one owner per symbol, so the order they are added in is no matter."""
    names = [_b(module.name) for module in result.modules]
    owners = result.owners
    symbols_bin: _Entries = {
        b"symbol:" + symbol: [(owner, names[owner])] for symbol, owner in owners.items()
    }
    if not all(map(bytes.isascii, owners)):
        # kmod adds them in its hash order, and names the first it cannot hold in that order.
        symbol = next(s for s in hash_order(owners, SYMBOL_BUCKETS) if not s.isascii())
        return BadIndexKey(b"symbol:" + symbol)
    return _index(symbols_bin)


def _builtins(result: DepmodResult) -> list[Content]:
    return [builtin_index(result.builtin), builtin_alias_index(result.builtin_modinfo)]


def builtin_index(names: Sequence[str] | None) -> Content:
    """modules.builtin.bin: an unreadable modules.builtin (None) gives an empty file, not an
    empty index."""
    if names is None:
        return b""
    entries: _Entries = {}
    for name in names:
        _add(entries, _b(name), b"", 0)
    return _index(entries)


def builtin_alias_index(modinfo: bytes | None) -> Content:
    """modules.builtin.alias.bin from modules.builtin.modinfo (None: unreadable, empty file)."""
    if modinfo is None:
        return b""
    entries: _Entries = {}
    for module_name, alias in _builtin_aliases(modinfo):
        _add(entries, _normalize(alias), module_name, 0)
    return _index(entries)


# Where ``_add`` keeps the first key an index cannot hold: no real key holds a NUL.
_BAD_KEY = b"\0"


class BadIndexKey:
    """An index that cannot be written: ``key`` holds a byte above 7-bit ASCII.

    kmod 34 fails the run on it (FATAL) when it comes to write that index, after the files
    before it were written; with ``-n`` no index is written, and nothing fails.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key

    def error(self) -> DepmodError:
        bad = next(byte for byte in self.key if byte >= 0x80)
        return DepmodError(
            f"Module index: bad character '{_s(bytes([bad]))}'={bad:#04x} - only 7-bit ASCII "
            f"is supported:\n{_s(self.key)}"
        )


def _add(entries: _Entries, key: bytes, value: bytes, priority: int) -> None:
    if key.isascii():
        entries.setdefault(key, []).append((priority, value))
    elif _BAD_KEY not in entries:
        entries[_BAD_KEY] = [(0, key)]


def _index(entries: _Entries) -> bytes | BadIndexKey:
    """The index of ``entries``, or the first key it cannot hold."""
    bad = entries.get(_BAD_KEY)
    return index_bytes(entries) if bad is None else BadIndexKey(bad[0][1])


def _normalize(alias: bytes) -> bytes:
    """'-' as '_' outside bracket expressions (fast path: no '-' at all)."""
    if b"-" not in alias:
        return alias
    return _b(normalize_alias(_s(alias)))


def _devname(name: bytes, aliases: tuple[bytes, ...]) -> bytes | None:
    """``name devname c|bMAJOR:MINOR`` when the module names both a device node and numbers."""
    devname = None
    major = None
    for alias in aliases:
        if alias.startswith(b"devname:") and devname is None:
            devname = alias[len(b"devname:") :]
        if major is None:
            major = _major(alias)
    if devname is None or major is None:
        return None
    return name + b" " + devname + b" " + major + b"\n"


def _major(alias: bytes) -> bytes | None:
    """``cMAJOR:MINOR`` for an alias ``char-major-MAJOR-MINOR``, ``b...`` for ``block-major-``
    (both numbers ASCII digits, the alias nothing more; no ``re``: it costs start-up)."""
    if alias.startswith(b"char-major-"):
        kind, numbers = b"c", alias[len(b"char-major-") :]
    elif alias.startswith(b"block-major-"):
        kind, numbers = b"b", alias[len(b"block-major-") :]
    else:
        return None
    major, dash, minor = numbers.partition(b"-")
    if dash and major.isdigit() and minor.isdigit():
        return kind + major + b":" + minor
    return None


def _builtin_aliases(modinfo: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for item in modinfo.split(b"\0"):
        module, dot, rest = item.partition(b".")
        key, eq, value = rest.partition(b"=")
        if dot and eq and key == b"alias":
            out.append((module, value))
    return out


def write_outputs(directory: str, files: Sequence[tuple[str, bytes | Callable[[], bytes]]]) -> None:
    """Write every file of ``files`` into ``directory`` (made if missing, as kmod does), all
    replaced together (``lkm.fileset``).

    A file's bytes may be given as a function, called only once its temporary file is open
    (kmod reads the builtin files at that moment, so their warnings come then, or not at all).
    Each goes to ``<name>.<pid>.<n>.<n>`` first (the name kmod 34 uses) and is flushed to disk;
    once all are written they are renamed into place in one commit, so a reader or a crash
    sees the old set or the new one, never a part.

    Failures keep kmod 34's outcome, file by file: a file that cannot be created is reported
    and the others are still written (and committed); a failed write (a full disk), a key an
    index cannot hold (DepmodError) or a rename that fails (a directory in the way, FATAL)
    stops there, and the files before it are committed, none after. Unlike kmod 34, which
    renames the truncated file into place, leaves the temporary file of a failed rename behind
    and, for a read-only directory, exits 0, no temporary file is left and OutputError is
    raised.
    """
    try:
        os.makedirs(directory, 0o755, exist_ok=True)
    except OSError as err:
        reason = os.strerror(err.errno or 0)
        raise OutputError(
            [f"could not create directory {directory}: {reason}"], fatal=True
        ) from err
    failures: list[str] = []
    written: list[tuple[str, str]] = []  # (temporary, name), flushed to disk or on the way
    syncs: list[_Flush] = []  # for each of ``written``
    pid = os.getpid()
    try:
        for name, content in files:
            temporary = f"{name}.{pid}.{_random_number()}.{_random_number()}"
            try:
                fd = os.open(
                    f"{directory}/{temporary}",
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                    0o644,
                )
            except OSError as err:
                reason = os.strerror(err.errno or 0)
                failures.append(f"openat({directory}, {temporary}, 301, 644): {reason}")
                continue
            try:
                data = content() if callable(content) else content
                view = memoryview(data)
                while view:
                    written_now = os.write(fd, view)
                    view = view[written_now:]
            except BaseException as err:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(f"{directory}/{temporary}")
                if isinstance(err, OSError):
                    _settle(directory, written, syncs, failures)
                    failures.append(_truncated(name, err))
                    _commit(directory, written, failures)
                    raise OutputError(failures) from err
                if isinstance(err, DepmodError):
                    _settle(directory, written, syncs, failures)
                    _commit(directory, written, failures)
                raise
            syncs.append(_Flush(fd))
            written.append((temporary, name))
            if os.path.isdir(f"{directory}/{name}") and not os.path.islink(f"{directory}/{name}"):
                # The rename will fail: kmod stops there, so nothing after it is computed.
                break
        error = _settle(directory, written, syncs, failures)
        _commit(directory, written, failures)
        if error is not None:
            raise OutputError(failures) from error
    except BaseException:
        # Interrupted (or a commit that failed): whatever was not committed goes.
        for flush in syncs:
            flush.wait()
        for temporary, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(f"{directory}/{temporary}")
        raise
    if failures:
        raise OutputError(failures)


def _truncated(name: str, error: OSError) -> str:
    """kmod's line for an index it could not write or flush to disk."""
    return f"Could not create index '{name}'. Output is truncated: {os.strerror(error.errno or 0)}"


class _Flush:
    """A written file flushed to disk and closed in a thread of its own: the files' flushes
    overlap each other (the file system can commit them together) and the writing of the
    next files. ``wait`` gives the OSError it ended with, if any.

    The thread is _thread's, not threading's: importing threading is a millisecond at the end
    of the run, and its ``Thread.start`` waits for each new thread to be running."""

    def __init__(self, fd: int) -> None:
        import _thread

        self._fd = fd
        self.error: OSError | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()  # released by the thread as it ends
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as err:
            self.error = err
        finally:
            os.close(self._fd)
            self._done.release()

    def wait(self) -> OSError | None:
        with self._done:
            return self.error


def _settle(
    directory: str, written: list[tuple[str, str]], syncs: list[_Flush], failures: list[str]
) -> OSError | None:
    """Wait for every flush; from the first file that could not be flushed on, the files are
    removed from ``written`` (and the directory), as if the run had stopped there; the error."""
    errors = [flush.wait() for flush in syncs]
    syncs.clear()
    for position, error in enumerate(errors):
        if error is not None:
            for temporary, _ in written[position:]:
                with contextlib.suppress(OSError):
                    os.unlink(f"{directory}/{temporary}")
            name = written[position][1]
            del written[position:]
            failures.append(_truncated(name, error))
            return error
    return None


def _commit(directory: str, written: list[tuple[str, str]], failures: list[str]) -> None:
    """Commit ``written`` (emptied: nothing is left to remove); a failed rename is FATAL."""
    from lkm.fileset import RECORD, CommitFailed, commit

    pairs = list(written)
    written.clear()
    try:
        commit(directory, pairs)
    except CommitFailed as failed:
        temporary, name = pairs[failed.position]
        reason = os.strerror(failed.error.errno or 0)
        failures.append(f"renameat({directory}, {temporary}, {directory}, {name}): {reason}")
        raise OutputError(failures, fatal=True) from failed.error
    except OSError as err:
        reason = os.strerror(err.errno or 0)
        failures.append(f"could not write {directory}/{RECORD}: {reason}")
        raise OutputError(failures, fatal=True) from err


def _random_number() -> int:
    return int.from_bytes(os.urandom(4), "little") >> 1
