"""The python-kmod layer (``lkm.kmod``) on a hand-made system: types, values, loading, removal.

The module directory, configuration, ``/proc`` and ``/sys`` are built under tmp_path; the
kernel is a fake that records its calls, so nothing here touches the running kernel.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import struct
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkm import kmod
from lkm.index import write_index
from lkm.kmod.error import KmodError
from support.elfbuild import elf64, modinfo_section
from support.kernel import FakeKernel


def _versions(*entries: tuple[int, str]) -> bytes:
    return b"".join(struct.pack("<Q56s", crc, name.encode()) for crc, name in entries)


MODULES = {
    "a": (b"license=GPL", b"description=Module A", b"alias=pci:v1*", b"depends=b,c", b"parm=x:X"),
    "b": (b"license=GPL", b"description=first", b"description=second"),
    "c": (b"license=GPL",),
    "d": (b"license=GPL", b"alias=pci:v1*"),
}


class System:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.moddir = root / "lib/modules/1.0"
        self.conf = root / "etc/modprobe.d"
        self.proc = root / "proc"
        self.sys = root / "sys"
        self.commands: list[tuple[str, str]] = []
        self.kernel = FakeKernel()

    def kmod(self, **extra: object) -> kmod.Kmod:
        def run(command: str, module: str) -> int:
            self.commands.append((command, module))
            return 0

        return kmod.Kmod(
            str(self.moddir),
            config_paths=[str(self.conf)],
            cmdline=str(self.root / "cmdline"),
            procfs=str(self.proc),
            sysfs=str(self.sys),
            kernel=self.kernel,
            run_command=run,
            **extra,  # type: ignore[arg-type]
        )


@pytest.fixture
def system(tmp_path: Path) -> System:
    s = System(tmp_path)
    (s.moddir / "kernel").mkdir(parents=True)
    for name, info in MODULES.items():
        sections = {".modinfo": modinfo_section(*info)}
        if name == "a":
            sections["__versions"] = _versions((0x1234ABCD, "module_layout"), (7, "b_fn"))
        (s.moddir / f"kernel/{name}.ko").write_bytes(elf64(sections))
    deps = [
        ("a", "kernel/a.ko: kernel/c.ko kernel/b.ko", 0),
        ("b", "kernel/b.ko:", 1),
        ("c", "kernel/c.ko:", 2),
        ("d", "kernel/d.ko:", 3),
    ]
    (s.moddir / "modules.dep.bin").write_bytes(write_index(deps))
    aliases = [("pci:v1*", "a", 0), ("pci:v1*", "d", 3)]
    (s.moddir / "modules.alias.bin").write_bytes(write_index(aliases))
    (s.moddir / "modules.symbols.bin").write_bytes(write_index([("symbol:c_fn", "c", 2)]))
    (s.moddir / "modules.builtin.bin").write_bytes(write_index([("bi", "", 0)]))
    (s.moddir / "modules.builtin.modinfo").write_bytes(b"bi.license=GPL\0bi.file=x/bi\0")
    s.conf.mkdir(parents=True)
    (s.conf / "t.conf").write_text(
        "options a x=1\noptions pci:v1 y=2\ninstall c echo C $CMDLINE_OPTS\n"
        "remove c echo -C\nblacklist d\n"
    )
    (s.root / "cmdline").write_text("a.z=3\n")
    s.proc.mkdir()
    (s.proc / "modules").write_text("b 16384 1 a, Live 0x0\nzz 8192 0 - Live 0x0\n")
    b = s.sys / "module/b"
    (b / "holders/a").mkdir(parents=True)
    (b / "initstate").write_text("live\n")
    (b / "refcnt").write_text("1\n")
    (b / "coresize").write_text("20480\n")
    (s.sys / "module/zz").mkdir()
    (s.sys / "module/zz/initstate").write_text("live\n")
    (s.sys / "module/zz/refcnt").write_text("0\n")
    return s


def test_lookup_gives_modules_like_python_kmod(system: System) -> None:
    km = system.kmod()
    found = km.lookup("pci:v1234")
    assert isinstance(found, types.GeneratorType)
    modules = list(found)
    assert [m.name for m in modules] == ["a", "d"]  # no blacklist in lookup, as in libkmod
    assert [m.name for m in km.lookup(b"symbol:c_fn")] == ["c"]
    assert list(km.lookup("nothing")) == []
    # A file name is a name here: it never reaches a file.
    assert list(km.lookup(str(system.moddir / "kernel/a.ko"))) == []


def test_module_properties_types_and_values(system: System) -> None:
    km = system.kmod()
    a = km.module_from_name("a")
    assert a.name == "a"
    assert a.path == f"{system.moddir}/kernel/a.ko"
    assert a.options == "x=1 z=3"  # configuration, then the kernel command line
    via_alias = next(km.lookup("pci:v1"))
    assert via_alias.options == "x=1 y=2 z=3"  # those given for the alias it was found by too
    assert km.module_from_name("b").options is None
    c = km.module_from_name("c")
    assert c.install_commands == "echo C $CMDLINE_OPTS"
    assert c.remove_commands == "echo -C"
    assert a.install_commands is None and a.remove_commands is None
    info = a.info
    assert type(info) is collections.OrderedDict
    assert list(info.items()) == [
        ("license", "GPL"),
        ("description", "Module A"),
        ("alias", "pci:v1*"),
        ("depends", "b,c"),
        ("parm", "x:X"),
    ]
    assert list(km.module_from_name("b").info.items()) == [
        ("license", "GPL"),
        ("description", "second"),  # a repeated key keeps its place, takes the last value
    ]
    versions = a.versions
    assert isinstance(versions, types.GeneratorType)
    assert list(versions) == [
        {"symbol": "module_layout", "crc": 0x1234ABCD},
        {"symbol": "b_fn", "crc": 7},
    ]
    assert list(km.module_from_name("bi").info.items()) == [("license", "GPL"), ("file", "x/bi")]
    assert km.module_from_name("my-mod").name == "my_mod"


def test_missing_things_raise_kmod_errors(system: System) -> None:
    km = system.kmod()
    ghost = km.module_from_name("ghost")
    assert ghost.path is None
    with pytest.raises(KmodError, match=r"^Could not get info$"):
        _ = ghost.info
    with pytest.raises(KmodError, match=r"^Could not get versions$"):
        list(ghost.versions)
    with pytest.raises(KmodError, match=r"^Could not get module$"):
        km.module_from_name("")
    assert issubclass(KmodError, Exception) and kmod.KmodError is KmodError


def test_loaded_refcnt_size_and_list(system: System) -> None:
    km = system.kmod()
    loaded = km.loaded()
    assert isinstance(loaded, types.GeneratorType)
    assert [(m.name, m.refcnt, m.size) for m in loaded] == [("b", 1, 20480), ("zz", 0, 8192)]
    assert list(km.list()) == [("b", 20480), ("zz", 8192)]
    ghost = km.module_from_name("a")
    assert (ghost.refcnt, ghost.size) == (-errno.ENOENT, -errno.ENOENT)
    (system.proc / "modules").unlink()
    with pytest.raises(KmodError, match=r"^Could not get loaded modules$"):
        list(km.loaded())


def test_modprobe_loads_dependencies_then_the_module(system: System) -> None:
    km = system.kmod()
    km.modprobe("a", extra_options="w=4")
    # b is loaded already; c has an install command; a gets config, cmdline and extra options.
    assert system.commands == [("echo C ", "c")]
    assert system.kernel.calls == [("finit_module", "a", "x=1 z=3 w=4", 0)]


def test_modprobe_through_an_alias_applies_flags(system: System) -> None:
    km = system.kmod()
    km.modprobe("pci:v1", False, kmod.KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY)
    loaded = [call[1] for call in system.kernel.calls]
    assert loaded == ["a"]  # d is blacklisted and was found through an alias
    system.kernel.calls.clear()
    system.commands.clear()
    km.modprobe("d", flags=kmod.KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY)
    assert [call[1] for call in system.kernel.calls] == ["d"]
    system.kernel.calls.clear()
    km.modprobe("d", flags=kmod.KMOD_PROBE_APPLY_BLACKLIST)
    km.modprobe("a", flags=kmod.KMOD_PROBE_DRY_RUN | kmod.KMOD_PROBE_IGNORE_COMMAND)
    assert system.kernel.calls == [] and system.commands == []


def test_modprobe_errors(system: System) -> None:
    km = system.kmod()
    with pytest.raises(KmodError, match=r"^Could not modprobe nothing$"):
        km.modprobe("nothing")
    km.modprobe("nothing", quiet=True)
    km.modprobe("b")  # already loaded: nothing to do
    with pytest.raises(KmodError, match=r"^Module already loaded$"):
        km.modprobe("b", flags=kmod.KMOD_PROBE_FAIL_ON_LOADED)
    system.kernel.fail["d"] = errno.ENOEXEC
    with pytest.raises(KmodError, match=r"^Could not load module$"):
        km.modprobe("d")
    system.kernel.fail["d"] = errno.EEXIST  # loaded meanwhile by someone else: fine
    km.modprobe("d")
    with pytest.raises(KmodError, match=r"^Module already loaded$"):
        km.modprobe("d", flags=kmod.KMOD_PROBE_FAIL_ON_LOADED)


def test_rmmod(system: System) -> None:
    km = system.kmod()
    km.rmmod("b")
    km.rmmod(b"zz", os.O_TRUNC)
    assert system.kernel.calls == [
        ("delete_module", "b", str(os.O_NONBLOCK), os.O_NONBLOCK),
        ("delete_module", "zz", str(os.O_NONBLOCK | os.O_TRUNC), os.O_NONBLOCK | os.O_TRUNC),
    ]
    system.kernel.fail["b"] = errno.EBUSY
    with pytest.raises(KmodError, match=r"^Could not remove module$"):
        km.rmmod("b")


def test_set_mod_dir_reads_another_tree(system: System, tmp_path: Path) -> None:
    km = system.kmod()
    other = tmp_path / "other"
    other.mkdir()
    (other / "modules.dep.bin").write_bytes(write_index([("e", "e.ko:", 0)]))
    km.set_mod_dir(mod_dir=str(other).encode())
    assert km.mod_dir == str(other).encode()
    assert km.module_from_name("e").path == f"{other}/e.ko"
    assert km.module_from_name("a").path is None


SCRIPT = """
import kmod
from kmod.error import KmodError

def report(mod_dir):
    km = kmod.Kmod(mod_dir)
    out = []
    for mod in km.lookup("pci:v1234"):
        out.append((mod.name, mod.path, dict(mod.info).get("license")))
    mod = km.module_from_name("a")
    out.append([(v["symbol"], hex(v["crc"])) for v in mod.versions])
    try:
        km.modprobe("no-such-module")
    except KmodError as err:
        out.append(str(err))
    km.modprobe("a", False, 0x10)  # KMOD_PROBE_DRY_RUN: nothing is loaded
    return out
"""


def test_a_python_kmod_script_runs_after_swapping_the_import(system: System) -> None:
    source = SCRIPT.replace("import kmod\n", "import lkm.kmod as kmod\n").replace(
        "from kmod.error", "from lkm.kmod.error"
    )
    assert source.count("lkm") == 2  # the only change
    namespace: dict[str, object] = {}
    exec(compile(source, "python_kmod_script", "exec"), namespace)
    report = namespace["report"]
    assert callable(report)
    assert report(str(system.moddir)) == [
        ("a", f"{system.moddir}/kernel/a.ko", "GPL"),
        ("d", f"{system.moddir}/kernel/d.ko", "GPL"),
        [("module_layout", "0x1234abcd"), ("b_fn", "0x7")],
        "Could not modprobe no-such-module",
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=24), st.integers(0, 0x7FFFF))
def test_only_kmod_errors(system: System, name: str, flags: int) -> None:
    """Any name and any flags: results, or KmodError; never anything else."""
    km = system.kmod()
    flags |= kmod.KMOD_PROBE_DRY_RUN
    for call in (
        lambda: [(m.name, m.path, m.options, m.refcnt, m.size) for m in km.lookup(name)],
        lambda: km.module_from_name(name).info,
        lambda: list(km.module_from_name(name).versions),
        lambda: km.modprobe(name, False, flags),
    ):
        with contextlib.suppress(KmodError):
            call()
    assert system.kernel.calls == []


@pytest.mark.parametrize(
    ("files", "loads"),
    [
        ({}, True),  # a /sys/module directory alone: a built-in module with parameters
        ({"parameters/p": "1\n"}, True),
        ({"initstate": "coming\n"}, True),
        ({"initstate": "going\n"}, True),
        ({"initstate": "live\n"}, False),
    ],
)
def test_insert_takes_only_a_live_module_as_loaded(
    system: System, files: dict[str, str], loads: bool
) -> None:
    """kmod 34's probe skips a module only when it is live (or in modules.builtin)."""
    d = system.sys / "module/d"
    d.mkdir(parents=True)
    for relative, text in files.items():
        (d / relative).parent.mkdir(parents=True, exist_ok=True)
        (d / relative).write_text(text)
    km = system.kmod()
    if loads:
        km.modprobe("d", flags=kmod.KMOD_PROBE_FAIL_ON_LOADED)
        assert system.kernel.calls == [("finit_module", "d", "", 0)]
    else:
        with pytest.raises(KmodError, match=r"^Module already loaded$"):
            km.modprobe("d", flags=kmod.KMOD_PROBE_FAIL_ON_LOADED)
        assert system.kernel.calls == []
