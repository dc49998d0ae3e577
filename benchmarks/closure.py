"""An initramfs closure with firmware for 600 modules: lkm in-process against kmod 34's modinfo.

    python benchmarks/closure.py [--rounds N] [--modules N]

Uses the trixie amd64 tree of the test world (tests/support/world.py prepares it): the modules
of ``modules.order`` taken at even steps. Every contender computes the same answer: the
modules with their dependencies (modules.dep's, through ``depends:``) and each one's
``firmware:`` entries searched in the kernel's firmware directories:

- lkm: ``lkm.closure.closure`` in this process, once reading every module file (no cache) and
  once with the firmware fields kept from an earlier run (``cache_dir``; what the command line
  does by default, each module file checked with ``stat``);
- (a) one kmod 34 ``modinfo -0 NAME`` process per module of the closure, as shell image
  builders do, following ``depends:`` to the next process;
- (b) one batched ``modinfo -0`` over all the names, then one more over the dependencies it
  names that were not asked for yet, until none is new (as mkosi reads modinfo).

For (a) and (b) the firmware search is lkm's own (a few stat calls, the same for all). kmod runs
chrooted in the kmod 34 chroot (entered with ``chroot(2)`` in the child, no extra program).
The contenders alternate within each round; the table shows medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from lkm.closure import (
    ClosureFirmware,
    ClosureModule,
    closure,
    default_firmware_dirs,
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
    tree: world.Tree, names: list[str], dirs: tuple[str, ...], cache: str | None = None
) -> int:
    moddir = ModuleDirectory(str(tree.moddir))
    config = load_config([], module_dir=moddir.path, cmdline=None)
    with moddir:
        records = closure(
            names, moddir, config, firmware_dirs=dirs, basedir=str(tree.root), cache_dir=cache
        )
    assert not [r for r in records if getattr(r, "error", None)], records[-1]
    assert any(isinstance(r, ClosureFirmware) for r in records)
    return sum(isinstance(r, ClosureModule) for r in records)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modules", type=int, default=600)
    options = parser.parse_args()

    tree = world.tree("trixie-amd64")
    names = pick(tree, options.modules)
    # Real firmware packages where the image builders' system is prepared (see
    # tests/support/image_builders.py), the kernel's directories below the tree otherwise.
    packaged = image_builders.ROOT / "usr/lib/firmware"
    if (image_builders.ROOT / ".ready").exists():
        dirs: tuple[str, ...] = (str(packaged),)
    else:
        dirs = default_firmware_dirs(str(tree.root), tree.kver)
    counts = {
        "lkm": lkm_closure(tree, names, dirs),
        "batched": kmod_batched(tree, names, dirs),
    }
    # Every contender must find the same modules (built-ins aside: kmod's modinfo reports
    # those too, lkm lists them without a file; none of the names picked is built in).
    assert counts["lkm"] == counts["batched"], counts
    import tempfile

    cache = tempfile.mkdtemp(prefix="lkm-closure-bench-")
    lkm_closure(tree, names, dirs, cache)  # fills the cache
    contenders: dict[str, Callable[[], object]] = {
        "lkm closure, in-process, cache kept": lambda: lkm_closure(tree, names, dirs, cache),
        "lkm closure, in-process, no cache": lambda: lkm_closure(tree, names, dirs),
        "(b) kmod 34 modinfo -0, batched": lambda: kmod_batched(tree, names, dirs),
        "(a) kmod 34 modinfo, one process per module": lambda: kmod_per_module(tree, names, dirs),
    }
    samples: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(options.rounds):
        for label, action in contenders.items():
            samples[label].append(timed(action))
    import shutil

    shutil.rmtree(cache)
    medians = {label: statistics.median(values) for label, values in samples.items()}
    lkm = medians["lkm closure, in-process, cache kept"]
    print(
        f"trixie amd64: {len(names)} modules asked, {counts['lkm']} in the closure; "
        f"medians of {options.rounds} rounds; {os.cpu_count()} cores"
    )
    print(f"{'contender':<46} {'seconds':>9} {'x lkm':>7}")
    for label, value in medians.items():
        print(f"{label:<46} {value:>9.3f} {value / lkm:>7.1f}")
    batched = medians["(b) kmod 34 modinfo -0, batched"]
    one_each = medians["(a) kmod 34 modinfo, one process per module"]
    no_cache = medians["lkm closure, in-process, no cache"]
    for case, value, reference, reference_value, target in (
        ("cache kept", lkm, "(b) kmod 34 modinfo -0, batched", batched, 0.1),
        ("no cache", no_cache, "(b) kmod 34 modinfo -0, batched", batched, None),
        ("cache kept", lkm, "(a) kmod 34 modinfo, one process per module", one_each, None),
    ):
        row("closure", f"{len(names)} modules with firmware, in-process, {case}", lkm=value,
            reference=reference, reference_value=reference_value, target=target,
            samples=options.rounds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
