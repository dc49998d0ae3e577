"""modinfo throughput: lkm in-process and as a CLI against kmod 34, measured in the same run.

    python benchmarks/modinfo.py [--rounds N]

Uses the trixie amd64 tree of the test world (tests/support/world.py prepares it): every ``.ko.xz``.
Prints a table of median wall times and the ratios the project tracks:
- in-process reading of every module's info through the library, over kmod's modinfo on all
  modules in one process (target: at most 1.0x): once one file after another, and once with
  ``lkm.bulk.summarize_many`` sharing the files among worker processes (every core);
- ``lkm modinfo`` on all modules in one process, over the same kmod run;
- ``lkm modinfo <one module>`` over ``python3 -c pass`` (target: at most 2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from lkm.bulk import summarize_many
from lkm.module import ModuleFile
from support import world


def timed(action: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def read_all(paths: list[Path]) -> None:
    for path in paths:
        module = ModuleFile.from_path(path)
        module.modinfo  # noqa: B018 - the work being measured
        module.signature  # noqa: B018


def read_all_parallel(paths: list[Path]) -> None:
    for _summary in summarize_many(paths):
        pass


def lzma_version() -> str:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("lzma")
    if name is None:
        return "?"
    lib = ctypes.CDLL(name)
    lib.lzma_version_string.restype = ctypes.c_char_p
    return str(lib.lzma_version_string().decode())


def kmod_lzma() -> str:
    library = world.kmod_liblzma()
    return library.name.removeprefix("liblzma.so.") if library else "?"


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--startup-rounds", type=int, default=20)
    options = parser.parse_args()

    # An installed package carries its bytecode (pip compiles it); a source checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise pay for compiling every module at each start.
    import compileall

    import lkm

    compileall.compile_dir(os.path.dirname(lkm.__file__), quiet=1)
    tree = world.tree("trixie-amd64")
    paths = tree.modules()
    names = [p.name.split(".", 1)[0] for p in paths]
    kmod_base = ["chroot", str(world.CHROOT), "modinfo", "-b", tree.chroot_root, "-k", tree.kver]
    lkm_base = [sys.executable, "-m", "lkm", "modinfo", "-b", str(tree.root), "-k", tree.kver]
    one = str(paths[len(paths) // 2])

    rows: dict[str, float] = {}
    rounds = options.rounds
    # Alternate the contenders within each round so drift in machine load hits both alike.
    kmod_samples, inproc_samples, parallel_samples, cli_samples = [], [], [], []
    for _ in range(rounds):
        kmod_samples.append(timed(lambda: run([*kmod_base, *names]), 1))
        inproc_samples.append(timed(lambda: read_all(paths), 1))
        parallel_samples.append(timed(lambda: read_all_parallel(paths), 1))
        cli_samples.append(timed(lambda: run([*lkm_base, *names]), 1))
    rows["kmod 34 modinfo, all modules, one process"] = statistics.median(kmod_samples)
    rows["lkm library, all modules, one by one"] = statistics.median(inproc_samples)
    rows["lkm library, all modules, summarize_many"] = statistics.median(parallel_samples)
    rows["lkm modinfo, all modules, one process"] = statistics.median(cli_samples)
    n = options.startup_rounds
    # The console script, as a user runs it (not through ``-m`` and runpy).
    script = os.path.join(os.path.dirname(sys.executable), "lkm")
    bare, single = [], []
    for _ in range(n):
        bare.append(timed(lambda: run([sys.executable, "-c", "pass"]), 1))
        single.append(timed(lambda: run([script, "modinfo", one]), 1))
    rows["python3 -c pass"] = statistics.median(bare)
    rows["lkm modinfo <one module>"] = statistics.median(single)

    kmod_all = rows["kmod 34 modinfo, all modules, one process"]
    print(f"trixie amd64: {len(paths)} modules; medians of {rounds} rounds ({n} for start-up)")
    print(f"cores: {os.cpu_count()}; Python's liblzma {lzma_version()}, kmod's {kmod_lzma()}")
    print(f"{'measurement':<46} {'seconds':>9}")
    for label, seconds in rows.items():
        print(f"{label:<46} {seconds:9.3f}")
    print()
    print(f"{'ratio':<46} {'value':>9} {'target':>8}")
    bare_start = rows["python3 -c pass"]
    ratios = [
        (
            "library one by one / kmod batch",
            rows["lkm library, all modules, one by one"] / kmod_all,
            "-",
        ),
        (
            "library summarize_many / kmod batch",
            rows["lkm library, all modules, summarize_many"] / kmod_all,
            "1.0",
        ),
        (
            "lkm CLI batch / kmod batch",
            rows["lkm modinfo, all modules, one process"] / kmod_all,
            "-",
        ),
        ("lkm one module / python3 -c pass", rows["lkm modinfo <one module>"] / bare_start, "2.0"),
    ]
    for label, value, target in ratios:
        print(f"{label:<46} {value:8.2f}x {target:>8}")
    for label, reference, target_value in (
        ("lkm library, all modules, one by one", "kmod 34 modinfo, all modules", None),
        ("lkm library, all modules, summarize_many", "kmod 34 modinfo, all modules", 1.0),
        ("lkm modinfo, all modules, one process", "kmod 34 modinfo, all modules", None),
        # Through pip's console script: the 2.0x target is for lkm started directly, which
        # startup.py measures.
        ("lkm modinfo <one module>", "python3 -c pass", None),
    ):
        bare_row = reference == "python3 -c pass"
        case = label.replace("<one module>", "of one xz module, through the console script")
        row("modinfo", case, lkm=rows[label], reference=reference,
            reference_value=bare_start if bare_row else kmod_all, target=target_value,
            samples=n if bare_row else rounds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
