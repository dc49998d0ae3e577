"""lkm depmod against kmod 34's depmod: median wall time and peak memory, alternating runs.

Both read a prepared test tree and write their files elsewhere (``-o``), so the tree's own
files stay kmod's. Run as root with the test world prepared (``python tests/world.py prepare``):

    python3 benchmarks/depmod.py [--rounds N] [TREE...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import world

# Peak RSS of the largest process a command starts (for lkm: the main or a worker process).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _run(command: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, int(done.stdout.split()[-1])


def bench(name: str, rounds: int) -> None:
    tree = world.tree(name)
    scratch = world.CHROOT / "scratch-depmod-bench" / name
    shutil.rmtree(scratch, ignore_errors=True)
    for who in ("kmod", "lkm"):
        (scratch / who / "lib/modules" / tree.kver).mkdir(parents=True)
    kmod_out = "/" + str((scratch / "kmod").relative_to(world.CHROOT))
    kmod = [
        "chroot",
        str(world.CHROOT),
        "depmod",
        "-b",
        tree.chroot_root,
        "-o",
        kmod_out,
        tree.kver,
    ]
    lkm = [sys.executable, "-m", "lkm", "depmod", "-b", str(tree.root), "-o",
           str(scratch / "lkm"), tree.kver]  # fmt: skip
    times: dict[str, list[float]] = {"kmod": [], "lkm": []}
    memory: dict[str, int] = {"kmod": 0, "lkm": 0}
    for _ in range(rounds):
        for who, command in (("kmod", kmod), ("lkm", lkm)):
            elapsed, peak = _run(command)
            times[who].append(elapsed)
            memory[who] = max(memory[who], peak)
    k, m = statistics.median(times["kmod"]), statistics.median(times["lkm"])
    print(
        f"{name}: {len(tree.modules())} modules, kmod {k:.2f} s / {memory['kmod'] / 1024:.0f} MiB,"
        f" lkm {m:.2f} s / {memory['lkm'] / 1024:.0f} MiB, ratio {m / k:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("trees", nargs="*", default=["bookworm-amd64", "trixie-amd64"])
    args = parser.parse_args()
    for name in args.trees:
        bench(name, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
