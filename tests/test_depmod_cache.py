"""depmod's module cache: a run with it writes what a full run writes, and a cache file that
cannot be trusted is set aside with one line, whatever is wrong with it."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import lkm.depmod
from lkm.cli.depmod import main
from lkm.depmod import cache as depmod_cache
from lkm.depmod.cache import (
    CACHE_NAME,
    Cache,
    file_identity,
    load,
    load_firmware,
    serialize,
    writer_name,
)
from lkm.system import System
from support.depmod_trees import OUTPUTS, module_elf, write_tree

RELEASE = "1.0.0"


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The module files each run reads (their names), and the cache turned on with no racy
    window: these trees are made a moment before the runs."""
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "1")
    monkeypatch.setattr(depmod_cache, "RACY_NS", 0)
    seen: list[str] = []
    real = lkm.depmod.scan_modules

    def recording(
        paths: list[str], jobs: int | None = None, handoff: object = None, meanwhile: object = None
    ) -> object:
        seen.extend(os.path.basename(path) for path in paths)
        return real(paths, jobs, handoff, meanwhile)  # type: ignore[arg-type]

    monkeypatch.setattr(lkm.depmod, "scan_modules", recording)
    yield seen


def _tree(base: Path) -> Path:
    return write_tree(
        base,
        RELEASE,
        {
            "kernel/a.ko": module_elf(exports=["a_fn"], export_crcs={"a_fn": 7}),
            "kernel/b.ko": module_elf(
                imports=["a_fn"], import_crcs={"a_fn": 7}, modinfo=["alias=pci:b*"]
            ),
            "kernel/c.ko": module_elf(imports=["b_fn"], modinfo=["softdep=pre: a"]),
            "kernel/d.ko": module_elf(exports=["b_fn"], modinfo=["weakdep=c"]),
            "modules.order": b"kernel/d.ko\nkernel/a.ko\n",
            "modules.builtin": b"kernel/x.ko\n",
            "modules.builtin.modinfo": b"x.alias=x-alias\0",
        },
    )


def _run(base: Path, capsys: pytest.CaptureFixture[str], *options: str,
         files: tuple[str, ...] = ()) -> str:  # fmt: skip
    """A depmod run on ``base``; its stderr (stdout must stay empty)."""
    args = [*options, "-b", str(base), RELEASE, *files]
    status = main(args, system=System.under(str(base)))
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out == ""
    return err


def _outputs(moddir: Path) -> dict[str, bytes]:
    return {name: (moddir / name).read_bytes() for name in OUTPUTS}


def _full_run(base: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              moddir: Path) -> dict[str, bytes]:  # fmt: skip
    """What a run without the cache writes for the same tree (into another directory)."""
    out = base.parent / (base.name + "-full")
    shutil.rmtree(out, ignore_errors=True)
    with monkeypatch.context() as patch:
        patch.setenv("LKM_DEPMOD_CACHE", "0")
        err = _run(base, capsys, "-o", str(out))
    assert err == ""
    written = out / moddir.relative_to(base)
    assert not (written / CACHE_NAME).exists()
    return _outputs(written)


def test_second_run_reads_only_what_changed(
    tmp_path: Path,
    scanned: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moddir = _tree(tmp_path / "t")
    assert _run(tmp_path / "t", capsys) == ""
    assert sorted(scanned) == ["a.ko", "b.ko", "c.ko", "d.ko"]
    assert sorted(os.path.basename(p) for p in load(str(moddir / CACHE_NAME)).entries) == [
        "a.ko", "b.ko", "c.ko", "d.ko"]  # fmt: skip
    scanned.clear()
    written = (moddir / CACHE_NAME).stat()
    assert _run(tmp_path / "t", capsys) == ""
    assert scanned == []
    # Nothing changed: the cache file is left as it was, not written again.
    now = (moddir / CACHE_NAME).stat()
    assert (now.st_ino, now.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    # One changed (new imports), one added, one removed.
    (moddir / "kernel/b.ko").write_bytes(module_elf(imports=["a_fn", "b_fn"]))
    (moddir / "kernel/e.ko").write_bytes(module_elf(imports=["a_fn"], modinfo=["alias=e"]))
    (moddir / "kernel/c.ko").unlink()
    assert _run(tmp_path / "t", capsys) == ""
    assert sorted(scanned) == ["b.ko", "e.ko"]
    assert _outputs(moddir) == _full_run(tmp_path / "t", capsys, monkeypatch, moddir)
    assert b"kernel/b.ko: kernel/d.ko kernel/a.ko" in _outputs(moddir)["modules.dep"]
    # The removed module's entry is gone from the cache.
    assert sorted(os.path.basename(p) for p in load(str(moddir / CACHE_NAME)).entries) == [
        "a.ko", "b.ko", "d.ko", "e.ko"]  # fmt: skip


def _rewrite(path: Path, data: bytes, *, same_inode: bool) -> None:
    """New contents of the same size and the old mtime: only the inode (or ctime) tells."""
    before = path.stat()
    if same_inode:
        path.write_bytes(data)
    else:
        spare = path.with_suffix(".new")
        spare.write_bytes(data)
        os.rename(spare, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert (after.st_ino == before.st_ino) == same_inode


@pytest.mark.parametrize("same_inode", [True, False], ids=["ctime", "inode"])
def test_same_size_and_mtime_is_still_a_change(
    tmp_path: Path,
    scanned: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    same_inode: bool,
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    scanned.clear()
    # Same size: another alias of the same length.
    _rewrite(moddir / "kernel/b.ko", module_elf(imports=["a_fn"], import_crcs={"a_fn": 7},
             modinfo=["alias=pci:x*"]), same_inode=same_inode)  # fmt: skip
    # A changed module is the ordinary case: no line about it.
    assert _run(tmp_path / "t", capsys) == ""
    assert scanned == ["b.ko"]
    assert b"alias pci:x* b" in _outputs(moddir)["modules.alias"]
    assert _outputs(moddir) == _full_run(tmp_path / "t", capsys, monkeypatch, moddir)


def test_touched_module_is_read_again(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    scanned.clear()
    os.utime(moddir / "kernel/c.ko", ns=(0, 10**18))
    assert _run(tmp_path / "t", capsys) == ""
    assert scanned == ["c.ko"]


def _reseal(data: bytes) -> bytes:
    return data[:-32] + hashlib.sha256(data[:-32]).digest()


def _foreign_writer(data: bytes) -> bytes:
    size = data[13]
    name = b"lkm 0.0.1 scanner 0000000000000000"
    return _reseal(data[:13] + bytes([len(name)]) + name + data[14 + size :])


BAD_CACHES = {
    "not-a-cache": (lambda d: b"GARBAGE!" + d[8:], "not an lkm depmod cache"),
    "empty": (lambda d: b"", "truncated (0 bytes)"),
    "truncated": (lambda d: d[:-100], "truncated ({n} bytes of {whole})"),
    "trailing": (lambda d: d + b"\0", "1 bytes after its end"),
    "checksum": (lambda d: d[:-40] + bytes([d[-40] ^ 1]) + d[-39:], "checksum mismatch"),
    "format": (lambda d: _reseal(d[:8] + struct.pack("<I", 1) + d[12:]),
               "format 1, this lkm reads format 3"),
    "byte-order": (lambda d: _reseal(d[:12] + (b"b" if d[12:13] == b"l" else b"l") + d[13:]),
                   "written on a {other} system"),
    "lkm-version": (_foreign_writer,
                    "written by lkm 0.0.1 scanner 0000000000000000, this is {writer}"),
    "payload": (lambda d: _reseal(d[:-60] + b"\x00" * 28 + d[-32:]), "unreadable payload"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_CACHES)
def test_untrusted_cache_means_a_full_run_and_one_line(
    case: str,
    tmp_path: Path,
    scanned: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    path = moddir / CACHE_NAME
    good = path.read_bytes()
    damage, reason = BAD_CACHES[case]
    bad = damage(good)
    path.write_bytes(bad)
    scanned.clear()
    err = _run(tmp_path / "t", capsys)
    reason = reason.format(
        n=len(bad),
        whole=len(good),
        other="big-endian" if good[12:13] == b"l" else "little-endian",
        writer=writer_name(),
    )
    if case == "payload":
        assert err.startswith(f"depmod: WARNING: ignoring the module cache {path} ({reason} (")
        assert err.endswith("): reading every module\n") and err.count("\n") == 1
    else:
        assert err == f"depmod: WARNING: ignoring the module cache {path} ({reason}): " \
            "reading every module\n"  # fmt: skip
    assert sorted(scanned) == ["a.ko", "b.ko", "c.ko", "d.ko"]
    assert _outputs(moddir) == _full_run(tmp_path / "t", capsys, monkeypatch, moddir)
    # The run wrote a good cache again: the next one is silent and reads nothing.
    scanned.clear()
    assert _run(tmp_path / "t", capsys) == ""
    assert scanned == []


def test_unreadable_cache_file(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    moddir = _tree(tmp_path / "t")
    (moddir / CACHE_NAME).mkdir()
    err = _run(tmp_path / "t", capsys)
    assert err == f"depmod: WARNING: ignoring the module cache {moddir / CACHE_NAME} " \
        "(Is a directory): reading every module\n"  # fmt: skip
    assert len(scanned) == 4


def test_turned_off_by_the_environment(
    tmp_path: Path,
    scanned: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moddir = _tree(tmp_path / "t")
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "0")
    _run(tmp_path / "t", capsys)
    assert not (moddir / CACHE_NAME).exists()
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "1")
    _run(tmp_path / "t", capsys)
    monkeypatch.setenv("LKM_DEPMOD_CACHE", "off")
    scanned.clear()
    (moddir / CACHE_NAME).write_bytes(b"junk")  # not even looked at
    assert _run(tmp_path / "t", capsys) == ""
    assert len(scanned) == 4
    assert (moddir / CACHE_NAME).read_bytes() == b"junk"


def test_dry_run_reads_the_cache_and_writes_nothing(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    os.utime(moddir / "kernel/a.ko", ns=(0, 10**18))
    before = (moddir / CACHE_NAME).read_bytes()
    scanned.clear()
    status = main(["-n", "-b", str(tmp_path / "t"), RELEASE], system=System.under(str(tmp_path)))
    assert status == 0
    assert scanned == ["a.ko"]
    assert (moddir / CACHE_NAME).read_bytes() == before


def test_named_files_neither_read_nor_write_it(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    before = (moddir / CACHE_NAME).read_bytes()
    scanned.clear()
    _run(tmp_path / "t", capsys, files=(str(moddir / "kernel/a.ko"), str(moddir / "kernel/b.ko")))
    assert sorted(scanned) == ["a.ko", "b.ko"]
    assert (moddir / CACHE_NAME).read_bytes() == before


def test_output_directory_holds_it(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys, "-o", str(tmp_path / "o"))
    assert (tmp_path / "o/lib/modules" / RELEASE / CACHE_NAME).is_file()
    assert not [p for p in os.listdir(tmp_path / "o/lib/modules" / RELEASE) if "tmp" in p]
    assert not (moddir / CACHE_NAME).exists()


def test_files_changed_a_moment_ago_are_not_stored(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A file changed within the clock tick of its last change keeps its identity: stored only
    once its change is older than RACY_NS."""
    monkeypatch.setattr(depmod_cache, "RACY_NS", 3600 * 10**9)
    moddir = _tree(tmp_path / "t")
    _run(tmp_path / "t", capsys)
    assert load(str(moddir / CACHE_NAME)).entries == {}


def _sealed(payload: bytes) -> bytes:
    """A well-made cache file (this lkm's, checksum right) holding ``payload``."""
    empty = pickle.dumps({}, pickle.HIGHEST_PROTOCOL)
    data = serialize(Cache(), writer_name(), 0)
    head = data[: -32 - 8 - 2 * len(empty)]  # an empty cache: two empty tables
    forged = head + struct.pack("<Q", len(payload)) + payload
    return forged + hashlib.sha256(forged).digest()


def test_cache_of_builtin_types_only() -> None:
    """The unpickler refuses classes: a cache cannot make the run build any object."""
    evil = pickle.dumps({"x": (os.stat_result((0,) * 10), ())})
    for forged in (_sealed(evil), _sealed(pickle.dumps({}) + evil)):
        with pytest.raises(
            depmod_cache.CacheError, match=r"unreadable payload \(class os\.stat_result"
        ):
            depmod_cache.parse(forged, writer_name())


BAD_FIRMWARE_TABLES = {
    "not-a-table": ([], "unreadable payload (no firmware table)"),
    "identity": ({(1, 2, 3): ()}, "unreadable payload (bad firmware entry for (1, 2, 3))"),
    "name": ({(1, 2, 3, 4, 5): ("x.bin",)},
             "unreadable payload (bad firmware entry for (1, 2, 3, 4, 5))"),
    "names": ({(1, 2, 3, 4, 5): [b"x.bin"]},
              "unreadable payload (bad firmware entry for (1, 2, 3, 4, 5))"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FIRMWARE_TABLES)
def test_bad_firmware_table(case: str, tmp_path: Path) -> None:
    table, message = BAD_FIRMWARE_TABLES[case]
    path = tmp_path / CACHE_NAME
    path.write_bytes(_sealed(pickle.dumps(table) + pickle.dumps({})))
    with pytest.raises(depmod_cache.CacheError) as caught:
        load_firmware(str(path))
    assert str(caught.value) == message


def test_firmware_table_holds_each_modules_firmware_fields(
    tmp_path: Path, scanned: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Under each file's identity, as modinfo shows them: a string without ``=`` is the key
    with an empty value (``alias`` and the others need the ``=``, as for kmod)."""
    files = {
        "kernel/a.ko": module_elf(modinfo=["firmware=a/1.bin", "alias=x", "firmware=a/0.bin"]),
        "kernel/b.ko": module_elf(modinfo=["firmware", "alias", "firmwares=no"]),
        "kernel/c.ko": module_elf(),
    }
    moddir = write_tree(tmp_path / "t", RELEASE, files)
    _run(tmp_path / "t", capsys)
    table = load_firmware(str(moddir / CACHE_NAME))
    assert table == {
        file_identity(str(moddir / "kernel/a.ko")): (b"a/1.bin", b"a/0.bin"),
        file_identity(str(moddir / "kernel/b.ko")): (b"",),
        file_identity(str(moddir / "kernel/c.ko")): (),
    }
    assert (moddir / "modules.alias").read_bytes().splitlines()[1:] == [b"alias x a"]


def test_name_goes_with_a_debian_kernel_packages_purge() -> None:
    """Debian's linux-image postrm, on purge, removes modules.dep, ... and ``modules.*.bin``."""
    from fnmatch import fnmatchcase

    assert fnmatchcase(CACHE_NAME, "modules.*.bin")
    assert fnmatchcase(f"modules.lkm-cache-{os.getpid()}.tmp.bin", "modules.*.bin")
