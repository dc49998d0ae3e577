"""Module file compression: detection by magic bytes and decompression to plain bytes.

kmod picks the method from the first bytes of the file, never from its name, so a ``.ko`` that
is really xz-compressed is still read.  ``zstandard`` is imported only when a zstd stream is
actually met, keeping the CLI's start-up lean.
"""

from __future__ import annotations

import enum
import lzma
import zlib

from lkm.errors import DecompressionError

__all__ = ["Compression", "decompress", "detect"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd\x37\x7a\x58\x5a\x00"
_GZIP_MAGIC = b"\x1f\x8b"


class Compression(enum.Enum):
    """How a module file's bytes are compressed; the value is kmod's name for the method."""

    NONE = "none"
    XZ = "xz"
    ZSTD = "zstd"
    GZIP = "gzip"


def detect(data: bytes | memoryview) -> Compression:
    """Return the compression of ``data`` judged by its leading magic bytes."""
    head = bytes(data[:6])
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    if head.startswith(_XZ_MAGIC):
        return Compression.XZ
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    return Compression.NONE


def decompress(data: bytes | memoryview, *, path: str | None = None) -> bytes:
    """Return the decompressed contents of ``data`` (``data`` itself as bytes if uncompressed).

    Raises DecompressionError naming ``path`` and the method when the stream is corrupt or ends
    early.
    """
    method = detect(data)
    if method is Compression.NONE:
        return data if isinstance(data, bytes) else bytes(data)
    if method is Compression.XZ:
        return _xz(data, path)
    if method is Compression.ZSTD:
        return _zstd(data, path)
    return _gzip(data, path)


# liblzma's failures as Python words them, and as kmod words them (xz(1)'s messages).
_XZ_REASONS = {
    "Corrupt input data": "File is corrupt",
    "Input format not supported by decoder": "File format not recognized",
    "Invalid or unsupported options": "Unsupported compression options",
    "Memory usage limit reached": "Memory usage limit reached",
}


def _xz(data: bytes | memoryview, path: str | None) -> bytes:
    # Like xz(1), read concatenated streams and tolerate stream padding between them.
    out: list[bytes] = []
    rest: bytes | memoryview = data
    while rest:
        dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        try:
            out.append(dec.decompress(rest))
        except lzma.LZMAError as err:
            reason = _XZ_REASONS.get(str(err), "Internal error (bug)")
            raise DecompressionError(
                f"xz stream is corrupt: {err}", path=path, method="xz", reason=reason
            ) from None
        if not dec.eof:
            raise DecompressionError(
                "xz stream is truncated", path=path, method="xz", reason="Unexpected end of input"
            )
        rest = dec.unused_data.lstrip(b"\0")
    return b"".join(out)


def _zstd(data: bytes | memoryview, path: str | None) -> bytes:
    import zstandard

    # A decompressobj reads one frame and needs no content size in the frame header; loop over
    # concatenated frames ourselves so each one's end is checked.
    dctx = zstandard.ZstdDecompressor()
    out: list[bytes] = []
    rest: bytes | memoryview = data
    while rest:
        dec = dctx.decompressobj()
        try:
            out.append(dec.decompress(rest))
        except zstandard.ZstdError as err:
            # zstandard prefixes libzstd's error name with its own context.
            raise DecompressionError(
                f"zstd stream is corrupt: {err}",
                path=path,
                method="zstd",
                reason=str(err).rpartition(": ")[2],
            ) from None
        if not dec.eof:
            # kmod names a cut-off frame only once it could read the frame's header.
            try:
                zstandard.get_frame_parameters(rest)
                reason: str | None = "Src size is incorrect"
            except zstandard.ZstdError:
                reason = None
            raise DecompressionError(
                "zstd stream is truncated", path=path, method="zstd", reason=reason
            )
        rest = dec.unused_data
    return b"".join(out)


def _gzip(data: bytes | memoryview, path: str | None) -> bytes:
    # zlib with wbits 16+MAX_WBITS reads one gzip member; loop for concatenated members.
    out: list[bytes] = []
    rest: bytes | memoryview = data
    while rest:
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(dec.decompress(rest))
        except zlib.error as err:
            raise DecompressionError(
                f"gzip stream is corrupt: {err}", path=path, method="gzip", reason=str(err)
            ) from None
        if not dec.eof:
            raise DecompressionError(
                "gzip stream is truncated",
                path=path,
                method="gzip",
                reason="unexpected end of file",
            )
        rest = dec.unused_data
    return b"".join(out)
