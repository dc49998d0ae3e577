"""What each module file gave depmod last time, so that a run reads only the files that changed.

Reading the modules (decompressing them, for a compressed tree) is almost all of a depmod
run; the rest is quick. The cache holds, per module path, what ``scan_file`` returned for it
together with the file's identity when it was read: device, inode, size, mtime and ctime, in
nanoseconds. A run uses an entry only when ``os.stat`` of the path gives the same five values;
ctime is among them because nothing but the clock sets it, so a file rewritten and its mtime
set back still counts as changed. Everything else a run does (finding, ordering, resolving,
writing) is done in full each time, so its output is the output of a full run.

Its place is ``modules.lkm-cache.bin`` beside the files depmod writes (the output directory,
``-o``'s when given): a Debian kernel package's purge removes ``modules.*.bin`` there along
with kmod's own indexes, so it goes when they go and never outlives the module directory.

The file is ``MAGIC``, the format version (u32), the byte order of the Python that wrote it
(``l`` or ``b``), the length-prefixed text naming the lkm that wrote it (its version and a
digest of the scanner's source), the payload's length (u64) and the payload, then the SHA-256
of everything before it. A file that is not whole and exactly that is ignored: the run reads
every module and says so in one line. The payload is two pickles of builtin types only
(tuples, bytes, ints, None, booleans), read by an unpickler that refuses every class: first
each module's ``firmware:`` fields under its file's identity, then the entries by path. The
first is ``lkm closure``'s (:func:`load_firmware`): a kernel package runs depmod when it is
installed, so an image builder finds every module's firmware here, a ``stat`` per module in
place of decompressing it, and without unpickling the entries depmod needs. It is keyed by
identity, not path, so that a tree indexed inside a chroot serves a closure computed from
outside it.

The cache is saved after the run's files are committed (``lkm.fileset``) and is not part of
that set: what it holds describes module files, not the output, and every run computes its
output in full, so an old cache beside new files (a run killed between the two) is as good as a
new one. It is written to a temporary name and renamed; a file cut short (a power loss before
the disk had its bytes) fails the checksum and is not used.

Not stored: files that could not be read (their failure may be passing, as EACCES or EIO),
and files whose mtime or ctime is within ``RACY_NS`` of the run's end: a file written again
within the same clock tick as its last change could keep the same identity.
"""

from __future__ import annotations

# pickle's own classes and functions, without the pickle module's import of re and enum.
import _pickle
import contextlib
import io
import os
import struct
import sys
import time

from lkm.depmod.scan import ModuleFailure, ModuleScan
from lkm.errors import LkmError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "CACHE_NAME",
    "ENVIRONMENT",
    "Cache",
    "CacheError",
    "enabled",
    "file_identity",
    "load",
    "load_firmware",
    "save",
]

CACHE_NAME = "modules.lkm-cache.bin"
# LKM_DEPMOD_CACHE=0 (or no, off, false): every module is read, no cache is read or written.
ENVIRONMENT = "LKM_DEPMOD_CACHE"
MAGIC = b"LKMDEPC\0"
FORMAT = 3
_HEAD = struct.Struct("<8sIcB")  # magic, format, byte order, length of the writer's name
_LENGTH = struct.Struct("<Q")
_DIGEST_SIZE = 32
# Files changed this recently are not stored (see the module's text); generous beside the
# coarse clock tick of Linux file timestamps.
RACY_NS = 2_000_000_000

# The type of a ModuleScan field stored in the cache, where it is not a tuple.
_FIELD_TYPES = {"import_weak": bytes}
# (device, inode, size, mtime_ns, ctime_ns)
Identity = tuple[int, int, int, int, int]


class CacheError(LkmError):
    """Why a cache file cannot be used, in the words of the line a run prints."""


class Entry(NamedTuple):
    identity: Identity
    scan: ModuleScan


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment leaves the cache on (it is on unless turned off)."""
    value = (os.environ if environ is None else environ).get(ENVIRONMENT, "")
    return value.strip().lower() not in ("0", "no", "off", "false")


def file_identity(path: str) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def writer_name() -> str:
    """lkm's version and a digest of the code whose results are stored: a cache written by any
    other lkm (an upgrade, a change to the scanner) is not used."""
    import hashlib

    from lkm import __version__, compress, elf, module
    from lkm.depmod import scan

    digest = hashlib.sha256()
    for source in (scan, elf, compress, module):
        try:
            with open(source.__file__ or "", "rb") as stream:
                digest.update(stream.read())
        except OSError:
            digest.update(b"?")
    return f"lkm {__version__} scanner {digest.hexdigest()[:16]}"


class Cache:
    """The entries of a cache file, and those a run adds for the next one."""

    def __init__(self, entries: dict[str, Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = entries or {}
        self.fresh: dict[str, Entry] = {}
        self.loaded = entries is not None

    @property
    def unchanged(self) -> bool:
        """Whether this run's entries are exactly the loaded file's (no module read, none
        gone): writing the file again would change nothing."""
        return (
            self.loaded
            and self.fresh.keys() == self.entries.keys()
            and all(self.fresh[path] is entry for path, entry in self.entries.items())
        )

    def lookup(self, path: str, identity: Identity | None) -> ModuleScan | None:
        entry = self.entries.get(path)
        if entry is None or identity is None or entry.identity != identity:
            return None
        self.fresh[path] = entry
        return entry.scan

    def remember(
        self, path: str, before: Identity | None, result: ModuleScan | ModuleFailure
    ) -> None:
        """Keep what was read from ``path`` if the file held still while it was read."""
        if before is None or isinstance(result, ModuleFailure):
            return
        if file_identity(path) != before:
            return
        self.fresh[path] = Entry(before, result)


def scan_with_cache(
    paths: Sequence[str],
    cache: Cache,
    scan_modules: Callable[[Sequence[str]], list[ModuleScan | ModuleFailure]],
) -> list[ModuleScan | ModuleFailure]:
    """``scan_modules(paths)``, reading only the files ``cache`` has no valid entry for."""
    identities = [file_identity(path) for path in paths]
    results: list[ModuleScan | ModuleFailure | None] = [
        cache.lookup(path, identity) for path, identity in zip(paths, identities, strict=True)
    ]
    missing = [i for i, result in enumerate(results) if result is None]
    if missing:
        scanned = scan_modules([paths[i] for i in missing])
        for i, result in zip(missing, scanned, strict=True):
            results[i] = result
            cache.remember(paths[i], identities[i], result)
    return results  # type: ignore[return-value]  # every slot was filled above


class _Unpickler(_pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise _pickle.UnpicklingError(f"class {module}.{name} in a cache of builtin types")


def load(path: str) -> Cache:
    """The cache file at ``path``; FileNotFoundError when there is none, CacheError when it
    cannot be used."""
    with open(path, "rb") as stream:
        data = stream.read()
    return Cache(_entries(parse(data, writer_name())[1]))


def load_firmware(path: str) -> dict[Identity, tuple[bytes, ...]]:
    """The firmware table of the cache file at ``path``: each module's ``firmware:`` fields
    under the identity its file had when depmod read it (see the module's text); errors as
    :func:`load`'s."""
    with open(path, "rb") as stream:
        data = stream.read()
    return _firmware(parse(data, writer_name(), parts=1)[0])


def parse(data: bytes, writer: str, parts: int = 2) -> list[object]:
    """The first ``parts`` pickles of a cache file's payload (the firmware table, the
    entries), the file checked whole; CacheError says what is wrong."""
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        raise CacheError(f"truncated ({len(data)} bytes)")
    if data[: len(MAGIC)] != MAGIC:
        raise CacheError("not an lkm depmod cache")
    if len(data) < _HEAD.size:
        raise CacheError(f"truncated ({len(data)} bytes)")
    _, version, order, name_size = _HEAD.unpack_from(data)
    if version != FORMAT:
        raise CacheError(f"format {version}, this lkm reads format {FORMAT}")
    end = _HEAD.size + name_size + _LENGTH.size
    if len(data) < end:
        raise CacheError(f"truncated ({len(data)} bytes)")
    (size,) = _LENGTH.unpack_from(data, end - _LENGTH.size)
    whole = end + size + _DIGEST_SIZE
    if len(data) < whole:
        raise CacheError(f"truncated ({len(data)} bytes of {whole})")
    if len(data) > whole:
        raise CacheError(f"{len(data) - whole} bytes after its end")
    import hashlib

    if hashlib.sha256(data[:-_DIGEST_SIZE]).digest() != data[-_DIGEST_SIZE:]:
        raise CacheError("checksum mismatch")
    mine = b"l" if sys.byteorder == "little" else b"b"
    if order != mine:
        raise CacheError(f"written on a {_ORDERS.get(order, repr(order))} system")
    name = data[_HEAD.size : _HEAD.size + name_size].decode("utf-8", "replace")
    if name != writer:
        raise CacheError(f"written by {name}, this is {writer}")
    stream = io.BytesIO(data[end : end + size])
    try:
        # One unpickler each: every pickle numbers its memo from 0.
        return [_Unpickler(stream).load() for _ in range(parts)]
    except Exception as err:  # whatever stops a checked payload's reading makes it unusable
        raise CacheError(f"unreadable payload ({err})") from err


_ORDERS = {b"l": "little-endian", b"b": "big-endian"}


def _entries(payload: object) -> dict[str, Entry]:
    """The payload's entries, each checked for its shape."""
    if not isinstance(payload, dict):
        raise CacheError("unreadable payload (not a table)")
    entries: dict[str, Entry] = {}
    for path, value in payload.items():
        if (
            not isinstance(path, str)
            or not isinstance(value, tuple)
            or len(value) != 2
            or not isinstance(value[0], tuple)
            or len(value[0]) != 5
            or not all(type(number) is int for number in value[0])
            or not isinstance(value[1], tuple)
            or len(value[1]) != len(ModuleScan._fields)
            or not all(
                type(part) is _FIELD_TYPES.get(field, tuple)
                for field, part in zip(ModuleScan._fields, value[1], strict=True)
            )
        ):
            raise CacheError(f"unreadable payload (bad entry for {path!r})")
        entries[path] = Entry(value[0], ModuleScan._make(value[1]))
    return entries


def _firmware(payload: object) -> dict[Identity, tuple[bytes, ...]]:
    """The firmware table, checked for its shape."""
    if not isinstance(payload, dict):
        raise CacheError("unreadable payload (no firmware table)")
    for identity, firmware in payload.items():
        if (
            not isinstance(identity, tuple)
            or len(identity) != 5
            or not all(type(number) is int for number in identity)
            or type(firmware) is not tuple
            or not all(type(name) is bytes for name in firmware)
        ):
            raise CacheError(f"unreadable payload (bad firmware entry for {identity!r})")
    return payload


def serialize(cache: Cache, writer: str, now_ns: int) -> bytes:
    """The bytes of a cache file holding ``cache``'s entries of this run."""
    import hashlib

    limit = now_ns - RACY_NS
    kept = {
        path: entry
        for path, entry in cache.fresh.items()
        if entry.identity[3] < limit and entry.identity[4] < limit
    }
    firmware = {entry.identity: entry.scan.firmware for entry in kept.values()}
    payload = {path: (entry.identity, tuple(entry.scan)) for path, entry in kept.items()}
    # Protocol -1: the highest there is.
    body = _pickle.dumps(firmware, -1)
    body += _pickle.dumps(payload, -1)
    name = writer.encode()
    order = b"l" if sys.byteorder == "little" else b"b"
    head = _HEAD.pack(MAGIC, FORMAT, order, len(name)) + name + _LENGTH.pack(len(body))
    digest = hashlib.sha256()
    digest.update(head)
    digest.update(body)
    return head + body + digest.digest()


def save(directory: str, cache: Cache) -> None:
    """Write the cache into ``directory`` (a temporary name, then renamed) unless it holds the
    same entries already; a failure to write it costs the next run its speed, nothing else, so
    it is not reported."""
    if cache.unchanged:
        return
    data = serialize(cache, writer_name(), time.time_ns())
    # The temporary name matches ``modules.*.bin`` too: one left by a killed run goes with the
    # package's purge like the cache itself.
    temporary = f"{directory}/modules.lkm-cache-{os.getpid()}.tmp.bin"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(temporary, f"{directory}/{CACHE_NAME}")
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
