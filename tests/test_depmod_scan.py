"""depmod's quick reading of a module's headers against ``ElfFile``'s: on every file the quick
way takes, both find the same class, byte order, type, section header table and sections, and
the module reads the same; every file it declines is left to ``ElfFile``, broken or not."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.depmod import scan
from lkm.errors import ElfError

OBJECTS = Path(__file__).parent / "data" / "objects"
FILES = sorted(OBJECTS.glob("*.o"))


def _headers(data: bytes) -> tuple[object, ...] | None:
    """The quick headers' fields, or None where the quick way declines the file."""
    quick = scan._quick_headers(scan._InMemory(data), None)
    if quick is None:
        return None
    return quick.is64, quick.little, quick.relocatable, quick.shdrs, quick.spans


def _elf_headers(data: bytes) -> tuple[object, ...] | str:
    try:
        elf = scan._elf_headers(scan._InMemory(data), None)
    except ElfError:
        return "broken"
    return elf.is64, elf.little, elf.relocatable, elf.shdrs, elf.spans


def _damaged(data: bytes, rng: random.Random) -> bytes:
    """A copy with a few bytes of the ELF header, the section header table or the section
    names changed, or cut short."""
    copy = bytearray(data)
    is64 = copy[4] == 2
    order = "<" if copy[5] == 1 else ">"
    shoff = struct.unpack_from(order + ("Q" if is64 else "I"), copy, 40 if is64 else 32)[0]
    kind = rng.randrange(4)
    if kind == 3:
        return bytes(copy[: rng.randrange(len(copy))])
    start, stop = ((0, 64 if is64 else 52), (shoff, len(copy)), (shoff - 200, shoff))[kind]
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(max(0, start), min(stop, len(copy)))
        copy[at] = rng.choice((0, 0xFF, rng.randrange(256), copy[at] ^ (1 << rng.randrange(8))))
    return bytes(copy)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_quick_headers_are_elffiles(path: Path) -> None:
    data = path.read_bytes()
    assert _headers(data) is not None
    assert _headers(data) == _elf_headers(data)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_damaged_headers_read_as_elffile_reads_them(path: Path) -> None:
    rng = random.Random(path.name)
    taken = 0
    for _ in range(400):
        data = _damaged(path.read_bytes(), rng)
        quick = _headers(data)
        if quick is not None:
            taken += 1
            assert quick == _elf_headers(data)
            assert scan.scan_bytes(data) == scan._scan_elf(_ElfFileOnly(data), {}, None), (
                "the module reads differently"
            )
    assert taken > 0  # some damage leaves a file the quick way reads


class _ElfFileOnly(scan._InMemory):
    """Bytes whose header the quick way cannot take (a short ``head``): ``ElfFile`` reads
    them."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.head = b""


def _modinfo_one_by_one(data: bytes) -> tuple[tuple[bytes, ...], ...]:
    """What ``_modinfo`` finds, read a string at a time as modinfo reads them."""
    found: dict[bytes, list[bytes]] = {b"alias": [], b"softdep": [], b"weakdep": [],
                                       b"firmware": []}  # fmt: skip
    for item in data.split(b"\0"):
        key, eq, value = item.partition(b"=")
        if key in found and (eq or key == b"firmware"):
            found[key].append(value)
    return tuple(tuple(values) for values in found.values())


_PIECES = st.sampled_from(
    [b"alias", b"softdep", b"weakdep", b"firmware", b"=", b"\0", b"a", b"x=y", b"aliasX", b"\n"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=30).map(b"".join))
def test_modinfo_values_found_as_modinfo_reads_strings(data: bytes) -> None:
    assert scan._modinfo(data) == _modinfo_one_by_one(data)


@pytest.mark.parametrize(
    "data",
    [
        b"alias=a\0alias=b\0license=GPL\0alias=c",
        b"firmware\0firmware=f.bin\0",
        b"alias\0alias=\0alias=a=b\0aliasX=c\0\0",
        b"license=GPL\0softdep=pre: x\0weakdep=y\0firmware=z\0",
    ],
)
def test_modinfo_values_of_strings_in_any_order(data: bytes) -> None:
    assert scan._modinfo(data) == _modinfo_one_by_one(data)
