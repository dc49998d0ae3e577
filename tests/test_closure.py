"""lkm closure on a hand-made tree: load order, reasons, soft and weak dependencies (cycles
included), built-ins, the kernel's firmware search order with symbolic links, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lkm.cli.closure import main
from lkm.closure import ClosureError, ClosureFirmware, ClosureModule, Reason, closure
from lkm.config import load_config
from lkm.index import write_index
from lkm.moddir import ModuleDirectory
from support.elfbuild import elf64, modinfo_section
from support.schemas import validate_output

RELEASE = "9.9"
MESSAGE = "{path}: xz stream is corrupt: Corrupt input data"
CONFIG = """\
softdep softa pre: softb
softdep softb post: softa missing_soft
softdep net pre: softa
weakdep net weak
"""
# name: (file, dependencies, firmware)
MODULES = {
    "net": ("kernel/net.ko", ("kernel/phy.ko", "kernel/core.ko"), ("v/a.bin", "v/b.bin") * 2),
    "phy": ("kernel/phy.ko", ("kernel/core.ko",), ("v/c.bin",)),
    "core": ("kernel/core.ko", (), ()),
    "softa": ("kernel/softa.ko", (), ("v/d.bin",)),
    "softb": ("kernel/softb.ko", (), ()),
    "weak": ("kernel/weak.ko", ("kernel/core.ko",), ("v/gone.bin",)),
    "globs": ("kernel/globs.ko", (), ("v/g*.bin", "v/none-*")),
    "broken": ("kernel/broken.ko.xz", (), ()),
}


def build(root: Path) -> Path:
    moddir = root / "lib/modules" / RELEASE
    for name, (path, _, firmware) in MODULES.items():
        file = moddir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if name == "broken":  # xz's magic, then nothing an xz stream can be
            file.write_bytes(b"\xfd7zXZ\0" + b"\x55" * 200)
            continue
        fields = [b"name=" + name.encode(), *(b"firmware=" + f.encode() for f in firmware)]
        file.write_bytes(elf64({".modinfo": modinfo_section(*fields)}))
    lines = [(n, f"{p}: {' '.join(d)}".rstrip(), 0) for n, (p, d, _) in MODULES.items()]
    (moddir / "modules.dep.bin").write_bytes(write_index(lines))
    (moddir / "modules.alias.bin").write_bytes(write_index([("pci:v1*", "net", 0)]))
    (moddir / "modules.builtin.bin").write_bytes(write_index([("bi", "", 0)]))
    (moddir / "modules.builtin.modinfo").write_bytes(b"bi.firmware=v/bi.fw\0bi.license=GPL\0")
    firmware = root / "lib/firmware"
    files = {
        "v/a.bin": b"a",  # plain here beats .zst in updates/: every directory plain first
        "updates/v/a.bin.zst": b"a",
        "v/b.bin.xz": b"b",  # .zst before .xz
        "updates/v/b.bin.zst": b"b",
        f"{RELEASE}/v/d.bin": b"d",  # updates/ before the release directory
        "updates/v/d.bin": b"d",
        "real/c.bin": b"c",
        "v/g1.bin": b"g",  # v/g*.bin: g1 from updates/ (the kernel's order), g2 compressed
        "updates/v/g1.bin": b"g",
        "v/g2.bin.xz": b"g",
        "v/g3.txt": b"g",
    }
    for name, data in files.items():
        (firmware / name).parent.mkdir(parents=True, exist_ok=True)
        (firmware / name).write_bytes(data)
    (firmware / "other").mkdir()
    os.symlink("../other/c-1.bin", firmware / "v/c.bin")  # relative, to an absolute one
    os.symlink("/lib/firmware/real/c.bin", firmware / "other/c-1.bin")
    (root / "modprobe.d").mkdir()
    (root / "modprobe.d/test.conf").write_text(CONFIG)
    return moddir


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    build(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the command line's cache
    return root


def run(root: Path, names: list[str], **kwargs: object) -> list[object]:
    moddir = ModuleDirectory(str(root / "lib/modules" / RELEASE))
    config = load_config([str(root / "modprobe.d")], module_dir=moddir.path, cmdline=None)
    return list(closure(names, moddir, config, basedir=str(root), jobs=1, **kwargs))  # type: ignore[arg-type]


def modules(records: list[object]) -> list[tuple[str, Reason, str | None]]:
    return [(r.name, r.reason, r.wanted_by) for r in records if isinstance(r, ClosureModule)]


def test_dependencies_come_first_in_modprobe_order(tree: Path) -> None:
    records = run(tree, ["pci:v1234"])
    assert modules(records) == [
        ("core", Reason.DEPENDENCY, "net"),
        ("phy", Reason.DEPENDENCY, "net"),
        ("net", Reason.REQUESTED, None),
    ]
    net = next(r for r in records if isinstance(r, ClosureModule) and r.name == "net")
    assert net.path == str(tree / "lib/modules/9.9/kernel/net.ko")
    assert net.firmware == ("v/a.bin", "v/b.bin", "v/a.bin", "v/b.bin")


def test_soft_and_weak_dependencies_when_asked_and_cycles_end(tree: Path) -> None:
    records = run(tree, ["net"], softdeps=True, weakdeps=True)
    assert modules(records) == [
        ("core", Reason.DEPENDENCY, "net"),
        ("phy", Reason.DEPENDENCY, "net"),
        # softa wants softb before it, softb wants softa after it: listed once each
        ("softb", Reason.SOFTDEP_PRE, "softa"),
        ("softa", Reason.SOFTDEP_PRE, "net"),
        ("net", Reason.REQUESTED, None),
        ("weak", Reason.WEAKDEP, "net"),
    ]
    names = [r.name for r in run(tree, ["softb"], softdeps=True) if isinstance(r, ClosureModule)]
    assert names == ["softb", "softa"]


def test_firmware_is_found_as_the_kernel_searches(tree: Path) -> None:
    fw = tree / "lib/firmware"
    records = run(tree, ["net", "bi", "weak"], softdeps=True, weakdeps=True)
    found = {r.name: r for r in records if isinstance(r, ClosureFirmware)}
    assert list(found) == ["v/c.bin", "v/d.bin", "v/a.bin", "v/b.bin", "v/gone.bin", "v/bi.fw"]
    assert found["v/a.bin"] == ClosureFirmware(
        "v/a.bin", ("net",), f"{fw}/v/a.bin", (), f"{fw}/v/a.bin"
    )
    assert found["v/b.bin"].path == f"{fw}/updates/v/b.bin.zst"
    assert found["v/d.bin"].path == f"{fw}/updates/v/d.bin"
    assert found["v/c.bin"] == ClosureFirmware(
        "v/c.bin",
        ("phy",),
        f"{fw}/v/c.bin",
        (f"{fw}/v/c.bin", f"{fw}/other/c-1.bin"),
        f"{fw}/real/c.bin",
    )
    assert found["v/gone.bin"] == ClosureFirmware("v/gone.bin", ("weak",), None, (), None)
    assert found["v/bi.fw"].modules == ("bi",) and found["v/bi.fw"].missing
    builtin = next(r for r in records if isinstance(r, ClosureModule) and r.name == "bi")
    assert builtin.builtin and builtin.path is None and builtin.firmware == ("v/bi.fw",)


def test_firmware_dirs_replace_the_kernels(tree: Path) -> None:
    only = str(tree / "lib/firmware/updates")
    records = run(tree, ["net"], firmware_dirs=[only])
    paths = {r.name: r.path for r in records if isinstance(r, ClosureFirmware)}
    assert paths == {
        "v/c.bin": None,
        "v/a.bin": f"{only}/v/a.bin.zst",
        "v/b.bin": f"{only}/v/b.bin.zst",
    }


def test_broken_module_is_one_error_and_the_rest_is_reported(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["-b", str(tree), "-k", RELEASE, "-C", str(tree / "modprobe.d")]
    assert main([*args, "broken", "phy"]) == 1
    out, err = capsysbinary.readouterr()
    path = tree / "lib/modules/9.9/kernel/broken.ko.xz"
    assert err.decode() == f"lkm closure: ERROR: broken: {MESSAGE.format(path=path)}\n"
    assert out.decode().splitlines() == [
        f"module broken {path} (requested)",
        f"module core {tree}/lib/modules/9.9/kernel/core.ko (dependency of phy)",
        f"module phy {tree}/lib/modules/9.9/kernel/phy.ko (requested)",
        f"firmware v/c.bin {tree}/lib/firmware/v/c.bin",
        f"  link {tree}/lib/firmware/other/c-1.bin",
        f"  target {tree}/lib/firmware/real/c.bin",
    ]


def test_unknown_module_is_an_error_record_and_exit_1(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["-b", str(tree), "-k", RELEASE, "-C", str(tree / "modprobe.d")]
    assert main([*args, "nosuch", "core"]) == 1
    out, err = capsysbinary.readouterr()
    assert err == b"lkm closure: ERROR: Module nosuch not found.\n"
    assert out == f"module core {tree}/lib/modules/9.9/kernel/core.ko (requested)\n".encode()
    assert main([*args, "--json", "nosuch", "core"]) == 1
    out, err = capsysbinary.readouterr()
    assert err == b""
    records = validate_output("closure", out)["records"]
    assert records[-1] == {"name": "nosuch", "error": "Module nosuch not found.", "kind": "error"}
    assert main([*args, "core"]) == 0


def test_json_validates_with_every_kind_of_record(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["-b", str(tree), "-k", RELEASE, "-C", str(tree / "modprobe.d"), "--json"]
    assert main([*args, "--softdeps", "--weakdeps", "net", "bi", "broken", "nosuch"]) == 1
    records = validate_output("closure", capsysbinary.readouterr()[0])["records"]
    assert {r["kind"] for r in records} == {"module", "firmware", "error"}
    kinds = [r["kind"] for r in records]
    assert kinds == sorted(kinds, key=["module", "firmware", "error"].index)


def test_missing_firmware_directory_is_an_error(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["-b", str(tree), "-k", RELEASE, "-C", str(tree / "modprobe.d")]
    assert main([*args, "--firmware-dir", str(tree / "nowhere"), "core"]) == 1
    err = capsysbinary.readouterr()[1]
    message = f"firmware directory {tree}/nowhere: No such file or directory"
    assert err.decode() == f"lkm closure: ERROR: {message}\n"
    records = run(tree, ["core"], firmware_dirs=[str(tree / "nowhere")])
    assert records[-1] == ClosureError(
        str(tree / "nowhere"), f"firmware directory {tree}/nowhere: No such file or directory"
    )


def test_a_symlink_loop_counts_as_missing(tree: Path) -> None:
    fw = tree / "lib/firmware"
    os.symlink("loop2", fw / "v/loop1")
    os.symlink("loop1", fw / "v/loop2")
    from lkm.closure import find_firmware

    assert find_firmware("v/loop1", [str(fw)], str(tree)).missing


def test_no_module_directory_is_one_error(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["-b", str(tmp_path), "-k", RELEASE, "core"]) == 1
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert err.count(b"\n") == 1 and err.startswith(b"lkm closure: ERROR: ")


def test_firmware_fields_are_kept_until_the_module_file_changes(tree: Path) -> None:
    import json

    cache_dir = tree.parent / "kept"
    net = tree / "lib/modules/9.9/kernel/net.ko"
    first = run(tree, ["net"], cache_dir=str(cache_dir))
    (cache_file,) = cache_dir.iterdir()
    document = json.loads(cache_file.read_text())
    assert document["entries"][str(net)][1] == ["v/a.bin", "v/b.bin", "v/a.bin", "v/b.bin"]
    # What is kept is what a second closure uses: changed in the cache, changed in the answer.
    document["entries"][str(net)][1] = ["kept.bin"]
    cache_file.write_text(json.dumps(document))
    kept = run(tree, ["net"], cache_dir=str(cache_dir))
    assert [r.name for r in kept if isinstance(r, ClosureFirmware)] == ["v/c.bin", "kept.bin"]
    # A module file written anew (or only touched) is read again.
    os.utime(net, ns=(1, 1))
    again = run(tree, ["net"], cache_dir=str(cache_dir))
    assert again == first
    # A cache that is no JSON counts as empty, and is written anew.
    cache_file.write_text("{")
    assert run(tree, ["net"], cache_dir=str(cache_dir)) == first
    assert json.loads(cache_file.read_text())["version"] == 1


def test_the_command_line_keeps_its_cache_in_xdg_cache_home(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["-b", str(tree), "-k", RELEASE, "-C", str(tree / "modprobe.d"), "net"]
    cache = tree.parent / "cache/lkm/firmware"
    assert main(["--no-cache", *args]) == 0
    assert not cache.exists()
    assert main(args) == 0
    assert len(list(cache.iterdir())) == 1
    out = capsysbinary.readouterr()[0]
    assert out.count(b"firmware v/a.bin ") == 2


def test_wildcard_firmware_stands_for_every_file_it_matches(tree: Path) -> None:
    fw = tree / "lib/firmware"
    records = [r for r in run(tree, ["globs"]) if isinstance(r, ClosureFirmware)]
    assert records == [
        ClosureFirmware(
            "v/g1.bin",
            ("globs",),
            f"{fw}/updates/v/g1.bin",
            (),
            f"{fw}/updates/v/g1.bin",
            "v/g*.bin",
        ),
        ClosureFirmware(
            "v/g2.bin", ("globs",), f"{fw}/v/g2.bin.xz", (), f"{fw}/v/g2.bin.xz", "v/g*.bin"
        ),
        ClosureFirmware("v/none-*", ("globs",), None, (), None, "v/none-*"),
    ]


def test_a_dependency_whose_file_is_gone_is_the_modules_error(tree: Path) -> None:
    core = tree / "lib/modules/9.9/kernel/core.ko"
    core.unlink()
    records = run(tree, ["phy"])
    # As kmod reads such a modules.dep line: the module has no dependencies at all.
    (phy,) = [r for r in records if isinstance(r, ClosureModule)]
    assert phy.name == "phy"
    assert phy.error == f"dependency {core}: No such file or directory"
    assert phy.firmware == ("v/c.bin",)
