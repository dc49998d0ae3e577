"""lkm depmod with its module cache, after one module was added, changed or removed, against a
full run of kmod 34's depmod on the same tree: median wall time, alternating runs.

The tree is a copy of a prepared test tree made of hard links (a changed module is a new file
renamed over the link, so the shared tree never changes); lkm's cache is filled by one run
first. Each round changes one module (in turn: changed, removed, added back), then times kmod's
full run and lkm's run, both writing into the copy. Run as root with the test world prepared:

    python3 benchmarks/depmod_incremental.py [--rounds N] [TREE...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from depmod import LKM
from support import world


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _copy(tree: world.Tree, root: Path) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    moddir = root / "lib/modules" / tree.kver
    for path in tree.moddir.rglob("*"):
        if path.is_dir() or path.name.startswith("modules."):
            continue
        target = moddir / path.relative_to(tree.moddir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    for kept in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        shutil.copyfile(tree.moddir / kept, moddir / kept)
    return moddir


def _change(round_number: int, victim: Path, spare: bytes, original: bytes) -> str:
    """One module changed, removed or added back, in turn."""
    kind = ("changed", "removed", "added")[round_number % 3]
    if kind == "removed":
        victim.unlink()
    else:
        data = spare if kind == "changed" else original
        fresh = victim.with_name(victim.name + ".new")
        fresh.write_bytes(data)
        os.rename(fresh, victim)
    return kind


def bench(name: str, rounds: int) -> None:
    tree = world.tree(name)
    root = world.CHROOT / "scratch-depmod-incremental" / name
    moddir = _copy(tree, root)
    modules = sorted(moddir.rglob("*.ko*"))
    victim, other = modules[len(modules) // 2], modules[len(modules) // 3]
    original, spare = victim.read_bytes(), other.read_bytes()
    kmod_out = root.parent / f"{name}-kmod"
    (kmod_out / "lib/modules" / tree.kver).mkdir(parents=True, exist_ok=True)
    chroot_root = "/" + str(root.relative_to(world.CHROOT))
    kmod = ["chroot", str(world.CHROOT), "depmod", "-b", chroot_root,
            "-o", "/" + str(kmod_out.relative_to(world.CHROOT)), tree.kver]  # fmt: skip
    lkm = [*LKM, "depmod", "-b", str(root), tree.kver]
    env = {**os.environ, "LKM_DEPMOD_CACHE": "1"}
    _timed(lkm, env)  # fills the cache
    times: dict[str, list[float]] = {"kmod": [], "lkm": []}
    kinds = []
    load = os.getloadavg()[0]
    for number in range(rounds):
        kinds.append(_change(number, victim, spare, original))
        times["kmod"].append(_timed(kmod))
        times["lkm"].append(_timed(lkm, env))
    k, m = statistics.median(times["kmod"]), statistics.median(times["lkm"])
    print(
        f"{name}: {len(modules)} modules, one {'/'.join(sorted(set(kinds)))} per round,"
        f" load {load:.1f}-{os.getloadavg()[0]:.1f}; kmod full {k:.2f} s,"
        f" lkm incremental {m:.2f} s; ratio {m / k:.2f}x"
        f" (lkm runs: {', '.join(f'{t:.2f}' for t in times['lkm'])})"
    )
    row("depmod_incremental", f"after one module {'/'.join(sorted(set(kinds)))}, {name}",
        lkm=m, reference="kmod 34 depmod, full run", reference_value=k, target=0.2,
        samples=rounds)  # fmt: skip
    shutil.rmtree(root.parent, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("trees", nargs="*", default=["trixie-amd64"])
    args = parser.parse_args()
    for name in args.trees:
        bench(name, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
