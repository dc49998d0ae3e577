"""``modprobe --show-exports`` and ``--show-modversions`` of a module whose compressed stream is
damaged: kmod 34 names the decompressor's failure in an ERROR line, once, before the FATAL one
(checked against kmod 34; nothing with ``-q``)."""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.depmod_trees import module_elf


def _modprobe(tmp_path: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "modprobe", "-C", str(tmp_path / "none"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(("mode", "what"), [("--show-exports", "symbols"),
                                             ("--show-modversions", "modversions")])  # fmt: skip
def test_damaged_stream_is_named(tmp_path: Path, mode: str, what: str) -> None:
    import zstandard

    module = module_elf(exports=["e"], import_crcs={"module_layout": 1})
    xz = lzma.compress(module, check=lzma.CHECK_CRC32)
    files = {
        "t.ko.zst": (
            zstandard.ZstdCompressor().compress(module)[:-5],
            "zstd: Src size is incorrect",
        ),
        "c.ko.xz": (xz[:12] + bytes([xz[12] ^ 1]) + xz[13:], "xz: File is corrupt"),
    }
    for name, (data, reason) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert _modprobe(tmp_path, mode, str(path)) == (
            1,
            f"modprobe: ERROR: {reason}\n"
            f"modprobe: FATAL: could not get {what} of {path}: Invalid argument\n",
        )
        assert _modprobe(tmp_path, "-q", mode, str(path)) == (1, "")


def _patched(**changes: int) -> bytes:
    """A module_elf module with exports e1 and e2 (CRCs 0x11, 0x22) and __versions; changes:
    ``crc_name`` (the first __crc_ symbol's name offset), ``versions_type``, ``no_strings``."""
    import struct

    data = bytearray(
        module_elf(exports=["e1", "e2"], export_crcs={"e1": 0x11, "e2": 0x22},
                   import_crcs={"module_layout": 0x99})
    )  # fmt: skip
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shdr = struct.Struct("<IIQQQQIIQQ")

    def header(index: int) -> list[int]:
        return list(shdr.unpack_from(data, shoff + index * 64))

    if "crc_name" in changes:
        struct.pack_into("<I", data, header(4)[4] + 24, changes["crc_name"])  # symbol 1
    if "versions_type" in changes:
        fields = header(3)
        fields[1] = changes["versions_type"]
        shdr.pack_into(data, shoff + 3 * 64, *fields)
    if changes.get("no_strings"):
        at = header(6)[4] + header(2)[0]
        data[at : at + 2] = b"X_"  # __ksymtab_strings renamed
    return bytes(data)


@pytest.mark.parametrize(
    ("changes", "mode", "expected"),
    [
        # Exports are read as depmod reads them: a symbol named past the string table sends
        # them to __ksymtab_strings, which has no CRCs...
        ({"crc_name": 1 << 29}, "--show-exports", (0, "0x00000000\te1\n0x00000000\te2\n", "")),
        # ... and without it there are none.
        ({"crc_name": 1 << 29, "no_strings": 1}, "--show-exports",
         (1, "", "modprobe: FATAL: could not get symbols of {path}: No data available\n")),
        # __versions is read whatever its type says.
        ({"versions_type": 8}, "--show-modversions", (0, "0x00000099\tmodule_layout\n", "")),
    ],
)  # fmt: skip
def test_symbols_read_as_kmod_reads_them(
    tmp_path: Path, changes: dict[str, int], mode: str, expected: tuple[int, str, str]
) -> None:
    path = tmp_path / "m.ko"
    path.write_bytes(_patched(**changes))
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "modprobe", "-C", str(tmp_path / "none"), mode, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    status, out, err = expected
    assert (done.returncode, done.stdout, done.stderr) == (status, out, err.format(path=path))


def test_modversions_without_one_leading_dot(tmp_path: Path) -> None:
    path = tmp_path / "v.ko"
    path.write_bytes(module_elf(import_crcs={".foo": 1, "..two": 2, "bar": 3}))
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "modprobe", "-C", str(tmp_path / "none"),
         "--show-modversions", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout == "0x00000001\tfoo\n0x00000002\t.two\n0x00000003\tbar\n"
