"""depmod's xz decoder (``lkm.xz_buffer``): the bytes ``lzma`` decodes, or None.

It must never accept what ``lzma`` (and so kmod) refuses, since depmod then reports nothing
for a module kmod reports as damaged; and where it declines, ``lkm.compress`` decodes. Streams
of several blocks are made here by hand, as ``xz`` makes them for big modules and Python's
``lzma`` cannot.
"""

from __future__ import annotations

import lzma
import random
import zlib
from pathlib import Path

import pytest

from lkm.xz_buffer import XzBuffer, _blocks
from support import world

_DICT_1MIB = 16  # an LZMA2 dictionary size property: 1 MiB
_OBJECTS = Path(__file__).resolve().parent / "data" / "objects"


def _vli(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little")


def xz_stream(parts: list[bytes], check: int = lzma.CHECK_CRC32) -> bytes:
    """One xz stream, a block per part (LZMA2, 1 MiB dictionary), checked by CRC32 or not at
    all (``lzma.CHECK_NONE``)."""
    assert check in (lzma.CHECK_CRC32, lzma.CHECK_NONE)
    flags = bytes([0, check])
    out = bytearray(b"\xfd7zXZ\x00" + flags + _crc(flags))
    records = []
    for part in parts:
        filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
        body = lzma.compress(part, format=lzma.FORMAT_RAW, filters=filters)
        header = _pad4(b"\x00\x00\x21\x01" + bytes([_DICT_1MIB]))  # size, flags, filter
        header = bytes([(len(header) + 4) // 4 - 1]) + header[1:]
        header += _crc(header)
        stored = _crc(part) if check == lzma.CHECK_CRC32 else b""
        out += _pad4(header + body) + stored
        records.append((len(header) + len(body) + len(stored), len(part)))
    index = b"\x00" + _vli(len(records)) + b"".join(_vli(u) + _vli(s) for u, s in records)
    index = _pad4(index)
    index += _crc(index)
    out += index
    backward = (len(index) // 4 - 1).to_bytes(4, "little") + flags
    out += _crc(backward) + backward + b"YZ"
    return bytes(out)


@pytest.fixture(scope="module")
def buffer() -> XzBuffer:
    loaded = XzBuffer.load()
    assert loaded is not None, "liblzma 5.2 or later is where Python's lzma module is"
    return loaded


def _payloads() -> list[bytes]:
    objects = [path.read_bytes() for path in sorted(_OBJECTS.glob("*.o"))]
    return [b"", b"\x7fELF", objects[0], bytes(range(256)) * 600, *objects[1:4]]


def test_the_hand_made_streams_are_what_lzma_reads() -> None:
    parts = _payloads()
    assert lzma.decompress(xz_stream(parts)) == b"".join(parts)
    assert lzma.decompress(xz_stream(parts[2:3], lzma.CHECK_NONE)) == parts[2]


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_blocks_decode_to_lzmas_bytes(buffer: XzBuffer, blocks: int) -> None:
    parts = _payloads()[2 : 2 + blocks] if blocks > 1 else [_payloads()[3]]
    data = xz_stream(parts)
    view = buffer.decompress(data)
    assert view is not None
    assert view.tobytes() == lzma.decompress(data) == b"".join(parts)


def test_pythons_own_streams_and_the_buffer_reused(buffer: XzBuffer) -> None:
    # Bigger, then smaller: the view is of the new file only.
    for payload in (bytes(range(256)) * 4000, b"\x7fELF" * 3, b""):
        view = buffer.decompress(lzma.compress(payload, check=lzma.CHECK_CRC32))
        assert view is not None
        assert view.tobytes() == payload


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: lzma.compress(p, check=lzma.CHECK_CRC64), id="crc64"),
        pytest.param(lambda p: lzma.compress(p, check=lzma.CHECK_SHA256), id="sha256"),
        pytest.param(lambda p: xz_stream([p], lzma.CHECK_NONE), id="no-check"),
        pytest.param(lambda p: lzma.compress(p) + lzma.compress(p), id="two-streams"),
        pytest.param(lambda p: xz_stream([p]) + bytes(4), id="stream-padding"),
        pytest.param(lambda p: b"\0" + xz_stream([p]), id="byte-before"),
        pytest.param(lambda p: xz_stream([p]) + b"YZ", id="bytes-after"),
        pytest.param(lambda p: xz_stream([p])[:-1], id="truncated"),
        pytest.param(lambda p: xz_stream([p])[:12], id="header-only"),
        pytest.param(lambda p: lzma.compress(p, format=lzma.FORMAT_ALONE), id="lzma-alone"),
        pytest.param(lambda p: p, id="not-xz"),
    ],
)
def test_what_it_does_not_take_whole_is_none(buffer: XzBuffer, make) -> None:  # type: ignore[no-untyped-def]
    assert buffer.decompress(make(_payloads()[2])) is None


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_a_wrong_check_is_none_where_lzma_refuses(buffer: XzBuffer) -> None:
    parts = _payloads()[2:4]
    data = xz_stream(parts)
    # The second block's check: 4 bytes before the index, which starts after it.
    second_check = data.rindex(_crc(parts[1]))
    damaged = _flip(data, second_check)
    assert buffer.decompress(damaged) is None
    with pytest.raises(lzma.LZMAError, match="Corrupt input data"):
        lzma.decompress(damaged)


def test_random_damage_decodes_as_lzma_does_or_not_at_all(buffer: XzBuffer) -> None:
    """Every byte of a two-block stream changed in turn, then random damage: whenever the
    buffer gives bytes, lzma gives the same bytes without error."""
    rng = random.Random(20261203)
    data = xz_stream(_payloads()[2:4])
    damaged = [_flip(data, at) for at in range(len(data))]
    for _ in range(2000):
        copy = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            copy[rng.randrange(len(copy))] = rng.randrange(256)
        damaged.append(bytes(copy))
    decoded = 0
    for case in damaged:
        view = buffer.decompress(case)
        if view is None:
            continue
        decoded += 1
        assert view.tobytes() == lzma.decompress(case)
    # Flips in the padding and the reserved bits are refused by both, and the CRCs catch
    # the rest: nearly nothing damaged decodes.
    assert decoded < len(damaged) // 10


@pytest.mark.slow
def test_every_module_of_an_xz_tree(buffer: XzBuffer) -> None:
    tree = world.tree("trixie-amd64")
    modules = tree.modules()
    assert len(modules) > 4000
    several_blocks = 0
    for path in modules:
        data = path.read_bytes()
        view = buffer.decompress(data)
        assert view is not None, path
        assert view.tobytes() == lzma.decompress(data), path
        blocks = _blocks(data)
        assert blocks is not None
        several_blocks += len(blocks) > 1
    assert several_blocks  # the biggest modules are xz's blocks of 3 MiB
