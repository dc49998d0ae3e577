"""The orders depmod writes things in: kmod's hash-table iteration and ``modules.order``.

kmod keeps modules and symbols in hash tables and writes them in iteration order, so that order
is part of the output format. A table has a power-of-two number of buckets, a key goes to bucket
``hash & (buckets - 1)`` under Paul Hsieh's SuperFastHash, and a bucket keeps its keys sorted
by ``strcmp``: iterating means bucket after bucket, each in byte order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

__all__ = ["MODULE_BUCKETS", "SYMBOL_BUCKETS", "hash_order", "superfasthash"]

MODULE_BUCKETS = 512
SYMBOL_BUCKETS = 2048
_MASK = 0xFFFFFFFF


def _signed(byte: int) -> int:
    # The tail bytes are read as C's (signed) char on the architectures kmod runs on.
    return byte - 256 if byte >= 128 else byte


def superfasthash(data: bytes) -> int:
    """Paul Hsieh's SuperFastHash of ``data`` as a 32-bit unsigned value."""
    length = len(data)
    if length == 0:
        return 0
    h = length
    rem = length & 3
    end = length - rem
    # Little-endian 16-bit halves, two per round, unpacked at once.
    halves = iter(struct.unpack_from(f"<{end >> 1}H", data))
    for low, high in zip(halves, halves, strict=True):
        h = (h + low) & _MASK
        h = ((h << 16) ^ (high << 11) ^ h) & _MASK
        h = (h + (h >> 11)) & _MASK
    if rem == 3:
        h = (h + (data[end] | data[end + 1] << 8)) & _MASK
        h ^= (h << 16) & _MASK
        h ^= (_signed(data[end + 2]) << 18) & _MASK
        h = (h + (h >> 11)) & _MASK
    elif rem == 2:
        h = (h + (data[end] | data[end + 1] << 8)) & _MASK
        h ^= (h << 11) & _MASK
        h = (h + (h >> 17)) & _MASK
    elif rem == 1:
        h = (h + _signed(data[end])) & _MASK
        h ^= (h << 10) & _MASK
        h = (h + (h >> 1)) & _MASK
    h ^= (h << 3) & _MASK
    h = (h + (h >> 5)) & _MASK
    h ^= (h << 4) & _MASK
    h = (h + (h >> 17)) & _MASK
    h ^= (h << 25) & _MASK
    h = (h + (h >> 6)) & _MASK
    return h


def hash_order(keys: Iterable[bytes], buckets: int) -> list[bytes]:
    """``keys`` (unique) in the iteration order of a kmod hash table of ``buckets`` buckets."""
    mask = buckets - 1
    return sorted(keys, key=lambda key: (superfasthash(key) & mask, key))


def listed_first(names: Sequence[str], listed: Iterable[str]) -> list[int]:
    """Indexes into ``names``: those in ``listed`` first, in its order, then the rest as they are.

    This is how ``modules.order`` rearranges the modules; a name listed twice counts at its first
    place and names not present are skipped.
    """
    where = {name: i for i, name in enumerate(names)}
    front: list[int] = []
    taken: set[int] = set()
    for name in listed:
        index = where.get(name)
        if index is not None and index not in taken:
            taken.add(index)
            front.append(index)
    return front + [i for i in range(len(names)) if i not in taken]
