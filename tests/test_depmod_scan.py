"""depmod's quick reading of a module's headers against ``ElfFile``'s: on every file the quick
way takes, both find the same class, byte order, type, section header table and sections, and
the module reads the same; every file it declines is left to ``ElfFile``, broken or not."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.depmod import scan
from lkm.elf import SHN_ABS, ElfFile
from lkm.errors import ElfError
from support import elfbuild

if TYPE_CHECKING:
    from typing import Literal

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


def test_the_absolute_section_index_is_elfs() -> None:
    # The scan keeps its own copy, so that it need not import lkm.elf.
    assert scan._SHN_ABS == SHN_ABS


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


def _reference_scan(data: bytes) -> tuple[object, ...]:
    """What depmod reads of a module, a symbol at a time, by the rules of ``_scan_elf``'s
    docstring: the reading the table-at-a-time scan must agree with."""
    elf = ElfFile(data)
    modinfo, symtab, strtab, versions_section, ksymtab = elf.sections_named(scan._SECTIONS)
    info = _modinfo_one_by_one(bytes(elf.file_bytes(modinfo))) if modinfo else ((),) * 4
    strings_exports: tuple[tuple[bytes, int | None], ...] = ()
    if ksymtab is not None:
        strings_exports = tuple(
            (name, None) for name in bytes(elf.file_bytes(ksymtab)).split(b"\0") if name
        )
    entry = 24 if elf.is64 else 16
    if symtab is None or strtab is None or symtab.size % entry:
        return (*info[:3], strings_exports, (), info[3])
    order = "<" if elf.byteorder == "little" else ">"
    layout = struct.Struct(order + ("IBBHQQ" if elf.is64 else "IIIBBH"))
    symbols = []
    for fields in layout.iter_unpack(bytes(elf.file_bytes(symtab))):
        if elf.is64:
            name, st_info, _, shndx, value, _ = fields
        else:
            name, value, _, st_info, _, shndx = fields
        symbols.append((name, st_info, shndx, value))
    strings = bytes(elf.file_bytes(strtab))

    def name_at(offset: int) -> bytes:
        end = strings.find(b"\0", offset)
        if end >= 0:
            return strings[offset:end]
        return data[strtab.offset + offset :].partition(b"\0")[0]

    versions: dict[bytes, int] | None = None
    if versions_section is not None and versions_section.size:
        raw = bytes(elf.file_bytes(versions_section))
        if len(raw) % 64 == 0:
            crc_format = order + ("Q56s" if elf.is64 else "I60s")
            versions = {}
            for crc, field in struct.iter_unpack(crc_format, raw):
                versions[field.partition(b"\0")[0]] = crc
    imports: list[tuple[bytes, int | None, bool]] = []
    for name, st_info, shndx, _ in symbols:
        if shndx:
            continue
        if name >= len(strings):
            imports, versions = [], None
            break
        if name and (text := name_at(name)):
            crc = versions.get(text) if versions else None
            imports.append((text, crc, st_info >> 4 == 2))
    if versions is not None:
        named = {name for name, _, _ in imports}
        imports += [(name, crc, False) for name, crc in versions.items() if name not in named]
    exports = strings_exports
    if all(name < len(strings) for name, _, _, _ in symbols):
        text = strings
        if not strings.endswith(b"\0"):
            text = data[strtab.offset : strtab.offset + len(strings) + 5]
        starts = {at for at in range(len(text)) if text.startswith(b"__crc_", at)}
        found = []
        for name, _, shndx, value in symbols:
            if name not in starts:
                continue
            crc = None
            if shndx == SHN_ABS:
                crc = value & 0xFFFFFFFF
            elif shndx >= elf.section_count:
                raise ElfError("__crc_ symbol in no section")
            elif shndx:
                addr, offset, size = elf.section_span(shndx)
                where = value - (0 if elf.header.type == 1 else addr)
                if offset + size <= len(data) and 0 <= where <= size - 4:
                    crc = int.from_bytes(
                        data[offset + where : offset + where + 4], order_name(order)
                    )
            found.append((name_at(name)[6:], crc))
        exports = tuple(found) or strings_exports
    return (*info[:3], exports, tuple(imports), info[3])


def order_name(order: str) -> Literal["little", "big"]:
    return "little" if order == "<" else "big"


def _scan_as_reference(data: bytes) -> tuple[object, ...]:
    found = scan.scan_bytes(data)
    return (found.aliases, found.softdeps, found.weakdeps, found.exports, found.imports,
            found.firmware)  # fmt: skip


# Pieces of string tables: whole names (some in __versions), and bytes that make others.
_NAME_BYTES = st.sampled_from([b"a\0", b"b\0", b"zz\0", b"__crc_a\0", b"__crc_", b"\0", b"x"])


@st.composite
def _modules(draw: st.DrawFn) -> bytes:
    """A module of either class and byte order with random symbols, names, versions and
    CRC words: names often shared, past the table or without a NUL; sections often absent."""
    bits = draw(st.sampled_from([32, 64]))
    big = draw(st.booleans())
    order = ">" if big else "<"
    strings = draw(st.sampled_from([b"\0", b""])) + b"".join(
        draw(st.lists(_NAME_BYTES, max_size=20))
    )
    # Where names start (so that symbols share them), and offsets at and past the end.
    starts = [0, *(at + 1 for at, byte in enumerate(strings) if byte == 0), len(strings) + 2]
    symbol = struct.Struct(order + ("IBBHQQ" if bits == 64 else "IIIBBH"))
    symbols = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(st.one_of(st.sampled_from(starts), st.integers(0, len(strings) + 2)))
        st_info = draw(st.sampled_from([0x10, 0x20, 0x12, 0x00, 0x22]))
        shndx = draw(st.sampled_from([0, 0, 0, 1, 2, 5, SHN_ABS, 0x100, 40]))
        value = draw(st.sampled_from([0, 4, 8, 0x1234, 2**31 + 3]))
        if bits == 64:
            symbols.append(symbol.pack(name, st_info, 0, shndx, value, 0))
        else:
            symbols.append(symbol.pack(name, value, 0, st_info, 0, shndx))
    crc_format = order + ("Q56s" if bits == 64 else "I60s")
    versions = b"".join(
        struct.pack(crc_format, crc, name)
        for crc, name in draw(
            st.lists(st.tuples(st.integers(0, 2**32 - 1), st.sampled_from(
                [b"a", b"b", b"__crc_a", b"zz", b"a\0junk", b""])), max_size=5)
        )
    )  # fmt: skip
    sections = {
        ".modinfo": b"alias=m\0",
        "__kcrctab": draw(st.binary(min_size=0, max_size=12)),
        ".symtab": b"".join(symbols) + draw(st.sampled_from([b"", b"", b"", b"\0"])),
        ".strtab": strings + draw(st.sampled_from([b"", b"tail"])),
        "__versions": versions + draw(st.sampled_from([b"", b"", b"\0"])),
        "__ksymtab_strings": b"k1\0k2\0",
    }
    for name in draw(st.lists(st.sampled_from(sorted(sections)), max_size=2)):
        sections.pop(name, None)
    return elfbuild.elf(sections, bits=bits, big_endian=big)


@settings(max_examples=400, deadline=None)
@given(_modules())
def test_symbols_read_as_a_symbol_at_a_time(data: bytes) -> None:
    try:
        expected = _reference_scan(data)
    except ElfError:
        with pytest.raises(ElfError):
            scan.scan_bytes(data)
        return
    assert _scan_as_reference(data) == expected
