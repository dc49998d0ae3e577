"""Module file compression: detection by magic bytes and decompression to plain bytes.

kmod picks the method from the first bytes of the file, never from its name, so a ``.ko`` that
is really xz-compressed is still read.  ``zstandard`` is imported only when a zstd stream is
actually met, keeping the CLI's start-up lean.
"""

from __future__ import annotations

from lkm.enum_lite import Enum
from lkm.errors import DecompressionError

__all__ = [
    "LIBRARY_NAMES",
    "MAGIC_SIZE",
    "XZ_MAGIC",
    "Compression",
    "compress",
    "decompress",
    "detect",
    "xz_reread_reasons",
]

# kmod reads this many bytes to tell the compression (the longest magic, xz's), for any file.
MAGIC_SIZE = 6
# The names kmod 34's tools give a decompressor's failure ("zstd: Src size is incorrect").
LIBRARY_NAMES = {"xz": "xz", "zstd": "zstd", "gzip": "zlib"}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd\x37\x7a\x58\x5a\x00"
_GZIP_MAGIC = b"\x1f\x8b"


class Compression(Enum):
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
    if head.startswith(XZ_MAGIC):
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
    if len(data) < MAGIC_SIZE:
        # kmod cannot read its six bytes of magic: it fails before any decompressor runs.
        raise DecompressionError(
            f"{method.value} stream is shorter than {MAGIC_SIZE} bytes",
            path=path,
            method=method.value,
        )
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
    import lzma  # here, as each library: a command reads modules of one compression, or none

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


# kmod 34 feeds liblzma what read(2) gives it, this many bytes at a time.
_XZ_READ_SIZE = 8192


def xz_reread_reasons(data: bytes | memoryview, count: int) -> tuple[str, ...]:
    """liblzma's reasons when kmod 34 reads a corrupt xz file ``count`` more times.

    kmod keeps one descriptor per module file and reads the stream with read(2), never seeking
    back: a second attempt starts where the first stopped, at the end of the 8 KiB read in
    which liblzma found the damage (or at the end of the file), and so on. What is left is
    seldom an xz stream ("File format not recognized"); nothing left reads as "Unexpected end
    of input".
    """
    view = memoryview(data)
    start = _xz_failed_read_end(view, 0)[1]
    reasons = []
    for _ in range(count):
        reason, start = _xz_failed_read_end(view, start)
        reasons.append(reason)
    return tuple(reasons)


def _xz_failed_read_end(data: memoryview, start: int) -> tuple[str, int]:
    """The reason the stream read from ``start`` fails and where the reading stopped."""
    import lzma

    dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
    at = start
    while at < len(data):
        chunk = data[at : at + _XZ_READ_SIZE]
        at += len(chunk)
        try:
            dec.decompress(chunk)
        except lzma.LZMAError as err:
            return _XZ_REASONS.get(str(err), "Internal error (bug)"), at
        if dec.eof:
            # The stream ended: kmod stops reading there and finds nothing wrong in it.
            return "", at
    return "Unexpected end of input", at


def _zstd(data: bytes | memoryview, path: str | None) -> bytes:
    import zstandard

    # kmod 34 decompresses in one go (libzstd's ZSTD_decompress) into a buffer of the size the
    # first frame's header gives, and refuses a frame without one; lkm reads such frames (the
    # kernel does too) and frames after the first. Where both fail, kmod's reason is kept: a
    # header that cannot be read, a size of 0 and (when lkm fails too) no size all leave kmod
    # without a size, and bytes after a frame that start no frame are a wrong source size.
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        raise _zstd_error("zstd stream has no readable frame header", path, _NO_SIZE) from None
    if size == 0:
        raise _zstd_error("zstd stream is empty", path, _NO_SIZE)
    try:
        return _zstd_frames(data, path, size)
    except DecompressionError:
        if size < 0:
            raise _zstd_error("zstd stream without a size is corrupt", path, _NO_SIZE) from None
        raise


_NO_SIZE = "Failed to determine decompression size"


def _zstd_frames(data: bytes | memoryview, path: str | None, size: int) -> bytes:
    import zstandard

    out: list[bytes] = []
    rest = bytes(data)
    while len(rest) >= _ZSTD_FRAME_PREFIX:
        if int.from_bytes(rest[:4], "little") & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
            skip = 8 + int.from_bytes(rest[4:8], "little") if len(rest) >= 8 else len(rest) + 1
            if skip > len(rest):
                raise _zstd_error("zstd stream is truncated", path, "Src size is incorrect")
            rest = rest[skip:]
            continue
        dec = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(dec.decompress(rest))
        except zstandard.ZstdError as err:
            # zstandard prefixes libzstd's error name with its own context.
            reason = str(err).rpartition(": ")[2]
            if not out and 0 < size <= _ONE_CALL_LIMIT:
                # kmod decodes in one call into a buffer of the stated size, and libzstd's
                # one-call decoder meets some damage with another reason than streaming does.
                reason = _one_call_reason(rest, reason)
            if out and reason == "Unknown frame descriptor":
                reason = "Src size is incorrect"
            raise _zstd_error(f"zstd stream is corrupt: {err}", path, reason) from None
        if not dec.eof:
            raise _zstd_error("zstd stream is truncated", path, "Src size is incorrect")
        rest = dec.unused_data
    if rest:
        raise _zstd_error("zstd stream is followed by stray bytes", path, "Src size is incorrect")
    return b"".join(out)


def _one_call_reason(data: bytes, streaming: str) -> str:
    import zstandard

    oversized = _oversized_block(data)
    if oversized is not None:
        # The one-call decoder measures each block against the input left before decoding
        # it, where the streaming one waits for more input (or finds the block too big for
        # the frame): unless a block before it is corrupt, the source size is wrong.
        try:
            zstandard.ZstdDecompressor().decompressobj().decompress(data[:oversized])
        except zstandard.ZstdError as err:
            return str(err).rpartition(": ")[2]
        return "Src size is incorrect"
    try:
        zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as err:
        reason = str(err).rpartition(": ")[2]
        # zstandard's own words are no libzstd reason: keep the streaming one then.
        return streaming if reason == "did not decompress full frame" else reason
    except MemoryError:
        pass
    return streaming


def _oversized_block(data: bytes) -> int | None:
    """Where the first block header of the frame at the start of ``data`` sits whose block
    claims more bytes than follow it; None when every block fits (or the frame header cannot
    be read)."""
    if len(data) < 5:
        return None
    descriptor = data[4]
    single_segment = descriptor >> 5 & 1
    size_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    at = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + size_bytes
    while at + 3 <= len(data):
        header = int.from_bytes(data[at : at + 3], "little")
        kind, size = header >> 1 & 3, header >> 3
        if kind == 3:  # reserved: a corrupt block whatever its size
            return None
        if kind == 1:  # a run of one byte
            size = 1
        if size > len(data) - at - 3:
            return at
        if header & 1:  # the last block
            return None
        at += 3 + size
    return None


# Beyond this stated size lkm does not allocate a whole buffer just to learn a reason.
_ONE_CALL_LIMIT = 1 << 28


_ZSTD_FRAME_PREFIX = 5  # the bytes libzstd needs to tell what a frame is
_ZSTD_SKIPPABLE = 0x184D2A50  # skippable frames' magic, low four bits free


def _zstd_error(message: str, path: str | None, reason: str) -> DecompressionError:
    return DecompressionError(message, path=path, method="zstd", reason=reason)


def _gzip(data: bytes | memoryview, path: str | None) -> bytes:
    # zlib with wbits 16+MAX_WBITS reads one gzip member; loop for concatenated members.
    import zlib

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


def compress(data: bytes, method: Compression) -> bytes:
    """``data`` compressed with ``method`` as the kernel's build compresses modules: xz with a
    CRC32 check and a 1 MiB dictionary (the kernel's decompressor checks nothing stronger),
    zstd at its default level, gzip without a name or time stamp."""
    if method is Compression.XZ:
        import lzma

        filters = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
        return lzma.compress(data, lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)
    if method is Compression.ZSTD:
        import zstandard

        return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    if method is Compression.GZIP:
        import gzip

        return gzip.compress(data, compresslevel=6, mtime=0)
    return data
