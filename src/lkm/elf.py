"""A lazy ELF reader for kernel modules: any class (32/64-bit) and any byte order.

``ElfFile(data)`` parses only the file header and the section header table; section names are
resolved with them because every lookup needs them, while symbols are parsed on first use.  All
offsets, sizes and indexes taken from the file are checked before use: a broken file raises
``ElfError`` whose offset is where the bad field sits in the file.
"""

from __future__ import annotations

import struct

from lkm.enum_lite import IntEnum
from lkm.errors import ElfError, NotElfError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple, cached_property

if TYPE_CHECKING:
    from typing import Literal

__all__ = [
    "SHN_ABS",
    "SHN_COMMON",
    "SHN_UNDEF",
    "SHN_XINDEX",
    "ElfClass",
    "ElfData",
    "ElfFile",
    "ElfHeader",
    "Note",
    "Section",
    "SectionType",
    "Symbol",
    "SymbolBind",
    "SymbolType",
]

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

_MAGIC = b"\x7fELF"
_EI_CLASS = 4
_EI_DATA = 5
_IDENT_SIZE = 16


class ElfClass(IntEnum):
    """``e_ident[EI_CLASS]``: the width of addresses and offsets."""

    ELF32 = 1
    ELF64 = 2


class ElfData(IntEnum):
    """``e_ident[EI_DATA]``: the byte order of every multi-byte field."""

    LSB = 1
    MSB = 2


class SectionType(IntEnum):
    """The ``sh_type`` values a module reader cares about (others stay plain ints)."""

    NULL = 0
    PROGBITS = 1
    SYMTAB = 2
    STRTAB = 3
    RELA = 4
    NOBITS = 8
    REL = 9


class SymbolBind(IntEnum):
    """``ELF_ST_BIND``: the high nibble of ``st_info``."""

    LOCAL = 0
    GLOBAL = 1
    WEAK = 2


class SymbolType(IntEnum):
    """``ELF_ST_TYPE``: the low nibble of ``st_info``."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4


class ElfHeader(NamedTuple):
    """The fields of the ELF file header that locate and describe the sections."""

    elf_class: ElfClass
    data: ElfData
    type: int
    machine: int
    version: int
    entry: int
    shoff: int
    flags: int
    shentsize: int
    shnum: int
    shstrndx: int


class Section(NamedTuple):
    """One section header, with its name resolved from the section name string table."""

    number: int  # position in the section header table
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


class Note(NamedTuple):
    """One entry of an SHT_NOTE section: its owner's name (without the NUL), type and
    descriptor."""

    name: bytes
    type: int
    desc: bytes


_NOTE_HEADER = 12  # namesz, descsz, type: three 4-byte words in either class


class Symbol(NamedTuple):
    """One ``.symtab`` entry, with its name resolved from the linked string table."""

    name: str
    value: int
    size: int
    info: int
    other: int
    shndx: int

    @property
    def bind(self) -> int:
        """``ELF_ST_BIND(st_info)``; compare with ``SymbolBind``."""
        return self.info >> 4

    @property
    def type(self) -> int:
        """``ELF_ST_TYPE(st_info)``; compare with ``SymbolType``."""
        return self.info & 0xF


class _Layout(NamedTuple):
    """The struct formats of one class and byte order, chosen per file (never global state)."""

    ehdr: struct.Struct
    shdr: struct.Struct
    sym: struct.Struct
    is64: bool


_LAYOUTS: dict[tuple[ElfClass, ElfData], _Layout] = {}


def _layout(elf_class: ElfClass, data: ElfData) -> _Layout:
    """The formats of one class and byte order (made once: every module needs them)."""
    found = _LAYOUTS.get((elf_class, data))
    if found is None:
        found = _LAYOUTS[elf_class, data] = _make_layout(elf_class, data)
    return found


def _make_layout(elf_class: ElfClass, data: ElfData) -> _Layout:
    bo = "<" if data is ElfData.LSB else ">"
    if elf_class is ElfClass.ELF64:
        # type machine version entry phoff shoff flags ehsize phentsize phnum shentsize shnum
        # shstrndx
        return _Layout(
            ehdr=struct.Struct(bo + "HHIQQQIHHHHHH"),
            shdr=struct.Struct(bo + "IIQQQQIIQQ"),
            sym=struct.Struct(bo + "IBBHQQ"),  # name info other shndx value size
            is64=True,
        )
    return _Layout(
        ehdr=struct.Struct(bo + "HHIIIIIHHHHHH"),
        shdr=struct.Struct(bo + "IIIIIIIIII"),
        sym=struct.Struct(bo + "IIIBBH"),  # name value size info other shndx
        is64=False,
    )


def _cbytes(table: bytes, offset: int, what: str, path: str | None, where: int) -> bytes:
    """Return the NUL-terminated string at ``offset`` of a string table, without its NUL."""
    if offset == 0:
        return b""  # index 0 means "no name", even when the table is empty or missing
    if offset >= len(table):
        raise ElfError(
            f"{what} offset {offset} is beyond its string table of {len(table)} bytes",
            path=path,
            offset=where,
        )
    end = table.find(b"\0", offset)
    if end < 0:
        raise ElfError(
            f"{what} at string table offset {offset} has no terminating NUL",
            path=path,
            offset=where,
        )
    return table[offset:end]


def _cstring(table: bytes, offset: int, what: str, path: str | None, where: int) -> str:
    # surrogateescape keeps non-UTF-8 bytes: os.fsencode() gives the original bytes back.
    return _cbytes(table, offset, what, path, where).decode("utf-8", "surrogateescape")


class ElfFile:
    """An ELF file held in memory; see the module docstring for what is parsed when."""

    def __init__(self, data: bytes | memoryview, *, path: str | None = None) -> None:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        self._data = view
        self.path = path
        self.header, self._layout = self._parse_header()
        # Raw section header tuples; Section records are built only for what is asked, which
        # keeps reading one section (.modinfo) of many modules cheap.
        self._shdrs, self._names = self._parse_sections()
        self._built: dict[int, Section] = {}

    @property
    def data(self) -> memoryview:
        """The whole file."""
        return self._data

    @property
    def is64(self) -> bool:
        return self._layout.is64

    @property
    def byteorder(self) -> Literal["little", "big"]:
        """``"little"`` or ``"big"``, ready for ``int.from_bytes``."""
        return "little" if self.header.data is ElfData.LSB else "big"

    def _error(self, message: str, offset: int | None) -> ElfError:
        return ElfError(message, path=self.path, offset=offset)

    def _parse_header(self) -> tuple[ElfHeader, _Layout]:
        data = self._data
        # kmod tells "not an ELF file" (ENOEXEC) from "broken ELF file" (EINVAL); so do we.
        # Up to the 16 bytes of the identification, it is "not an ELF file" whatever they say.
        if len(data) >= 4 and bytes(data[:4]) != _MAGIC:
            raise NotElfError(
                f"not an ELF file: expected magic 7f454c46, found {data[:4].hex()}",
                path=self.path,
                offset=0,
            )
        if len(data) <= _IDENT_SIZE:
            raise NotElfError(
                f"file of {len(data)} bytes is too short for an ELF file (more than the "
                f"{_IDENT_SIZE}-byte identification)",
                path=self.path,
                offset=None,
            )
        try:
            elf_class = ElfClass(data[_EI_CLASS])
        except ValueError:
            raise self._error(
                f"bad ELF class {data[_EI_CLASS]}: expected 1 (32-bit) or 2 (64-bit)", _EI_CLASS
            ) from None
        try:
            elf_data = ElfData(data[_EI_DATA])
        except ValueError:
            raise self._error(
                f"bad ELF data encoding {data[_EI_DATA]}: expected 1 (little) or 2 (big endian)",
                _EI_DATA,
            ) from None
        layout = _layout(elf_class, elf_data)
        need = _IDENT_SIZE + layout.ehdr.size
        if len(data) < need:
            raise self._error(
                f"file is truncated: {len(data)} bytes, the ELF header needs {need}", None
            )
        (etype, machine, version, entry, _phoff, shoff, flags, _ehsize, _phentsize, _phnum,
         shentsize, shnum, shstrndx) = layout.ehdr.unpack_from(data, _IDENT_SIZE)  # fmt: skip
        header = ElfHeader(
            elf_class=elf_class,
            data=elf_data,
            type=etype,
            machine=machine,
            version=version,
            entry=entry,
            shoff=shoff,
            flags=flags,
            shentsize=shentsize,
            shnum=shnum,
            shstrndx=shstrndx,
        )
        return header, layout

    def _parse_sections(self) -> tuple[list[tuple[int, ...]], bytes]:
        """Check and unpack the section header table; return it and the section name table."""
        header, layout, data = self.header, self._layout, self._data
        # Field positions inside the ELF header, for error offsets.
        shoff_at = 40 if layout.is64 else 32
        shentsize_at = shoff_at + (18 if layout.is64 else 14)
        # An e_shoff of 0 is no "no table" to kmod 34: it reads the table at offset 0 (and
        # finds a broken file there), so it is not special here either.
        # The kernel refuses any other entry size, so a different one means a broken file.
        if header.shentsize != layout.shdr.size:
            raise self._error(
                f"section header entry size is {header.shentsize}, expected {layout.shdr.size}",
                shentsize_at,
            )
        shnum, shstrndx = header.shnum, header.shstrndx
        if shnum == 0 or shstrndx == SHN_XINDEX:
            # Extended numbering: the real values live in section header 0.
            if header.shoff + layout.shdr.size > len(data):
                raise self._error(
                    f"section header table at {header.shoff} is beyond the end of the file "
                    f"({len(data)} bytes)",
                    shoff_at,
                )
            first = layout.shdr.unpack_from(data, header.shoff)
            if shnum == 0:
                shnum = first[5]
            if shstrndx == SHN_XINDEX:
                shstrndx = first[6]
        end = header.shoff + shnum * layout.shdr.size
        if end > len(data):
            raise self._error(
                f"section header table of {shnum} entries at {header.shoff} ends at {end}, "
                f"beyond the end of the file ({len(data)} bytes)",
                shoff_at,
            )
        shdrs = list(layout.shdr.iter_unpack(data[header.shoff : end]))
        if not shdrs:
            return [], b""
        if shstrndx >= shnum:
            raise self._error(
                f"section name table index {shstrndx} is out of range (0..{shnum - 1})",
                shentsize_at + 4,
            )
        strtab = shdrs[shstrndx]
        names = bytes(self._range(strtab[4], strtab[5], self._shdr_at(shstrndx)))
        # kmod 34 refuses a name table whose last byte is not a NUL (an empty one too), which
        # makes every name offset inside the table a terminated string.
        if not names.endswith(b"\0"):
            raise self._error(
                f"section name table of {len(names)} bytes has no terminating NUL at its end",
                self._shdr_at(shstrndx),
            )
        # kmod 34 also refuses a name table whose own name lies beyond it (other sections'
        # names may: they just match nothing).
        if strtab[0] >= len(names):
            raise self._error(
                f"section name table's own name offset {strtab[0]} is beyond its "
                f"{len(names)} bytes",
                self._shdr_at(shstrndx),
            )
        return shdrs, names

    def _shdr_at(self, index: int) -> int:
        """Where section header ``index`` sits in the file."""
        return self.header.shoff + index * self._layout.shdr.size

    def _in_file(self, fields: tuple[int, ...]) -> bool:
        """Whether a section's bytes lie inside the file (its type does not matter)."""
        return fields[4] + fields[5] <= len(self._data)

    @cached_property
    def _index_by_name(self) -> dict[bytes, int]:
        # A tight loop: this runs for every module whose modinfo is read.
        index: dict[bytes, int] = {}
        names = self._names
        size, find = len(names), names.find
        for i, fields in enumerate(self._shdrs):
            offset = fields[0]
            # Like kmod 34's lookup, a name beyond the name table matches nothing and a section
            # whose bytes run past the end of the file is passed over; the first of equally
            # named sections left wins, as a linear search finds it.
            if offset >= size or not self._in_file(fields):
                continue
            name = names[offset : find(b"\0", offset)]
            if name not in index:
                index[name] = i
        return index

    def _section(self, index: int) -> Section:
        section = self._built.get(index)
        if section is None:
            name, stype, flags, addr, offset, size, link, info, align, entsize = self._shdrs[index]
            section = Section(
                number=index,
                name=_cstring(self._names, name, "section name", self.path, self._shdr_at(index)),
                type=stype,
                flags=flags,
                addr=addr,
                offset=offset,
                size=size,
                link=link,
                info=info,
                addralign=align,
                entsize=entsize,
            )
            self._built[index] = section
        return section

    @cached_property
    def sections(self) -> tuple[Section, ...]:
        """Every section header, in table order (index 0 included)."""
        return tuple(self._section(i) for i in range(len(self._shdrs)))

    def _range(self, offset: int, size: int, where: int) -> memoryview:
        """Return ``size`` bytes at ``offset`` or raise naming the header at ``where``."""
        if offset + size > len(self._data):
            raise self._error(
                f"section data at {offset} of {size} bytes ends beyond the end of the file "
                f"({len(self._data)} bytes)",
                where,
            )
        return self._data[offset : offset + size]

    def section(self, name: str) -> Section | None:
        """Return the first section called ``name``, or None."""
        key = name.encode("utf-8", "surrogateescape")
        if not key or "_index_by_name" in self.__dict__:
            index = self._index_by_name.get(key)
            return None if index is None else self._section(index)
        return self.sections_named((name,))[0]

    def sections_named(self, names: tuple[str, ...]) -> list[Section | None]:
        """The first section called each of ``names`` (None where there is none).

        A few lookups need no name index: find each name's spots in the name table (several
        when names share tails, ".rela.text" and ".text") and the first header using one.
        """
        shdrs = self._shdrs
        offsets = [fields[0] for fields in shdrs]
        table = self._names
        out: list[Section | None] = []
        for name in names:
            needle, found = name.encode("utf-8", "surrogateescape") + b"\0", len(offsets)
            start = table.find(needle, 1)  # offset 0 is always the empty name
            while start > 0:
                at = -1
                try:  # not a context manager: entering one costs more than this search
                    while (at := offsets.index(start, at + 1, found)) >= 0:
                        if self._in_file(shdrs[at]):
                            found = at
                            break
                except ValueError:  # no more sections at this name's offset
                    pass
                start = table.find(needle, start + 1)
            if found == len(offsets):
                out.append(None)
            elif (section := self._built.get(found)) is not None:
                out.append(section)
            else:
                # The name is known: no need to look it up again in the table.
                section = self._built[found] = Section(found, name, *shdrs[found][1:])
                out.append(section)
        return out

    @property
    def section_count(self) -> int:
        """How many section headers the table holds (index 0 included)."""
        return len(self._shdrs)

    def section_span(self, index: int) -> tuple[int, int, int]:
        """Address, file offset and size of section ``index`` (0 <= index < ``section_count``),
        its name unread: a name past the name table does not matter here."""
        fields = self._shdrs[index]
        return fields[3], fields[4], fields[5]

    def file_bytes(self, section: Section) -> memoryview:
        """A section's bytes in the file whatever its type, as kmod 34 reads ``.modinfo``."""
        return self._range(section.offset, section.size, self._shdr_at(section.number))

    def section_data(self, section: Section) -> memoryview:
        """Return a section's bytes (empty for SHT_NOBITS, which occupy no file space)."""
        if section.type == SectionType.NOBITS:
            return self._data[0:0]
        return self._range(section.offset, section.size, self._shdr_at(section.number))

    def notes(self, section: Section) -> tuple[Note, ...]:
        """The notes of ``section`` in order. Each is ``namesz, descsz, type`` (4-byte words in
        the file's byte order) and the name, padded to the section's alignment, then the
        descriptor, padded the same: 8 for a section aligned to 8 (GNU property notes of 64-bit
        files), else 4, as readelf takes it."""
        data = self.section_data(section)
        align = 8 if section.addralign == 8 else 4
        words = struct.Struct(("<" if self.byteorder == "little" else ">") + "III")
        notes = []
        at = 0
        while at < len(data):
            where = section.offset + at
            if len(data) - at < _NOTE_HEADER:
                raise self._error(
                    f"note header of {_NOTE_HEADER} bytes at {at} of section {section.name!r} "
                    f"ends beyond the section ({len(data)} bytes)",
                    where,
                )
            namesz, descsz, kind = words.unpack_from(data, at)
            name_at = at + _NOTE_HEADER
            # The header and the name together are padded: a descriptor aligned to 8 follows
            # "GNU\0" at once, 16 bytes from the note's start.
            desc_at = at + -(-(_NOTE_HEADER + namesz) // align) * align
            if desc_at + descsz > len(data):
                raise self._error(
                    f"note at {at} of section {section.name!r} with a {namesz}-byte name and a "
                    f"{descsz}-byte descriptor ends beyond the section ({len(data)} bytes)",
                    where,
                )
            name = bytes(data[name_at : name_at + namesz]).split(b"\0", 1)[0]
            notes.append(Note(name, kind, bytes(data[desc_at : desc_at + descsz])))
            at = desc_at + -(-descsz // align) * align
        return tuple(notes)

    @cached_property
    def symbols(self) -> tuple[Symbol, ...]:
        """All entries of the first SHT_SYMTAB section (``.symtab``), index 0 included."""
        found = next((i for i, f in enumerate(self._shdrs) if f[1] == SectionType.SYMTAB), None)
        if found is None:
            return ()
        symtab = self._section(found)
        where = self._shdr_at(symtab.number)
        entsize_at = where + (56 if self.is64 else 36)
        link_at = where + (40 if self.is64 else 24)
        sym = self._layout.sym
        if symtab.entsize != sym.size:
            raise self._error(
                f"symbol table entry size is {symtab.entsize}, expected {sym.size}", entsize_at
            )
        if symtab.size % sym.size:
            raise self._error(
                f"symbol table size {symtab.size} is not a multiple of its entry size {sym.size}",
                where,
            )
        if not 0 < symtab.link < len(self._shdrs):
            raise self._error(
                f"symbol table links to string table section {symtab.link}, "
                f"out of range (1..{len(self._shdrs) - 1})",
                link_at,
            )
        strings = bytes(self.section_data(self._section(symtab.link)))
        table = self.section_data(symtab)
        out = []
        is64 = self.is64
        find, limit = strings.find, len(strings)
        for index, fields in enumerate(sym.iter_unpack(table)):
            if is64:
                name, info, other, shndx, value, size = fields
            else:
                name, value, size, info, other, shndx = fields
            # Inline the common case; _cstring raises (or names offset 0) otherwise.
            end = find(b"\0", name)
            if end < 0 or name >= limit or name == 0:
                at = symtab.offset + index * sym.size
                text = _cstring(strings, name, "symbol name", self.path, at)
            else:
                text = strings[name:end].decode("utf-8", "surrogateescape")
            out.append(
                Symbol(
                    name=text,
                    value=value,
                    size=size,
                    info=info,
                    other=other,
                    shndx=shndx,
                )
            )
        return tuple(out)
