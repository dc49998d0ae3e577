"""Module directory lookups on small trees built here (real trees are in test_modinfo_real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkm.errors import IndexFormatError
from lkm.index import write_index
from lkm.moddir import ModuleDirectory, normalize_alias
from support.modinfo_cases import GOOD, Output, run_lkm_inprocess

KVER = "6.1.0-test"


def make_tree(base: Path, root: str) -> Path:
    moddir = base / root / KVER
    (moddir / "kernel/fs").mkdir(parents=True)
    (moddir / "kernel/fs/good-mod.ko").write_bytes(GOOD)
    (moddir / "modules.dep.bin").write_bytes(
        write_index([("good_mod", "kernel/fs/good-mod.ko:", 0)])
    )
    (moddir / "modules.alias.bin").write_bytes(
        write_index([("fs_good*", "good_mod", 0), ("pci:v*d0001*", "good_mod", 0)])
    )
    (moddir / "modules.builtin.bin").write_bytes(write_index([("ext4", "", 0)]))
    (moddir / "modules.builtin.modinfo").write_bytes(b"ext4.license=GPL\0ext4.alias=fs-ext4\0")
    (moddir / "modules.builtin.alias.bin").write_bytes(write_index([("fs_ext4", "ext4", 0)]))
    return moddir


@pytest.mark.parametrize("root", ["lib/modules", "usr/lib/modules"])
def test_both_layouts(tmp_path: Path, root: str) -> None:
    moddir = make_tree(tmp_path, root)
    directory = ModuleDirectory.for_release(str(tmp_path), KVER)
    assert directory.path == str(moddir)
    assert directory.module_path("good-mod") == f"{moddir}/kernel/fs/good-mod.ko"
    out = run_lkm_inprocess(["-b", str(tmp_path), "-k", KVER, "-F", "filename", "good-mod"])
    assert out == Output(f"{moddir}/kernel/fs/good-mod.ko\n".encode(), b"", 0)


def test_lib_modules_wins_over_usr(tmp_path: Path) -> None:
    make_tree(tmp_path, "usr/lib/modules")
    lib = make_tree(tmp_path, "lib/modules")
    assert ModuleDirectory.for_release(str(tmp_path), KVER).path == str(lib)


def test_lookups(tmp_path: Path) -> None:
    make_tree(tmp_path, "lib/modules")
    with ModuleDirectory.for_release(str(tmp_path), KVER) as directory:
        assert directory.alias_owners("fs-good-thing") == ["good_mod"]
        assert directory.alias_owners("pci:v1234d0001") == ["good_mod"]
        assert directory.alias_owners("nothing") == []
        assert directory.is_builtin("ext4")
        assert directory.builtin("ext4").modinfo == (("license", "GPL"), ("alias", "fs-ext4"))
        assert directory.builtin_alias_owners("fs-ext4") == ["ext4"]
        assert directory.symbol_owners("symbol:x") == []  # no modules.symbols.bin at all


def test_builtin_by_alias_through_the_cli(tmp_path: Path) -> None:
    make_tree(tmp_path, "lib/modules")
    out = run_lkm_inprocess(["-b", str(tmp_path), "-k", KVER, "fs-ext4"])
    assert out.stdout == (
        b"name:           ext4\nfilename:       (builtin)\nlicense:        GPL\n"
        b"alias:          fs-ext4\n"
    )


def test_relative_basedir_is_glued_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, "lib/modules")
    monkeypatch.chdir(tmp_path.parent)
    directory = ModuleDirectory.for_release(tmp_path.name + "/", KVER)
    assert directory.path == f"{tmp_path.parent}/{tmp_path.name}//lib/modules/{KVER}"


CORRUPT = [
    b"\xb0\x07\xf4\x57garbage",  # truncated header
    b"\xb0\x07\xf4\x57\x00\x02\x00\x01\x00\x00\x10\x00",  # root past the end
    b"",
]


@pytest.mark.parametrize("data", CORRUPT)
def test_corrupt_index_is_an_error_for_the_library(tmp_path: Path, data: bytes) -> None:
    moddir = make_tree(tmp_path, "lib/modules")
    (moddir / "modules.dep.bin").write_bytes(data)
    with (
        ModuleDirectory.for_release(str(tmp_path), KVER) as directory,
        pytest.raises(IndexFormatError, match=r"modules\.dep\.bin: "),
    ):
        directory.module_path("good-mod")


@pytest.mark.parametrize("data", CORRUPT)
def test_corrupt_index_means_not_found_to_modinfo(tmp_path: Path, data: bytes) -> None:
    """kmod 34 (seen with these three files) says only that the module is not found."""
    moddir = make_tree(tmp_path, "lib/modules")
    (moddir / "modules.dep.bin").write_bytes(data)
    out = run_lkm_inprocess(["-b", str(tmp_path), "-k", KVER, "good-mod"])
    assert out == Output(b"", b"modinfo: ERROR: Module good-mod not found.\n", 1)


@pytest.mark.parametrize(
    ("alias", "normal"),
    [("fs-ext4", "fs_ext4"), ("pci:v[0-9]d-x", "pci:v[0-9]d_x"), ("a[-b]-c", "a[-b]_c")],
)
def test_normalize_alias(alias: str, normal: str) -> None:
    assert normalize_alias(alias) == normal
