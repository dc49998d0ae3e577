"""What depmod needs from one module file, read fast and returned as plain tuples.

depmod reads every module of a tree, so this is its hot loop; it runs in worker processes and
hands back small tuples of strings and ints (cheap to pickle), never ``ModuleFile`` objects.
The symbol table is read in bulk: the fields depmod needs are sliced out of an ``array`` of
32-bit words, so only undefined symbols and ``__crc_`` symbols become Python objects. Any
oddity the bulk path does not expect falls back to ``ModuleFile``, which checks everything and
raises ``LkmError`` with the details.
"""

from __future__ import annotations

import mmap
import operator
import os
import re
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from typing import NamedTuple

from lkm.compress import decompress
from lkm.elf import SHN_ABS, SHN_LORESERVE, SectionType
from lkm.errors import DecompressionError, LkmError
from lkm.module import ModuleFile, kmod_errno

__all__ = ["ModuleFailure", "ModuleScan", "scan_file", "scan_files"]

_CRC_PREFIX = b"__crc_"
_WANTED_MODINFO = (b"alias", b"softdep", b"weakdep")
_ET_REL = 1
_LOW_ONLY = 0xFFFF  # a native word <= this has a zero top half
_LOW = 0xFFFF
_STB_WEAK = 2


class ModuleScan(NamedTuple):
    """What depmod uses of a readable module, as the file's bytes (depmod writes them back)."""

    aliases: tuple[bytes, ...]
    softdeps: tuple[bytes, ...]
    weakdeps: tuple[bytes, ...]
    exports: tuple[tuple[bytes, int | None], ...]  # (name, crc)
    imports: tuple[tuple[bytes, int | None, bool], ...]  # (name, crc, weak), symtab order


class ModuleFailure(NamedTuple):
    """A module that could not be read: the errno kmod reports and the decompressor's words."""

    errno: int
    method: str  # "xz", "zstd", ... when decompression failed, else ""
    reason: str | None


def scan_file(path: str, names: dict[bytes, bytes] | None = None) -> ModuleScan | ModuleFailure:
    """Read the module at ``path``; failures come back as ``ModuleFailure``, never raised.

    ``names``, shared between calls, makes each symbol name one object (cheap to pickle). An
    uncompressed module is mapped, not read: depmod looks at a few sections of it, and copying
    a whole tree of them costs more than reading those sections.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            mapped = _map_elf(fd)
            if mapped is not None:
                try:
                    return _scan_mapped(mapped, names, path)
                except LkmError as err:
                    return ModuleFailure(kmod_errno(err), "", None)
            data = _read_all(fd)
        finally:
            os.close(fd)
    except OSError as err:
        return ModuleFailure(err.errno or 5, "", None)
    try:
        return scan_bytes(data, path=path, names=names)
    except DecompressionError as err:
        return ModuleFailure(kmod_errno(err), err.method, err.reason)
    except LkmError as err:
        return ModuleFailure(kmod_errno(err), "", None)


def _map_elf(fd: int) -> mmap.mmap | None:
    """The file mapped read-only when it is an ELF file (not compressed), else None."""
    if os.pread(fd, 4, 0) != b"\x7fELF":
        return None
    try:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # not mappable (a special file): read it instead
        return None


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def _scan_mapped(raw: mmap.mmap, names: dict[bytes, bytes] | None, path: str) -> ModuleScan:
    try:
        return _scan_fast(raw, {} if names is None else names)
    except (_Unusual, struct.error, IndexError, ValueError):
        return _scan_checked(raw[:], path)


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
    raw = decompress(data, path=path)
    try:
        return _scan_fast(raw, {} if names is None else names)
    except (_Unusual, struct.error, IndexError):
        return _scan_checked(raw, path)


class _Unusual(Exception):
    """Internal: the bulk reader met something only the careful reader handles."""


def _scan_checked(raw: bytes, path: str | None) -> ModuleScan:
    """The same facts through ``ModuleFile``, which raises LkmError on broken structure."""
    module = ModuleFile(raw, path=path)
    aliases, softdeps, weakdeps = _modinfo(
        module.elf.section_data(section)
        if (section := module.elf.section(".modinfo")) is not None
        else b""
    )
    exports = tuple((os.fsencode(e.name), e.crc) for e in module.exports)
    found = [(os.fsencode(i.name), i.crc, i.weak) for i in module.imports]
    _versions_only(found, {os.fsencode(v.symbol): v.crc for v in module.versions})
    imports = tuple(found)
    return ModuleScan(aliases, softdeps, weakdeps, exports, imports)


def _modinfo(data: bytes | memoryview) -> tuple[tuple[bytes, ...], ...]:
    found: dict[bytes, list[bytes]] = {b"alias": [], b"softdep": [], b"weakdep": []}
    for item in bytes(data).split(b"\0"):
        key, eq, value = item.partition(b"=")
        if eq and key in found:
            found[key].append(value)
    return tuple(found[b"alias"]), tuple(found[b"softdep"]), tuple(found[b"weakdep"])


# (ELF header fields from e_type on, section header) formats per class; byte order prepended.
_EHDR = {1: "HHIIIIIHHHHHH", 2: "HHIQQQIHHHHHH"}
_SHDR = {1: "IIIIIIIIII", 2: "IIQQQQIIQQ"}
_SYMTAB, _NOBITS = int(SectionType.SYMTAB), int(SectionType.NOBITS)


def _scan_fast(raw: bytes | mmap.mmap, names_cache: dict[bytes, bytes]) -> ModuleScan:
    if raw[:4] != b"\x7fELF" or raw[4] not in (1, 2) or raw[5] not in (1, 2):
        raise _Unusual
    is64 = raw[4] == 2
    little = raw[5] == 1
    bo = "<" if little else ">"
    header = struct.unpack_from(bo + _EHDR[raw[4]], raw, 16)
    etype, shoff, shentsize, shnum, shstrndx = (
        header[0],
        header[5],
        header[10],
        header[11],
        header[12],
    )
    shdr = struct.Struct(bo + _SHDR[raw[4]])
    if shoff == 0:
        return ModuleScan((), (), (), (), ())
    if shentsize != shdr.size or shnum == 0 or shstrndx >= shnum:
        raise _Unusual
    end = shoff + shnum * shdr.size
    if end > len(raw):
        raise _Unusual
    shdrs = list(shdr.iter_unpack(raw[shoff:end]))

    view = memoryview(raw)

    def body(index: int) -> memoryview:
        fields = shdrs[index]
        if fields[1] == _NOBITS:
            return view[0:0]
        offset, size = fields[4], fields[5]
        if offset + size > len(raw):
            raise _Unusual
        return view[offset : offset + size]

    names = bytes(body(shstrndx))
    by_name = _find_sections(names, [fields[0] for fields in shdrs])
    index = by_name.get(b".modinfo")
    aliases, softdeps, weakdeps = _modinfo(body(index)) if index is not None else ((), (), ())
    symtab = by_name.get(b".symtab")
    if symtab is None:
        if any(fields[1] == _SYMTAB for fields in shdrs):
            raise _Unusual
        return ModuleScan(aliases, softdeps, weakdeps, _ksymtab_strings(by_name, body), ())
    _, stype, _, _, sym_offset, sym_size, link, _, _, entsize = shdrs[symtab]
    entry = 24 if is64 else 16
    if stype != _SYMTAB or entsize != entry or sym_size % entry or not 0 < link < shnum:
        raise _Unusual
    strings = bytes(body(link))
    words = array("I")
    if words.itemsize != 4:
        raise _Unusual
    words.frombytes(body(symtab))
    if little != (sys.byteorder == "little"):
        words.byteswap()
    # The word holding st_info, st_other and st_shndx: shndx is its top half when the file is
    # little-endian, its bottom half when big-endian (read as one native word after swapping).
    stride = entry // 4
    mixed = words[1::stride] if is64 else words[3::stride]
    offsets = words[0::stride]
    limit = len(strings)
    find = strings.find
    intern = names_cache.setdefault

    def name_at(offset: int) -> bytes:
        stop = find(b"\0", offset)
        if offset >= limit or stop < 0:
            raise _Unusual
        return strings[offset:stop]

    versions = _versions(body(by_name[b"__versions"]), is64, bo) if b"__versions" in by_name else {}
    imports: list[tuple[bytes, int | None, bool]] = []
    # Undefined symbols (st_shndx 0), picked out at C speed: no bytecode runs per symbol.
    if little:
        undefined = compress(range(len(mixed)), map(_LOW_ONLY.__ge__, mixed))
    else:
        undefined = compress(range(len(mixed)), map(operator.not_, map(_LOW.__and__, mixed)))
    for i in undefined:
        offset = offsets[i]
        if offset:
            name = name_at(offset)
            if name:
                name = intern(name, name)
                info = mixed[i] & 0xFF if little else mixed[i] >> 24
                imports.append((name, versions.get(name), info >> 4 == _STB_WEAK))
    _versions_only(imports, versions)
    exports: list[tuple[bytes, int | None]] = []
    crc_offsets = {m.start() for m in re.finditer(re.escape(_CRC_PREFIX), strings)}
    if crc_offsets:
        value_fmt = struct.Struct(bo + ("Q" if is64 else "I"))
        value_at = sym_offset + (8 if is64 else 4)
        # The __crc_ symbols in symbol table order, picked out at C speed.
        for i in compress(range(len(offsets)), map(crc_offsets.__contains__, offsets)):
            offset = offsets[i]
            if offset:
                shndx = mixed[i] >> 16 if little else mixed[i] & 0xFFFF
                (value,) = value_fmt.unpack_from(raw, value_at + i * entry)
                if shndx == SHN_ABS:
                    crc = value & 0xFFFFFFFF
                else:
                    if shndx == 0 or shndx >= SHN_LORESERVE or shndx >= shnum:
                        raise _Unusual
                    data = body(shndx)
                    where = value if etype == _ET_REL else value - shdrs[shndx][3]
                    if not 0 <= where <= len(data) - 4:
                        raise _Unusual
                    crc = int.from_bytes(data[where : where + 4], "little" if little else "big")
                    del data
                exports.append((name_at(offset)[len(_CRC_PREFIX) :], crc))
    if not exports:
        return ModuleScan(
            aliases, softdeps, weakdeps, _ksymtab_strings(by_name, body), tuple(imports)
        )
    return ModuleScan(aliases, softdeps, weakdeps, tuple(exports), tuple(imports))


def _versions_only(
    imports: list[tuple[bytes, int | None, bool]], versions: dict[bytes, int]
) -> None:
    """Append the ``__versions`` entries no undefined symbol names (``module_layout``): kmod
    counts them as needed symbols too, after those of the symbol table."""
    if len(versions) > len(imports) or any(name not in versions for name, _, _ in imports):
        seen = {name for name, _, _ in imports}
        imports.extend((name, crc, False) for name, crc in versions.items() if name not in seen)


_NAMES = (b".modinfo", b".symtab", b"__versions", b"__ksymtab_strings")


def _find_sections(names: bytes, offsets: list[int]) -> dict[bytes, int]:
    """The first section header naming each of ``_NAMES`` (a name may share a longer one's tail)."""
    found: dict[bytes, int] = {}
    for name in _NAMES:
        needle = name + b"\0"
        best = len(offsets)
        at = names.find(needle, 1)
        while at > 0:
            if at in offsets:
                best = min(best, offsets.index(at))
            at = names.find(needle, at + 1)
        if best < len(offsets):
            found[name] = best
    return found


def _versions(data: memoryview, is64: bool, bo: str) -> dict[bytes, int]:
    if len(data) % 64:
        raise _Unusual
    fmt = bo + ("Q56s" if is64 else "I60s")
    if not data:
        return {}
    crcs, padded = zip(*struct.iter_unpack(fmt, data), strict=True)
    found = dict(zip(map(bytes.rstrip, padded, repeat(b"\0")), crcs, strict=True))
    if b"\0" in b"".join(found):
        # Bytes after a name's end: the name ends at its first NUL, as for kmod.
        return {name.split(b"\0", 1)[0]: crc for crc, name in zip(crcs, padded, strict=True)}
    return found


def _ksymtab_strings(
    by_name: dict[bytes, int], body: Callable[[int], memoryview]
) -> tuple[tuple[bytes, int | None], ...]:
    index = by_name.get(b"__ksymtab_strings")
    if index is None:
        return ()
    return tuple((name, None) for name in bytes(body(index)).split(b"\0") if name)
