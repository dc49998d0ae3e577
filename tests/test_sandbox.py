"""``lkm sandbox`` without a VM: the initramfs, the 9p module order, taint letters, the CLI."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

import elfbuild
from lkm.cli import main
from lkm.sandbox import find_moddir, initramfs, share_modules, taint_letters


def test_taint_letters() -> None:
    assert taint_letters(0) == ""
    assert taint_letters(12288) == "OE"  # an unsigned out-of-tree module
    assert taint_letters(1 | 2 | 4096) == "PFO"


def test_initramfs_is_newc() -> None:
    raw = gzip.decompress(initramfs({"bin": (0o40755, b""), "init": (0o100755, b"#!x\n")}))
    assert raw.startswith(b"070701")
    assert raw.count(b"070701") == 3  # two entries and the trailer
    assert b"init\0" in raw and b"#!x\n" in raw and b"TRAILER!!!\0" in raw
    assert len(raw) % 4 == 0


def _module(path: Path, name: str, depends: str, *, xz: bool = False) -> None:
    image = elfbuild.elf64(
        {
            ".modinfo": elfbuild.modinfo_section(
                f"depends={depends}".encode(), b"name=" + name.encode()
            )
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(image, check=lzma.CHECK_CRC32) if xz else image)


def test_share_modules_dependencies_first_builtins_skipped(tmp_path: Path) -> None:
    moddir = tmp_path / "usr/lib/modules/6.99.0"
    kernel = moddir / "kernel"
    _module(kernel / "fs/9p/9p.ko.xz", "9p", "9pnet,netfs", xz=True)
    _module(kernel / "net/9p/9pnet_virtio.ko", "9pnet_virtio", "9pnet,virtio_ring")
    _module(kernel / "net/9p/9pnet.ko", "9pnet", "")
    _module(kernel / "fs/netfs/netfs.ko", "netfs", "")
    _module(kernel / "fs/other.ko", "other", "")
    # virtio_pci and virtio_ring are built in: no files.
    assert find_moddir(tmp_path) == moddir
    names = [path.name for path in share_modules(moddir)]
    assert names == ["9pnet.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko.xz"]


@pytest.mark.parametrize(
    ("args", "err"),
    [
        ([], "lkm sandbox: ERROR: missing command to run in the sandbox.\n"),
        (["-k", "x", "lsmod"], "lkm sandbox: ERROR: expected either --deb, or both --kernel and "
         "--modules.\n"),
        (["-d", "x.deb", "-k", "y", "lsmod"], "lkm sandbox: ERROR: expected either --deb, or "
         "both --kernel and --modules.\n"),
        (["-t", "soon", "-d", "x.deb", "lsmod"], "lkm sandbox: ERROR: expected a number of "
         "seconds for --timeout, found 'soon'\n"),
        (["--bogus"], "lkm sandbox: unrecognized option '--bogus'\n"),
    ],
)  # fmt: skip
def test_cli_refuses(
    args: list[str], err: str, capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    assert main(["lkm", "sandbox", "-w", str(tmp_path), *args]) == 1
    assert capfdbinary.readouterr().err.decode() == err


def test_cli_missing_package(capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    assert main(["lkm", "sandbox", "-w", str(tmp_path), "-d", str(tmp_path / "no.deb"), "lsmod"])
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"lkm sandbox: ERROR: could not unpack {tmp_path}/no.deb: ")


def test_cli_help_and_command_options_stay_the_commands(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert main(["lkm", "sandbox", "-h"]) == 0
    assert capfdbinary.readouterr().out.startswith(b"Usage:\n\tlkm sandbox ")
    # Options after the command word are the command's: -f here is insmod's, not an error.
    assert main(["lkm", "sandbox", "-k", "x", "insmod", "-f", "y.ko"]) == 1
    assert b"expected either --deb" in capfdbinary.readouterr().err


def test_outcome_taint_letters() -> None:
    from lkm.sandbox import Outcome

    assert Outcome(0, "", "", ("a",), 12288, "").taint_letters == "OE"
