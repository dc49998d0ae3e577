"""A bulk writer for kmod's binary index, for depmod's large indexes.

It lays out exactly the bytes of ``lkm.index.IndexBuilder`` (kmod 34's pre-order layout; the
tests compare the two on every index of the real trees) but works on raw bytes with plain ints
and lists, which matters when a tree has 40,000 aliases: depmod writes five indexes per run.
"""

from __future__ import annotations

import struct
from typing import Any

from lkm.index import HEADER_SIZE, MAGIC, VERSION

__all__ = ["index_bytes"]

_PREFIX = 0x80000000
_VALUES = 0x40000000
_CHILDS = 0x20000000


def index_bytes(entries: dict[bytes, list[tuple[int, bytes]]]) -> bytes:
    """The index holding ``entries``: key -> [(priority, value)] in the order they were added.

    Keys must be 7-bit without NUL and values without NUL (depmod only passes such).
    """
    keys = sorted(entries)
    prefixes, children, own_key = _trie(keys)
    # Values in output order: priority ascending, the latest added first among equals.
    values: list[list[tuple[int, bytes]] | None] = [
        None if key is None else sorted(reversed(entries[key]), key=lambda e: e[0])
        for key in own_key
    ]
    refs: list[int] = []
    position = HEADER_SIZE
    for prefix, kids, vals in zip(prefixes, children, values, strict=True):
        flags = 0
        size = 0
        if prefix:
            flags |= _PREFIX
            size += len(prefix) + 1
        if kids:
            flags |= _CHILDS
            size += 2 + 4 * (kids[-1][0] - kids[0][0] + 1)
        if vals is not None:
            flags |= _VALUES
            size += 4 + sum(5 + len(value) for _, value in vals)
        refs.append(position | flags)
        position += size
    out = [struct.pack(">III", MAGIC, VERSION, refs[0])]
    append = out.append
    for prefix, kids, vals in zip(prefixes, children, values, strict=True):
        if prefix:
            append(prefix + b"\0")
        if kids:
            first, last = kids[0][0], kids[-1][0]
            table = [0] * (last - first + 1)
            for char, child in kids:
                table[char - first] = refs[child]
            append(bytes((first, last)) + struct.pack(f">{len(table)}I", *table))
        if vals is not None:
            append(struct.pack(">I", len(vals)))
            for priority, value in vals:
                append(struct.pack(">I", priority) + value + b"\0")
    return b"".join(out)


def _common_length(a: bytes, b: bytes) -> int:
    """The length of the common prefix of two NUL-free byte strings, with C-speed operations."""
    size = max(len(a), len(b))
    diff = int.from_bytes(a.ljust(size, b"\0"), "big") ^ int.from_bytes(b.ljust(size, b"\0"), "big")
    return size - (diff.bit_length() + 7) // 8


def _trie(keys: list[bytes]) -> tuple[list[bytes], list[list[tuple[int, int]]], list[bytes | None]]:
    """The compacted trie of sorted unique ``keys`` as (prefix, children, key) per node, in
    pre-order. Built in one pass from the common prefix lengths of neighbouring keys: a node
    exists only where a key ends or keys branch.
    """
    # A node is [depth, a key below it, children, its own key]; the root has depth 0.
    root: list[Any] = [0, b"", [], None]
    stack = [root]
    previous = None
    for key in keys:
        common = 0 if previous is None else _common_length(previous, key)
        previous = key
        popped: list[Any] = root
        while stack[-1][0] > common:
            popped = stack.pop()
        top = stack[-1]
        if top[0] < common:
            # The key branches off inside the edge to ``popped``: split it there.
            middle = [common, popped[1], [popped], None]
            top[2][-1] = middle
            stack.append(middle)
            top = middle
        if len(key) == top[0]:
            top[3] = key  # only the empty key, at the root
            continue
        leaf = [len(key), key, [], key]
        top[2].append(leaf)
        stack.append(leaf)
    prefixes: list[bytes] = []
    children: list[list[tuple[int, int]]] = []
    own_key: list[bytes | None] = []
    # Pre-order walk; each entry is (node, depth of its parent or -1 for the root, parent index).
    todo: list[tuple[list[Any], int, int]] = [(root, -1, -1)]
    while todo:
        node, parent_depth, parent = todo.pop()
        depth, sample, kids, key = node
        index = len(prefixes)
        if parent_depth < 0:
            prefixes.append(b"")
        else:
            prefixes.append(sample[parent_depth + 1 : depth])
            children[parent].append((sample[parent_depth], index))
        children.append([])
        own_key.append(key)
        todo.extend((kid, depth, index) for kid in reversed(kids))
    return prefixes, children, own_key
