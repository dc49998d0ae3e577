"""Whole xz files decompressed by liblzma's one-call decoder into one reused buffer, their
CRC32 checks verified by zlib: the decompression of depmod's scan of an xz tree.

Decompressing is nearly all of depmod's work on an xz tree. liblzma (5.4) spends about a
twentieth of it on the blocks' CRC32 checks, which zlib computes in less than half the time;
and ``lzma.LZMADecompressor`` makes a new ``bytes`` of every module, where depmod reads a few
sections of it. So this calls liblzma itself (the library Python's ``lzma`` runs on), through
ctypes, with its checks off, and verifies each block's check with ``zlib.crc32``.

It takes only what it can judge whole: one stream whose check is CRC32, nothing before or
after it. Anything else, and anything that fails (a damaged file, a wrong check, no liblzma
to load), is None: the caller then decompresses with ``lkm.compress``, which has the words
for every failure. A stream this decodes and verifies is one ``lzma`` decodes to the same
bytes without error: all liblzma's checks but the CRC's are made, and that one here.
"""

from __future__ import annotations

import zlib

from lkm.compress import XZ_MAGIC
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["XzBuffer"]

_FOOTER_MAGIC = b"YZ"
_HEADER_SIZE = _FOOTER_SIZE = 12
_CHECK_CRC32 = 1
_CHECK_SIZE = 4
# lzma_stream_buffer_decode's flags: skip the integrity check (liblzma 5.2 and later).
_LZMA_IGNORE_CHECK = 0x10
_LZMA_OK = 0
_MIN_VERSION = 50020002  # 5.2.0 stable, which has LZMA_IGNORE_CHECK
_UNLIMITED = (1 << 64) - 1


class XzBuffer:
    """A decoder and its output buffer, grown to the largest file yet: one per process.

    ``decompress`` returns a view of the buffer, valid until the next call.
    """

    def __init__(self, decode: Callable[..., int]) -> None:
        import ctypes

        self._ctypes = ctypes
        self._decode = decode
        self._buffer = ctypes.create_string_buffer(0)
        self._view = memoryview(b"")

    @classmethod
    def load(cls) -> XzBuffer | None:
        """The decoder, or None when liblzma cannot be loaded or is older than 5.2."""
        import ctypes

        try:
            library = ctypes.CDLL("liblzma.so.5")
            version = library.lzma_version_number
            decode = library.lzma_stream_buffer_decode
        except (OSError, AttributeError):
            return None
        version.restype = ctypes.c_uint32
        version.argtypes = []
        if version() < _MIN_VERSION:
            return None
        size_p = ctypes.POINTER(ctypes.c_size_t)
        decode.restype = ctypes.c_int
        decode.argtypes = [
            ctypes.POINTER(ctypes.c_uint64),  # memlimit
            ctypes.c_uint32,  # flags
            ctypes.c_void_p,  # allocator
            ctypes.c_char_p,  # in
            size_p,  # in_pos
            ctypes.c_size_t,  # in_size
            ctypes.c_void_p,  # out
            size_p,  # out_pos
            ctypes.c_size_t,  # out_size
        ]
        return cls(decode)

    def decompress(self, data: bytes) -> memoryview | None:
        """The decompressed bytes of ``data``, a whole single xz stream checked by CRC32; None
        for anything else, or when it fails."""
        blocks = _blocks(data)
        if blocks is None:
            return None
        size = sum(usize for _, usize in blocks)
        ctypes = self._ctypes
        if len(self._buffer) < size:
            self._buffer = ctypes.create_string_buffer(size)
            self._view = memoryview(self._buffer).cast("B")
        memlimit = ctypes.c_uint64(_UNLIMITED)
        in_pos = ctypes.c_size_t(0)
        out_pos = ctypes.c_size_t(0)
        status = self._decode(
            ctypes.byref(memlimit),
            _LZMA_IGNORE_CHECK,
            None,
            data,
            ctypes.byref(in_pos),
            len(data),
            self._buffer,
            ctypes.byref(out_pos),
            size,
        )
        if status != _LZMA_OK or in_pos.value != len(data) or out_pos.value != size:
            return None
        view = self._view
        crc32 = zlib.crc32
        start = 0
        for check, usize in blocks:
            if crc32(view[start : start + usize]) != int.from_bytes(
                data[check : check + _CHECK_SIZE], "little"
            ):
                return None
            start += usize
        return view[:size]


def _blocks(data: bytes) -> list[tuple[int, int]] | None:
    """Where each block's check is in ``data`` and how many bytes it decompresses to, read
    from the stream's index; None unless ``data`` is one stream checked by CRC32.

    liblzma checks that the index, the blocks and the footer agree; this only finds the
    checks, so it stops at anything it does not expect.
    """
    if (
        len(data) < _HEADER_SIZE + _FOOTER_SIZE
        or not data.startswith(XZ_MAGIC)
        or data[6] != 0
        or data[7] != _CHECK_CRC32
        or not data.endswith(_FOOTER_MAGIC)
    ):
        return None
    footer = len(data) - _FOOTER_SIZE
    index_size = (int.from_bytes(data[footer + 4 : footer + 8], "little") + 1) * 4
    index = footer - index_size
    if index < _HEADER_SIZE or data[index] != 0:
        return None
    at = index + 1
    try:
        count, at = _vli(data, at)
        blocks = []
        block = _HEADER_SIZE
        for _ in range(count):
            unpadded, at = _vli(data, at)
            usize, at = _vli(data, at)
            if unpadded < _CHECK_SIZE:
                return None
            # The block's padding comes before its check, which ends the block.
            block += (unpadded + 3) & ~3
            blocks.append((block - _CHECK_SIZE, usize))
    except IndexError:
        return None
    if block != index or at > footer - 4:
        return None
    return blocks


def _vli(data: bytes, at: int) -> tuple[int, int]:
    """An xz variable-length integer at ``at``, and where the next field starts."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise IndexError("variable-length integer too long")
