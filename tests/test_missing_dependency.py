"""A modules.dep line naming a file that is gone: modprobe and modinfo against kmod 34.

kmod takes such a module to have no dependencies at all and reports the first missing file each
time it reads the line: when a name is found in modules.dep, and again when a probe needs the
module's dependencies (once for a module found through an alias or given as a path); modinfo
once per module it shows. The tree is made by kmod's depmod, then files are removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import world
from support.depmod_trees import module_elf, write_tree
from support.differential import COMPARED, Result, addresses_hidden, assert_same, kmod, lkm
from support.modprobe_world import Loaded, make_state, run_kmod, run_lkm

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-missing-dependency"
INSIDE = "/" + SCRATCH.name
RELEASE = "1.0.0"
# a -> b -> c; d -> a, c; e -> c; f has none. b and c are removed after depmod.
MODULES = {
    "kernel/a.ko": module_elf(exports=["a_fn"], imports=["b_fn"], modinfo=["alias=alias-a"]),
    "kernel/b.ko": module_elf(exports=["b_fn"], imports=["c_fn"]),
    "kernel/c.ko": module_elf(exports=["c_fn"]),
    "kernel/d.ko": module_elf(imports=["a_fn", "c_fn"]),
    "kernel/e.ko": module_elf(imports=["c_fn"], modinfo=["alias=alias-e"]),
    "kernel/f.ko": module_elf(exports=["f_fn"]),
}
MODPROBE = (
    ["-n", "-v", "a"],
    ["-n", "-v", "d"],
    ["-n", "-v", "e"],
    ["-n", "-v", "alias-a"],
    ["-n", "-v", "f"],
    ["-n", "-v", "b"],
    ["-n", "-vv", "a"],
    ["-q", "-n", "-v", "a"],
    ["-n", "-v", "-a", "alias-a", "a", "e"],
    ["-D", "a"],
    ["-D", "alias-e"],
    ["-R", "a"],
    ["-R", "alias-a"],
    ["-n", "-v", f"{INSIDE}/lib/modules/{RELEASE}/kernel/a.ko"],
    ["-C", f"{INSIDE}/conf", "-n", "-v", "f"],
    ["-C", f"{INSIDE}/conf", "-D", "f"],
)
MODINFO = (["a"], ["alias-a"], ["-F", "filename", "a", "e", "f"], ["-m", "d"], ["symbol:a_fn"])


@pytest.fixture(scope="module")
def tree() -> Path:
    shutil.rmtree(SCRATCH, ignore_errors=True)
    moddir = write_tree(SCRATCH, RELEASE, MODULES)
    world.kmod("depmod", "-b", INSIDE, RELEASE, check=True)
    assert (moddir / "modules.dep").read_text().count("kernel/c.ko") == 5
    for name in ("b", "c"):
        (moddir / f"kernel/{name}.ko").unlink()
    (SCRATCH / "conf").mkdir()
    (SCRATCH / "conf" / "softdep.conf").write_text("softdep f pre: e post: a\n")
    make_state(SCRATCH / "state-empty")
    make_state(SCRATCH / "state-loaded", loaded=[Loaded(name) for name in "abcde"])
    return SCRATCH


def _hidden(result: Result) -> Result:
    return Result(addresses_hidden(result.stdout), addresses_hidden(result.stderr), result.status)


@pytest.mark.parametrize("args", MODPROBE, ids=" ".join)
def test_modprobe_like_kmod(tree: Path, args: list[str]) -> None:
    base = ["-d", INSIDE, "-S", RELEASE] + ([] if "-C" in args else ["-C", f"{INSIDE}/none"])
    state = tree / "state-empty" / ".state"
    expected = _hidden(run_kmod([*base, *args], state))
    assert_same(expected, _hidden(run_lkm([*base, *args], state)))
    quiet = " ".join(args) in ("-q -n -v a", "-n -v f", "-R alias-a")
    assert (b"error=No such file or directory" in expected.stderr) is not quiet
    COMPARED["modules.dep naming missing files (runs)"] += 1


@pytest.mark.parametrize(
    "args", [["-r", "-v", "a"], ["-r", "-v", "d"], ["-r", "-v", "alias-e"]], ids=" ".join
)
def test_removal_like_kmod(tree: Path, args: list[str]) -> None:
    base = ["-d", INSIDE, "-S", RELEASE, "-C", f"{INSIDE}/none", "-n"]
    state = tree / "state-loaded" / ".state"
    expected = _hidden(run_kmod([*base, *args], state))
    assert_same(expected, _hidden(run_lkm([*base, *args], state)))
    COMPARED["modules.dep naming missing files (runs)"] += 1


@pytest.mark.parametrize("args", MODINFO, ids=" ".join)
def test_modinfo_like_kmod(tree: Path, args: list[str]) -> None:
    base = ["-b", INSIDE, "-k", RELEASE]
    expected = _hidden(kmod("modinfo", *base, *args))
    actual = _hidden(lkm("modinfo", "-b", str(tree), "-k", RELEASE, *args))
    assert_same(expected, actual)
    assert b"kmod_module_parse_depline" in expected.stderr
    COMPARED["modules.dep naming missing files (runs)"] += 1
