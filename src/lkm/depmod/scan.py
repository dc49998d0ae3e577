"""What depmod needs from one module file, read fast and returned as plain tuples.

depmod reads every module of a tree, so this is its hot loop; it runs in worker processes and
hands back small tuples of strings and ints (cheap to pickle), never ``ModuleFile`` objects.
An uncompressed module is not read whole: its headers and the few sections depmod uses are
read where they lie (``pread``). Symbol tables are handled a table at a time (``map``,
``compress`` and ``zip`` over arrays and bytes), so only undefined symbols and ``__crc_``
symbols become Python objects and no bytecode runs per symbol. What makes a module
unreadable is ``ElfFile``'s to say (as for modinfo); past that, depmod reads symbols as
leniently as kmod 34 does (see ``_scan_elf``).
"""

from __future__ import annotations

import os
import stat
import struct
import sys
from array import array
from itertools import compress, repeat
from operator import itemgetter

from lkm.compress import MAGIC_SIZE, XZ_MAGIC, decompress, xz_reread_reasons
from lkm.errors import DecompressionError, ElfError, LkmError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Literal

    from lkm.xz_buffer import XzBuffer

__all__ = ["ModuleFailure", "ModuleScan", "scan_file", "scan_files"]

_CRC_PREFIX = b"__crc_"
# lkm.elf's SHN_ABS. lkm.elf (ElfFile) and lkm.module are imported only for a file the quick
# reading declines, or one that fails: a real tree has none, and depmod's start-up (serial) is
# spared them.
_SHN_ABS = 0xFFF1
_ET_REL = 1
_STB_WEAK = 2


class ModuleScan(NamedTuple):
    """What depmod uses of a readable module, as the file's bytes (depmod writes them back).

    Symbols are columns, a tuple of names and tuples of what goes with them, rather than a
    tuple per symbol: a plain run looks at names only, and a worker process sends a tree's
    worth of them (columns of small ints and shared names pickle and unpickle at a fraction
    of the cost). ``exports`` and ``imports`` give them a symbol at a time.
    """

    aliases: tuple[bytes, ...]
    softdeps: tuple[bytes, ...]
    weakdeps: tuple[bytes, ...]
    export_names: tuple[bytes, ...]
    export_crcs: tuple[int | None, ...]
    # The undefined symbols in symbol table order, then the ``__versions`` entries no
    # undefined symbol names.
    import_names: tuple[bytes, ...]
    import_crcs: tuple[int | None, ...]
    import_weak: bytes  # 1 or 0 each
    # Not depmod's: the ``firmware:`` fields, kept in its cache for ``lkm closure`` (which
    # would otherwise decompress every module again to read them).
    firmware: tuple[bytes, ...] = ()

    @property
    def exports(self) -> tuple[tuple[bytes, int | None], ...]:
        """(name, crc) of each exported symbol."""
        return tuple(zip(self.export_names, self.export_crcs, strict=True))

    @property
    def imports(self) -> tuple[tuple[bytes, int | None, bool], ...]:
        """(name, crc, weak) of each needed symbol."""
        weak = map(bool, self.import_weak)
        return tuple(zip(self.import_names, self.import_crcs, weak, strict=True))


class ModuleFailure(NamedTuple):
    """A module that could not be read: the errno kmod reports and the decompressor's words."""

    errno: int
    method: str  # "xz", "zstd", ... when decompression failed, else ""
    reason: str | None
    # The decompressor's words when kmod reads the file again, twice (see report_failure):
    # empty when they are ``reason`` again.
    rereads: tuple[str, ...] = ()


_new_scan = tuple.__new__  # a ModuleScan of all its fields, without its keyword handling


def scan_file(path: str, names: dict[bytes, bytes] | None = None) -> ModuleScan | ModuleFailure:
    """Read the module at ``path``; failures come back as ``ModuleFailure``, never raised.

    ``names``, shared between calls, makes each symbol name one object (cheap to pickle).
    """
    if names is None:
        names = {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            source = _OnDisk.of_elf(fd)
            if source is not None:
                try:
                    return _scan_elf(source, names, path)
                except LkmError as err:
                    return ModuleFailure(_kmod_errno(err), "", None)
                except _Changed:
                    pass  # read again, whole, below
            data = _read_all(fd)
        finally:
            os.close(fd)
    except OSError as err:
        return ModuleFailure(err.errno or 5, "", None)
    try:
        if data.startswith(XZ_MAGIC) and (view := _xz_decompressed(data)) is not None:
            return _scan_elf(_InBuffer(view), names, path)
        return scan_bytes(data, path=path, names=names)
    except DecompressionError as err:
        rereads = xz_reread_reasons(data, 2) if err.method == "xz" and err.reason else ()
        return ModuleFailure(_kmod_errno(err), err.method, err.reason, rereads)
    except LkmError as err:
        return ModuleFailure(_kmod_errno(err), "", None)


# This process's xz decoder, once an xz module was met (None in it: liblzma cannot be used).
_XZ: list[XzBuffer | None] = []


def _xz_decompressed(data: bytes) -> memoryview | None:
    """``data`` decompressed by ``XzBuffer`` (valid until the next call), or None: then
    ``decompress`` does it, and has the words for a failure."""
    if not _XZ:
        from lkm.xz_buffer import XzBuffer

        _XZ.append(XzBuffer.load())
    decoder = _XZ[0]
    return None if decoder is None else decoder.decompress(data)


def _kmod_errno(err: LkmError) -> int:
    from lkm.module import kmod_errno

    return kmod_errno(err)


def _read_all(fd: int) -> bytes:
    parts = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def scan_files(
    paths: Sequence[str], names: dict[bytes, bytes] | None = None
) -> list[ModuleScan | ModuleFailure]:
    """``scan_file`` over a chunk of paths: the unit of work of a worker process."""
    if names is None:
        names = {}
    return [scan_file(path, names) for path in paths]


def scan_bytes(
    data: bytes, *, path: str | None = None, names: dict[bytes, bytes] | None = None
) -> ModuleScan:
    """Read a module's bytes (compressed or not); raises LkmError when they are broken."""
    if len(data) < MAGIC_SIZE:
        # kmod reads this many bytes to tell the format, and fails with EINVAL when it cannot.
        raise ElfError(
            f"file of {len(data)} bytes is too short to tell its format ({MAGIC_SIZE} bytes)",
            path=path,
        )
    source = _InMemory(decompress(data, path=path))
    return _scan_elf(source, {} if names is None else names, path)


_HEAD = 64  # the ELF header of either class fits


class _Changed(Exception):
    """The file grew shorter while it was read: it is read again, whole."""


class _Source:
    """A module file's bytes: ``size``, the first ``_HEAD`` of them (``head``) and any
    others by offset (``read``, cut short at the end of the file as a slice is)."""

    __slots__ = ("head", "size")

    head: bytes
    size: int

    def read(self, offset: int, size: int) -> bytes:
        raise NotImplementedError

    def whole(self) -> bytes:
        raise NotImplementedError


class _InMemory(_Source):
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.head = data[:_HEAD]

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]

    def whole(self) -> bytes:
        return self.data


class _InBuffer(_Source):
    """Bytes in a buffer used again for the next module: every read is a copy."""

    __slots__ = ("view",)

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.size = len(view)
        self.head = view[:_HEAD].tobytes()

    def read(self, offset: int, size: int) -> bytes:
        return self.view[offset : offset + size].tobytes()

    def whole(self) -> bytes:
        return self.view.tobytes()


class _OnDisk(_Source):
    """An uncompressed module read where needed: depmod looks at a few sections of it, and
    reading a whole tree of them (or mapping it, a page fault per page) costs more than
    reading those sections."""

    __slots__ = ("fd",)

    def __init__(self, fd: int, size: int, head: bytes) -> None:
        self.fd = fd
        self.size = size
        self.head = head

    @classmethod
    def of_elf(cls, fd: int) -> _OnDisk | None:
        """The open file when it is an ELF file (not compressed), else None: read it whole."""
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        head = os.pread(fd, _HEAD, 0)
        if len(head) < MAGIC_SIZE or not head.startswith(b"\x7fELF"):
            return None
        return cls(fd, info.st_size, head)

    def read(self, offset: int, size: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        if len(data) != max(0, min(size, self.size - offset)):
            raise _Changed
        return data

    def whole(self) -> bytes:
        data = _read_all(self.fd)
        if len(data) != self.size:
            raise _Changed
        return data


def _modinfo(data: bytes) -> tuple[tuple[bytes, ...], ...]:
    """aliases, softdeps, weakdeps and firmware; a firmware string without ``=`` is the key
    with an empty value, as modinfo reads it (``ModuleFile.modinfo``).

    Each key's values are found by splitting at the key with its ``=`` and the NUL ending the
    string before: the strings are not looked at one by one.
    """
    text = b"\0" + data
    firmware: tuple[bytes, ...] = ()
    if b"\0firmware" in text:
        if (text + b"\0").find(b"\0firmware\0") < 0:
            firmware = _values(text, b"\0firmware=")
        else:  # a string "firmware" alone, whose value is empty
            items = map(bytes.partition, data.split(b"\0"), repeat(b"="))
            firmware = tuple(value for key, _, value in items if key == b"firmware")
    return (
        _values(text, b"\0alias="),
        _values(text, b"\0softdep="),
        _values(text, b"\0weakdep="),
        firmware,
    )


def _values(text: bytes, key: bytes) -> tuple[bytes, ...]:
    """The values of the strings of ``text`` that start with ``key`` (NUL, name, ``=``)."""
    parts = text.split(key)
    if len(parts) < 2:
        return ()
    del parts[0]
    # A value ends at the next NUL: only the last, and one followed by another key's string,
    # runs on past it.
    if b"\0" in b"".join(parts[:-1]):
        return tuple(map(_first, map(bytes.partition, parts, repeat(b"\0"))))
    parts[-1] = parts[-1].partition(b"\0")[0]
    return tuple(parts)


_SECTIONS = (".modinfo", ".symtab", ".strtab", "__versions", "__ksymtab_strings")
# Each name with the NUL that ends it in the section name table.
_NEEDLES = tuple(name.encode() + b"\0" for name in _SECTIONS)
# e_type, e_shoff, e_shentsize, e_shnum, e_shstrndx of the ELF header, per (64-bit, little).
_EHDR = {
    (True, True): struct.Struct("<16xH22xQ10xHHH"),
    (True, False): struct.Struct(">16xH22xQ10xHHH"),
    (False, True): struct.Struct("<16xH14xI10xHHH"),
    (False, False): struct.Struct(">16xH14xI10xHHH"),
}
# A section header's sh_addr, sh_offset and sh_size, per (64-bit, little).
_SPAN = {
    (True, True): struct.Struct("<16xQQQ"),
    (True, False): struct.Struct(">16xQQQ"),
    (False, True): struct.Struct("<12xIII"),
    (False, False): struct.Struct(">12xIII"),
}
_NATIVE_LITTLE = sys.byteorder == "little"
# A 32-bit word (a section header's sh_name), per little.
_WORD = {True: struct.Struct("<I"), False: struct.Struct(">I")}
# Per class: the size of a symbol, where st_shndx's two bytes and st_info's byte are in it,
# and (in 32-bit words) the word holding st_name and the word holding st_info, st_other and
# st_shndx.
_SYMBOL = {True: (24, 6, 4, 0, 1), False: (16, 14, 12, 0, 3)}
# bytes.translate's table that makes a zero byte 1 and any other 0.
_ZERO_IS_ONE = bytes([1] + [0] * 255)
# bytes.translate's table that makes an st_info byte 1 where ELF_ST_BIND is STB_WEAK, else 0.
_WEAK_IS_ONE = bytes(int(info >> 4 == _STB_WEAK) for info in range(256))
_VERSION_ENTRY = 64
# Layouts of as many entries as this are kept for the next module with as many.
_VERSION_LAYOUTS_KEPT = 4096
_first = itemgetter(0)


class _Elf:
    """What depmod reads of an ELF file's headers: its class, byte order and type, its
    section header table, and the file span (offset, size) of each of ``_SECTIONS`` (None
    where there is none). ``source`` is where the rest is read from."""

    __slots__ = ("is64", "little", "path", "relocatable", "shdrs", "source", "spans")

    def __init__(
        self,
        source: _Source,
        path: str | None,
        fields: tuple[bool, bool, bool],
        shdrs: bytes,
        spans: list[tuple[int, int] | None],
    ) -> None:
        self.source = source
        self.path = path
        self.is64, self.little, self.relocatable = fields
        self.shdrs = shdrs
        self.spans = spans

    @property
    def section_count(self) -> int:
        return len(self.shdrs) // (64 if self.is64 else 40)

    def section_span(self, index: int) -> tuple[int, int, int]:
        """Address, file offset and size of section ``index`` (< ``section_count``)."""
        layout = _SPAN[self.is64, self.little]
        found: tuple[int, int, int] = layout.unpack_from(
            self.shdrs, index * (64 if self.is64 else 40)
        )
        return found

    def read(self, span: tuple[int, int]) -> bytes:
        return self.source.read(span[0], span[1])


def _headers(source: _Source, path: str | None) -> _Elf:
    """The headers as ``ElfFile`` reads them (it raises for a broken file), the sections
    found as ``ElfFile.sections_named`` finds them; most files take a shorter way to the
    same result."""
    quick = _quick_headers(source, path)
    return quick if quick is not None else _elf_headers(source, path)


def _elf_headers(source: _Source, path: str | None) -> _Elf:
    """``_headers`` by ``ElfFile``, which raises ``ElfError`` for a broken file."""
    from lkm.elf import ElfFile

    data = source.whole()
    elf = ElfFile(memoryview(data), path=path)
    is64, little = elf.is64, elf.byteorder == "little"
    entry = 64 if is64 else 40
    return _Elf(
        _InMemory(data),
        path,
        (is64, little, elf.header.type == _ET_REL),
        data[elf.header.shoff : elf.header.shoff + elf.section_count * entry],
        [None if s is None else (s.offset, s.size) for s in elf.sections_named(_SECTIONS)],
    )


def _quick_headers(source: _Source, path: str | None) -> _Elf | None:
    """``_headers`` for a file ``ElfFile`` takes without a second look; None for any other
    (a broken one, extended section numbering): the whole check is then ``ElfFile``'s.

    ``ElfFile`` makes records of the headers and their names; here each wanted name is looked
    for in the name table, and its offset (as the four bytes of an sh_name) among the headers'
    sh_name words: no header becomes Python objects but those found.
    """
    head = source.head
    if len(head) < _HEAD or not head.startswith(b"\x7fELF"):
        return None
    elf_class, encoding = head[4], head[5]
    if elf_class not in (1, 2) or encoding not in (1, 2):
        return None
    is64, little = elf_class == 2, encoding == 1
    etype, shoff, shentsize, shnum, shstrndx = _EHDR[is64, little].unpack_from(head)
    entry = 64 if is64 else 40
    size = source.size
    # shnum 0 (extended numbering) is declined here too: shstrndx cannot be below it.
    if shentsize != entry or shstrndx >= shnum or shoff + shnum * entry > size:
        return None
    table = source.read(shoff, shnum * entry)
    span = _SPAN[is64, little]
    word = _WORD[little]
    _, names_offset, names_size = span.unpack_from(table, shstrndx * entry)
    if names_offset + names_size > size:
        return None
    names = source.read(names_offset, names_size)
    if not names.endswith(b"\0") or word.unpack_from(table, shstrndx * entry)[0] >= len(names):
        return None
    # Each header's sh_name, its bytes as they are in the file.
    column = array("I", table)[:: entry // 4].tobytes()
    spans: list[tuple[int, int] | None] = []
    for needle in _NEEDLES:
        # Every spot of the name in the table (several when names share tails) and the first
        # header using one whose bytes lie in the file; offset 0 is the empty name.
        found = None
        end = len(column)  # only headers before the one found so far are looked at
        at = names.find(needle, 1)
        while at > 0:
            key = word.pack(at)
            where = column.find(key, 0, end)
            while where >= 0:
                if not where % 4:
                    _, offset, length = span.unpack_from(table, where // 4 * entry)
                    if offset + length <= size:
                        found, end = (offset, length), where
                        break
                where = column.find(key, where + 1, end)
            at = names.find(needle, at + 1)
        spans.append(found)
    return _Elf(source, path, (is64, little, etype == _ET_REL), table, spans)


def _scan_elf(source: _Source, names_cache: dict[bytes, bytes], path: str | None) -> ModuleScan:
    """What depmod takes from a module, read as kmod 34 reads it.

    A module kmod cannot open as ELF (``ElfFile``'s checks) fails as a whole. Past that, kmod
    is lenient, and so is this: sections are found by name (the first one whose bytes lie in
    the file), whatever their type, link or entry size says; a symbol or string table it cannot
    use costs the symbols, not the module, and no message is printed:

    - no ``.symtab`` or ``.strtab``, or a symbol table whose size is no whole number of entries:
      no needed symbols at all, and the exports come from ``__ksymtab_strings``;
    - a symbol name offset at or past the end of ``.strtab``: in an undefined symbol, no needed
      symbols at all; in any symbol, the exports come from ``__ksymtab_strings``;
    - a name runs to the first NUL, in the file if the string table has none after it;
    - ``__versions`` whose size is no whole number of 64-byte entries counts as absent.
    """
    elf = _headers(source, path)
    is64, little = elf.is64, elf.little
    section, symtab, strtab, versions_section, ksymtab_strings = elf.spans
    aliases, softdeps, weakdeps, firmware = (
        _modinfo(elf.read(section)) if section else ((), (), (), ())
    )
    entry, _, _, name_word, _ = _SYMBOL[is64]
    if symtab is None or strtab is None or symtab[1] % entry:
        names = _ksymtab_strings(elf, ksymtab_strings)
        return _new_scan(
            ModuleScan,
            (aliases, softdeps, weakdeps, names, (None,) * len(names), (), (), b"", firmware),
        )
    table = elf.read(symtab)
    words = array("I")
    if words.itemsize != 4:  # pragma: no cover - every CPython platform has it
        raise ElfError("no 32-bit array type on this platform", path=path)
    words.frombytes(table)
    if little != _NATIVE_LITTLE:
        words.byteswap()
    stride = entry // 4
    offsets = words[name_word::stride]
    strings = elf.read(strtab)
    limit = len(strings)

    needed = _imports(elf, table, offsets, strings=strings, names_cache=names_cache)
    import_names: tuple[bytes, ...] = ()
    import_crcs: tuple[int | None, ...] = ()
    import_weak = b""
    if needed is not None:
        versions = _versions(elf, versions_section)
        import_names, import_crcs, import_weak = _with_versions(*needed, versions)
    # Where "__crc_" starts in the string table (or in a name running past its end); the
    # symbols named from there are the exports, unless a symbol is named past the table.
    text = strings
    if not strings.endswith(b"\0"):
        text = source.read(strtab[0], limit + len(_CRC_PREFIX) - 1)
    starts = []
    at = text.find(_CRC_PREFIX)
    while at >= 0:
        starts.append(at)
        at = text.find(_CRC_PREFIX, at + 1)
    candidates = _named_from(table, offsets, starts, little) if starts and offsets else []
    if candidates and max(offsets) < limit:
        export_names, export_crcs = _crc_exports(
            elf, table, candidates, strings=strings, names_cache=names_cache
        )
    else:
        export_names = _ksymtab_strings(elf, ksymtab_strings)
        export_crcs = (None,) * len(export_names)
    return _new_scan(
        ModuleScan,
        (
            aliases,
            softdeps,
            weakdeps,
            export_names,
            export_crcs,
            import_names,
            import_crcs,
            import_weak,
            firmware,
        ),
    )


def _imports(
    elf: _Elf,
    table: bytes,
    offsets: array[int],
    *,
    strings: bytes,
    names_cache: dict[bytes, bytes],
) -> tuple[list[bytes], bytes] | None:
    """The undefined symbols (st_shndx 0) that have a name, in table order: their names and
    whether each is weak (a byte each, 1 or 0); None when one is named past the string table
    (kmod then needs no symbol at all).

    Both are found on the bytes: st_shndx's two bytes of each symbol (a strided slice each),
    ORed as two big integers, a zero byte made 1 (``translate``), select the undefined ones
    (``compress``), and st_info's byte made 1 where its binding is weak gives the flags.
    Symbols before the first undefined one past the null symbol (the local ones) are not
    looked at again.
    """
    entry, shndx_at, info_at, _, _ = _SYMBOL[elf.is64]
    count = len(offsets)
    if not count:
        return [], b""
    low = int.from_bytes(table[shndx_at::entry], "little")
    high = int.from_bytes(table[shndx_at + 1 :: entry], "little")
    undefined = (low | high).to_bytes(count, "little").translate(_ZERO_IS_ONE)
    weak = table[info_at::entry].translate(_WEAK_IS_ONE)
    first = undefined.find(1, 1)
    if first < 0:
        first = count
    needed = list(compress(offsets[first:], undefined[first:]))
    weaks = bytes(compress(weak[first:], undefined[first:]))
    # The null symbol names nothing, unless there is no string table to name it in.
    if undefined[0] and (offsets[0] or not strings):
        needed.insert(0, offsets[0])
        weaks = weak[:1] + weaks
    if not needed:
        return [], b""
    if not strings:  # every name past the table's end
        return None
    if strings[0] and 0 in needed:  # no name, not even the empty one
        weaks = bytes(compress(weaks, needed))
        needed = list(compress(needed, needed))
    names = _names_at(elf, strings, needed)
    if names is None:
        return None
    if b"" in names:
        weaks = bytes(compress(weaks, names))
        names = list(compress(names, names))
    return list(map(names_cache.setdefault, names, names)), weaks


def _names_at(elf: _Elf, strings: bytes, offsets: list[int]) -> list[bytes] | None:
    """The NUL-terminated names at ``offsets`` of the string table; unless one runs past the
    table's end, where kmod reads on up to a NUL in the file. None when an offset is not in
    the table."""
    if not offsets:
        return []
    last = max(offsets)
    if last < len(strings) and strings.endswith(b"\0"):  # every name ends in the table
        # A comprehension: a method call and a slice in bytecode cost less than ``map`` over
        # ``find`` and ``slice`` objects.
        find = strings.find
        return [strings[offset : find(b"\0", offset)] for offset in offsets]
    if last >= len(strings):
        return None
    strtab = elf.spans[2]
    assert strtab is not None  # strings are its bytes
    names = []
    for offset in offsets:
        end = strings.find(b"\0", offset)
        if end < 0:
            start = strtab[0] + offset
            names.append(elf.source.read(start, elf.source.size - start).partition(b"\0")[0])
        else:
            names.append(strings[offset:end])
    return names


def _with_versions(
    names: list[bytes], weak: bytes, versions: tuple[list[bytes], tuple[int, ...]] | None
) -> tuple[tuple[bytes, ...], tuple[int | None, ...], bytes]:
    """The needed symbols' names, CRCs and weak flags: the undefined symbols', each with its
    ``__versions`` CRC, then the ``__versions`` entries no undefined symbol names
    (``module_layout``), which kmod counts as needed symbols too."""
    if not versions:
        return tuple(names), (None,) * len(names), weak
    # Each name's CRC taken out of the entries: what is left are the entries no name took.
    # A name that is there twice has its last entry's CRC, as a dict of them gives.
    left = dict(zip(*versions, strict=True))
    crcs = list(map(left.pop, names, repeat(None)))
    if None in crcs:  # a name not in __versions, or named twice
        every = dict(zip(*versions, strict=True))
        crcs = list(map(every.get, names))
        named = set(names)
        left = {name: crc for name, crc in every.items() if name not in named}
    return tuple(names) + tuple(left), tuple(crcs) + tuple(left.values()), weak + bytes(len(left))


def _versions(
    elf: _Elf, span: tuple[int, int] | None
) -> tuple[list[bytes], tuple[int, ...]] | None:
    """``__versions``' names and CRCs, in the order of its entries; None when it is absent or
    not whole entries."""
    if span is None or not span[1] or span[1] % _VERSION_ENTRY:
        return None
    data = elf.read(span)
    count = len(data) // _VERSION_ENTRY
    # All entries in one unpack, CRCs and name fields taking turns; a name is its field up to
    # its first NUL (as kmod reads it).
    fields = _version_entries(elf.is64, elf.little, count).unpack(data)
    names = list(map(_first, map(bytes.partition, fields[1::2], repeat(b"\0"))))
    return names, fields[0::2]


_ENTRIES: dict[tuple[bool, bool, int], struct.Struct] = {}


def _version_entries(is64: bool, little: bool, count: int) -> struct.Struct:
    """The layout of ``count`` entries of ``__versions``: (crc, name) each."""
    layout = _ENTRIES.get((is64, little, count))
    if layout is None:
        entry = "Q56s" if is64 else "I60s"
        layout = struct.Struct(("<" if little else ">") + entry * count)
        if count <= _VERSION_LAYOUTS_KEPT:
            _ENTRIES[is64, little, count] = layout
    return layout


def _named_from(table: bytes, offsets: array[int], starts: list[int], little: bool) -> list[int]:
    """The indexes of the symbols named at one of ``starts``, in table order.

    A symbol whose st_name has the two low bytes of some start is a candidate: each of those
    byte columns (a strided slice) made 1 where a start has that byte (``translate``), the two
    ANDed as big integers, the candidates found in that as 1s; each is then checked whole.
    """
    count = len(offsets)
    entry = len(table) // count
    lows, highs = bytearray(256), bytearray(256)
    for start in starts:
        lows[start & 0xFF] = highs[start >> 8 & 0xFF] = 1
    low_at, high_at = (0, 1) if little else (3, 2)
    bits = int.from_bytes(table[low_at::entry].translate(lows), "little")
    bits &= int.from_bytes(table[high_at::entry].translate(highs), "little")
    marks = bits.to_bytes(count, "little")
    found = []
    at = marks.find(1)
    while at >= 0:
        found.append(at)
        at = marks.find(1, at + 1)
    wanted = set(starts)
    return list(compress(found, map(wanted.__contains__, map(offsets.__getitem__, found))))


# st_name, st_shndx and st_value of a symbol, per (64-bit, little), and where each is in the
# unpacked tuple.
_NAME_SHNDX_VALUE = {
    (True, True): (struct.Struct("<I2xHQ8x"), 0, 1, 2),
    (True, False): (struct.Struct(">I2xHQ8x"), 0, 1, 2),
    (False, True): (struct.Struct("<II6xH"), 0, 2, 1),
    (False, False): (struct.Struct(">II6xH"), 0, 2, 1),
}


def _crc_exports(
    elf: _Elf,
    table: bytes,
    candidates: list[int],
    *,
    strings: bytes,
    names_cache: dict[bytes, bytes],
) -> tuple[tuple[bytes, ...], tuple[int | None, ...]]:
    """The ``__crc_<name>`` symbols among ``candidates`` (symbol indexes): names and CRCs.

    An absolute symbol's CRC is its value; another's is the 32-bit word its value points at in
    its section. A CRC that cannot be read (an undefined symbol, a value outside its section)
    is unknown, the export stays. A section index past the table makes kmod 34 abort: here the
    module fails instead.
    """
    symbol, name_at, shndx_at, value_at = _NAME_SHNDX_VALUE[elf.is64, elf.little]
    symbols = list(map(symbol.unpack_from, repeat(table), map(symbol.size.__mul__, candidates)))
    names = _names_at(elf, strings, list(map(itemgetter(name_at), symbols)))
    assert names is not None  # every symbol is named in the table
    names = [name[len(_CRC_PREFIX) :] for name in names]
    names = list(map(names_cache.setdefault, names, names))
    shnum = elf.section_count
    order: Literal["little", "big"] = "little" if elf.little else "big"
    # Per section: its bytes (none when they run past the file) and the value its offset 0
    # has: in a relocatable object symbol values are offsets into their section, else
    # addresses.
    bodies: dict[int, tuple[bytes, int]] = {}
    crcs: list[int | None] = []
    for fields in symbols:
        shndx, value = fields[shndx_at], fields[value_at]
        crc: int | None = None
        if shndx == _SHN_ABS:
            crc = value & 0xFFFFFFFF
        elif shndx >= shnum:
            raise ElfError(
                f"__crc_ symbol refers to section index {shndx:#x}, not a section of the "
                f"file ({shnum} sections)",
                path=elf.path,
            )
        elif shndx != 0:
            found = bodies.get(shndx)
            if found is None:
                addr, offset, size = elf.section_span(shndx)
                data = elf.read((offset, size)) if offset + size <= elf.source.size else b""
                found = bodies[shndx] = data, 0 if elf.relocatable else addr
            data, base = found
            where = value - base
            if 0 <= where <= len(data) - 4:
                crc = int.from_bytes(data[where : where + 4], order)
        crcs.append(crc)
    return tuple(names), tuple(crcs)


def _ksymtab_strings(elf: _Elf, span: tuple[int, int] | None) -> tuple[bytes, ...]:
    if span is None:
        return ()
    names = elf.read(span).split(b"\0")
    return tuple(compress(names, names))
