"""Resolver on a hand-made module directory: lookup stages, probe order, removal, bad input."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.config import Config, parse_config
from lkm.errors import LkmError, NotFoundError
from lkm.moddir import ModuleDirectory
from lkm.resolve import ActionKind, PathError, Refusal, Resolver, Stage
from support.resolve_tree import FakeState, build


def resolver(tmp_path: Path, text: str = "") -> Resolver:
    return Resolver(build(tmp_path), parse_config(text, "t.conf"))


def test_lookup_stages_in_kmod_order(tmp_path: Path) -> None:
    r = resolver(tmp_path, "alias my* b\ninstall cmd-only /bin/true\n")
    assert [m.stage for m in r.lookup("mything")] == [Stage.CONFIG_ALIAS]
    assert r.resolve("d") == ("d",)
    assert r.lookup("a")[0].stage is Stage.MODULE
    assert r.resolve("symbol:c_fn") == ("c",)
    assert r.resolve("symbol:c-fn") == ("c",)  # normalised like any alias
    assert r.resolve("pci:v1234]") == ()  # no valid alias: looked up nowhere
    assert r.lookup("cmd-only")[0].stage is Stage.COMMAND
    assert r.resolve("pci:v1234") == ("a", "d")
    assert r.lookup("bi")[0].stage is Stage.BUILTIN
    assert r.resolve("bia") == ("bi",)
    assert r.resolve("nothing") == ()


def test_probe_order_softdeps_and_duplicates(tmp_path: Path) -> None:
    r = resolver(tmp_path, "softdep b pre: c\noptions a x=1\noptions b  y=2\n")
    actions = r.plan("a", extra_options="z=3")
    assert [(a.kind, a.name) for a in actions] == [
        (ActionKind.INSMOD, "c"),  # the modules.dep line is walked from its end
        (ActionKind.INSMOD, "c"),  # b's pre-softdep: a dependency can come twice, as in kmod
        (ActionKind.INSMOD, "b"),
        (ActionKind.INSMOD, "a"),
    ]
    assert actions[2].line() == f"insmod {tmp_path}/kernel/b.ko  y=2 \n"
    assert actions[-1].line() == f"insmod {tmp_path}/kernel/a.ko x=1 z=3\n"


def test_softdeps_disable_the_install_command(tmp_path: Path) -> None:
    r = resolver(tmp_path, "install b echo B\ninstall c echo C\nsoftdep b post: bi\n")
    kinds = [(a.kind, a.name) for a in r.plan("a")]
    assert kinds == [
        (ActionKind.INSTALL, "c"),
        (ActionKind.INSMOD, "b"),  # its softdep resolved, so its install command is ignored
        (ActionKind.BUILTIN, "bi"),
        (ActionKind.INSMOD, "a"),
    ]


def test_blacklist_only_through_aliases(tmp_path: Path) -> None:
    r = resolver(tmp_path, "blacklist a\n")
    assert [m.name for m in r.filter_blacklist(r.lookup("pci:v1"))] == ["d"]
    assert [m.name for m in r.filter_blacklist(r.lookup("a"))] == ["a"]
    assert r.filter_blacklist(r.lookup("a"), use_blacklist=True) == ()


def test_not_found_and_paths(tmp_path: Path) -> None:
    r = resolver(tmp_path)
    with pytest.raises(NotFoundError, match="Module nothing not found in directory"):
        r.plan("nothing")
    with pytest.raises(PathError, match=r"Failed to get module from path /no/such\.ko: No such"):
        r.lookup("/no/such.ko")
    # Names with / or .. are names, not files: they never leave the module directory.
    assert r.resolve("../kernel/a") == ()
    assert r.resolve("kernel/a.ko") == ()


def test_removal_order_and_refusals(tmp_path: Path) -> None:
    r = resolver(tmp_path, "softdep a pre: d post: c\n")
    state = FakeState({"a": 0, "b": 0, "c": 0, "d": 0})
    steps = r.removal(r.lookup("a")[0], state)
    assert [s.name for s in steps] == ["c", "a", "c", "b", "d"]
    busy = FakeState({"a": 1})
    assert r.removal(r.lookup("a")[0], busy)[-1] == Refusal("a", "Module a is in use.")
    assert r.removal(r.lookup("bi")[0], busy) == [Refusal("bi", "Module bi is builtin.")]


def test_corrupt_index_is_no_crash(tmp_path: Path) -> None:
    (tmp_path / "modules.alias.bin").write_bytes(b"\xb0\x07\xf4\x57garbage")
    r = Resolver(ModuleDirectory(str(tmp_path), strict=False), Config())
    assert r.resolve("pci:v1") == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=200))
def test_only_lkm_errors(tmp_path_factory: pytest.TempPathFactory, name: str, conf: str) -> None:
    r = Resolver(build(tmp_path_factory.mktemp("m")), parse_config(conf, "h.conf"))
    try:
        r.plan(name)
        r.removal(r.lookup(name)[0], FakeState({})) if r.lookup(name) else None
    except LkmError:
        pass


def test_open_says_when_the_module_directory_is_missing(tmp_path: Path) -> None:
    from lkm.errors import ModuleDirectoryError

    with pytest.raises(ModuleDirectoryError) as caught:
        Resolver.open(
            basedir=str(tmp_path), release="9.9", cmdline=None, config_paths=[str(tmp_path)]
        )
    assert caught.value.path == f"{tmp_path}/lib/modules/9.9"
    assert caught.value.errno == errno.ENOENT
    assert str(caught.value) == (
        f"module directory {tmp_path}/lib/modules/9.9: No such file or directory"
    )
    (tmp_path / "lib/modules").mkdir(parents=True)
    (tmp_path / "lib/modules/9.9").write_text("")
    with pytest.raises(ModuleDirectoryError, match=r"9\.9: Not a directory$"):
        Resolver.open(
            basedir=str(tmp_path), release="9.9", cmdline=None, config_paths=[str(tmp_path)]
        )
    (tmp_path / "lib/modules/9.9").unlink()
    (tmp_path / "lib/modules/9.9").mkdir()
    with Resolver.open(
        basedir=str(tmp_path), release="9.9", cmdline=None, config_paths=[str(tmp_path)]
    ) as found:
        assert found.resolve("x") == ()


def test_a_path_with_a_nul_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(PathError, match=r"^Failed to get module from path /\x00: No such file"):
        resolver(tmp_path).lookup("/\x00")
