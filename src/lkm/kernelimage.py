"""A kernel image's contents: the vmlinux inside a bzImage, and the certificates built into it.

An x86 ``vmlinuz`` is a bzImage: real-mode setup sectors (the boot protocol header at 0x1f1,
"HdrS" at 0x202), then the protected-mode part, which holds the kernel itself (an ELF vmlinux)
compressed with whichever method it was built with. From boot protocol 2.08 on, the header
says where that payload is (``payload_offset`` at 0x248, from the start of the protected-mode
part, and ``payload_length`` at 0x24c), and its first bytes say how it is compressed. The
kernel's build appends the uncompressed size (4 bytes) after the compressed stream, so each
decoder stops at the end of its stream and leaves what follows.

The kernel's own trusted keys are X.509 certificates, kept DER-encoded back to back in the
image (``system_certificate_list``, from CONFIG_SYSTEM_TRUSTED_KEYS and the build's signing
key). Symbols are stripped from the vmlinux in a bzImage, so they are found by their shape: a
DER SEQUENCE holding a SEQUENCE that starts with an explicit version 3, read back whole by the
caller's X.509 parser (:mod:`lkm.certificates`), which drops anything that only looks like one.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from lkm.errors import FormatError


class KernelImageError(FormatError):
    """Not a kernel image lkm can read, with the reason."""


_ELF_MAGIC = b"\x7fELF"
_HEADER_MAGIC = b"HdrS"
_MIN_PAYLOAD_PROTOCOL = 0x208  # boot protocol 2.08: payload_offset and payload_length

# Compressed payloads, by their first bytes, as the kernel's build makes them.
_PAYLOADS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x89LZO", "lzo"),
)


def vmlinux(data: bytes) -> tuple[bytes, str]:
    """The kernel inside ``data`` (a bzImage, or a vmlinux as it is) and how it was stored:
    "none" for a vmlinux, else the payload's compression.

    KernelImageError when ``data`` is neither, or its payload cannot be decompressed."""
    if data[:4] == _ELF_MAGIC:
        return data, "none"
    if len(data) < 0x250 or data[0x202:0x206] != _HEADER_MAGIC:
        raise KernelImageError("not a kernel image (no ELF header and no bzImage boot header)")
    (protocol,) = struct.unpack_from("<H", data, 0x206)
    if protocol < _MIN_PAYLOAD_PROTOCOL:
        raise KernelImageError(
            f"bzImage boot protocol {protocol >> 8}.{protocol & 0xFF:02} is older than 2.08: "
            "it does not say where its kernel is"
        )
    setup_sectors = data[0x1F1] or 4  # 0 means 4, for the oldest images
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sectors + 1) * 512 + offset
    payload = data[start : start + length]
    if length == 0 or len(payload) < length:
        raise KernelImageError(
            f"bzImage payload ({length} bytes at {start}) is beyond the end of the file "
            f"({len(data)} bytes)"
        )
    method = next((name for magic, name in _PAYLOADS if payload.startswith(magic)), None)
    if method is None:
        raise KernelImageError(f"bzImage payload in an unknown format (starts {payload[:6].hex()})")
    kernel = _decompress(payload, method)
    if kernel[:4] != _ELF_MAGIC:
        raise KernelImageError(f"the {method} payload of the bzImage is not an ELF kernel")
    return kernel, method


def _decompress(payload: bytes, method: str) -> bytes:
    try:
        if method == "gzip":
            import zlib

            return zlib.decompressobj(wbits=31).decompress(payload)
        if method in ("xz", "lzma"):
            import lzma

            form = lzma.FORMAT_XZ if method == "xz" else lzma.FORMAT_ALONE
            return lzma.LZMADecompressor(format=form).decompress(payload)
        if method == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        if method == "bzip2":
            import bz2

            return bz2.BZ2Decompressor().decompress(payload)
    except Exception as err:  # each library has its own error types; all mean the same here
        raise KernelImageError(f"bzImage payload: {method} data is corrupt ({err})") from err
    raise KernelImageError(f"bzImage payload compressed with {method}, which lkm cannot read")


# SEQUENCE (long length) { SEQUENCE (long length) { [0] { INTEGER 2 } ...: an X.509 v3
# certificate's start. The kernel's certificates are all larger than 255 bytes.
_CERTIFICATE_START = re.compile(rb"\x30\x82(..)\x30\x82..\xa0\x03\x02\x01\x02", re.DOTALL)


def certificate_candidates(kernel: bytes) -> Iterator[tuple[int, bytes]]:
    """Each place in ``kernel`` shaped like a DER X.509 v3 certificate: its offset and its
    bytes (as long as its outer length says), in file order."""
    for match in _CERTIFICATE_START.finditer(kernel):
        length = 4 + int.from_bytes(match.group(1), "big")
        if match.start() + length <= len(kernel):
            yield match.start(), kernel[match.start() : match.start() + length]


__all__ = ["KernelImageError", "certificate_candidates", "vmlinux"]
