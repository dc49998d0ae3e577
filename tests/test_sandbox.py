"""``lkm sandbox`` without a VM: the initramfs, the 9p module order, taint letters, the CLI."""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
from pathlib import Path

import pytest

from lkm.cli import main
from lkm.sandbox import initramfs, share_modules, taint_letters
from lkm.sandbox_kernel import find_moddir
from support import elfbuild


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


NO_KERNEL = (
    "lkm sandbox: ERROR: expected --deb, or both --kernel and --modules, or no kernel named.\n"
)


@pytest.mark.parametrize(
    ("args", "err"),
    [
        ([], "lkm sandbox: ERROR: missing command to run in the sandbox.\n"),
        (["-k", "x", "lsmod"], NO_KERNEL),
        (["-m", "x", "lsmod"], NO_KERNEL),
        (["-d", "x.deb", "-k", "y", "lsmod"], NO_KERNEL),
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


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the test's own for the sandbox's work directories."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_cli_missing_package(capfdbinary: pytest.CaptureFixture[bytes], own_tmp: Path) -> None:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs qemu-system-x86_64 and dpkg-deb")
    assert main(["lkm", "sandbox", "-d", str(own_tmp / "no.deb"), "lsmod"]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err == f"lkm sandbox: ERROR: could not unpack {own_tmp}/no.deb: no such file\n"
    assert list(own_tmp.iterdir()) == []  # the work directory is gone


def test_cli_bad_package_leaves_nothing(
    capfdbinary: pytest.CaptureFixture[bytes], own_tmp: Path, tmp_path: Path
) -> None:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs qemu-system-x86_64 and dpkg-deb")
    deb = tmp_path / "linux-image-bad.deb"
    deb.write_bytes(b"not a package\n")
    assert main(["lkm", "sandbox", "-d", str(deb), "lsmod"]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"lkm sandbox: ERROR: could not unpack {deb}: dpkg-deb")
    assert err.count("\n") == 1
    assert list(own_tmp.iterdir()) == []
    # A named work directory is kept, but holds no half-unpacked package.
    workdir = tmp_path / "work"
    assert main(["lkm", "sandbox", "-w", str(workdir), "-d", str(deb), "lsmod"]) == 1
    assert list((workdir / "kernel").iterdir()) == []


@pytest.mark.parametrize(
    ("tools", "named", "err"),
    [
        ((), ["-d", "x.deb"], "expected qemu-system-x86_64, dpkg-deb on PATH, found none "
         "(install qemu-system-x86)"),
        (("qemu-system-x86_64",), ["-d", "x.deb"], "expected dpkg-deb on PATH, found none"),
        (("qemu-system-x86_64", "dpkg-deb"), [], "expected apt-cache, apt-get on PATH, found "
         "none"),
        ((), ["-k", "vmlinuz", "-m", "dir"], "expected qemu-system-x86_64 on PATH, found none "
         "(install qemu-system-x86)"),
    ],
)  # fmt: skip
def test_cli_checks_tools_first(
    tools: tuple[str, ...],
    named: list[str],
    err: str,
    *,
    capfdbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    own_tmp: Path,
) -> None:
    # PATH holds only the tools named: what is missing is said before anything is unpacked.
    bin_dir = own_tmp.parent / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to("/bin/true")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main(["lkm", "sandbox", *named, "lsmod"]) == 1
    assert capfdbinary.readouterr().err.decode() == f"lkm sandbox: ERROR: {err}\n"
    assert list(own_tmp.iterdir()) == []


def _elf(program_types: tuple[int, ...]) -> bytes:
    """An ELF64 header and a program header table with entries of these types."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QHH", header, 32, 64, 0, 0)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, len(program_types))  # e_phentsize, e_phnum
    table = b"".join(struct.pack("<I", kind) + bytes(52) for kind in program_types)
    return bytes(header) + table


def test_static_busybox_is_told_from_a_dynamic_one(tmp_path: Path) -> None:
    from lkm.sandbox_kernel import _is_static

    static, dynamic, text = tmp_path / "static", tmp_path / "dynamic", tmp_path / "text"
    static.write_bytes(_elf((1, 1, 4)))  # PT_LOAD, PT_LOAD, PT_NOTE
    dynamic.write_bytes(_elf((6, 3, 1)))  # PT_PHDR, PT_INTERP, PT_LOAD
    text.write_bytes(b"#!/bin/sh\n")
    assert _is_static(str(static))
    assert not _is_static(str(dynamic))
    assert not _is_static(str(text))


def test_console_tail_without_escapes() -> None:
    from lkm.sandbox import console_tail

    console = "\x1bc\x1b[?7l\x1b[2JSeaBIOS\n\n" + "".join(f"line {i}\r\n" for i in range(12))
    assert console_tail(console) == [f"line {i}" for i in range(2, 12)]
    assert console_tail(console, 2) == ["line 10", "line 11"]


def test_progress_rewrites_one_line() -> None:
    import io

    from lkm.cli.sandbox import _Progress

    stream = io.StringIO()
    progress = _Progress(stream, "lkm sandbox")
    progress.step("unpacking k.deb")
    progress.step("booting 6.12 with KVM")
    for seconds in (0.2, 0.7, 1.1, 2.5):
        progress.tick(seconds)
    progress.end()
    progress.end()
    assert stream.getvalue() == (
        "lkm sandbox: unpacking k.deb ...\n"
        "lkm sandbox: booting 6.12 with KVM ...\r"
        "lkm sandbox: booting 6.12 with KVM ... 0 s\r"
        "lkm sandbox: booting 6.12 with KVM ... 1 s\r"
        "lkm sandbox: booting 6.12 with KVM ... 2 s\n"
    )


def test_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from lkm.sandbox_kernel import cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert cache_dir() == Path("/x/cache/lkm")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/x/home")
    assert cache_dir() == Path("/x/home/.cache/lkm")


def test_cli_help_and_command_options_stay_the_commands(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert main(["lkm", "sandbox", "-h"]) == 0
    assert capfdbinary.readouterr().out.startswith(b"Usage:\n\tlkm sandbox ")
    # Options after the command word are the command's: -f here is insmod's, not an error.
    assert main(["lkm", "sandbox", "-k", "x", "insmod", "-f", "y.ko"]) == 1
    assert b"expected --deb, or both" in capfdbinary.readouterr().err


def test_outcome_taint_letters() -> None:
    from lkm.sandbox import Outcome

    assert Outcome(0, "", "", ("a",), 12288, "").taint_letters == "OE"
