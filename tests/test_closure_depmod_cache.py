"""lkm closure on a tree lkm's depmod indexed: the firmware fields of every module unchanged
since come from depmod's cache, without reading the module; the records are those of a closure
that reads every module file, whatever became of the tree or the cache since."""

from __future__ import annotations

import lzma
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import lkm.bulk
from lkm.cli.depmod import main as depmod
from lkm.closure import ClosureFirmware, ClosureModule, closure
from lkm.config import load_config
from lkm.depmod import cache as depmod_cache
from lkm.depmod.cache import CACHE_NAME
from lkm.moddir import ModuleDirectory
from lkm.system import System
from support.depmod_trees import module_elf, write_tree

RELEASE = "1.0.0"
FILES = {
    "kernel/net.ko": module_elf(
        imports=["phy_fn"], modinfo=["firmware=v/net.bin", "firmware=v/net.bin", "alias=pci:n*"]
    ),
    "kernel/phy.ko.xz": lzma.compress(
        module_elf(exports=["phy_fn"], imports=["core_fn"], modinfo=["firmware=v/phy.bin"])
    ),
    "kernel/core.ko": module_elf(exports=["core_fn"], modinfo=["firmware"]),
    "kernel/plain.ko": module_elf(),
    "modules.order": b"kernel/core.ko\nkernel/phy.ko.xz\nkernel/net.ko\nkernel/plain.ko\n",
    "modules.builtin": b"",
}


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The module files each closure reads (their names)."""
    seen: list[str] = []
    real = lkm.bulk.firmware_many

    def recording(paths: list[str], **options: object) -> object:
        seen.extend(os.path.basename(path) for path in paths)
        return real(paths, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(lkm.bulk, "firmware_many", recording)
    yield seen


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tree indexed by lkm's depmod with its cache (no racy window: the files are new)."""
    root = tmp_path / "root"
    write_tree(root, RELEASE, FILES)
    (root / "lib/firmware/v").mkdir(parents=True)
    (root / "lib/firmware/v/net.bin").write_bytes(b"n")
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "1")
    monkeypatch.setattr(depmod_cache, "RACY_NS", 0)
    assert depmod(["-b", str(root), RELEASE], system=System.under(str(root))) == 0
    assert (root / "lib/modules" / RELEASE / CACHE_NAME).is_file()
    return root


def run(root: Path, **options: bool) -> list[object]:
    moddir = ModuleDirectory(str(root / "lib/modules" / RELEASE))
    config = load_config([], module_dir=moddir.path, cmdline=None)
    with moddir:
        return closure(["net", "plain"], moddir, config, basedir=str(root), jobs=1, **options)


ALL = ["core.ko", "phy.ko.xz", "net.ko", "plain.ko"]


def test_unchanged_modules_are_not_read(indexed: Path, read: list[str]) -> None:
    every = run(indexed, depmod_cache=False)
    assert read == ALL
    read.clear()
    assert run(indexed) == every
    assert read == []
    modules = [(r.name, r.firmware) for r in every if isinstance(r, ClosureModule)]
    assert modules == [
        ("core", ("",)),
        ("phy", ("v/phy.bin",)),
        ("net", ("v/net.bin", "v/net.bin")),
        ("plain", ()),
    ]
    firmware = [(r.name, r.modules, r.path) for r in every if isinstance(r, ClosureFirmware)]
    net = str(indexed / "lib/firmware/v/net.bin")
    assert firmware == [("", ("core",), None), ("v/phy.bin", ("phy",), None),
                        ("v/net.bin", ("net",), net)]  # fmt: skip


def _replace(path: Path, data: bytes) -> None:
    spare = path.with_name(path.name + ".new")
    spare.write_bytes(data)
    os.rename(spare, path)


def test_a_module_changed_since_is_read(indexed: Path, read: list[str]) -> None:
    kernel = indexed / "lib/modules" / RELEASE / "kernel"
    # The same size, other firmware: only the file's identity tells.
    _replace(kernel / "net.ko", module_elf(imports=["phy_fn"],
             modinfo=["firmware=v/new.bin", "firmware=v/new.bin", "alias=pci:n*"]))  # fmt: skip
    os.utime(kernel / "plain.ko", ns=(1, 1))
    assert run(indexed) == run(indexed, depmod_cache=False)
    assert read[:2] == ["net.ko", "plain.ko"]
    (net,) = [r for r in run(indexed) if isinstance(r, ClosureModule) and r.name == "net"]
    assert net.firmware == ("v/new.bin", "v/new.bin")


def test_a_tree_indexed_elsewhere_is_served(indexed: Path, read: list[str]) -> None:
    """depmod run in a chroot, the closure computed from outside: other paths, same files."""
    moved = indexed.with_name("image")
    os.rename(indexed, moved)
    every = run(moved, depmod_cache=False)
    read.clear()
    assert run(moved) == every
    assert read == []


UNUSABLE = {
    "absent": lambda data: None,  # a tree kmod's depmod indexed
    "format": lambda data: data[:8] + struct.pack("<I", 1) + data[12:],
    "checksum": lambda data: data[:-1] + bytes([data[-1] ^ 1]),
    "truncated": lambda data: data[:100],
}


@pytest.mark.parametrize("case", UNUSABLE)
def test_without_a_usable_cache_every_module_is_read(
    case: str, indexed: Path, read: list[str]
) -> None:
    path = indexed / "lib/modules" / RELEASE / CACHE_NAME
    expected = run(indexed)
    damaged = UNUSABLE[case](path.read_bytes())
    if damaged is None:
        path.unlink()
    else:
        path.write_bytes(damaged)
    read.clear()
    assert run(indexed) == expected
    assert read == ALL
