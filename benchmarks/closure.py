"""An initramfs closure with firmware for 600 modules: lkm in-process against kmod 34's modinfo.

    python benchmarks/closure.py [--rounds N] [--modules N]

Uses the trixie amd64 tree of the test world (tests/support/world.py prepares it): the modules
of ``modules.order`` taken at even steps. Every contender computes the same answer: the
modules with their dependencies (modules.dep's, through ``depends:``) and each one's
``firmware:`` entries searched in the kernel's firmware directories:

- lkm: ``lkm.closure.closure`` in this process, three ways:
  - cold: the tree as kmod's depmod indexed it, no cache of any kind: every module file of
    the closure is read (decompressed);
  - depmod-indexed: a copy of the tree indexed by lkm's depmod (as a kernel package's
    installation leaves it), no per-user cache: the firmware fields come from depmod's
    cache in the module directory, a ``stat`` per module (what an image builder sees after
    a kernel install);
  - per-user cache: kmod's tree again, with the fields kept by an earlier closure in
    ``$XDG_CACHE_HOME/lkm/firmware`` (``cache_dir``), a ``stat`` per module;
- (a) one kmod 34 ``modinfo -0 NAME`` process per module of the closure, as shell image
  builders do, following ``depends:`` to the next process;
- (b) one batched ``modinfo -0`` over all the names, then one more over the dependencies it
  names that were not asked for yet, until none is new (as mkosi reads modinfo).

For (a) and (b) the firmware search is lkm's own (a few stat calls, the same for all). kmod runs
chrooted in the kmod 34 chroot (entered with ``chroot(2)`` in the child, no extra program).
The contenders alternate within each round; the table shows the medians of wall time and of
CPU time (user and system, this process's and its children's: on a busy machine the steadier
figure), and whether each lkm way meets the target: at least 10x faster than (b).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from lkm.closure import (
    ClosureFirmware,
    ClosureModule,
    Record,
    closure,
    find_firmware,
)
from lkm.config import load_config
from lkm.moddir import ModuleDirectory
from support import image_builders, world


def pick(tree: world.Tree, count: int) -> list[str]:
    order = (tree.moddir / "modules.order").read_text().split()
    step = max(1, len(order) // count)
    return [Path(line).name.split(".", 1)[0] for line in order[::step][:count]]


def in_chroot() -> None:
    os.chroot(world.CHROOT)
    os.chdir("/")


def modinfo(tree: world.Tree, names: Iterable[str]) -> bytes:
    cmd = ["modinfo", "-b", tree.chroot_root, "-k", tree.kver, "-0", *names]
    done = subprocess.run(cmd, capture_output=True, preexec_fn=in_chroot, check=False)
    return done.stdout


def parse(output: bytes) -> dict[str, tuple[list[str], list[str]]]:
    """modinfo -0 records by module name: (depends, firmware)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    depends: list[str] = []
    firmware: list[str] = []
    name = None
    for item in output.decode(errors="replace").split("\0"):
        key, sep, value = item.partition("=")
        if not sep or " " in key or ":" in key:
            key, _, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if key == "filename":
            if name is not None:
                found[name] = (depends, firmware)
            name = Path(value).name.split(".", 1)[0].replace("-", "_")
            depends, firmware = [], []
        elif key == "depends" and value:
            depends += [d.replace("-", "_") for d in value.split(",")]
        elif key == "firmware":
            firmware.append(value)
    if name is not None:
        found[name] = (depends, firmware)
    return found


def search(firmware: Iterable[str], dirs: tuple[str, ...], base: str) -> int:
    return sum(find_firmware(name, dirs, base).path is not None for name in set(firmware))


def kmod_per_module(tree: world.Tree, names: list[str], dirs: tuple[str, ...]) -> int:
    todo = [n.replace("-", "_") for n in names]
    seen: set[str] = set()
    firmware: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for depends, wanted in parse(modinfo(tree, [name])).values():
            todo += depends
            firmware += wanted
    search(firmware, dirs, str(tree.root))
    return len(seen)


def kmod_batched(tree: world.Tree, names: list[str], dirs: tuple[str, ...]) -> int:
    asked = {n.replace("-", "_") for n in names}
    batch = sorted(asked)
    firmware: list[str] = []
    while batch:
        new: set[str] = set()
        for depends, wanted in parse(modinfo(tree, batch)).values():
            firmware += wanted
            new.update(d for d in depends if d not in asked)
        asked |= new
        batch = sorted(new)
    search(firmware, dirs, str(tree.root))
    return len(asked)


def lkm_closure(
    moddir_path: Path,
    names: list[str],
    dirs: tuple[str, ...],
    base: str,
    *,
    cache: str | None = None,
    depmod_cache: bool = True,
) -> list[Record]:
    moddir = ModuleDirectory(str(moddir_path))
    config = load_config([], module_dir=moddir.path, cmdline=None)
    with moddir:
        records = closure(
            names,
            moddir,
            config,
            firmware_dirs=dirs,
            basedir=base,
            cache_dir=cache,
            depmod_cache=depmod_cache,
        )
    assert not [r for r in records if getattr(r, "error", None)], records[-1]
    assert any(isinstance(r, ClosureFirmware) for r in records)
    return records


def indexed_copy(tree: world.Tree, scratch: Path) -> Path:
    """A copy of the tree's module directory indexed by lkm's depmod, its cache on (as after
    a kernel package's installation)."""
    moddir = scratch / "lib/modules" / tree.kver
    shutil.copytree(tree.moddir, moddir, symlinks=True)
    env = {**os.environ, "LKM_DEPMOD_CACHE": "1"}
    command = [sys.executable, "-m", "lkm", "depmod", "-b", str(scratch), tree.kver]
    subprocess.run(command, env=env, check=True)
    return moddir


def served(moddir: Path, records: list[Record]) -> int:
    """How many of the closure's module files depmod's cache holds as they are."""
    from lkm.depmod.cache import CACHE_NAME, file_identity, load_firmware

    table = load_firmware(str(moddir / CACHE_NAME))
    paths = [r.path for r in records if isinstance(r, ClosureModule) and r.path is not None]
    return sum(file_identity(path) in table for path in paths)


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (user and system, this process's and its children's)."""
    before, start = os.times(), time.perf_counter()
    action()
    wall, after = time.perf_counter() - start, os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modules", type=int, default=600)
    options = parser.parse_args()

    tree = world.tree("trixie-amd64")
    names = pick(tree, options.modules)
    # The firmware of real packages, in the image builders' system (prepared here if no test
    # has prepared it yet: tests/support/image_builders.py). The tree alone has no firmware
    # directory, and a closure reports a missing one as an error.
    root, _ = image_builders.ensure()
    dirs = (str(root / "usr/lib/firmware"),)
    base = str(tree.root)  # symbolic links among the firmware resolve alike for every way
    scratch = Path(tempfile.mkdtemp(prefix="lkm-closure-bench-"))
    try:
        return compare(tree, names, dirs, base, scratch, rounds=options.rounds)
    finally:
        shutil.rmtree(scratch)


def compare(
    tree: world.Tree,
    names: list[str],
    dirs: tuple[str, ...],
    base: str,
    scratch: Path,
    *,
    rounds: int,
) -> int:
    copy = indexed_copy(tree, scratch / "root")
    cache = str(scratch / "cache")
    cold = lkm_closure(tree.moddir, names, dirs, base, depmod_cache=False)
    # The same records from depmod's cache (module paths aside) and from the per-user one
    # (which this run fills).
    indexed = lkm_closure(copy, names, dirs, base)
    assert [repr(r).replace(str(copy), str(tree.moddir)) for r in indexed] == list(map(repr, cold))
    assert lkm_closure(tree.moddir, names, dirs, base, cache=cache, depmod_cache=False) == cold
    modules = sum(isinstance(r, ClosureModule) for r in cold)
    # Every contender must find the same modules (built-ins aside: kmod's modinfo reports
    # those too, lkm lists them without a file; none of the names picked is built in).
    assert modules == kmod_batched(tree, names, dirs)
    contenders: dict[str, Callable[[], object]] = {
        "lkm, cold (no cache at all)": lambda: lkm_closure(
            tree.moddir, names, dirs, base, depmod_cache=False
        ),
        "lkm, tree indexed by lkm depmod": lambda: lkm_closure(copy, names, dirs, base),
        "lkm, warm per-user cache": lambda: lkm_closure(
            tree.moddir, names, dirs, base, cache=cache, depmod_cache=False
        ),
        "(b) kmod 34 modinfo -0, batched": lambda: kmod_batched(tree, names, dirs),
        "(a) kmod 34 modinfo, one process per module": lambda: kmod_per_module(tree, names, dirs),
    }
    walls: dict[str, list[float]] = {label: [] for label in contenders}
    cpus: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(rounds):
        for label, action in contenders.items():
            wall, cpu = timed(action)
            walls[label].append(wall)
            cpus[label].append(cpu)
    wall_of = {label: statistics.median(values) for label, values in walls.items()}
    cpu_of = {label: statistics.median(values) for label, values in cpus.items()}
    batched = "(b) kmod 34 modinfo -0, batched"
    print(
        f"trixie amd64: {len(names)} modules asked, {modules} in the closure "
        f"({served(copy, indexed)} of them served by lkm depmod's cache); medians of {rounds} "
        f"rounds; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'contender':<44} {'wall s':>7} {'(b)/it':>7} {'CPU s':>7} {'(b)/it':>7}  target")
    for label in contenders:
        wall, cpu = wall_of[label], cpu_of[label]
        over_wall, over_cpu = wall_of[batched] / wall, cpu_of[batched] / cpu
        verdict = ""
        if label.startswith("lkm"):
            met = [kind for kind, ratio in (("wall", over_wall), ("CPU", over_cpu)) if ratio >= 10]
            verdict = f"10x (b): {' and '.join(met) if met else 'missed'}"
        print(f"{label:<44} {wall:>7.3f} {over_wall:>7.1f} {cpu:>7.3f} {over_cpu:>7.1f}  {verdict}")
    for label, reference, target in (
        ("lkm, tree indexed by lkm depmod", batched, 0.1),
        ("lkm, warm per-user cache", batched, 0.1),
        ("lkm, cold (no cache at all)", batched, 0.1),
        ("lkm, tree indexed by lkm depmod", "(a) kmod 34 modinfo, one process per module", None),
    ):
        case = f"{len(names)} modules with firmware, in-process, {label.removeprefix('lkm, ')}"
        row("closure", case, lkm=wall_of[label], reference=reference,
            reference_value=wall_of[reference], target=target, samples=rounds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
