"""Build tiny ELF relocatable files with chosen sections, for tests that need odd content."""

from __future__ import annotations

import struct


def elf64(sections: dict[str, bytes]) -> bytes:
    """A little-endian ELF64 ET_REL file for x86-64 holding ``sections`` as PROGBITS."""
    names = b"\0" + b"".join(name.encode() + b"\0" for name in [*sections, ".shstrtab"])
    body = bytearray(b"\0" * 64)
    headers = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    name_offset = 1
    for name, data in [*sections.items(), (".shstrtab", names)]:
        offset = len(body)
        body += data
        kind = 3 if name == ".shstrtab" else 1  # SHT_STRTAB / SHT_PROGBITS
        flags = 0 if name == ".shstrtab" else 2  # SHF_ALLOC
        headers.append(
            struct.pack("<IIQQQQIIQQ", name_offset, kind, flags, 0, offset, len(data), 0, 0, 1, 0)
        )
        name_offset += len(name) + 1
    while len(body) % 8:
        body += b"\0"
    shoff = len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(headers), len(headers) - 1
    )
    body[:64] = header
    return bytes(body) + b"".join(headers)


def modinfo_section(*strings: bytes) -> bytes:
    return b"".join(s + b"\0" for s in strings)
