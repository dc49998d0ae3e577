"""``lkm.modinfo``: the records modinfo renders, from the same small trees and files as the
recorded kmod cases (test_modinfo_cases.py checks the rendering against kmod 34)."""

from __future__ import annotations

import errno
from pathlib import Path

from lkm.errors import DecompressionError
from lkm.moddir import ModuleDirectory
from lkm.modinfo import ModuleRecord, NotFound, Param, Unreadable, collect_params, find
from support.modinfo_cases import CASES, GOOD, NO_MODINFO, PARAMS, materialise


def _moddir(tmp_path: Path) -> ModuleDirectory:
    materialise(CASES["tree-lookups"], tmp_path)
    return ModuleDirectory(str(tmp_path / "lib/modules/1.0-t"))


def test_a_module_found_by_name_alias_or_symbol(tmp_path: Path) -> None:
    moddir = _moddir(tmp_path)
    path = str(tmp_path / "lib/modules/1.0-t/kernel/good-mod.ko")
    for query in ("good-mod", "fs-good-x", "symbol:good-fn"):
        (record,) = find(query, moddir)
        assert record == ModuleRecord(
            query,
            "good_mod",
            path,
            (("license", "GPL"), ("description", "test module"), ("name", "good"),
             ("vermagic", "6.1 SMP ")),
            None,
            (),
        )  # fmt: skip
        assert isinstance(record, ModuleRecord) and not record.builtin
        assert record.signature_fields() == ()


def test_builtin_records(tmp_path: Path) -> None:
    moddir = _moddir(tmp_path)
    for query, by_name in (("blt", False), ("fs-blt", False), ("blt.ko", True)):
        (record,) = find(query, moddir, by_name=by_name)
        assert isinstance(record, ModuleRecord)
        assert (record.name, record.filename, record.builtin) == ("blt", None, True)
        assert record.fields == (("license", "GPL"), ("parmtype", "p:int"), ("alias", "fs-blt"))
        assert record.params == (Param("p", None, "int"),)


def test_not_found_says_what_the_query_was_taken_for(tmp_path: Path) -> None:
    moddir = _moddir(tmp_path)
    assert find("nothing", moddir) == [NotFound("nothing", "module")]
    assert find("a[b", moddir) == [NotFound("a[b", "alias")]
    assert find("good-mod]", moddir) == [NotFound("good-mod]", "alias")]
    assert NotFound("good-mod]", "alias").message == "Module alias good-mod] not found."
    assert find(".good-mod", moddir, by_name=True) == [NotFound(".good-mod", "name")]
    assert NotFound(".x", "name").message == "Module name .x not found."
    assert NotFound("x", "module").message == "Module x not found."


def test_files_by_path_unreadable_ones_and_filename_only(tmp_path: Path) -> None:
    moddir = _moddir(tmp_path)
    (tmp_path / "good.ko").write_bytes(GOOD)
    (tmp_path / "text.ko").write_bytes(b"not a module")
    (tmp_path / "nomodinfo.ko").write_bytes(NO_MODINFO)
    (tmp_path / "bad.ko.xz").write_bytes(b"\xfd7zXZ\x00junk")
    (record,) = find(str(tmp_path / "good.ko"), moddir)
    assert isinstance(record, ModuleRecord) and record.name == "good"
    (text,) = find(str(tmp_path / "text.ko"), moddir)
    assert isinstance(text, Unreadable)
    assert (text.name, text.filename, text.errno) == ("text", str(tmp_path / "text.ko"), 8)
    assert text.message == "could not get modinfo from 'text': Exec format error"
    (none,) = find(str(tmp_path / "nomodinfo.ko"), moddir)
    assert isinstance(none, Unreadable) and (none.errno, none.error) == (errno.ENODATA, None)
    assert none.message == "could not get modinfo from 'nomodinfo': No data available"
    (broken,) = find(str(tmp_path / "bad.ko.xz"), moddir)
    assert isinstance(broken, Unreadable) and isinstance(broken.error, DecompressionError)
    (unread,) = find(str(tmp_path / "text.ko"), moddir, read=False)
    assert unread == ModuleRecord(
        str(tmp_path / "text.ko"), "text", str(tmp_path / "text.ko"), (), None, ()
    )


def test_parameters_merge_newest_first_and_report_strings_without_colon() -> None:
    from lkm.module import ModuleFile

    params, problems = collect_params(ModuleFile.from_bytes(PARAMS).modinfo)
    assert tuple(p for p in params if p.name in ("a", "b", "c")) == (
        Param("c", "desc c", "bool"),
        Param("b", "desc b", "int"),
        Param("a", "second a", "charp"),
    )
    assert problems[:2] == (
        "Found invalid \"parm=nocolon\": missing ':'",
        "Found invalid \"parmtype=d\": missing ':'",
    )
