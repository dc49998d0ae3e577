"""The orders depmod writes things in: kmod's hash-table iteration and ``modules.order``.

kmod keeps modules and symbols in hash tables and writes them in iteration order, so that order
is part of the output format. A table has a power-of-two number of buckets, a key goes to bucket
``hash & (buckets - 1)`` under Paul Hsieh's SuperFastHash, and a bucket keeps its keys sorted
by ``strcmp``: iterating means bucket after bucket, each in byte order.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence

from lkm.depmod.records import FoundModule

__all__ = [
    "MODULE_BUCKETS",
    "SYMBOL_BUCKETS",
    "depmod_order",
    "hash_order",
    "superfasthash",
    "superfasthash_all",
]

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
    by_length: dict[int, list[bytes]] = {}
    for key in keys:
        by_length.setdefault(len(key), []).append(key)
    order: list[tuple[int, bytes]] = []
    for group in by_length.values():
        order.extend(zip(map(mask.__and__, superfasthash_all(group)), group, strict=True))
    order.sort()
    return [key for _, key in order]


# One 64-bit lane per key: a 32-bit value and room above it for a sum's carry or a shift.
_LANE = 8


def superfasthash_all(keys: Sequence[bytes]) -> list[int]:
    """``superfasthash`` of each of ``keys``, which all have the same length.

    depmod hashes some 20,000 names: one at a time, that is a few Python operations per two
    bytes of each name. Here each key is a lane of one big integer and every step of the hash
    is one operation on all of them at C speed; after each step a mask keeps every lane to 32
    bits, so no carry or shifted bit reaches another lane.
    """
    count = len(keys)
    if count < 8:  # not worth packing
        return [superfasthash(key) for key in keys]
    length = len(keys[0])
    if length == 0:
        return [0] * count
    data = b"".join(keys)
    mask = int.from_bytes(b"\xff\xff\xff\xff\0\0\0\0" * count, "little")

    def lanes(*columns: int, signed: bool = False) -> int:
        """The bytes at ``columns`` of every key, little-endian, one lane per key."""
        packed = bytearray(_LANE * count)
        for i, column in enumerate(columns):
            packed[i::_LANE] = data[column::length]
        if signed and max(packed) >= 128:
            # A lone tail byte is a C char, signed: sign-extended to 32 bits.
            for key in range(count):
                if packed[key * _LANE] >= 128:
                    packed[key * _LANE + 1 : key * _LANE + 4] = b"\xff\xff\xff"
        return int.from_bytes(packed, "little")

    h = int.from_bytes(length.to_bytes(_LANE, "little") * count, "little")
    rem = length & 3
    end = length - rem
    for at in range(0, end, 4):
        h = (h + lanes(at, at + 1)) & mask
        h = ((h << 16) ^ (lanes(at + 2, at + 3) << 11) ^ h) & mask
        h = (h + ((h >> 11) & mask)) & mask
    if rem == 3:
        h = (h + lanes(end, end + 1)) & mask
        h ^= (h << 16) & mask
        h ^= (lanes(end + 2, signed=True) << 18) & mask
        h = (h + ((h >> 11) & mask)) & mask
    elif rem == 2:
        h = (h + lanes(end, end + 1)) & mask
        h ^= (h << 11) & mask
        h = (h + ((h >> 17) & mask)) & mask
    elif rem == 1:
        h = (h + lanes(end, signed=True)) & mask
        h ^= (h << 10) & mask
        h = (h + ((h >> 1) & mask)) & mask
    h ^= (h << 3) & mask
    h = (h + ((h >> 5) & mask)) & mask
    h ^= (h << 4) & mask
    h = (h + ((h >> 17) & mask)) & mask
    h ^= (h << 25) & mask
    h = (h + ((h >> 6) & mask)) & mask
    out = array("Q")
    out.frombytes(h.to_bytes(_LANE * count, "little"))
    if sys.byteorder != "little":  # the lanes were packed little-endian
        out.byteswap()
    return out.tolist()


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


def depmod_order(modules: Sequence[FoundModule], order_lines: Iterable[str]) -> list[int]:
    """Indexes into ``modules`` in depmod's order: kmod's hash order of the names, then the
    ``modules.order`` entries (``order_lines``) moved up front."""
    by_name = {m.name.encode("utf-8", "surrogateescape"): i for i, m in enumerate(modules)}
    hashed = [by_name[key] for key in hash_order(by_name, MODULE_BUCKETS)]
    keys = [_strip_compression(modules[i].relpath) for i in hashed]
    return [hashed[i] for i in listed_first(keys, order_lines)]


def _strip_compression(relpath: str) -> str:
    """The path as ``modules.order`` lists it: the module suffix cut after ``.ko``."""
    cut = relpath.rfind(".ko")
    return relpath[: cut + 3] if cut >= 0 else relpath
