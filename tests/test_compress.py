"""Compression detection by magic bytes and decompression of xz, zstd and gzip streams."""

from __future__ import annotations

import gzip
import lzma

import pytest
import zstandard

from lkm.compress import Compression, decompress, detect
from lkm.errors import DecompressionError, LkmError

PAYLOAD = b"\x7fELF" + bytes(range(256)) * 40


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, check=lzma.CHECK_CRC32)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


COMPRESSORS = {Compression.XZ: _xz, Compression.ZSTD: _zstd, Compression.GZIP: _gzip}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x28\xb5\x2f\xfd\x00", Compression.ZSTD),
        (b"\xfd\x37\x7a\x58\x5a\x00\x00", Compression.XZ),
        (b"\x1f\x8b\x08", Compression.GZIP),
        (b"\x7fELF\x02\x01", Compression.NONE),
        (b"\xfd\x37\x7a\x58\x5a\x01", Compression.NONE),  # one byte off the xz magic
        (b"\x1f", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_detect_by_magic(head: bytes, expected: Compression) -> None:
    assert detect(head) is expected
    assert detect(memoryview(head)) is expected


@pytest.mark.parametrize("method", list(COMPRESSORS))
def test_round_trip(method: Compression) -> None:
    packed = COMPRESSORS[method](PAYLOAD)
    assert detect(packed) is method
    assert decompress(packed) == PAYLOAD
    assert decompress(memoryview(packed)) == PAYLOAD


@pytest.mark.parametrize("method", list(COMPRESSORS))
def test_concatenated_streams(method: Compression) -> None:
    compress = COMPRESSORS[method]
    assert decompress(compress(PAYLOAD) + compress(b"tail")) == PAYLOAD + b"tail"


def _zstd_reason(data: bytes) -> str | None:
    with pytest.raises(DecompressionError) as info:
        decompress(data, path="m.ko")
    assert info.value.method == "zstd"
    return info.value.reason


# What kmod 34 says (libkmod's "zstd: REASON" line) for frames that end wrong, recorded from it.
SKIPPABLE = b"\x50\x2a\x4d\x18\x04\x00\x00\x00abcd"


def test_zstd_skippable_frames() -> None:
    assert decompress(_zstd(PAYLOAD) + SKIPPABLE) == PAYLOAD
    assert _zstd_reason(_zstd(PAYLOAD) + SKIPPABLE[:-1]) == "Src size is incorrect"


@pytest.mark.parametrize("tail", [b"xyz", b"xyzxyzxy", bytes(8)])
def test_zstd_bytes_after_the_frame(tail: bytes) -> None:
    assert _zstd_reason(_zstd(PAYLOAD) + tail) == "Src size is incorrect"


def test_uncompressed_is_returned_as_is() -> None:
    assert decompress(PAYLOAD) is PAYLOAD
    assert decompress(memoryview(PAYLOAD)) == PAYLOAD
    assert decompress(b"") == b""


def test_zstd_frame_without_content_size() -> None:
    # Streaming compressors (zstd -c reading a pipe) omit the content size. kmod 34 refuses such
    # a frame; lkm reads it, as the kernel does. A frame announcing 0 bytes is refused by both.
    compressor = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    packed = compressor.compress(PAYLOAD) + compressor.flush()
    assert decompress(packed) == PAYLOAD
    assert _zstd_reason(_zstd(b"")) == "Failed to determine decompression size"


@pytest.mark.parametrize(
    "header",
    [
        b"\x08\x00junk",  # a reserved bit set
        b"\xe0\x10",  # an 8-byte content size cut short
        b"\x00\x00junkjunkjunk",  # no content size, and no frame lkm can read either
    ],
)
def test_zstd_frames_kmod_cannot_size(header: bytes) -> None:
    # kmod 34 says this for every frame it finds no size in (recorded in kernel-cases.json).
    assert _zstd_reason(ZSTD_MAGIC + header) == "Failed to determine decompression size"


ZSTD_MAGIC = bytes.fromhex("28b52ffd")


@pytest.mark.parametrize("data", [ZSTD_MAGIC, ZSTD_MAGIC + b"\x20", b"\x1f\x8b", b"\x1f\x8bjjj"])
def test_shorter_than_the_magic_kmod_reads(data: bytes) -> None:
    # kmod reads six bytes first: a shorter file never reaches a decompressor, and has no reason.
    with pytest.raises(DecompressionError, match="shorter than 6 bytes") as info:
        decompress(data)
    assert info.value.reason is None


def test_xz_stream_padding_between_streams() -> None:
    assert decompress(_xz(PAYLOAD) + b"\0" * 4 + _xz(b"x")) == PAYLOAD + b"x"


@pytest.mark.parametrize(("method", "name"), [(m, m.value) for m in COMPRESSORS])
@pytest.mark.parametrize("keep", [7, 0.5, -1])
def test_truncated(method: Compression, name: str, keep: float) -> None:
    packed = COMPRESSORS[method](PAYLOAD)
    cut = int(len(packed) * keep) if isinstance(keep, float) else keep
    with pytest.raises(DecompressionError) as info:
        decompress(packed[:cut], path="m.ko")
    assert str(info.value) == f"m.ko: {name} stream is truncated"
    assert info.value.path == "m.ko"


@pytest.mark.parametrize(
    ("method", "where", "message"),
    [
        # xz: the stream footer; zstd and gzip: the checksum of the content.
        (Compression.XZ, -6, "m.ko: xz stream is corrupt: Corrupt input data"),
        (
            Compression.ZSTD,
            -2,
            "m.ko: zstd stream is corrupt: zstd decompressor error: "
            "Restored data doesn't match checksum",
        ),
        (
            Compression.GZIP,
            -6,
            "m.ko: gzip stream is corrupt: Error -3 while decompressing data: incorrect data check",
        ),
    ],
)
def test_corrupt(method: Compression, where: int, message: str) -> None:
    packed = bytearray(COMPRESSORS[method](PAYLOAD))
    packed[where] ^= 0xFF
    with pytest.raises(DecompressionError) as info:
        decompress(bytes(packed), path="m.ko")
    assert str(info.value) == message


@pytest.mark.parametrize("method", list(COMPRESSORS))
def test_garbage_after_magic(method: Compression) -> None:
    magic = COMPRESSORS[method](b"")[:6]
    with pytest.raises(DecompressionError, match=f"^{method.value} stream is"):
        decompress(magic + b"\xaa" * 64)


@pytest.mark.parametrize("method", list(COMPRESSORS))
def test_trailing_garbage_is_an_error(method: Compression) -> None:
    with pytest.raises(LkmError):
        decompress(COMPRESSORS[method](PAYLOAD) + b"\x01garbage")
