"""kmod's binary index (``modules.*.bin``): a prefix trie read lazily and written byte-exactly.

Layout (all integers big-endian): a 12-byte header ``magic, version, root reference``, then
nodes. A reference is a 28-bit file offset plus three flags saying what the node at that offset
holds, in this order: a NUL-terminated prefix (PREFIX), a child table ``u8 first, u8 last,
(last - first + 1) references`` (CHILDS), and ``u32 count`` values of ``u32 priority`` plus a
NUL-terminated string (VALUES). The character of the edge to a child is consumed by the parent's
table, so it is not repeated in the child's prefix.

kmod 34 writes the root at offset 12 and every node before its children (pre-order, children by
ascending character); older writers put the root last. The reader only follows references, so
it reads both. It parses a node the first time a walk reaches it and keeps it, so opening a
40,000-key index costs nothing and repeated lookups are cheap.
"""

from __future__ import annotations

import mmap
import os
import sys

from lkm.errors import IndexFormatError, IndexHeaderError, IndexMapError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple
from lkm.wildcard import Patterns

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

MAGIC = 0xB007F457
VERSION = 0x00020001
HEADER_SIZE = 12
_OFFSET_MASK = 0x0FFFFFFF
# The pattern characters a wildcard search branches on, in the order it explores them.
_WILDCARDS = (ord("*"), ord("?"), ord("["))
_WILDCARD_BYTES = frozenset(_WILDCARDS)
# What a node holds, carried in the top bits of every reference to it. Plain ints, not an
# IntFlag: every node read tests them, and its class would cost every start-up.
_FLAG_PREFIX = 0x80000000
_FLAG_VALUES = 0x40000000
_FLAG_CHILDS = 0x20000000


class IndexValue(NamedTuple):
    """One value stored under a key; lower priorities come first."""

    priority: int
    value: str


class _Node(NamedTuple):
    """A parsed node. A NamedTuple rather than a dataclass: lookups create many of these."""

    offset: int
    prefix: bytes
    first: int  # character of the table's first child
    # The child table's references as stored (4 bytes each, big-endian; 0 = no child for that
    # character), read one at a time by _child: a lookup follows one child of each node.
    children: bytes
    table: int  # file offset of the table, to say where a bad reference was read
    values: tuple[IndexValue, ...]


def _child(node: _Node, index: int) -> int:
    """The reference in slot ``index`` of ``node``'s child table; 0 for none or no such slot."""
    at = 4 * index
    if 0 <= at < len(node.children):
        return int.from_bytes(node.children[at : at + 4], "big")
    return 0


def _u32(data: bytes | mmap.mmap, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def _decode(raw: bytes) -> str:
    # lkm.text's decoding, written out: that module would be one more import for every lookup.
    return raw.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes | None:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def _read_at_most(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from ``fd`` (fewer if it ends first); a directory reads as none."""
    chunks = []
    try:
        while size > 0:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
    except OSError:
        pass
    return b"".join(chunks)


class Index:
    """A read-only view of one ``*.bin`` file."""

    def __init__(
        self, data: bytes | mmap.mmap, *, path: str | None, closer: mmap.mmap | None = None
    ) -> None:
        self._data = data
        self._size = len(data)
        self._path = path
        self._closer = closer
        self._nodes: dict[int, _Node] = {}
        self._subtrees: dict[tuple[int, int], Patterns[tuple[IndexValue, ...]]] = {}
        if self._size < HEADER_SIZE:
            raise self._error(
                f"truncated header: expected {HEADER_SIZE} bytes, found {self._size}", 0
            )
        magic, version, root = _u32(data, 0), _u32(data, 4), _u32(data, 8)
        if magic != MAGIC:
            raise IndexHeaderError(
                f"bad magic: expected {MAGIC:#010x}, found {magic:#010x}",
                path=path,
                offset=0,
                field="magic",
                found=magic,
                expected=MAGIC,
            )
        if version >> 16 != VERSION >> 16:
            # kmod 34 checks the major version only: any minor version is read.
            raise IndexHeaderError(
                f"unsupported version: expected {VERSION:#010x}, found {version:#010x}",
                path=path,
                offset=4,
                field="version",
                found=version >> 16,
                expected=VERSION >> 16,
            )
        self._root = root
        self._node(root, 8)  # a file whose root is unreadable is rejected at once

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, path: str | None = None) -> Index:
        return cls(bytes(data), path=path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Index:
        """Map the file at ``path``; OSError (missing, unreadable) propagates to the caller.

        As for kmod, whatever opens is mapped for the size fstat gives: a directory opens but
        cannot be mapped (IndexMapError, with the descriptor number, which is the lowest free
        one as for kmod); a FIFO or a device has size 0 and reads as an empty file (nothing
        is read from it, so a writer's bytes are not taken for an index)."""
        name = os.fspath(path)
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return cls.from_fd(fd, name, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    @classmethod
    def from_fd(cls, fd: int, name: str, size: int) -> Index:
        """The index in the open file ``fd`` of ``size`` bytes (``name`` for messages); the
        caller keeps and closes ``fd``."""
        if size < HEADER_SIZE:  # mmap refuses empty files; the header check reports it
            return cls(_read_at_most(fd, size), path=name)
        try:
            mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except OSError as err:
            raise IndexMapError(
                f"cannot map {size} bytes: {os.strerror(err.errno or 0)}",
                path=name,
                fd=fd,
                size=size,
                errno=err.errno or 0,
            ) from err
        try:
            return cls(mapped, path=name, closer=mapped)
        except BaseException:
            mapped.close()
            raise

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()
            self._closer = None
        self._nodes.clear()
        self._subtrees.clear()

    def __enter__(self) -> Index:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str | None:
        return self._path

    # -- queries -------------------------------------------------------------------------

    def lookup(self, key: str) -> list[IndexValue]:
        """All values stored under exactly ``key``, lowest priority first."""
        raw = _encode(key)
        if raw is None:
            return []
        node = self._node(self._root, 8)
        pos, end = 0, len(raw)
        while True:
            prefix = node.prefix
            if prefix:
                if not raw.startswith(prefix, pos):
                    return []
                pos += len(prefix)
            if pos == end:
                return list(node.values)
            index = raw[pos] - node.first
            ref = _child(node, index)
            if not ref:
                return []
            node = self._node(ref, node.table + 4 * index)
            pos += 1

    def search_wildcard(self, key: str) -> list[IndexValue]:
        """Values of every stored fnmatch pattern that matches ``key``, merged by priority.

        The walk follows ``key`` literally; at every node it also takes the ``*``, ``?`` and
        ``[`` children (or stops at such a character inside a prefix), and from there on
        matches the rest of each stored pattern against the rest of ``key`` with fnmatch. A
        literal key stored in the index matches itself; a key holding ``*`` can reach one
        pattern both ways and then reports it twice, as kmod 34 does. Equal priorities come
        out in reverse order of discovery.
        """
        raw = _encode(key)
        if raw is None:
            return []
        hits: list[IndexValue] = []
        ref, at = self._root, 8
        node = self._node(ref, at)
        pos, end = 0, len(raw)
        seen = b""
        while True:
            for i, char in enumerate(node.prefix):
                if char in _WILDCARD_BYTES:
                    self._match_subtree(ref, at, seen, raw, start=pos + i, hits=hits)
                    return hits
                if pos + i >= end or raw[pos + i] != char:
                    return hits
            pos += len(node.prefix)
            seen += node.prefix
            for char in _WILDCARDS:
                index = char - node.first
                child = _child(node, index)
                if child:
                    child_at = node.table + 4 * index
                    pattern = seen + bytes((char,))
                    self._match_subtree(child, child_at, pattern, raw, start=pos, hits=hits)
            if pos == end:
                _merge(hits, node.values)
                return hits
            char = raw[pos]
            index = char - node.first
            ref = _child(node, index)
            if not ref:
                return hits
            at = node.table + 4 * index
            node = self._node(ref, at)
            seen += bytes((char,))
            pos += 1

    def items(self) -> Iterator[tuple[str, list[IndexValue]]]:
        """Every key with its values, in byte order of the keys."""
        for key, node in self._walk(self._root, 8, b""):
            if node.values:
                yield _decode(key), list(node.values)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix``, in byte order; only the subtree below the
        prefix is read (completing a name from thousands should not walk them all)."""
        raw = _encode(prefix)
        if raw is None:
            return
        ref, at = self._root, 8
        node = self._node(ref, at)
        pos, seen = 0, b""
        while True:
            rest = raw[pos:]
            if len(rest) <= len(node.prefix):
                if node.prefix.startswith(rest):
                    for key, found in self._walk(ref, at, seen):
                        if found.values:
                            yield _decode(key)
                return
            if not rest.startswith(node.prefix):
                return
            seen += node.prefix
            pos += len(node.prefix)
            char = raw[pos]
            index = char - node.first
            ref = _child(node, index)
            if not ref:
                return
            at = node.table + 4 * index
            node = self._node(ref, at)
            seen += bytes((char,))
            pos += 1

    # -- internals -----------------------------------------------------------------------

    def _match_subtree(
        self, ref: int, at: int, seen: bytes, key: bytes, *, start: int, hits: list[IndexValue]
    ) -> None:
        """Merge the values of the patterns below ``ref`` that match ``key``.

        The first ``start`` bytes of each pattern were matched literally on the way down, so
        only the rest is given to fnmatch, against the rest of the key: a backslash in the
        literal part escapes nothing (kmod 34 behaves so). kmod merges a subtree children
        first, then the node's own values.
        """
        for values in self._subtree(ref, at, seen, start).matching(key[start:]):
            _merge(hits, values)

    def _subtree(
        self, ref: int, at: int, seen: bytes, start: int
    ) -> Patterns[tuple[IndexValue, ...]]:
        """The patterns below ``ref`` with their values, in merge order; cached.

        Keyed by ``start`` too: in a well-formed trie a node has one depth, but a crafted file
        may reach one node from two.
        """
        cached = self._subtrees.get((ref, start))
        if cached is None:
            found = [
                (pattern[start:], node.values)
                for pattern, node in self._walk(ref, at, seen, postorder=True)
                if node.values
            ]
            cached = Patterns([rest for rest, _ in found], [values for _, values in found])
            self._subtrees[ref, start] = cached
        return cached

    def _walk(
        self, ref: int, at: int, key: bytes, *, postorder: bool = False
    ) -> Iterator[tuple[bytes, _Node]]:
        """Walk below ``ref`` yielding (full key, node); refuses cycles and shared nodes.

        Pre-order yields keys in byte order; post-order yields a node after its children.

        Iterative, so a maliciously deep chain of nodes cannot exhaust the Python stack.
        """
        on_path: set[int] = set()
        visited: set[int] = set()
        stack: list[tuple[bytes, _Node, Iterator[int]]] = []
        pending: tuple[int, int, bytes] | None = (ref, at, key)
        while True:
            if pending is not None:
                ref, at, key = pending
                pending = None
                offset = ref & _OFFSET_MASK
                if offset in on_path:
                    raise self._error(f"reference cycle: node {offset:#x} is its own ancestor", at)
                if offset in visited:
                    raise self._error(f"node {offset:#x} is referenced twice in one trie", at)
                node = self._node(ref, at)
                on_path.add(offset)
                visited.add(offset)
                key += node.prefix
                if not postorder:
                    yield key, node
                stack.append((key, node, iter(range(0, len(node.children), 4))))
            if not stack:
                return
            key, node, slots = stack[-1]
            references = node.children
            for at in slots:
                # _child's reading, written out: a walk reads every slot of every table.
                child = int.from_bytes(references[at : at + 4], "big")
                if child:
                    char = bytes((node.first + at // 4,))
                    pending = (child, node.table + at, key + char)
                    break
            else:
                stack.pop()
                on_path.discard(node.offset)
                if postorder:
                    yield key, node

    def _node(self, ref: int, at: int) -> _Node:
        """The node ``ref`` points at, read at byte ``at``; parsed once, then cached."""
        node = self._nodes.get(ref)
        if node is None:
            node = self._parse(ref, at)
            self._nodes[ref] = node
        return node

    def _parse(self, ref: int, at: int) -> _Node:
        data, size = self._data, self._size
        offset = ref & _OFFSET_MASK
        if offset < HEADER_SIZE or offset > size:
            raise self._error(
                f"reference {ref:#010x} points outside the nodes (bytes {HEADER_SIZE:#x} to "
                f"{size:#x})",
                at,
            )
        pos = offset
        prefix = b""
        if ref & _FLAG_PREFIX:
            nul = data.find(b"\0", pos)
            if nul < 0:
                raise self._error("unterminated prefix: no NUL before the end of the file", pos)
            prefix = data[pos:nul]
            pos = nul + 1
        first, children, table = 0, b"", pos
        if ref & _FLAG_CHILDS:
            if pos + 2 > size:
                raise self._error("truncated child table: expected first and last bytes", pos)
            first, last = data[pos], data[pos + 1]
            if first > last:
                raise self._error(
                    f"bad child table: first character {first:#04x} is after last {last:#04x}",
                    pos,
                )
            count = last - first + 1
            table = pos + 2
            pos = table + 4 * count
            if pos > size:
                raise self._error(
                    f"truncated child table: expected {count} references, found "
                    f"{(size - table) // 4}",
                    table,
                )
            children = data[table:pos]
        values: tuple[IndexValue, ...] = ()
        if ref & _FLAG_VALUES:
            values = self._parse_values(pos)
        return _Node(offset, prefix, first, children, table, values)

    def _parse_values(self, pos: int) -> tuple[IndexValue, ...]:
        data, size = self._data, self._size
        if pos + 4 > size:
            raise self._error("truncated values: expected a 4-byte count", pos)
        count = _u32(data, pos)
        pos += 4
        # Each value takes at least 5 bytes; checking first keeps a bogus count from
        # running a long loop.
        if count * 5 > size - pos:
            raise self._error(
                f"truncated values: {count} values cannot fit in {size - pos} bytes", pos - 4
            )
        values = []
        for _ in range(count):
            if pos + 4 > size:
                raise self._error("truncated values: expected a 4-byte priority", pos)
            priority = _u32(data, pos)
            nul = data.find(b"\0", pos + 4)
            if nul < 0:
                raise self._error("unterminated value: no NUL before the end of the file", pos)
            values.append(IndexValue(priority, _decode(data[pos + 4 : nul])))
            pos = nul + 1
        return tuple(values)

    def _error(self, message: str, offset: int) -> IndexFormatError:
        return IndexFormatError(message, path=self._path, offset=offset)


def _merge(hits: list[IndexValue], values: Iterable[IndexValue]) -> None:
    """Insert ``values`` one by one keeping ``hits`` sorted by priority.

    A new value goes before the hits of equal priority, as kmod 34 does: equal-priority hits
    come out in reverse order of discovery (pinned by black-box comparison).
    """
    for value in values:
        where = len(hits)
        for at, hit in enumerate(hits):
            if hit.priority >= value.priority:
                where = at
                break
        hits.insert(where, value)


# -- the patterns below a wildcard ---------------------------------------------------------


class IndexBuilder:
    """Collects (key, value, priority) entries and lays them out as kmod 34 does."""

    def __init__(self) -> None:
        self._values: dict[bytes, list[tuple[int, bytes]]] = {}

    def add(self, key: str, value: str, priority: int) -> None:
        raw = key.encode("utf-8", "surrogateescape")
        for i, byte in enumerate(raw):
            if byte >= 0x80 or byte == 0:
                raise IndexFormatError(
                    f"index key {key!r}: byte {byte:#04x} at position {i}, expected 7-bit ASCII "
                    "without NUL"
                )
        data = value.encode("utf-8", "surrogateescape")
        if b"\0" in data:
            raise IndexFormatError(f"index value {value!r} for key {key!r} contains a NUL")
        if not 0 <= priority <= 0xFFFFFFFF:
            raise IndexFormatError(
                f"index priority {priority} for key {key!r} does not fit in 32 bits"
            )
        self._values.setdefault(raw, []).append((priority, data))

    def __len__(self) -> int:
        return len(self._values)

    def to_bytes(self) -> bytes:
        return index_bytes(self._values)


def write_index(entries: Iterable[tuple[str, str, int]]) -> bytes:
    """The bytes kmod 34 writes for ``(key, value, priority)`` entries added in this order."""
    builder = IndexBuilder()
    for key, value, priority in entries:
        builder.add(key, value, priority)
    return builder.to_bytes()


def index_bytes(entries: dict[bytes, list[tuple[int, bytes]]]) -> bytes:
    """The index holding ``entries``: key -> [(priority, value)] in the order they were added.

    Keys must be 7-bit without NUL and values without NUL (IndexBuilder checks; depmod only
    passes such). This is the writer behind IndexBuilder, for callers that group entries
    themselves: depmod writes five indexes of up to 40,000 keys per run.

    One recursive pass over the sorted keys: a node covers a run of keys; its prefix ends where
    the first and last key of the run part (their common prefix is the whole run's), and its
    children are the sub-runs by next character, found by bisection. Every node's size is known
    before its children are laid out, so its offset is final when it is made (pre-order), and
    its bytes are filled in once its children have their offsets.
    """
    # Here: the readers, on every command's start-up, need none of these (array imports
    # collections).
    import struct
    from _bisect import bisect_left  # C: the bisect module around it is one more import
    from array import array

    one_value = struct.Struct(">II").pack  # a value count and the first value's priority
    keys = sorted(entries)
    # Each key's values as the node holding them ends (most keys have one value).
    tails = [
        one_value(1, found[0][0]) + found[0][1] + b"\0" if len(found) == 1 else _values_bytes(found)
        for found in map(entries.__getitem__, keys)
    ]
    pieces: list[bytes] = [b""]
    append = pieces.append
    position = HEADER_SIZE

    def node(lo: int, hi: int, start: int, depth: int) -> int:
        nonlocal position
        first = keys[lo] if lo < hi else b""
        if depth < 0:
            depth = _common_length(first, keys[hi - 1], start) if hi - lo > 1 else len(first)
        tail = b""
        flags = 0
        if lo < hi and len(first) == depth:
            tail = tails[lo]
            flags = _FLAG_VALUES
            lo += 1
        prefix = first[start:depth]
        head = prefix + b"\0" if prefix else b""
        if prefix:
            flags |= _FLAG_PREFIX
        if lo == hi:
            ref = position | flags
            append(head + tail)
            position += len(head) + len(tail)
            return ref
        # The children's characters: the keys are sorted, so the first and last key have the
        # lowest and highest.
        low = keys[lo][depth]
        span = keys[hi - 1][depth] - low + 1
        ref = position | flags | _FLAG_CHILDS
        position += len(head) + 2 + 4 * span + len(tail)
        slot = len(pieces)
        append(b"")
        table = [0] * span
        at = lo
        while at < hi:
            key = keys[at]
            char = key[depth]
            if at + 1 < hi and keys[at + 1][depth] == char:
                # A run of keys with this next character: a node of its own.
                end = bisect_left(keys, key[: depth + 1] + b"\x80", at + 2, hi)
                table[char - low] = node(at, end, depth + 1, -1)
                at = end
                continue
            # A leaf (most nodes): one key, what is left of it and its values.
            rest = key[depth + 1 :]
            if rest:
                table[char - low] = position | _FLAG_PREFIX_VALUES
                piece = rest + b"\0" + tails[at]
            else:
                table[char - low] = position | _FLAG_VALUES
                piece = tails[at]
            append(piece)
            position += len(piece)
            at += 1
        # The table as big-endian words, packed at C speed.
        words = array("I", table)
        if _LITTLE:
            words.byteswap()
        pieces[slot] = b"".join((head, bytes((low, low + span - 1)), words.tobytes(), tail))
        return ref

    root = node(0, len(keys), 0, 0)
    pieces[0] = struct.pack(">III", MAGIC, VERSION, root)
    return b"".join(pieces)


def _values_bytes(found: list[tuple[int, bytes]]) -> bytes:
    """A node's values: the count, then priority ascending, the latest added first among
    equals (a stable sort of the reversed list)."""
    if len(found) > 1:
        found = sorted(found[::-1], key=_priority)
    return len(found).to_bytes(4, "big") + b"".join(
        priority.to_bytes(4, "big") + value + b"\0" for priority, value in found
    )


def _priority(entry: tuple[int, bytes]) -> int:
    return entry[0]


def _common_length(a: bytes, b: bytes, start: int) -> int:
    """The length of the common prefix of two NUL-free byte strings that share their first
    ``start`` bytes, with C-speed operations."""
    size = min(len(a), len(b))
    diff = int.from_bytes(a[start:size], "big") ^ int.from_bytes(b[start:size], "big")
    return size - (diff.bit_length() + 7) // 8


_LITTLE = sys.byteorder == "little"
_FLAG_PREFIX_VALUES = _FLAG_PREFIX | _FLAG_VALUES
