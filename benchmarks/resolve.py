"""Alias resolution speed: lkm in-process, ``lkm modprobe -R`` and kmod 34's, one process each.

    python benchmarks/resolve.py [--sample N]

Uses the trixie amd64 tree of the test world: one concrete device string per alias pattern of
modules.alias (tests/support/modprobe_world.py makes them). Targets: at least 20,000 resolutions per
second in-process; ``lkm modprobe -R`` at most 2x ``python3 -c pass``. The three processes
are timed in turn, string by string; each must succeed, and lkm must print what kmod prints.
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
from lkm.moddir import ModuleDirectory
from lkm.resolve import Resolver
from support import world
from support.modprobe_world import device_strings


def _run(cmd: list[str]) -> tuple[float, bytes]:
    """Seconds taken by ``cmd``, and what it printed; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit status {done.returncode}: {done.stderr!r}")
    return seconds, done.stdout


def _processes(
    sample: list[str], bare: list[str], lkm_base: list[str], kmod_base: list[str]
) -> tuple[float, float, float]:
    """Median seconds of ``python3 -c pass``, lkm's and kmod's ``modprobe -R``, taken in turn
    for each device string (so a busy moment weighs on all three alike); both tools must
    print the same modules."""
    times: tuple[list[float], list[float], list[float]] = ([], [], [])
    for text in sample:
        bare_time, _ = _run(bare)
        lkm_time, lkm_out = _run([*lkm_base, "-R", text])
        kmod_time, kmod_out = _run([*kmod_base, "-R", text])
        if lkm_out != kmod_out or not kmod_out:
            raise SystemExit(f"modprobe -R {text}: lkm printed {lkm_out!r}, kmod {kmod_out!r}")
        for column, seconds in zip(times, (bare_time, lkm_time, kmod_time), strict=True):
            column.append(seconds)
    bare_median, lkm_median, kmod_median = (statistics.median(column) for column in times)
    return bare_median, lkm_median, kmod_median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=30)
    options = parser.parse_args()
    import compileall

    import lkm

    compileall.compile_dir(os.path.dirname(lkm.__file__), quiet=1)
    tree = world.tree("trixie-amd64")
    strings = device_strings(tree)

    def rounds(clock: Callable[[], float]) -> tuple[float, float]:
        """Seconds for all strings with fresh indexes, then again with warm ones."""
        resolver = Resolver(ModuleDirectory(str(tree.moddir)))
        start = clock()
        for text in strings:
            resolver.resolve(text)
        cold = clock() - start
        start = clock()
        for text in strings:
            resolver.resolve(text)
        return cold, clock() - start

    cold, warm = rounds(time.perf_counter)
    # CPU time of this process too: wall time suffers when the machine is busy.
    cpu_cold, cpu_warm = rounds(time.process_time)
    from lkm import kmod

    km = kmod.Kmod(str(tree.moddir), config_paths=[], cmdline=None)
    start = time.perf_counter()
    for text in strings:
        for _ in km.lookup(text):
            pass
    compat = time.perf_counter() - start

    sample = strings[:: max(1, len(strings) // options.sample)][: options.sample]
    script = os.path.join(os.path.dirname(sys.executable), "lkm")
    empty = world.CHROOT / "scratch-resolve" / "bench-empty"
    empty.mkdir(parents=True, exist_ok=True)
    lkm_base = [script, "modprobe", "-C", str(empty), "-d", str(tree.root), "-S", tree.kver]
    kmod_base = ["chroot", str(world.CHROOT), "modprobe", "-C", "/scratch-resolve/bench-empty"]
    kmod_base += ["-d", tree.chroot_root, "-S", tree.kver]
    bare, lkm_one, kmod_one = _processes(
        sample, [sys.executable, "-c", "pass"], lkm_base, kmod_base
    )

    print(f"trixie amd64: {len(strings)} device strings; {len(sample)} sampled for processes")
    n = len(strings)
    print(f"in-process, fresh indexes: {n / cold:10.0f} resolutions/s (target 20000)")
    print(f"in-process, warm:          {n / warm:10.0f} resolutions/s (target 20000)")
    print(f"  by CPU time:             {n / cpu_cold:10.0f} fresh, {n / cpu_warm:.0f} warm")
    print(f"lkm.kmod Kmod.lookup:      {n / compat:10.0f} lookups/s (fresh indexes)")
    print(f"python3 -c pass:           {bare * 1000:10.1f} ms")
    print(f"lkm modprobe -R (median):  {lkm_one * 1000:10.1f} ms = {lkm_one / bare:.2f}x (script)")
    print(f"kmod modprobe -R (median): {kmod_one * 1000:10.1f} ms (chroot included)")
    for case, seconds in (("fresh indexes", cold), ("warm indexes", warm)):
        row("resolve", f"in-process alias resolutions, {case}", lkm=n / seconds,
            reference="target", reference_value=20000, unit="/s", target=1.0,
            higher_is_better=True, samples=1)  # fmt: skip
    for reference, value in (("python3 -c pass", bare), ("kmod 34 modprobe -R", kmod_one)):
        # Through pip's console script: startup.py measures lkm started directly, against the
        # 1.5x target.
        row("resolve", "lkm modprobe -R ALIAS, one process, through the console script",
            lkm=lkm_one, reference=reference, reference_value=value, target=None,
            samples=len(sample), note="" if value is bare else "kmod chrooted")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
