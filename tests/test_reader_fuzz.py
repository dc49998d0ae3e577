"""Property tests: whatever the bytes, the module reader raises only LkmError subclasses."""

from __future__ import annotations

import contextlib
import gzip
import lzma
from pathlib import Path

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkm.errors import LkmError
from lkm.module import ModuleFile

OBJECTS = Path(__file__).parent / "data" / "objects"
SEEDS = [path.read_bytes() for path in sorted(OBJECTS.glob("*.o"))]
# A few compressed seeds, so mutations also hit the decompressors' headers and trailers.
PACKED = [
    lzma.compress(SEEDS[0], check=lzma.CHECK_CRC32),
    zstandard.ZstdCompressor(write_checksum=True).compress(SEEDS[1]),
    gzip.compress(SEEDS[2], mtime=0),
]


def _read_everything(data: bytes) -> None:
    module = ModuleFile.from_bytes(data, path="fuzz.ko")
    for read in (
        lambda: module.compression,
        lambda: module.raw,
        lambda: module.elf.sections,
        lambda: module.elf.symbols,
        lambda: module.has_modinfo,
        lambda: module.modinfo,
        lambda: module.name,
        lambda: module.versions,
        lambda: module.exports,
        lambda: module.imports,
        lambda: module.has_this_module,
        lambda: module.signature,
        lambda: module.unsigned_size,
    ):
        # LkmError is the only acceptable failure; go on with the other properties.
        with contextlib.suppress(LkmError):
            read()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS + PACKED)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "word"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "word":
            # Header fields are offsets and sizes: big values find the range checks.
            word = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\0\0\1\0"]))
            data[at : at + 4] = word
        else:
            del data[at:]
    return bytes(data)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _read_everything(data)


@SETTINGS
@given(st.binary(max_size=200).map(lambda tail: b"\x7fELF" + tail))
def test_random_bytes_after_elf_magic(data: bytes) -> None:
    _read_everything(data)


@SETTINGS
@given(mutated())
def test_mutated_objects(data: bytes) -> None:
    _read_everything(data)
