"""Build tiny ELF relocatable files with chosen sections, for tests that need odd content."""

from __future__ import annotations

import struct

# e_machine for each class and byte order (x86-64, ARM, s390, MIPS): real pairings.
_MACHINES = {(64, False): 62, (32, False): 40, (64, True): 22, (32, True): 8}


def elf(sections: dict[str, bytes], *, bits: int = 64, big_endian: bool = False) -> bytes:
    """An ET_REL file of either class and byte order holding ``sections`` as PROGBITS."""
    order = ">" if big_endian else "<"
    word = "Q" if bits == 64 else "I"
    header_size, section_size = (64, 64) if bits == 64 else (52, 40)
    section = f"{order}II{word}{word}{word}{word}II{word}{word}"
    names = b"\0" + b"".join(name.encode() + b"\0" for name in [*sections, ".shstrtab"])
    body = bytearray(header_size)
    headers = [struct.pack(section, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    name_offset = 1
    for name, data in [*sections.items(), (".shstrtab", names)]:
        offset = len(body)
        body += data
        kind = 3 if name == ".shstrtab" else 1  # SHT_STRTAB / SHT_PROGBITS
        flags = 0 if name == ".shstrtab" else 2  # SHF_ALLOC
        headers.append(
            struct.pack(section, name_offset, kind, flags, 0, offset, len(data), 0, 0, 1, 0)
        )
        name_offset += len(name) + 1
    while len(body) % 8:
        body += b"\0"
    shoff = len(body)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 2 if big_endian else 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        f"{order}HHI{word}{word}{word}IHHHHHH",
        1,
        _MACHINES[bits, big_endian],
        1,
        0,
        0,
        shoff,
        0,
        header_size,
        0,
        0,
        section_size,
        len(headers),
        len(headers) - 1,
    )
    body[:header_size] = header
    return bytes(body) + b"".join(headers)


def elf64(sections: dict[str, bytes]) -> bytes:
    """A little-endian ELF64 ET_REL file for x86-64 holding ``sections`` as PROGBITS."""
    return elf(sections)


def modinfo_section(*strings: bytes) -> bytes:
    return b"".join(s + b"\0" for s in strings)
