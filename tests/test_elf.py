"""The ELF reader on the test objects (32/64-bit, LE/BE) and on hand-broken copies."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lkm.elf import (
    SHN_ABS,
    SHN_UNDEF,
    ElfClass,
    ElfData,
    ElfFile,
    SectionType,
    SymbolBind,
    SymbolType,
)
from lkm.errors import ElfError, NotElfError

OBJECTS = Path(__file__).parent / "data" / "objects"
# name: (class, byte order, e_machine)
VARIANTS = {
    "elf64-le": (ElfClass.ELF64, ElfData.LSB, 62),  # x86-64
    "elf64-be": (ElfClass.ELF64, ElfData.MSB, 22),  # s390
    "elf32-le": (ElfClass.ELF32, ElfData.LSB, 40),  # ARM
    "elf32-be": (ElfClass.ELF32, ElfData.MSB, 20),  # PowerPC
}
SECTION_NAMES = [
    "",
    ".text",
    ".data",
    ".bss",
    ".modinfo",
    "__versions",
    "__ksymtab_strings",
    ".rodata",
    ".gnu.linkonce.this_module",
    ".symtab",
    ".strtab",
    ".shstrtab",
]
GLOBAL_SYMBOLS = [
    "__crc_lkm_test_func",
    "__crc_lkm_test_data",
    "__crc_lkm_test_abs",
    "lkm_test_func",
    "_printk",
    "kmalloc_caches",
    "no_crc_import",
    "lkm_test_data",
]


def _object(name: str) -> bytes:
    return (OBJECTS / f"{name}.o").read_bytes()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_header(variant: str) -> None:
    elf = ElfFile(_object(variant))
    elf_class, data, machine = VARIANTS[variant]
    assert elf.header.elf_class is elf_class
    assert elf.header.data is data
    assert elf.header.machine == machine
    assert elf.header.type == 1  # ET_REL
    assert elf.is64 == (elf_class is ElfClass.ELF64)
    assert elf.byteorder == ("little" if data is ElfData.LSB else "big")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sections(variant: str) -> None:
    elf = ElfFile(_object(variant))
    # Relocation sections (.rela.data or .rel.data) and .ARM.attributes differ by architecture.
    names = [
        s.name
        for s in elf.sections
        if s.type not in (SectionType.REL, SectionType.RELA) and not s.name.startswith(".ARM")
    ]
    assert names == SECTION_NAMES
    assert [s.number for s in elf.sections] == list(range(len(elf.sections)))
    modinfo = elf.section(".modinfo")
    assert modinfo is not None
    assert modinfo.type == SectionType.PROGBITS
    assert bytes(elf.section_data(modinfo)).startswith(b"version=1.0\0license=GPL\0")
    assert elf.section(".missing") is None
    assert elf.section("") is elf.sections[0]
    # A tail of another name (".text" inside ".rela.text") is found as itself.
    text = elf.section(".text")
    assert text is not None
    assert text.name == ".text"
    bss = elf.section(".bss")
    assert bss is not None
    assert bytes(elf.section_data(bss)) == b""  # SHT_NOBITS has no file bytes


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_section_lookup_agrees_with_table(variant: str) -> None:
    fresh = ElfFile(_object(variant))
    looked_up = {name: fresh.section(name) for name in SECTION_NAMES}
    table = ElfFile(_object(variant))
    assert table.sections  # builds the name index first
    assert looked_up == {name: table.section(name) for name in SECTION_NAMES}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_symbols(variant: str) -> None:
    elf = ElfFile(_object(variant))
    assert "symbols" not in vars(elf), "symbols must be parsed only when asked"
    symbols = elf.symbols
    assert symbols[0].name == ""
    assert symbols[0].shndx == SHN_UNDEF
    globals_ = [s for s in symbols if s.bind == SymbolBind.GLOBAL]
    assert [s.name for s in globals_] == GLOBAL_SYMBOLS
    by_name = {s.name: s for s in symbols}
    absolute = by_name["__crc_lkm_test_abs"]
    assert (absolute.shndx, absolute.value) == (SHN_ABS, 0x7654321)
    func = by_name["__crc_lkm_test_func"]
    assert elf.sections[func.shndx].name == ".rodata"
    assert func.value == 4
    assert by_name["_printk"].shndx == SHN_UNDEF
    assert by_name["_printk"].type == SymbolType.NOTYPE


def test_memoryview_input() -> None:
    data = _object("elf32-be")
    elf = ElfFile(memoryview(bytearray(data)))
    assert [s.name for s in elf.symbols] == [s.name for s in ElfFile(data).symbols]


def test_section_table_at_offset_zero() -> None:
    # kmod 34 reads a table at e_shoff 0 like any other (here header 12 lands on an empty one).
    data = bytearray(_object("elf64-le"))
    struct.pack_into("<Q", data, 40, 0)  # e_shoff
    with pytest.raises(ElfError) as info:
        ElfFile(bytes(data), path="t.ko")
    assert str(info.value) == (
        "t.ko: section name table of 0 bytes has no terminating NUL at its end (at byte 0x300)"
    )


def test_extended_section_numbering() -> None:
    # e_shnum 0 and e_shstrndx SHN_XINDEX: the counts live in section header 0.
    data = bytearray(_object("elf64-le"))
    shoff, shnum, shstrndx = 0x500, 13, 12
    struct.pack_into("<HH", data, 60, 0, 0xFFFF)
    struct.pack_into("<Q", data, shoff + 32, shnum)  # sh_size of section 0
    struct.pack_into("<I", data, shoff + 40, shstrndx)  # sh_link of section 0
    elf = ElfFile(bytes(data))
    assert len(elf.sections) == shnum
    assert elf.section(".modinfo") is not None


# Hand-broken copies of elf64-le.o.  Its layout: section headers at 0x500 (13 x 64 bytes, the
# file ends at 2112), .shstrtab is section 12, .symtab section 10 (header at 0x780, data at
# 0x2e0, 24-byte entries), .strtab section 11 (104 bytes).
def _patched(fmt: str, offset: int, value: int) -> bytes:
    data = bytearray(_object("elf64-le"))
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        pytest.param(
            b"hello world, not elf",
            NotElfError,
            "t.ko: not an ELF file: expected magic 7f454c46, found 68656c6c (at byte 0x0)",
            id="not-elf",
        ),
        pytest.param(
            b"",
            NotElfError,
            "t.ko: file of 0 bytes is too short for an ELF file (more than the 16-byte "
            "identification)",
            id="empty",
        ),
        pytest.param(
            _object("elf64-le")[:10],
            NotElfError,
            "t.ko: file of 10 bytes is too short for an ELF file (more than the 16-byte "
            "identification)",
            id="cut-10",
        ),
        pytest.param(  # kmod 34: ENOEXEC up to 16 bytes, EINVAL from 17 on
            _object("elf64-le")[:16],
            NotElfError,
            "t.ko: file of 16 bytes is too short for an ELF file (more than the 16-byte "
            "identification)",
            id="cut-16",
        ),
        pytest.param(
            _object("elf64-le")[:17],
            ElfError,
            "t.ko: file is truncated: 17 bytes, the ELF header needs 64",
            id="cut-17",
        ),
        pytest.param(
            _patched("<I", 0x500 + 12 * 64, 121),
            ElfError,
            "t.ko: section name table's own name offset 121 is beyond its 121 bytes "
            "(at byte 0x800)",
            id="shstrtab-own-name",
        ),
        pytest.param(
            _object("elf64-le")[:40],
            ElfError,
            "t.ko: file is truncated: 40 bytes, the ELF header needs 64",
            id="cut-40",
        ),
        pytest.param(
            _object("elf32-be")[:51],
            ElfError,
            "t.ko: file is truncated: 51 bytes, the ELF header needs 52",
            id="cut-51-elf32",
        ),
        pytest.param(
            _object("elf64-le")[:1000],
            ElfError,
            "t.ko: section header table of 13 entries at 1280 ends at 2112, beyond the end of "
            "the file (1000 bytes) (at byte 0x28)",
            id="cut-1000",
        ),
        pytest.param(
            _object("elf64-le")[:2111],
            ElfError,
            "t.ko: section header table of 13 entries at 1280 ends at 2112, beyond the end of "
            "the file (2111 bytes) (at byte 0x28)",
            id="cut-2111",
        ),
        pytest.param(
            _patched("B", 4, 3),
            ElfError,
            "t.ko: bad ELF class 3: expected 1 (32-bit) or 2 (64-bit) (at byte 0x4)",
            id="bad-class",
        ),
        pytest.param(
            _patched("B", 5, 0),
            ElfError,
            "t.ko: bad ELF data encoding 0: expected 1 (little) or 2 (big endian) (at byte 0x5)",
            id="bad-data",
        ),
        pytest.param(
            _patched("B", 5, 2),  # claims big-endian: every field reads byte-swapped
            ElfError,
            "t.ko: section header entry size is 16384, expected 64 (at byte 0x3a)",
            id="wrong-byte-order",
        ),
        pytest.param(
            _patched("<Q", 40, 0x10000),
            ElfError,
            "t.ko: section header table of 13 entries at 65536 ends at 66368, beyond the end "
            "of the file (2112 bytes) (at byte 0x28)",
            id="shoff-out-of-range",
        ),
        pytest.param(
            _patched("<H", 58, 32),
            ElfError,
            "t.ko: section header entry size is 32, expected 64 (at byte 0x3a)",
            id="shentsize",
        ),
        pytest.param(
            _patched("<H", 62, 200),
            ElfError,
            "t.ko: section name table index 200 is out of range (0..12) (at byte 0x3e)",
            id="shstrndx-out-of-range",
        ),
        pytest.param(
            _patched("<Q", 0x500 + 12 * 64 + 24, 0x900),
            ElfError,
            "t.ko: section data at 2304 of 121 bytes ends beyond the end of the file "
            "(2112 bytes) (at byte 0x800)",
            id="shstrtab-out-of-range",
        ),
    ],
)
def test_broken_header(data: bytes, error: type[ElfError], message: str) -> None:
    with pytest.raises(error) as info:
        ElfFile(data, path="t.ko")
    assert type(info.value) is error
    assert str(info.value) == message


def test_section_name_out_of_range() -> None:
    elf = ElfFile(_patched("<I", 0x500 + 5 * 64, 0x1000), path="t.ko")
    with pytest.raises(ElfError) as info:
        _ = elf.sections
    assert str(info.value) == (
        "t.ko: section name offset 4096 is beyond its string table of 121 bytes (at byte 0x640)"
    )


def test_section_name_unterminated() -> None:
    data = bytearray(_object("elf64-le"))
    data[0x480 + 0x79 - 1] = ord("x")  # the NUL ending the last name of .shstrtab
    with pytest.raises(ElfError) as info:
        ElfFile(bytes(data), path="t.ko")
    assert str(info.value) == (
        "t.ko: section name table of 121 bytes has no terminating NUL at its end (at byte 0x800)"
    )


def test_section_name_out_of_range_matches_nothing() -> None:
    # Section 4 (.bss) named from beyond the table: a lookup passes it over, as kmod 34's does.
    elf = ElfFile(_patched("<I", 0x500 + 4 * 64, 0x1000), path="t.ko")
    assert elf.section(".bss") is None
    assert elf.section(".modinfo") is not None
    assert ElfFile(_object("elf64-le")).section(".bss") is not None


def test_section_data_out_of_range() -> None:
    elf = ElfFile(_patched("<Q", 0x500 + 5 * 64 + 24, 0x800), path="t.ko")  # .modinfo sh_offset
    # A lookup passes over a section whose bytes are not all in the file (kmod 34: ENODATA).
    assert elf.section(".modinfo") is None
    modinfo = elf.sections[5]
    with pytest.raises(ElfError) as info:
        elf.section_data(modinfo)
    assert str(info.value) == (
        "t.ko: section data at 2048 of 344 bytes ends beyond the end of the file (2112 bytes) "
        "(at byte 0x640)"
    )


@pytest.mark.parametrize(
    ("fmt", "offset", "value", "message"),
    [
        pytest.param(
            "<Q",
            0x780 + 56,
            0,
            "t.ko: symbol table entry size is 0, expected 24 (at byte 0x7b8)",
            id="entsize-zero",
        ),
        pytest.param(
            "<Q",
            0x780 + 32,
            0xF1,
            "t.ko: symbol table size 241 is not a multiple of its entry size 24 (at byte 0x780)",
            id="size",
        ),
        pytest.param(
            "<I",
            0x780 + 40,
            99,
            "t.ko: symbol table links to string table section 99, out of range (1..12) "
            "(at byte 0x7a8)",
            id="link",
        ),
        pytest.param(
            "<I",
            0x2E0 + 6 * 24,
            0x1000,
            "t.ko: symbol name offset 4096 is beyond its string table of 104 bytes (at byte 0x370)",
            id="symbol-name",
        ),
        pytest.param(
            "<Q",
            0x780 + 24,
            0x840,
            "t.ko: section data at 2112 of 240 bytes ends beyond the end of the file "
            "(2112 bytes) (at byte 0x780)",
            id="symtab-offset",
        ),
    ],
)
def test_broken_symbols_fail_lazily(fmt: str, offset: int, value: int, message: str) -> None:
    elf = ElfFile(_patched(fmt, offset, value), path="t.ko")  # sections are fine
    assert elf.section(".modinfo") is not None
    with pytest.raises(ElfError) as info:
        _ = elf.symbols
    assert str(info.value) == message


def _note_file(notes: bytes, align: int, *, bits: int, big_endian: bool) -> bytes:
    """An ELF file whose only section is the SHT_NOTE ``.note.t`` aligned to ``align``."""
    from support.elfbuild import elf

    data = bytearray(elf({".note.t": notes}, bits=bits, big_endian=big_endian))
    order = ">" if big_endian else "<"
    shoff = struct.unpack_from(order + ("Q" if bits == 64 else "I"), data, 40 if bits == 64 else 32)
    header = shoff[0] + (64 if bits == 64 else 40)  # section 1
    struct.pack_into(order + "I", data, header + 4, 7)  # SHT_NOTE
    word, at = ("Q", 48) if bits == 64 else ("I", 32)
    struct.pack_into(order + word, data, header + at, align)  # sh_addralign
    return bytes(data)


def _note(order: str, name: bytes, kind: int, desc: bytes, align: int) -> bytes:
    head = struct.pack(order + "III", len(name), len(desc), kind) + name
    head += bytes(-len(head) % align)
    return head + desc + bytes(-len(desc) % align)


@pytest.mark.parametrize("align", [4, 8])
@pytest.mark.parametrize(("bits", "big_endian"), [(64, False), (64, True), (32, False)])
def test_notes_padded_to_the_section_alignment(
    align: int, bits: int, big_endian: bool, tmp_path: Path
) -> None:
    import re
    import shutil
    import subprocess

    order = ">" if big_endian else "<"
    property_desc = struct.pack(order + "III", 0xC0000002, 4, 3) + bytes(4)  # x86 IBT and SHSTK
    notes = _note(order, b"GNU\0", 5, property_desc, align)
    notes += _note(order, b"GNU\0", 3, bytes(range(20)), align)
    notes += _note(order, b"Linux\0", 0x100, b"\x01\x02\x03", align)
    data = _note_file(notes, align, bits=bits, big_endian=big_endian)
    elf = ElfFile(data)
    section = elf.section(".note.t")
    assert section is not None
    assert [(n.name, n.type, n.desc) for n in elf.notes(section)] == [
        (b"GNU", 5, property_desc),
        (b"GNU", 3, bytes(range(20))),
        (b"Linux", 0x100, b"\x01\x02\x03"),
    ]
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed to compare with")
    (tmp_path / "t.o").write_bytes(data)
    shown = subprocess.run(["readelf", "-W", "-n", str(tmp_path / "t.o")], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert re.search(r"Build ID: ([0-9a-f]+)", shown).group(1) == bytes(range(20)).hex()  # type: ignore[union-attr]
    assert "Linux                0x00000003" in shown


def test_note_beyond_its_section() -> None:
    notes = struct.pack("<III", 4, 8, 3) + b"GNU\0" + b"\x01" * 4
    elf = ElfFile(_note_file(notes, 4, bits=64, big_endian=False))
    section = elf.section(".note.t")
    assert section is not None
    with pytest.raises(ElfError) as caught:
        elf.notes(section)
    assert str(caught.value) == (
        "note at 0 of section '.note.t' with a 4-byte name and a 8-byte descriptor ends beyond "
        f"the section (20 bytes) (at byte {section.offset:#x})"
    )
    short = ElfFile(_note_file(b"\0" * 8, 4, bits=64, big_endian=False))
    section = short.section(".note.t")
    assert section is not None
    with pytest.raises(ElfError, match=r"note header of 12 bytes at 0 of section '.note.t' ends "
                       r"beyond the section \(8 bytes\)"):  # fmt: skip
        short.notes(section)
