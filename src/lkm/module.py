"""A kernel module file: its ``.modinfo``, symbol versions, exports, imports and signature.

``ModuleFile`` holds the file's bytes and computes everything else lazily, on first access, so
asking only for ``modinfo`` decompresses and locates sections but never parses symbols.  Text
taken from the file (modinfo strings, symbol names) is decoded as UTF-8 with
``surrogateescape``: ``os.fsencode()`` gives back the exact bytes kmod would print.
"""

from __future__ import annotations

import errno
import os
import struct

from lkm.compress import Compression, decompress, detect
from lkm.elf import SHN_ABS, SHN_LORESERVE, SHN_UNDEF, ElfFile, SymbolBind
from lkm.errors import ElfError, LkmError, ModuleFileError, NotElfError
from lkm.names import module_name_from_path
from lkm.text import decode as _text
from lkm.typing_lite import TYPE_CHECKING, NamedTuple, cached_property

if TYPE_CHECKING:
    from lkm.signature import ModuleSignature

__all__ = ["ExportedSymbol", "ImportedSymbol", "ModuleFile", "ModuleVersion", "kmod_errno"]

_CRC_PREFIX = "__crc_"
_ET_REL = 1
_VERSION_ENTRY = 64  # sizeof(struct modversion_info) on both classes
_FORMAT_PROBE = 6  # the longest compression magic (xz's)
_NT_GNU_BUILD_ID = 3


class ModuleVersion(NamedTuple):
    """One ``__versions`` entry: a symbol the module uses and the CRC it was built against."""

    symbol: str
    crc: int


class ExportedSymbol(NamedTuple):
    """A symbol the module exports; ``crc`` is None when it was built without modversions."""

    name: str
    crc: int | None


class ImportedSymbol(NamedTuple):
    """An undefined symbol the module needs, with its CRC from ``__versions`` if listed."""

    name: str
    crc: int | None
    weak: bool


class ModuleFile:
    """A module file's bytes and what can be read from them; see the module docstring."""

    def __init__(self, data: bytes, *, path: str | None = None) -> None:
        self.path = path
        self.data = data
        self.compression = detect(data)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, *, path: str | None = None) -> ModuleFile:
        """Wrap a module's bytes (compressed or not); ``path`` is used in messages and names."""
        return cls(data if isinstance(data, bytes) else bytes(data), path=path)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> ModuleFile:
        """Read a module file; failures to open or read raise ModuleFileError with errno."""
        name = os.fspath(path)
        try:
            with open(name, "rb") as stream:
                data = stream.read()
        except OSError as err:
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise ModuleFileError(
                f"could not read '{name}': {reason}", path=name, errno=err.errno
            ) from err
        return cls(data, path=name)

    @cached_property
    def raw(self) -> bytes:
        """The decompressed module (the file's bytes when it is not compressed)."""
        if len(self.data) < _FORMAT_PROBE:
            # kmod 34 reads this many bytes to tell the format and fails with EINVAL when it
            # cannot (a shorter decompressed module is "not an ELF file" instead).
            raise ElfError(
                f"file of {len(self.data)} bytes is too short to tell its format "
                f"({_FORMAT_PROBE} bytes)",
                path=self.path,
            )
        if self.compression is Compression.XZ:
            from lkm import readahead  # a thread may have done it while lkm was imported

            found = readahead.decompressed(self.data)
            if found is not None:
                return found
        return decompress(self.data, path=self.path)

    @cached_property
    def elf(self) -> ElfFile:
        return ElfFile(self.raw, path=self.path)

    @property
    def has_modinfo(self) -> bool:
        """Whether a ``.modinfo`` section exists (kmod's modinfo fails with ENODATA if not)."""
        return self.elf.section(".modinfo") is not None

    @cached_property
    def modinfo(self) -> tuple[tuple[str, str], ...]:
        """The ``.modinfo`` strings as (key, value) pairs in file order, as kmod shows them.

        The section is split at NULs; empty strings (padding) are skipped; a string without
        '=' is a key with an empty value; an unterminated last string counts, unless it is all
        that follows the leading NULs and one byte long.  Empty when
        there is no ``.modinfo`` (see ``has_modinfo``).
        """
        elf = self.elf
        section = elf.section(".modinfo")
        if section is None:
            return ()
        pairs = []
        strings = bytes(elf.file_bytes(section)).lstrip(b"\0")
        if len(strings) < 2:
            # kmod 34 finds no string in a single byte left after the leading NULs.
            return ()
        for item in strings.split(b"\0"):
            if item:
                key, _, value = item.partition(b"=")
                pairs.append((_text(key), _text(value)))
        return tuple(pairs)

    @cached_property
    def name(self) -> str:
        """``name=`` from modinfo when present, else derived from the file name."""
        for key, value in self.modinfo:
            if key == "name":
                return value
        return module_name_from_path(self.path) if self.path is not None else ""

    @cached_property
    def build_id(self) -> bytes | None:
        """The GNU build-id: the descriptor of the first note owned by ``GNU`` of type
        NT_GNU_BUILD_ID in ``.note.gnu.build-id`` (what ``readelf -n`` shows as "Build ID");
        None when there is none. A note running past its section raises ElfError."""
        elf = self.elf
        section = elf.section(".note.gnu.build-id")
        if section is None:
            return None
        for note in elf.notes(section):
            if note.name == b"GNU" and note.type == _NT_GNU_BUILD_ID:
                return note.desc
        return None

    @cached_property
    def _signature(self) -> tuple[int, ModuleSignature | None]:
        from lkm.signature import find_signature

        return find_signature(self.raw, path=self.path)

    @property
    def signature(self) -> ModuleSignature | None:
        """The appended signature, or None when the module is unsigned."""
        return self._signature[1]

    @property
    def unsigned_size(self) -> int:
        """The length of the decompressed module without its appended signature."""
        return self._signature[0]

    @property
    def has_this_module(self) -> bool:
        """Whether ``.gnu.linkonce.this_module`` (the kernel's ``struct module``) is present."""
        return self.elf.section(".gnu.linkonce.this_module") is not None

    @cached_property
    def versions(self) -> tuple[ModuleVersion, ...]:
        """The ``__versions`` entries in file order: {u64 crc; char[56]} or {u32 crc; char[60]}."""
        elf = self.elf
        section = elf.section("__versions")
        if section is None:
            return ()
        data = elf.file_bytes(section)  # whatever its type says, as kmod 34 reads it
        if len(data) % _VERSION_ENTRY:
            raise ElfError(
                f"__versions size {len(data)} is not a multiple of {_VERSION_ENTRY}",
                path=self.path,
                offset=section.offset,
            )
        fmt = ("<" if elf.byteorder == "little" else ">") + ("Q56s" if elf.is64 else "I60s")
        out = []
        for crc, raw_name in struct.iter_unpack(fmt, data):
            out.append(ModuleVersion(_text(raw_name.split(b"\0", 1)[0]), crc))
        return tuple(out)

    @cached_property
    def exports(self) -> tuple[ExportedSymbol, ...]:
        """Exported symbols: from ``__crc_<name>`` symbols, else ``__ksymtab_strings``."""
        elf = self.elf
        crcs = [s for s in elf.symbols if s.name.startswith(_CRC_PREFIX)]
        if crcs:
            return tuple(
                ExportedSymbol(s.name[len(_CRC_PREFIX) :], self._crc_value(s.value, s.shndx))
                for s in crcs
            )
        section = elf.section("__ksymtab_strings")
        if section is None:
            return ()
        names = bytes(elf.section_data(section)).split(b"\0")
        return tuple(ExportedSymbol(_text(n), None) for n in names if n)

    def _crc_value(self, value: int, shndx: int) -> int:
        """A ``__crc_`` symbol's CRC: its value if absolute, else the u32 it points at."""
        elf = self.elf
        if shndx == SHN_ABS:
            return value & 0xFFFFFFFF
        if shndx == SHN_UNDEF or shndx >= SHN_LORESERVE or shndx >= len(elf.sections):
            raise ElfError(
                f"__crc_ symbol refers to section index {shndx:#x}, not a section of the file "
                f"({len(elf.sections)} sections)",
                path=self.path,
            )
        section = elf.sections[shndx]
        # In a relocatable object st_value is already relative to the section; elsewhere it
        # is an address.
        offset = value if elf.header.type == _ET_REL else value - section.addr
        data = elf.section_data(section)
        if not 0 <= offset <= len(data) - 4:
            raise ElfError(
                f"__crc_ value at offset {offset} of section {section.name!r} is beyond its "
                f"{len(data)} bytes",
                path=self.path,
                offset=section.offset,
            )
        return int.from_bytes(data[offset : offset + 4], elf.byteorder)

    @cached_property
    def imports(self) -> tuple[ImportedSymbol, ...]:
        """Undefined ``.symtab`` symbols in symbol table order, with CRCs from ``__versions``."""
        crcs = {v.symbol: v.crc for v in self.versions}
        return tuple(
            ImportedSymbol(s.name, crcs.get(s.name), s.bind == SymbolBind.WEAK)
            for s in self.elf.symbols
            if s.shndx == SHN_UNDEF and s.name
        )


def kmod_errno(err: LkmError) -> int:
    """The errno kmod 34 reports for the failure ``err`` when reading a module file.

    Missing ``.modinfo`` is not an error here (``ModuleFile.has_modinfo``; kmod: ENODATA).
    """
    if isinstance(err, ModuleFileError):
        return err.errno if err.errno is not None else errno.EIO
    if isinstance(err, NotElfError):
        return errno.ENOEXEC
    # Corrupt or truncated streams and every other broken structure.
    return errno.EINVAL
