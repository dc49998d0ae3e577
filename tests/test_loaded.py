"""``lkm loaded``: the loaded modules of fake /proc and /sys trees, as records and as a tree,
compared with what lsmod (lkm's, and kmod 34's) shows of the same trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkm.cli import loaded as cli
from lkm.cli import lsmod
from lkm.loaded import LoadedModule, TreeNode, loaded, tree
from lkm.system import System
from support import kernel_cases
from support.kernel_cases import Case, materialise, module_state
from support.schemas import validate_output


def _with_holders(name: str, holders: tuple[str, ...]) -> tuple[str, ...]:
    return (f"{name}/holders", *(f"{name}/holders/{h}" for h in holders))


# A machine's worth of modules: a chain (nfsd uses lockd uses grace and sunrpc; nfsd uses
# sunrpc too), a pair (vfat uses fat), a tainted module nobody uses, two modules holding each
# other (only odd sysfs trees have that) and a module built into the kernel with parameters,
# which has a /sys/module directory but is not loaded.
HOLDERS = {
    "vfat": (), "fat": ("vfat",), "nfsd": (), "lockd": ("nfsd",), "grace": ("lockd",),
    "sunrpc": ("nfsd", "lockd"), "mine": (), "cyca": ("cycb",), "cycb": ("cyca",),
}  # fmt: skip
TREE_PROC = (
    b"vfat 24576 0 - Live 0xffffffffc0a00000\n"
    b"fat 98304 1 vfat, Live 0xffffffffc0a10000\n"
    b"nfsd 200000 0 - Live 0x0\n"
    b"lockd 131072 1 nfsd, Live 0x0\n"
    b"grace 16384 1 lockd, Live 0x0\n"
    b"sunrpc 700000 2 nfsd,lockd, Live 0x0\n"
    b"mine 4096 0 - Live 0x0 (OE)\n"
    b"cyca 4096 1 cycb, Live 0x0\n"
    b"cycb 8192 1 cyca, Loading 0x0\n"
)
TREE_SYS = {
    **module_state("vfat", size="20480"),
    **module_state("fat", refcnt="1", size="90112"),
    **module_state("nfsd", size="196608"),
    **module_state("lockd", refcnt="1", size="126976"),
    **module_state("grace", refcnt="1", size="12288"),
    **module_state("sunrpc", refcnt="2", size="692224"),
    **module_state("mine", size="4096"),
    "mine/taint": b"OE\n",
    **module_state("cyca", refcnt="1", size="4096"),
    **module_state("cycb", refcnt="1", size="8192", state="coming"),
    "unix/parameters/x": b"1\n",
}
TREE_DIRS = tuple(d for name, held in HOLDERS.items() for d in _with_holders(name, held))
TREE_CASE = Case("lsmod", [], TREE_PROC, TREE_SYS, TREE_DIRS)


def _system(where: Path) -> System:
    return System(procfs=str(where / "proc"), sysfs=str(where / "sys"), cmdline=None)


def _made(tmp_path: Path, case: Case = TREE_CASE) -> Path:
    where = tmp_path / "case"
    materialise(case, where)
    return where


def _lsmod_rows(stdout: str) -> dict[str, tuple[int, int, tuple[str, ...]]]:
    """lsmod's rows by name: size, use count and holders (sorted: lsmod lists them in the
    order of the directory)."""
    lines = stdout.splitlines()
    assert lines[0] == lsmod.HEADER.rstrip("\n")
    rows = {}
    for line in lines[1:]:
        name, size, count, *holders = line.split()
        rows[name] = (
            int(size),
            int(count),
            tuple(sorted(",".join(holders).split(",")) if holders else ()),
        )
    return rows


def _records_as_rows(
    modules: tuple[LoadedModule, ...],
) -> dict[str, tuple[int, int, tuple[str, ...]]]:
    return {
        m.name: (m.size, m.refcount if m.refcount is not None else -1, m.holders) for m in modules
    }


def test_records_of_a_fake_machine(tmp_path: Path) -> None:
    modules = loaded(_system(_made(tmp_path)))
    assert [m.name for m in modules] == list(HOLDERS)  # /proc/modules' order; no builtin unix
    by_name = {m.name: m for m in modules}
    assert by_name["sunrpc"] == LoadedModule(
        "sunrpc", 692224, 2, "live", ("lockd", "nfsd"), (), "", ()
    )
    assert by_name["lockd"].holds == ("grace", "sunrpc")
    assert by_name["nfsd"].holds == ("lockd", "sunrpc")
    assert by_name["vfat"].holds == ("fat",)
    assert by_name["mine"].taint == "OE"
    assert by_name["cycb"].state == "coming"
    assert by_name["cyca"].holds == ("cycb",) and by_name["cycb"].holds == ("cyca",)


def test_tree_of_who_holds_whom(tmp_path: Path) -> None:
    roots = tree(loaded(_system(_made(tmp_path))))

    def leaf(name: str, cycle: bool = False) -> TreeNode:
        return TreeNode(name, (), cycle)

    assert roots == (
        leaf("mine"),
        TreeNode(
            "nfsd",
            (TreeNode("lockd", (leaf("grace"), leaf("sunrpc"))), leaf("sunrpc")),
        ),
        TreeNode("vfat", (leaf("fat"),)),
        # Held only by each other: no module is free of holders, the first by name is a root.
        TreeNode("cyca", (TreeNode("cycb", (leaf("cyca", True),)),)),
    )


def test_tree_text_and_json(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    system = _system(_made(tmp_path))
    assert cli.main(["--tree"], system=system) == 0
    out, err = capsysbinary.readouterr()
    assert err == b""
    assert out.decode() == (
        "mine\n"
        "nfsd\n  lockd\n    grace\n    sunrpc\n  sunrpc\n"
        "vfat\n  fat\n"
        "cyca\n  cycb\n    cyca (cycle)\n"
    )
    assert cli.main(["--tree", "--json"], system=system) == 0
    document = validate_output("loaded", capsysbinary.readouterr().out)
    nfsd = document["records"][1]
    assert nfsd["name"] == "nfsd"
    assert [c["name"] for c in nfsd["children"]] == ["lockd", "sunrpc"]
    assert [c["name"] for c in nfsd["children"][0]["children"]] == ["grace", "sunrpc"]
    assert document["records"][3]["children"][0]["children"][0] == {
        "name": "cyca", "children": [], "cycle": True,
    }  # fmt: skip


def test_table_and_json(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    system = _system(_made(tmp_path))
    assert cli.main([], system=system) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert lines[0].split() == ["MODULE", "SIZE", "REFS", "STATE", "TAINT", "HOLDERS", "HOLDS"]
    assert lines[1].split() == ["vfat", "20480", "0", "live", "-", "-", "fat"]
    assert lines[6].split() == ["sunrpc", "692224", "2", "live", "-", "lockd,nfsd", "-"]
    assert lines[7].split() == ["mine", "4096", "0", "live", "OE", "-", "-"]
    assert cli.main(["--json"], system=system) == 0
    document = validate_output("loaded", capsysbinary.readouterr().out)
    assert [r["name"] for r in document["records"]] == list(HOLDERS)
    assert document["records"][0] == {
        "name": "vfat", "size": 20480, "refcount": 0, "state": "live", "holders": [],
        "holds": ["fat"], "taint": "", "problems": [],
    }  # fmt: skip


def test_same_modules_sizes_counts_and_holders_as_lkms_lsmod(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    where = _made(tmp_path)
    assert lsmod.main([], procfs=str(where / "proc"), sysfs=str(where / "sys")) == 0
    shown = _lsmod_rows(capsysbinary.readouterr().out.decode())
    assert _records_as_rows(loaded(_system(where))) == shown


@pytest.mark.parametrize("name", ["world-lsmod", "lsmod-odd"])
def test_same_as_kmods_lsmod_where_it_reads_a_value(
    name: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """kmod 34's lsmod on the same trees (recorded: support/kernel_cases.py): the same modules;
    the same size, use count and holders wherever lsmod could read them (it shows a negative
    errno where it could not: the record has no use count then, and /proc/modules' size)."""
    where = _made(tmp_path, kernel_cases.CASES[name])
    expected = kernel_cases.load_recorded()[name]
    modules = loaded(_system(where))
    shown = _lsmod_rows(expected.stdout)
    assert [m.name for m in modules] == list(shown)
    for module in modules:
        size, count, holders = shown[module.name]
        if size >= 0:
            assert module.size == size, module
        if count >= 0:
            assert module.refcount == count, module
        else:
            assert module.refcount is None, module
        assert module.holders == holders
    # Every complaint of kmod's is a problem of the module it is about; lkm also reads the
    # state, which lsmod does not show (an initstate that is a directory cannot be read).
    complaints = [line.removeprefix("lsmod: ERROR: ") for line in expected.stderr.splitlines()]
    problems = [p.replace(str(where / "sys"), "/sys") for m in modules for p in m.problems]
    assert [p for p in problems if p in complaints] == complaints
    assert [p for p in problems if p not in complaints] == (
        ["could not read from '/sys/module/initdir/initstate': Is a directory"]
        if name == "lsmod-odd"
        else []
    )


def test_odd_sysfs_values_are_problems_not_failures(tmp_path: Path) -> None:
    where = _made(tmp_path, kernel_cases.CASES["world-lsmod"])
    by_name = {m.name: m for m in loaded(_system(where))}
    # Unloading, with no /sys/module directory left: /proc/modules says all there is.
    sys = where / "sys"
    assert by_name["gone"] == LoadedModule(
        "gone", 4096, None, "going", (), (), "",
        (f"could not open '{sys}/module/gone/holders': No such file or directory",),
    )  # fmt: skip
    # No refcnt (a kernel that cannot unload it) and no coresize: taint from /proc/modules.
    assert by_name["verylongmodulenamexyz123"] == LoadedModule(
        "verylongmodulenamexyz123", 4096, None, "live", (), (), "OE", ()
    )
    # A holder that is not loaded itself holds nothing here.
    assert by_name["nfsd"].holders == ("alpha",)
    assert by_name["nfsd"].holds == ("lockd",)
    assert all(m.holds == () for m in by_name.values() if m.name != "nfsd")
    # initstate that is not a state is reported, and /proc/modules' state used instead.
    (sys / "module/free/initstate").write_bytes(b"bogus\n")
    free = next(m for m in loaded(_system(where)) if m.name == "free")
    assert free.state == "live"
    assert free.problems == (f"unknown {sys}/module/free/initstate: 'bogus\n'",)


def test_problems_go_to_stderr_and_the_status_stays_zero(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    where = _made(tmp_path, kernel_cases.CASES["world-lsmod"])
    assert cli.main([], system=_system(where)) == 0
    err = capsysbinary.readouterr().err.decode()
    assert err == (
        f"lkm loaded: ERROR: could not open '{where}/sys/module/gone/holders': "
        "No such file or directory\n"
    )


def test_no_proc_modules(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    system = _system(tmp_path)
    assert cli.main([], system=system) == 1
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert err.decode() == (
        f"lkm loaded: ERROR: could not open {tmp_path}/proc/modules: No such file or directory\n"
    )


def test_nothing_loaded(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/modules").write_bytes(b"")
    for args in (["--json"], ["--json", "--tree"]):
        assert cli.main(args, system=_system(tmp_path)) == 0
        assert validate_output("loaded", capsysbinary.readouterr().out)["records"] == []


def test_bad_command_lines(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["extra"]) == 1
    assert capsysbinary.readouterr().err == b"lkm loaded: ERROR: too many arguments provided.\n"
    assert cli.main(["--bogus"]) == 1
    assert capsysbinary.readouterr().err == (
        b"lkm loaded: unrecognized option '--bogus'\n"
        b"Try 'lkm loaded --help' for more information.\n"
    )
    assert cli.main(["-b", "/x"]) == 1  # it reads the kernel, not a module tree
    assert capsysbinary.readouterr().err.startswith(b"lkm loaded: invalid option -- 'b'\n")


@pytest.mark.slow
def test_same_as_kmods_lsmod_live(tmp_path: Path) -> None:
    """kmod 34's lsmod, run now on the fake machine above: the same modules, sizes, use
    counts and holders."""
    from support import world
    from support.differential import COMPARED

    world.ensure_chroot()
    expected = kernel_cases.run_kmod(TREE_CASE, "loaded-tree")
    assert expected.status == 0 and expected.stderr == ""
    where = _made(tmp_path)
    assert _records_as_rows(loaded(_system(where))) == _lsmod_rows(expected.stdout)
    COMPARED["lkm loaded against kmod 34's lsmod (fake /proc, /sys)"] += len(HOLDERS)
