"""Names holding ``/`` or ``..`` never make the resolver open a file outside the module
directory and the configuration; only explicit paths (``/...``, ``./...``) are files.

Every file access of lookups, plans, removals and module information is recorded.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.config import parse_config
from lkm.errors import LkmError
from lkm.resolve import PathError, Resolver
from support.resolve_tree import DEP, FakeState, build

NAMES = [
    "../../../../etc/passwd",
    "kernel/a.ko",
    "kernel/../../a",
    "a/../b",
    "symbol:../../c_fn",
    "pci:v1/../..",
    "..",
    "../",
    "a\0b",
]


class Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_open, real_os_open, real_stat = builtins.open, os.open, os.stat

        def record(path: object) -> None:
            if isinstance(path, (str, bytes, os.PathLike)):
                self.paths.append(os.fsdecode(path))

        def opener(file: object, *args: object, **kwargs: object) -> object:
            record(file)
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        def os_opener(path: object, *args: object, **kwargs: object) -> int:
            record(path)
            return real_os_open(path, *args, **kwargs)  # type: ignore[arg-type]

        def stater(path: object, *args: object, **kwargs: object) -> os.stat_result:
            record(path)
            return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(os, "open", os_opener)
        monkeypatch.setattr(os, "stat", stater)


def _index_or_listed(path: str, inside: str) -> bool:
    relative = path.removeprefix(inside)
    listed = {p for p, _ in DEP.values()}
    return path.startswith(inside) and (relative.startswith("modules.") or relative in listed)


def _exercise(resolver: Resolver, name: str) -> None:
    try:
        matches = resolver.lookup(name)
        resolver.info(name)
        for match in matches:
            resolver.probe(match)
            resolver.removal(match, FakeState({"a": 0, "b": 0}))
    except LkmError:
        pass


def test_odd_names_stay_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m").mkdir()
    moddir = build(tmp_path / "m")
    resolver = Resolver(moddir, parse_config("alias x* a\nsoftdep a pre: ../b\n", "t.conf"))
    recorder = Recorder(monkeypatch)
    for name in NAMES:
        _exercise(resolver, name)
    assert recorder.paths, "the indexes are read through open()"
    inside = str(tmp_path / "m") + "/"
    assert [p for p in recorder.paths if not p.startswith(inside)] == []
    # The indexes, and the module files of modules.dep lines (kmod checks they exist).
    assert all(_index_or_listed(p, inside) for p in recorder.paths)


def test_explicit_paths_are_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m").mkdir()
    resolver = Resolver(build(tmp_path / "m"), parse_config("", "t.conf"))
    recorder = Recorder(monkeypatch)
    with pytest.raises(PathError, match=r"^Failed to get module from path /no/x\.ko: No such"):
        resolver.lookup("/no/x.ko")
    assert recorder.paths == ["/no/x.ko"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab./:*?[]-_", max_size=20).filter(lambda s: not s.startswith(("/", "./"))))
def test_any_name_stays_inside(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    root = tmp_path_factory.mktemp("m")
    resolver = Resolver(build(root), parse_config("", "t.conf"))
    resolver.moddir.index("modules.dep.bin")
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder = Recorder(monkeypatch)
        _exercise(resolver, name)
    assert all(_index_or_listed(p, f"{root}/") for p in recorder.paths)
