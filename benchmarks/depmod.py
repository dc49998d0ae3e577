"""lkm depmod against kmod 34's depmod: median wall and CPU time, peak memory, alternating runs.

Both read a prepared test tree and write their files elsewhere (``-o``), so the tree's own
files stay kmod's. Wall time is what the targets are about; CPU time (user + system of the
whole process tree) is printed beside it, as lkm uses every core and the machine may be busy,
and so is the load average before and after. Run as root with the test world prepared
(``python tests/support/world.py prepare``):

    python3 benchmarks/depmod.py [--rounds N] [TREE...]
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
from support import world

# CPU time (user + system) of the whole process tree a command starts, and the peak RSS of
# its largest process (for lkm: the main or a worker process).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss)\n"
)


# A full run: lkm's module cache (which plain lkm depmod keeps) would time an incremental one;
# benchmarks/depmod_incremental.py times that.
_FULL_RUN = {**os.environ, "LKM_DEPMOD_CACHE": "0"}


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall time, CPU time and peak RSS (KiB) of one run."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        check=True,
        capture_output=True,
        text=True,
        env={**_FULL_RUN, **(env or {})},
    )
    elapsed = time.perf_counter() - start
    cpu, peak = done.stdout.split()[-2:]
    return elapsed, float(cpu), int(peak)


# lkm as a distribution's launcher starts it (a three-line script importing lkm.cli's main, as
# benchmarks/startup.py's "direct"): "python -m lkm" would add runpy's imports (about 5 ms), and
# pip's console script those of re.
LKM = [sys.executable, "-c", "import sys; from lkm.cli import main; sys.exit(main())"]

# Targets on lkm's wall time over kmod's, by tree: uncompressed, xz.
WALL_TARGETS = {"bookworm-amd64": 1.0, "trixie-amd64": 0.8}


def _liblzma_first(library: Path, scratch: Path) -> dict[str, str]:
    """An environment making lkm's Python load ``library`` for liblzma. Only that library is
    copied aside, so that everything else still comes from this machine."""
    aside = scratch / "liblzma"
    aside.mkdir()
    shutil.copyfile(library, aside / "liblzma.so.5")
    path = os.pathsep.join(filter(None, [str(aside), os.environ.get("LD_LIBRARY_PATH")]))
    return {"LD_LIBRARY_PATH": path}


def _same_files(kmod: Path, lkm: Path) -> None:
    """Stop the benchmark unless lkm wrote the very files kmod wrote: a fast wrong depmod is
    no result."""
    names = sorted(p.name for p in kmod.iterdir())
    if names != sorted(p.name for p in lkm.iterdir()):
        sys.exit(f"depmod benchmark: lkm wrote other files than kmod in {lkm}")
    for name in names:
        if (kmod / name).read_bytes() != (lkm / name).read_bytes():
            sys.exit(f"depmod benchmark: lkm's {name} differs from kmod's ({lkm})")


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
    lkm = [*LKM, "depmod", "-b", str(tree.root), "-o", str(scratch / "lkm"), tree.kver]
    suffix = tree.modules()[0].name.partition(".ko")[2].lstrip(".") or "uncompressed"
    # On xz, most of both tools' time is liblzma's; kmod 34's (in the chroot) is newer and
    # faster than this machine's, which lkm runs on: lkm is timed on both.
    runners: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "kmod": (kmod, None),
        "lkm": (lkm, None),
    }
    liblzma = world.kmod_liblzma() if suffix == "xz" else None
    if liblzma is not None:
        runners["lkm-liblzma"] = (lkm, _liblzma_first(liblzma, scratch))
    times: dict[str, list[float]] = {who: [] for who in runners}
    cpus: dict[str, list[float]] = {who: [] for who in runners}
    memory: dict[str, int] = dict.fromkeys(runners, 0)
    kmod_files = scratch / "kmod/lib/modules" / tree.kver
    lkm_files = scratch / "lkm/lib/modules" / tree.kver
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for who, (command, env) in runners.items():
            elapsed, cpu, peak = _run(command, env)
            times[who].append(elapsed)
            cpus[who].append(cpu)
            memory[who] = max(memory[who], peak)
            if who != "kmod":
                _same_files(kmod_files, lkm_files)
    k, m = statistics.median(times["kmod"]), statistics.median(times["lkm"])
    kc, mc = statistics.median(cpus["kmod"]), statistics.median(cpus["lkm"])
    print(
        f"{name}: {len(tree.modules())} modules, load {load:.1f}-{os.getloadavg()[0]:.1f};"
        f" kmod {k:.2f} s wall / {kc:.2f} s CPU / {memory['kmod'] / 1024:.0f} MiB,"
        f" lkm {m:.2f} s wall / {mc:.2f} s CPU / {memory['lkm'] / 1024:.0f} MiB;"
        f" ratio {m / k:.2f}x wall, {mc / kc:.2f}x CPU"
    )
    for what, lkm_value, kmod_value, unit, target in (
        ("wall time", m, k, "s", WALL_TARGETS.get(name)),
        ("CPU time", mc, kc, "s", None),
        ("peak memory", memory["lkm"] / 1024, memory["kmod"] / 1024, "MiB", 2.0),
    ):
        row("depmod", f"full run, {name} ({suffix}), {what}", lkm=lkm_value,
            reference="kmod 34 depmod", reference_value=kmod_value, unit=unit,
            target=target, samples=rounds)  # fmt: skip
    if liblzma is not None:
        version = liblzma.name.removeprefix("liblzma.so.")
        n = statistics.median(times["lkm-liblzma"])
        nc = statistics.median(cpus["lkm-liblzma"])
        print(
            f"{name}: lkm on liblzma {version}: {n:.2f} s wall / {nc:.2f} s CPU;"
            f" ratio {n / k:.2f}x wall, {nc / kc:.2f}x CPU"
        )
        row("depmod", f"full run, {name} ({suffix}), wall time, lkm on kmod 34's liblzma"
            f" {version}", lkm=n, reference="kmod 34 depmod", reference_value=k,
            samples=rounds)  # fmt: skip


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
