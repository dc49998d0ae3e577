"""ModuleFile on the test objects, in every class x byte order x compression, and on errors."""

from __future__ import annotations

import errno
import gzip
import lzma
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from lkm.compress import Compression
from lkm.errors import (
    DecompressionError,
    ElfError,
    LkmError,
    ModuleFileError,
    NotElfError,
)
from lkm.module import ExportedSymbol, ImportedSymbol, ModuleFile, ModuleVersion, kmod_errno
from support import world

OBJECTS = Path(__file__).parent / "data" / "objects"
VARIANTS = ["elf64-le", "elf64-be", "elf32-le", "elf32-be"]
COMPRESSORS: dict[Compression, Callable[[bytes], bytes]] = {
    Compression.NONE: lambda data: data,
    Compression.XZ: lambda data: lzma.compress(data, check=lzma.CHECK_CRC32),
    Compression.ZSTD: lambda data: zstandard.ZstdCompressor().compress(data),
    Compression.GZIP: lambda data: gzip.compress(data, mtime=0),
}

# What kmod 34's modinfo prints for the objects' .modinfo: empty strings skipped, a string
# without '=' is a key with an empty value, bytes kept as they are.
MODINFO = (
    ("version", "1.0"),
    ("license", "GPL"),
    ("author", "Jane Doe <jane@example.org>"),
    ("author", "Second Author"),
    ("description", "lkm reader test object"),
    ("noequalsign", ""),
    ("empty", ""),
    ("key", "value=with=equals"),
    ("utf8", "café"),
    ("latin1", b"caf\xe9 \xff".decode("utf-8", "surrogateescape")),
    ("parm", "debug:enable debugging"),
    ("parmtype", "debug:int"),
    ("alias", "lkm-test-alias"),
    ("depends", ""),
    ("retpoline", "Y"),
    ("name", "lkm_test"),
    ("vermagic", "6.1.0-test SMP preempt mod_unload modversions "),
)
VERSIONS = (
    ModuleVersion("module_layout", 0x0B1B2C3D),
    ModuleVersion("_printk", 0x92997ED8),
    ModuleVersion("kmalloc_caches", 0xFEDCBA98),
)
EXPORTS = (
    ExportedSymbol("lkm_test_func", 0xCAFEF00D),
    ExportedSymbol("lkm_test_data", 0x01020304),
    ExportedSymbol("lkm_test_abs", 0x07654321),
)
IMPORTS = (
    ImportedSymbol("_printk", 0x92997ED8, weak=False),
    ImportedSymbol("kmalloc_caches", 0xFEDCBA98, weak=False),
    ImportedSymbol("no_crc_import", None, weak=False),
)


def _object(name: str) -> bytes:
    return (OBJECTS / f"{name}.o").read_bytes()


@pytest.mark.parametrize("compression", list(COMPRESSORS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_module(variant: str, compression: Compression) -> None:
    plain = _object(variant)
    module = ModuleFile.from_bytes(COMPRESSORS[compression](plain), path=f"/x/{variant}.ko")
    assert module.compression is compression
    assert module.raw == plain
    assert module.modinfo == MODINFO
    assert module.has_modinfo
    assert module.name == "lkm_test"
    assert module.versions == VERSIONS
    assert module.exports == EXPORTS
    assert module.imports == IMPORTS
    assert module.has_this_module
    assert module.signature is None
    assert module.unsigned_size == len(plain)


@pytest.mark.parametrize("variant", VARIANTS)
def test_exports_without_crcs_come_from_ksymtab_strings(variant: str) -> None:
    module = ModuleFile.from_bytes(_object(f"{variant}-nocrc"))
    assert module.exports == tuple(ExportedSymbol(e.name, None) for e in EXPORTS)
    assert module.versions == VERSIONS


@pytest.mark.parametrize("variant", VARIANTS)
def test_without_modinfo(variant: str) -> None:
    module = ModuleFile.from_bytes(_object(f"{variant}-nomodinfo"), path=f"/x/{variant}-no.ko")
    # kmod's modinfo reports "could not get modinfo from '...': No data available" (ENODATA).
    assert not module.has_modinfo
    assert module.modinfo == ()
    assert module.name == f"{variant.replace('-', '_')}_no"
    assert module.exports == EXPORTS


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/lib/modules/k/kernel/a/snd-hda-intel.ko.xz", "snd_hda_intel"),
        ("plain.ko", "plain"),
        ("dir.d/x-y.z.ko", "x_y"),
        (None, ""),
    ],
)
def test_name_from_path(path: str | None, name: str) -> None:
    assert ModuleFile.from_bytes(_object("elf64-le-nomodinfo"), path=path).name == name


def test_laziness() -> None:
    module = ModuleFile.from_bytes(COMPRESSORS[Compression.XZ](_object("elf64-le")))
    assert "raw" not in vars(module)
    assert module.modinfo == MODINFO
    assert "symbols" not in vars(module.elf), "modinfo must not parse symbols"


def test_from_path(tmp_path: Path) -> None:
    path = tmp_path / "m.ko.zst"
    path.write_bytes(COMPRESSORS[Compression.ZSTD](_object("elf32-be")))
    module = ModuleFile.from_path(path)
    assert module.path == str(path)
    assert module.compression is Compression.ZSTD
    assert module.modinfo == MODINFO


def _open_error(path: Path) -> ModuleFileError:
    with pytest.raises(ModuleFileError) as info:
        ModuleFile.from_path(path)
    assert info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    err = _open_error(tmp_path / "missing.ko")
    assert err.errno == errno.ENOENT
    assert str(err) == f"could not read '{tmp_path}/missing.ko': No such file or directory"
    assert kmod_errno(err) == errno.ENOENT


def test_directory(tmp_path: Path) -> None:
    err = _open_error(tmp_path)
    assert err.errno == errno.EISDIR
    assert str(err) == f"could not read '{tmp_path}': Is a directory"


_READ = """\
import sys
from lkm.errors import ModuleFileError
from lkm.module import ModuleFile, kmod_errno
try:
    ModuleFile.from_path(sys.argv[1])
except ModuleFileError as err:
    print(err.errno, kmod_errno(err), err.path, err, sep="\\n")
"""


def test_unreadable(tmp_path: Path) -> None:
    """A file of mode 0, read by a process held to file modes (root too:
    support/unprivileged.py)."""
    from support.unprivileged import held_to_modes

    path = tmp_path / "secret.ko"
    path.write_bytes(_object("elf64-le"))
    path.chmod(0)
    command = held_to_modes([sys.executable, "-c", _READ, str(path)])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        str(errno.EACCES),
        str(errno.EACCES),
        str(path),
        f"could not read '{path}': Permission denied",
    ]


def _error(data: bytes, read: Callable[[ModuleFile], object]) -> LkmError:
    with pytest.raises(LkmError) as info:
        read(ModuleFile.from_bytes(data, path="m.ko"))
    return info.value


@pytest.mark.parametrize(
    ("data", "error", "code", "message"),
    [
        (
            b"not an ELF file at all",
            NotElfError,
            errno.ENOEXEC,
            "m.ko: not an ELF file: expected magic 7f454c46, found 6e6f7420 (at byte 0x0)",
        ),
        (
            b"\x7fELF\x02",
            ElfError,
            errno.EINVAL,
            "m.ko: file of 5 bytes is too short to tell its format (6 bytes)",
        ),
        (  # decompressed, as short a module is "not an ELF file" to kmod 34
            COMPRESSORS[Compression.XZ](b"\x7fELF\x02"),
            NotElfError,
            errno.ENOEXEC,
            "m.ko: file of 5 bytes is too short for an ELF file (more than the 16-byte "
            "identification)",
        ),
        (
            _object("elf64-le")[:100],
            ElfError,
            errno.EINVAL,
            "m.ko: section header table of 13 entries at 1280 ends at 2112, beyond the end of "
            "the file (100 bytes) (at byte 0x28)",
        ),
        (
            COMPRESSORS[Compression.XZ](_object("elf64-le"))[:200],
            DecompressionError,
            errno.EINVAL,
            "m.ko: xz stream is truncated",
        ),
    ],
)
def test_errors_and_kmod_errno(data: bytes, error: type[LkmError], code: int, message: str) -> None:
    err = _error(data, lambda m: m.modinfo)
    assert type(err) is error
    assert str(err) == message
    assert kmod_errno(err) == code


def _versions_resized(size: int) -> bytes:
    data = bytearray(_object("elf64-le"))
    struct.pack_into("<Q", data, 0x500 + 6 * 64 + 32, size)  # __versions sh_size
    return bytes(data)


def test_versions_size_not_a_multiple_of_the_entry() -> None:
    err = _error(_versions_resized(100), lambda m: m.versions)
    assert str(err) == "m.ko: __versions size 100 is not a multiple of 64 (at byte 0x1a8)"


def test_crc_offset_out_of_section() -> None:
    data = bytearray(_object("elf64-le"))
    struct.pack_into("<Q", data, 0x2E0 + 2 * 24 + 8, 0x20)  # st_value of __crc_lkm_test_func
    err = _error(bytes(data), lambda m: m.exports)
    assert str(err) == (
        "m.ko: __crc_ value at offset 32 of section '.rodata' is beyond its 12 bytes "
        "(at byte 0x291)"
    )


def test_crc_section_index_out_of_range() -> None:
    data = bytearray(_object("elf64-le"))
    struct.pack_into("<H", data, 0x2E0 + 2 * 24 + 6, 40)  # st_shndx of __crc_lkm_test_func
    err = _error(bytes(data), lambda m: m.exports)
    assert str(err) == (
        "m.ko: __crc_ symbol refers to section index 0x28, not a section of the file (13 sections)"
    )


# Differential tests against kmod 34 on real Debian modules (see support/world.py).
_SIGNATURE_KEYS = {b"sig_id", b"signer", b"sig_key", b"sig_hashalgo", b"signature"}


def _kmod_modinfo(tree: world.Tree, paths: list[Path]) -> dict[str, list[bytes]]:
    """kmod's `modinfo -0` .modinfo entries (no filename, parm or signature) per chroot path."""
    out = world.kmod("modinfo", "-0", *[tree.chroot_path(p) for p in paths]).stdout
    found: dict[str, list[bytes]] = {}
    entries: list[bytes] = []
    for item in out.split(b"\0")[:-1]:
        if item.startswith(b"filename:"):
            entries = found.setdefault(item.split(b":", 1)[1].strip().decode(), [])
        elif not item.startswith(b"parm:") and item.split(b"=", 1)[0] not in _SIGNATURE_KEYS:
            entries.append(item)
    return found


def _lkm_modinfo(module: ModuleFile) -> list[bytes]:
    return [
        os.fsencode(f"{key}={value}")
        for key, value in module.modinfo
        if key not in ("parm", "parmtype")
    ]


def _kmod_reference(tree: world.Tree, path: Path) -> tuple[world.Tree, Path]:
    """Where kmod can read the same module: gzip copies are compared with their originals."""
    if path.name.endswith(".gz"):
        source = world.tree(world.DERIVED[tree.name])
        original = source.moddir / path.relative_to(tree.moddir)
        return source, original.with_name(original.name.removesuffix(".gz"))
    return tree, path


@pytest.mark.slow
@pytest.mark.parametrize("name", world.ALL_TREES)
def test_modinfo_matches_kmod(name: str, trees: dict[str, world.Tree]) -> None:
    tree = trees[name]
    paths = tree.modules()
    if name.endswith("-gzip"):
        paths = [p for p in paths if p.name.endswith(".gz")]
    references = [_kmod_reference(tree, p) for p in paths]
    expected: dict[str, list[bytes]] = {}
    for ref_tree in {t.name: t for t, _ in references}.values():
        ref_paths = [p for t, p in references if t.name == ref_tree.name]
        for start in range(0, len(ref_paths), 1000):
            expected.update(_kmod_modinfo(ref_tree, ref_paths[start : start + 1000]))
    assert len(expected) == len(paths)
    for path, (ref_tree, ref_path) in zip(paths, references, strict=True):
        module = ModuleFile.from_path(path)
        assert _lkm_modinfo(module) == expected[ref_tree.chroot_path(ref_path)], path


def _kmod_lines(tree: world.Tree, option: str, path: Path) -> list[str]:
    result = world.kmod("modprobe", option, tree.chroot_path(path))
    if result.returncode == 1 and result.stderr.endswith(b": No data available\n"):
        # kmod fails with ENODATA where there is nothing to list.
        return []
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "surrogateescape").splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("name", world.ALL_TREES)
def test_versions_and_exports_match_kmod(name: str, trees: dict[str, world.Tree]) -> None:
    tree = trees[name]
    paths = tree.modules()
    if name.endswith("-gzip"):
        paths = [p for p in paths if p.name.endswith(".gz")]
    for path in paths[:: max(1, len(paths) // 40)]:
        ref_tree, ref_path = _kmod_reference(tree, path)
        module = ModuleFile.from_path(path)
        versions = [f"0x{v.crc:08x}\t{v.symbol}" for v in module.versions]
        assert versions == _kmod_lines(ref_tree, "--show-modversions", ref_path), path
        exports = [f"0x{e.crc or 0:08x}\t{e.name}" for e in module.exports]
        assert exports == _kmod_lines(ref_tree, "--show-exports", ref_path), path


@pytest.mark.slow
@pytest.mark.parametrize("name", world.ALL_TREES)
def test_show_modversions_and_exports_commands_match_kmod(
    name: str, trees: dict[str, world.Tree]
) -> None:
    """``modprobe --show-modversions``/``--show-exports``, the commands: their whole output,
    CRCs unmasked, and status, on a sample of every tree (32-bit and big-endian included)."""
    from support.differential import COMPARED, Result, assert_same, kmod, lkm

    tree = trees[name]
    paths = tree.modules()
    if name.endswith("-gzip"):
        paths = [p for p in paths if p.name.endswith(".gz")]
    listed = 0
    for path in paths[:: max(1, len(paths) // 6)]:
        ref_tree, ref_path = _kmod_reference(tree, path)
        for option in ("--show-modversions", "--show-exports"):
            expected = kmod("modprobe", option, ref_tree.chroot_path(ref_path))
            actual = lkm("modprobe", option, str(path))
            # A gzip copy is compared with its original, which kmod's messages name.
            named = actual.stderr.replace(
                os.fsencode(tree.chroot_path(path)), os.fsencode(ref_tree.chroot_path(ref_path))
            )
            assert_same(expected, Result(actual.stdout, named, actual.status))
            listed += expected.status == 0 and expected.stdout.startswith(b"0x")
            COMPARED["modprobe --show-modversions/--show-exports (runs)"] += 1
    assert listed >= 4, "too few modules of the sample list CRCs"


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_objects_match_kmod(variant: str, trees: dict[str, world.Tree]) -> None:
    # kmod sees only files inside its chroot; a throwaway tree-like wrapper points there.
    with tempfile.TemporaryDirectory(dir=world.CHROOT / "tmp") as scratch:
        path = Path(scratch) / f"{variant}.ko"
        path.write_bytes(_object(variant))
        tree = world.Tree("objects", Path(scratch), "", Path(scratch))
        module = ModuleFile.from_path(path)
        assert _lkm_modinfo(module) == _kmod_modinfo(tree, [path])[tree.chroot_path(path)]
        versions = [f"0x{v.crc:08x}\t{v.symbol}" for v in module.versions]
        assert versions == _kmod_lines(tree, "--show-modversions", path)
        exports = [f"0x{e.crc or 0:08x}\t{e.name}" for e in module.exports]
        assert exports == _kmod_lines(tree, "--show-exports", path)
