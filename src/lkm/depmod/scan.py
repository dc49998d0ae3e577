"""What depmod needs from one module file, read fast and returned as plain tuples.

depmod reads every module of a tree, so this is its hot loop; it runs in worker processes and
hands back small tuples of strings and ints (cheap to pickle), never ``ModuleFile`` objects.
The symbol table is read in bulk: the fields depmod needs are sliced out of an ``array`` of
32-bit words, so only undefined symbols and ``__crc_`` symbols become Python objects. What
makes a module unreadable is ``ElfFile``'s to say (as for modinfo); past that, depmod reads
symbols as leniently as kmod 34 does (see ``_scan_elf``).
"""

from __future__ import annotations

import mmap
import operator
import os
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat
from typing import NamedTuple

from lkm.compress import MAGIC_SIZE, decompress, xz_reread_reasons
from lkm.elf import SHN_ABS, ElfFile, Section
from lkm.errors import DecompressionError, ElfError, LkmError
from lkm.module import kmod_errno

__all__ = ["ModuleFailure", "ModuleScan", "scan_file", "scan_files"]

_CRC_PREFIX = b"__crc_"
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
    # Not depmod's: the ``firmware:`` fields, kept in its cache for ``lkm closure`` (which
    # would otherwise decompress every module again to read them).
    firmware: tuple[bytes, ...] = ()


class ModuleFailure(NamedTuple):
    """A module that could not be read: the errno kmod reports and the decompressor's words."""

    errno: int
    method: str  # "xz", "zstd", ... when decompression failed, else ""
    reason: str | None
    # The decompressor's words when kmod reads the file again, twice (see report_failure):
    # empty when they are ``reason`` again.
    rereads: tuple[str, ...] = ()


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
        rereads = xz_reread_reasons(data, 2) if err.method == "xz" and err.reason else ()
        return ModuleFailure(kmod_errno(err), err.method, err.reason, rereads)
    except LkmError as err:
        return ModuleFailure(kmod_errno(err), "", None)


def _map_elf(fd: int) -> mmap.mmap | None:
    """The file mapped read-only when it is an ELF file (not compressed), else None."""
    head = os.pread(fd, MAGIC_SIZE, 0)
    if len(head) < MAGIC_SIZE or not head.startswith(b"\x7fELF"):
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
    return _scan_elf(raw, {} if names is None else names, path)


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
    return _scan_elf(decompress(data, path=path), {} if names is None else names, path)


def _modinfo(data: bytes | memoryview) -> tuple[tuple[bytes, ...], ...]:
    """aliases, softdeps, weakdeps and firmware; a firmware string without ``=`` is the key
    with an empty value, as modinfo reads it (``ModuleFile.modinfo``)."""
    found: dict[bytes, list[bytes]] = {
        b"alias": [],
        b"softdep": [],
        b"weakdep": [],
        b"firmware": [],
    }
    for item in bytes(data).split(b"\0"):
        key, eq, value = item.partition(b"=")
        if key in found and (eq or key == b"firmware"):
            found[key].append(value)
    return (
        tuple(found[b"alias"]),
        tuple(found[b"softdep"]),
        tuple(found[b"weakdep"]),
        tuple(found[b"firmware"]),
    )


_SECTIONS = (".modinfo", ".symtab", ".strtab", "__versions", "__ksymtab_strings")
# (the word holding st_name, the word holding st_info/st_other/st_shndx) per entry, in 32-bit
# words, and the entry size, per class.
_SYMBOL_WORDS = {True: (6, 1), False: (4, 3)}
_VERSION_ENTRY = 64
# The name field of a ``__versions`` entry, after its CRC, per class.
_VERSION_NAME = {True: struct.Struct("8x56s"), False: struct.Struct("4x60s")}
_first = operator.itemgetter(0)


def _scan_elf(
    raw: bytes | mmap.mmap, names_cache: dict[bytes, bytes], path: str | None
) -> ModuleScan:
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
    elf = ElfFile(memoryview(raw), path=path)
    view = elf.data
    is64 = elf.is64
    little = elf.byteorder == "little"
    section, symtab, strtab, versions_section, ksymtab_strings = elf.sections_named(_SECTIONS)
    aliases, softdeps, weakdeps, firmware = (
        _modinfo(elf.file_bytes(section)) if section else ((), (), (), ())
    )
    words = None
    if symtab is not None and strtab is not None:
        entry = 24 if is64 else 16
        table = elf.file_bytes(symtab)
        if len(table) % entry == 0:
            words = array("I")
            if words.itemsize != 4:  # pragma: no cover - every CPython platform has it
                raise ElfError("no 32-bit array type on this platform", path=path)
            words.frombytes(table)
            if little != (sys.byteorder == "little"):
                words.byteswap()
    if words is None or strtab is None or symtab is None:
        return ModuleScan(
            aliases, softdeps, weakdeps, _ksymtab_strings(elf, ksymtab_strings), (), firmware
        )
    stride, mixed_at = _SYMBOL_WORDS[is64]
    # The word holding st_info, st_other and st_shndx: shndx is its top half when the file is
    # little-endian, its bottom half when big-endian (read as one native word after swapping).
    mixed = words[mixed_at::stride]
    offsets = words[0::stride]
    strings = bytes(elf.file_bytes(strtab))
    limit = len(strings)
    find = strings.find
    intern = names_cache.setdefault

    def name_at(offset: int) -> bytes:
        stop = find(b"\0", offset)
        if stop >= 0:
            return strings[offset:stop]
        # No NUL left in the table: kmod reads on past its end, up to a NUL in the file.
        rest = bytes(view[strtab.offset + offset :])
        return rest.partition(b"\0")[0]

    versions = _versions(elf, versions_section, is64, little)
    imports: list[tuple[bytes, int | None, bool]] = []
    # Undefined symbols (st_shndx 0), picked out at C speed: no bytecode runs per symbol.
    if little:
        undefined = compress(range(len(mixed)), map(_LOW_ONLY.__ge__, mixed))
    else:
        undefined = compress(range(len(mixed)), map(operator.not_, map(_LOW.__and__, mixed)))
    for i in undefined:
        offset = offsets[i]
        if offset >= limit:
            imports = []
            versions = None
            break
        if offset:
            name = name_at(offset)
            if name:
                name = intern(name, name)
                info = mixed[i] & 0xFF if little else mixed[i] >> 24
                crc = versions.get(name) if versions else None
                imports.append((name, crc, info >> 4 == _STB_WEAK))
    if versions is not None:
        _versions_only(imports, versions)
    if offsets and max(offsets) >= limit:
        return ModuleScan(
            aliases,
            softdeps,
            weakdeps,
            _ksymtab_strings(elf, ksymtab_strings),
            tuple(imports),
            firmware,
        )
    # Where "__crc_" starts in the string table (or in a name running past its end), found at
    # C speed; the symbols named from there, picked out at C speed too.
    text = strings
    if not strings.endswith(b"\0"):
        text = bytes(view[strtab.offset : strtab.offset + limit + len(_CRC_PREFIX) - 1])
    starts = set()
    at = text.find(_CRC_PREFIX)
    while at >= 0:
        starts.add(at)
        at = text.find(_CRC_PREFIX, at + 1)
    exports: tuple[tuple[bytes, int | None], ...] = ()
    if starts:
        candidates = compress(range(len(offsets)), map(starts.__contains__, offsets))
        exports = _crc_exports(
            elf, candidates, offsets=offsets, mixed=mixed, name_at=name_at, sym_offset=symtab.offset
        )
    if not exports:
        exports = _ksymtab_strings(elf, ksymtab_strings)
    return ModuleScan(aliases, softdeps, weakdeps, exports, tuple(imports), firmware)


def _versions_only(
    imports: list[tuple[bytes, int | None, bool]], versions: dict[bytes, int]
) -> None:
    """Append the ``__versions`` entries no undefined symbol names (``module_layout``): kmod
    counts them as needed symbols too, after those of the symbol table."""
    if len(versions) > len(imports) or any(name not in versions for name, _, _ in imports):
        seen = {name for name, _, _ in imports}
        imports.extend((name, crc, False) for name, crc in versions.items() if name not in seen)


def _versions(
    elf: ElfFile, section: Section | None, is64: bool, little: bool
) -> dict[bytes, int] | None:
    """``__versions`` as {symbol: crc}; None when it is absent or not whole entries."""
    if section is None:
        return None
    data = elf.file_bytes(section)
    if not data or len(data) % _VERSION_ENTRY:
        return None
    # The CRCs picked out of the entries as an array of words (a slice with a stride), the
    # names unpacked alone: no tuple per entry.
    crcs = array("Q" if is64 else "I")
    crcs.frombytes(data)
    if little != (sys.byteorder == "little"):
        crcs.byteswap()
    crcs = crcs[:: _VERSION_ENTRY // crcs.itemsize]
    padded = list(map(_first, _VERSION_NAME[is64].iter_unpack(data)))
    found = dict(zip(map(bytes.rstrip, padded, repeat(b"\0")), crcs, strict=True))
    if b"\0" in b"".join(found):
        # Bytes after a name's end: the name ends at its first NUL, as for kmod.
        return {name.split(b"\0", 1)[0]: crc for crc, name in zip(crcs, padded, strict=True)}
    return found


def _crc_exports(
    elf: ElfFile,
    candidates: Iterable[int],
    *,
    offsets: array[int],
    mixed: array[int],
    name_at: Callable[[int], bytes],
    sym_offset: int,
) -> tuple[tuple[bytes, int | None], ...]:
    """The ``__crc_<name>`` symbols among ``candidates`` (symbol indexes), with their CRCs.

    An absolute symbol's CRC is its value; another's is the 32-bit word its value points at in
    its section. A CRC that cannot be read (an undefined symbol, a value outside its section)
    is unknown, the export stays. A section index past the table makes kmod 34 abort: here the
    module fails instead.
    """
    little = elf.byteorder == "little"
    is64 = elf.is64
    shnum = elf.section_count
    entry = 24 if is64 else 16
    value_fmt = struct.Struct(("<" if little else ">") + ("Q" if is64 else "I"))
    value_at = sym_offset + (8 if is64 else 4)
    exports: list[tuple[bytes, int | None]] = []
    order = elf.byteorder
    relocatable = elf.header.type == _ET_REL
    bodies: dict[int, tuple[memoryview | bytes, int]] = {}
    for i in candidates:
        name = name_at(offsets[i])
        shndx = mixed[i] >> 16 if little else mixed[i] & 0xFFFF
        (value,) = value_fmt.unpack_from(elf.data, value_at + i * entry)
        crc: int | None = None
        if shndx == SHN_ABS:
            crc = value & 0xFFFFFFFF
        elif shndx != 0:
            if shndx >= shnum:
                raise ElfError(
                    f"__crc_ symbol refers to section index {shndx:#x}, not a section of the "
                    f"file ({shnum} sections)",
                    path=elf.path,
                )
            found = bodies.get(shndx)
            if found is None:
                found = bodies[shndx] = _crc_section(elf, shndx, relocatable)
            data, base = found
            where = value - base
            if 0 <= where <= len(data) - 4:
                crc = int.from_bytes(data[where : where + 4], order)
        exports.append((name[len(_CRC_PREFIX) :], crc))
    return tuple(exports)


def _crc_section(elf: ElfFile, index: int, relocatable: bool) -> tuple[memoryview | bytes, int]:
    """A section's bytes (none when they run past the file) and the value its offset 0 has:
    in a relocatable object symbol values are offsets into their section, else addresses."""
    addr, offset, size = elf.section_span(index)
    data = elf.data[offset : offset + size] if offset + size <= len(elf.data) else b""
    return data, 0 if relocatable else addr


def _ksymtab_strings(elf: ElfFile, section: Section | None) -> tuple[tuple[bytes, int | None], ...]:
    if section is None:
        return ()
    return tuple((name, None) for name in bytes(elf.file_bytes(section)).split(b"\0") if name)
