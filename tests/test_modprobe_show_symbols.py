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
