"""depmod's rules for damaged modules, one test each, as found against kmod 34 (black box; the
slow differential fuzz in test_depmod_damaged.py compares whole trees of damaged real modules).

kmod fails a module ("failed to load symbols") only when it cannot open it as ELF; past that it
reads symbol tables leniently and silently, and a broken table costs symbols, not the module.
"""

from __future__ import annotations

import errno
import lzma
import os
import random
import struct
from pathlib import Path

import pytest

from lkm.depmod import DepmodError, DepmodOptions, Reporter, report_failure, run_depmod
from lkm.depmod.scan import ModuleFailure, ModuleScan, scan_bytes, scan_file
from lkm.errors import ElfError
from support.depmod_trees import module_elf, write_tree

# module_elf's section headers: 1 .modinfo, 2 __ksymtab_strings, 3 __versions, 4 .symtab,
# 5 .strtab, 6 .shstrtab (ELF64, little-endian).
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
MODINFO, KSYMTAB_STRINGS, VERSIONS, SYMTAB, STRTAB, SHSTRTAB = range(1, 7)


class Patched:
    """A module_elf module whose headers and symbols a test changes in place."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.shoff = struct.unpack_from("<Q", data, 40)[0]

    def header(self, index: int) -> list[int]:
        return list(_SHDR.unpack_from(self.data, self.shoff + index * _SHDR.size))

    def set_header(self, index: int, field: int, value: int) -> None:
        fields = self.header(index)
        fields[field] = value
        _SHDR.pack_into(self.data, self.shoff + index * _SHDR.size, *fields)

    def symbol_index(self, name: bytes) -> int:
        table, strings = self.header(SYMTAB), self.header(STRTAB)
        for i in range(table[5] // _SYM.size):
            offset = _SYM.unpack_from(self.data, table[4] + i * _SYM.size)[0]
            start = strings[4] + offset
            if bytes(self.data[start : self.data.index(0, start)]) == name:
                return i
        raise KeyError(name)

    def set_symbol_name(self, name: bytes, offset: int) -> None:
        at = self.header(SYMTAB)[4] + self.symbol_index(name) * _SYM.size
        fields = list(_SYM.unpack_from(self.data, at))
        fields[0] = offset
        _SYM.pack_into(self.data, at, *fields)

    def rename_section(self, index: int, name: bytes) -> None:
        at = self.header(SHSTRTAB)[4] + self.header(index)[0]
        self.data[at : at + len(name)] = name

    def scan(self) -> ModuleScan:
        return scan_bytes(bytes(self.data))


def _module() -> Patched:
    return Patched(
        module_elf(
            exports=["e1", "e2"],
            imports=["i1", "i2"],
            export_crcs={"e1": 0x11, "e2": 0x22},
            import_crcs={"i1": 0x1234, "module_layout": 0x99},
            modinfo=["alias=a1"],
        )
    )


INTACT_IMPORTS = ((b"i1", 0x1234, False), (b"i2", None, False), (b"module_layout", 0x99, False))
CRC_EXPORTS = ((b"e1", 0x11), (b"e2", 0x22))
STRING_EXPORTS = ((b"e1", None), (b"e2", None))


def test_intact_module() -> None:
    scan = _module().scan()
    assert (scan.aliases, scan.softdeps, scan.weakdeps, scan.exports, scan.imports) == (
        (b"a1",), (), (), CRC_EXPORTS, INTACT_IMPORTS
    )  # fmt: skip


def test_undefined_symbol_named_past_the_string_table_costs_every_needed_symbol() -> None:
    module = _module()
    module.set_symbol_name(b"i2", module.header(STRTAB)[5])
    scan = module.scan()
    # No needed symbol at all, not even __versions' own (and, as for any symbol, the exports
    # come from __ksymtab_strings).
    assert (scan.imports, scan.exports) == ((), STRING_EXPORTS)


def test_any_symbol_named_past_the_string_table_sends_exports_to_ksymtab_strings() -> None:
    module = _module()
    module.set_symbol_name(b"__crc_e1", 1 << 29)
    scan = module.scan()
    assert (scan.imports, scan.exports) == (INTACT_IMPORTS, STRING_EXPORTS)
    module.rename_section(KSYMTAB_STRINGS, b"__ksymtab_strinX")
    assert module.scan().exports == ()


@pytest.mark.parametrize("section", [SYMTAB, STRTAB])
def test_symbol_or_string_table_found_by_name_only(section: int) -> None:
    module = _module()
    module.rename_section(section, b".X")
    scan = module.scan()
    assert (scan.imports, scan.exports, scan.aliases) == ((), STRING_EXPORTS, (b"a1",))


def test_symbol_table_of_no_whole_number_of_entries() -> None:
    module = _module()
    module.set_header(SYMTAB, 5, module.header(SYMTAB)[5] - 1)
    assert (module.scan().imports, module.scan().exports) == ((), STRING_EXPORTS)


def test_types_links_and_entry_sizes_are_not_looked_at() -> None:
    module = _module()
    module.set_header(SYMTAB, 1, 8)  # SHT_NOBITS
    module.set_header(SYMTAB, 6, 0)  # sh_link
    module.set_header(SYMTAB, 9, 0)  # sh_entsize
    module.set_header(STRTAB, 1, 8)
    module.set_header(VERSIONS, 1, 8)
    module.set_header(MODINFO, 1, 8)
    scan = module.scan()
    assert (scan.aliases, scan.exports, scan.imports) == ((b"a1",), CRC_EXPORTS, INTACT_IMPORTS)


@pytest.mark.parametrize("change", [-1, 1])
def test_versions_of_no_whole_number_of_entries_count_as_absent(change: int) -> None:
    module = _module()
    module.set_header(VERSIONS, 5, module.header(VERSIONS)[5] + change)
    assert module.scan().imports == ((b"i1", None, False), (b"i2", None, False))


def test_name_without_nul_runs_on_into_the_next_bytes() -> None:
    module = _module()
    strings = module.header(STRTAB)
    end = strings[4] + strings[5]
    module.data[end - 1] = ord("X")  # the last name's NUL; .shstrtab's leading NUL follows
    assert module.scan().imports == ((b"i1", 0x1234, False), (b"i2X", None, False),
                                     (b"module_layout", 0x99, False))  # fmt: skip


def test_crc_of_an_undefined_or_misplaced_crc_symbol_is_unknown() -> None:
    module = _module()
    at = module.header(SYMTAB)[4] + module.symbol_index(b"__crc_e1") * _SYM.size
    fields = list(_SYM.unpack_from(module.data, at))
    fields[3] = 0  # undefined: also a needed symbol
    _SYM.pack_into(module.data, at, *fields)
    scan = module.scan()
    assert scan.exports == ((b"e1", None), (b"e2", 0x22))
    assert scan.imports[0] == (b"__crc_e1", None, False)
    fields[3] = MODINFO  # a value far beyond the section
    _SYM.pack_into(module.data, at, *fields)
    assert module.scan().exports == ((b"e1", None), (b"e2", 0x22))


def test_crc_read_from_a_section_whose_name_lies_past_the_name_table() -> None:
    module = _module()
    at = module.header(SYMTAB)[4] + module.symbol_index(b"__crc_e1") * _SYM.size
    fields = list(_SYM.unpack_from(module.data, at))
    fields[3], fields[4] = MODINFO, 0  # the CRC is .modinfo's first word
    _SYM.pack_into(module.data, at, *fields)
    module.set_header(MODINFO, 0, 1 << 20)  # .modinfo has lost its name: no aliases
    scan = module.scan()
    assert (scan.aliases, scan.exports) == ((), ((b"e1", 0x61696C61), (b"e2", 0x22)))


def test_crc_symbol_in_a_section_past_the_table_fails_the_module() -> None:
    # kmod 34 aborts on it; lkm fails the module with one line.
    module = _module()
    at = module.header(SYMTAB)[4] + module.symbol_index(b"__crc_e1") * _SYM.size
    fields = list(_SYM.unpack_from(module.data, at))
    fields[3] = 999
    _SYM.pack_into(module.data, at, *fields)
    with pytest.raises(ElfError, match=r"__crc_ symbol refers to section index 0x3e7, not a "
                       r"section of the file \(7 sections\)"):  # fmt: skip
        module.scan()


def test_broken_section_name_table_fails_the_module(tmp_path: Path) -> None:
    # As for modinfo: the name table's own name must lie inside it.
    module = _module()
    module.set_header(SHSTRTAB, 0, 1 << 21)
    path = tmp_path / "m.ko"
    path.write_bytes(module.data)
    assert scan_file(str(path)) == ModuleFailure(errno.EINVAL, "", None)


@pytest.mark.parametrize("data", [b"", b"\x7f", b"\x7fELF\x02", b"\xfd7zXZ"])
def test_files_too_short_to_tell_their_format(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.ko"
    path.write_bytes(data)
    assert scan_file(str(path)) == ModuleFailure(errno.EINVAL, "", None)


def _xz_lines(tmp_path: Path, data: bytes) -> list[tuple[str, str]]:
    path = tmp_path / "m.ko.xz"
    path.write_bytes(data)
    failure = scan_file(str(path))
    assert isinstance(failure, ModuleFailure)
    reporter = Reporter()
    report_failure(reporter, "m.ko.xz", failure)
    return reporter.records


def test_xz_read_again_from_where_the_last_read_stopped(tmp_path: Path) -> None:
    # kmod reads 8 KiB at a time and never seeks back: damage found in the first read leaves
    # the rest of the file to the next attempts, which find no xz stream there.
    stream = lzma.compress(random.Random(7).randbytes(40000), check=lzma.CHECK_CRC32)
    damaged = stream[:12] + bytes([stream[12] ^ 1]) + stream[13:]
    assert _xz_lines(tmp_path, damaged) == [
        ("ERROR", "xz: File is corrupt"),
        ("ERROR", "failed to load symbols from m.ko.xz: Invalid argument"),
        ("ERROR", "xz: File format not recognized"),
        ("ERROR", "xz: File format not recognized"),
    ]
    # Damage found only at the end (the check) leaves nothing to read again.
    late = stream[:10000] + bytes([stream[10000] ^ 1]) + stream[10001:]
    assert _xz_lines(tmp_path, late) == [
        ("ERROR", "xz: File is corrupt"),
        ("ERROR", "failed to load symbols from m.ko.xz: Invalid argument"),
        ("ERROR", "xz: Unexpected end of input"),
        ("ERROR", "xz: Unexpected end of input"),
    ]


def _tree(tmp_path: Path, files: dict[str, bytes]) -> Path:
    return write_tree(tmp_path, "1.0.0", files)


def test_index_key_beyond_7_bit_ascii_stops_the_run_at_that_index(tmp_path: Path) -> None:
    moddir = _tree(
        tmp_path,
        {"k/a.ko": module_elf(modinfo=["alias=ok", "alias=x\xe9-y-[a-b]", "alias=z\xff"])},
    )
    options = DepmodOptions(release="1.0.0", basedir=str(tmp_path), config=())
    with pytest.raises(DepmodError) as caught:
        run_depmod(options, Reporter())
    # The first bad key as it goes into the index (dashes made underscores), its first bad byte.
    assert caught.value.lines == (
        (
            "FATAL",
            "Module index: bad character '\udcc3'=0xc3 - only 7-bit ASCII is supported:\n"
            "x\xe9_y_[a-b]",
        ),
    )
    # The files before modules.alias.bin are written, none after, and no temporary is left.
    assert sorted(os.listdir(moddir)) == ["k", "modules.alias", "modules.dep", "modules.dep.bin"]


def test_index_key_beyond_7_bit_ascii_with_dry_run(tmp_path: Path) -> None:
    _tree(tmp_path, {"k/a.ko": module_elf(exports=["s\xe9"])})
    options = DepmodOptions(release="1.0.0", basedir=str(tmp_path), config=(), dry_run=True)
    shown = run_depmod(options, Reporter()).shown
    assert b"alias symbol:s\xc3\xa9 a\n" in shown


def test_zstd_block_longer_than_the_input_left_is_a_wrong_source_size() -> None:
    # kmod decodes in one call, which measures each block against the input left before
    # decoding it; the streaming decoder finds the same block too big for the frame.
    import zstandard

    from lkm.compress import decompress
    from lkm.errors import DecompressionError

    frame = bytearray(zstandard.ZstdCompressor().compress(random.Random(3).randbytes(3000)))
    header = 4 + 1 + 2  # magic, descriptor, 2-byte content size (single segment)
    assert frame[4] == 0x60
    block = int.from_bytes(frame[header : header + 3], "little")
    frame[header : header + 3] = (block + (4000 << 3)).to_bytes(3, "little")
    with pytest.raises(DecompressionError) as caught:
        decompress(bytes(frame))
    assert caught.value.reason == "Src size is incorrect"
