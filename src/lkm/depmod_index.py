"""A bulk writer for kmod's binary index, for depmod's large indexes.

It lays out exactly the bytes of ``lkm.index.IndexBuilder`` (kmod 34's pre-order layout; the
tests compare the two on every index of the real trees) but works on raw bytes with plain ints
and lists, which matters when a tree has 40,000 aliases: depmod writes five indexes per run.
"""

from __future__ import annotations

import struct
from bisect import bisect_left

from lkm.index import HEADER_SIZE, MAGIC, VERSION

__all__ = ["index_bytes"]

_PREFIX = 0x80000000
_VALUES = 0x40000000
_CHILDS = 0x20000000


def index_bytes(entries: dict[bytes, list[tuple[int, bytes]]]) -> bytes:
    """The index holding ``entries``: key -> [(priority, value)] in the order they were added.

    Keys must be 7-bit without NUL and values without NUL (depmod only passes such).

    One recursive pass over the sorted keys: a node covers a run of keys; its prefix ends where
    the first and last key of the run part (their common prefix is the whole run's), and its
    children are the sub-runs by next character, found by bisection. Every node's size is known
    before its children are laid out, so its offset is final when it is made (pre-order), and
    its bytes are filled in once its children have their offsets.
    """
    keys = sorted(entries)
    pieces: list[bytes] = [b""]
    position = HEADER_SIZE
    pack_table = struct.Struct
    common = _common_length

    def node(lo: int, hi: int, start: int, depth: int) -> int:
        nonlocal position
        first = keys[lo] if lo < hi else b""
        if depth < 0:
            depth = common(first, keys[hi - 1]) if hi - lo > 1 else len(first)
        values = None
        if lo < hi and len(first) == depth:
            found = entries[first]
            values = found[::-1] if len(found) > 1 else found
            if len(values) > 1:
                # Priority ascending, the latest added first among equals (a stable sort).
                values.sort(key=_priority)
            lo += 1
        runs = []
        at = lo
        while at < hi:
            key = keys[at]
            char = key[depth]
            end = (
                hi
                if at + 1 == hi
                else bisect_left(keys, key[:depth] + bytes((char + 1,)), at + 1, hi)
            )
            runs.append((char, at, end))
            at = end
        prefix = first[start:depth]
        flags = 0
        size = 0
        if prefix:
            flags |= _PREFIX
            size += len(prefix) + 1
        if runs:
            flags |= _CHILDS
            size += 2 + 4 * (runs[-1][0] - runs[0][0] + 1)
        if values is not None:
            flags |= _VALUES
            size += 4 + sum(5 + len(value) for _, value in values)
        ref = position | flags
        position += size
        slot = len(pieces)
        pieces.append(b"")
        parts = []
        if prefix:
            parts.append(prefix + b"\0")
        if runs:
            low, high = runs[0][0], runs[-1][0]
            table = [0] * (high - low + 1)
            for char, a, b in runs:
                if b - a == 1:
                    # A leaf (most nodes): one key, its values and what is left of it.
                    table[char - low] = leaf(keys[a], depth + 1)
                else:
                    table[char - low] = node(a, b, depth + 1, -1)
            parts.append(bytes((low, high)) + pack_table(f">{len(table)}I").pack(*table))
        if values is not None:
            parts.append(_COUNT.pack(len(values)))
            parts.extend(_COUNT.pack(priority) + value + b"\0" for priority, value in values)
        pieces[slot] = b"".join(parts)
        return ref

    def leaf(key: bytes, start: int) -> int:
        nonlocal position
        values = entries[key]
        if len(values) > 1:
            values = sorted(values[::-1], key=_priority)
        rest = key[start:]
        ref = position | _VALUES
        if rest:
            ref |= _PREFIX
            pieces.append(rest + b"\0")
            position += len(rest) + 1
        pieces.append(_COUNT.pack(len(values)))
        position += 4
        for priority, value in values:
            pieces.append(_COUNT.pack(priority) + value + b"\0")
            position += 5 + len(value)
        return ref

    root = node(0, len(keys), 0, 0)
    pieces[0] = struct.pack(">III", MAGIC, VERSION, root)
    return b"".join(pieces)


_COUNT = struct.Struct(">I")


def _priority(entry: tuple[int, bytes]) -> int:
    return entry[0]


def _common_length(a: bytes, b: bytes) -> int:
    """The length of the common prefix of two NUL-free byte strings, with C-speed operations."""
    size = max(len(a), len(b))
    diff = int.from_bytes(a.ljust(size, b"\0"), "big") ^ int.from_bytes(b.ljust(size, b"\0"), "big")
    return size - (diff.bit_length() + 7) // 8
