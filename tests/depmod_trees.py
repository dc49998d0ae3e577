"""Tiny module files and scenario trees for depmod: exports, imports, aliases, cycles.

``module_elf`` builds a little-endian ELF64 relocatable object with a ``.modinfo``, a
``__ksymtab_strings`` (what depmod takes for the exports when there are no ``__crc_``
symbols), ``__crc_`` symbols when CRCs are given, and undefined symbols for the imports, with
their CRCs in ``__versions``. That is all depmod reads of a module.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

SHN_ABS = 0xFFF1


def module_elf(
    *,
    exports: Sequence[str] = (),
    imports: Sequence[str] = (),
    modinfo: Sequence[str] = (),
    export_crcs: dict[str, int] | None = None,
    import_crcs: dict[str, int] | None = None,
    weak: Sequence[str] = (),
) -> bytes:
    strtab = bytearray(b"\0")
    symbols = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]

    def name(text: str) -> int:
        offset = len(strtab)
        strtab.extend(text.encode() + b"\0")
        return offset

    for symbol, crc in (export_crcs or {}).items():
        # Local absolute symbols, as the kernel's build makes them.
        symbols.append(struct.pack("<IBBHQQ", name("__crc_" + symbol), 0, 0, SHN_ABS, crc, 0))
    first_global = len(symbols)
    for symbol in imports:
        bind = 2 if symbol in weak else 1
        symbols.append(struct.pack("<IBBHQQ", name(symbol), bind << 4, 0, 0, 0, 0))
    versions = b"".join(
        struct.pack("<Q56s", crc, symbol.encode()) for symbol, crc in (import_crcs or {}).items()
    )
    sections: list[tuple[str, int, bytes, int, int, int]] = [
        # name, type, data, link, info, entsize
        (".modinfo", 1, b"".join(s.encode() + b"\0" for s in modinfo), 0, 0, 0),
        ("__ksymtab_strings", 1, b"".join(s.encode() + b"\0" for s in exports), 0, 0, 0),
        ("__versions", 1, versions, 0, 0, 0),
        (".symtab", 2, b"".join(symbols), 5, first_global, 24),
        (".strtab", 3, bytes(strtab), 0, 0, 0),
    ]
    names = b"\0" + b"".join(s[0].encode() + b"\0" for s in sections) + b".shstrtab\0"
    sections.append((".shstrtab", 3, names, 0, 0, 0))
    body = bytearray(64)
    headers = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    name_offset = 1
    for sname, kind, data, link, info, entsize in sections:
        while len(body) % 8:
            body += b"\0"
        offset = len(body)
        body += data
        headers.append(
            struct.pack(
                "<IIQQQQIIQQ", name_offset, kind, 0, 0, offset, len(data), link, info, 8, entsize
            )
        )
        name_offset += len(sname) + 1
    while len(body) % 8:
        body += b"\0"
    shoff = len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    body[:64] = ident + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(headers), len(headers) - 1
    )
    return bytes(body) + b"".join(headers)


def write_tree(root: Path, release: str, files: dict[str, bytes]) -> Path:
    """A module directory ``root/lib/modules/<release>`` holding ``files`` (relative paths)."""
    moddir = root / "lib" / "modules" / release
    for relative, data in files.items():
        path = moddir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    moddir.mkdir(parents=True, exist_ok=True)
    return moddir


def cycle_tree() -> dict[str, bytes]:
    """a -> b -> c -> a, plus d -> e -> d, plus f using a (not in a cycle itself)."""
    return {
        "kernel/a.ko": module_elf(exports=["a_fn"], imports=["b_fn"]),
        "kernel/b.ko": module_elf(exports=["b_fn"], imports=["c_fn"]),
        "kernel/c.ko": module_elf(exports=["c_fn"], imports=["a_fn"]),
        "kernel/d.ko": module_elf(exports=["d_fn"], imports=["e_fn"]),
        "kernel/e.ko": module_elf(exports=["e_fn"], imports=["d_fn"]),
        "kernel/f.ko": module_elf(imports=["a_fn"]),
    }


def duplicates_tree() -> dict[str, bytes]:
    """The same module names in several places, for search, override, exclude and external."""

    def mod(tag: str) -> bytes:
        return module_elf(exports=[f"dup_{tag}"], modinfo=[f"alias=where-{tag}"])

    return {
        "kernel/drivers/dup.ko": mod("kernel"),
        "updates/dup.ko": mod("updates"),
        "extra/dup.ko": mod("extra"),
        "extra/other.ko": module_elf(imports=["dup_extra", "dup_kernel", "dup_updates"]),
        "kernel/skipme/hidden.ko": mod("hidden"),
        "updates/skipme/hidden2.ko": mod("hidden2"),
        "kernel/twice.ko": module_elf(exports=["shared_sym"]),
        "extra/twice2.ko": module_elf(exports=["shared_sym"]),
        "kernel/user.ko": module_elf(imports=["shared_sym"]),
    }
