"""``lkm show`` start-up: one xz module, against ``python3 -c pass`` with the same interpreter.

    python benchmarks/show.py [--rounds N] [--module PATH]

Uses the trixie amd64 tree of the test world (tests/support/world.py prepares it): by default
two of its ``.ko.xz`` files, the one of median size (a typical module) and the one
``benchmarks/modinfo.py`` shows (the middle of the sorted list, about 200 KiB), each shown by
path (read, decompressed, its signature and build-id parsed). The commands run in turn,
``--rounds`` times each (so a busy moment weighs on all alike), with lkm's bytecode compiled
first, as an installed package has it: ``python3 -c pass``; ``lkm show MODULE`` through the
console script; and for scale ``lkm modinfo MODULE`` (the same start-up, reading less),
``python3 -c 'import re, typing'`` (what the console script itself and lkm's typed records
import before any of lkm's code runs) and ``python3 -c`` decompressing the module with lzma
alone (what any Python tool pays for it). Prints medians (and minimums, which a busy machine
disturbs least) and their ratios to ``python3 -c pass``. Target: at most 2.0x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from support import world


def _run(cmd: list[str]) -> float:
    """Seconds taken by ``cmd``; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit status {done.returncode}: {done.stderr!r}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--module", help="the module file to show (default: from the tree)")
    options = parser.parse_args()

    # An installed package carries its bytecode (pip compiles it); a source checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise pay for compiling every module at each start.
    import compileall

    import lkm

    compileall.compile_dir(os.path.dirname(lkm.__file__), quiet=1)
    if options.module is None:
        every = world.tree("trixie-amd64").modules()
        paths = [p for p in every if p.name.endswith(".ko.xz")]
        by_size = sorted(paths, key=lambda p: p.stat().st_size)
        modules = [str(by_size[len(by_size) // 2]), str(every[len(every) // 2])]
    else:
        modules = [options.module]
    # The console script, as a user runs it (not through ``-m`` and runpy).
    script = os.path.join(os.path.dirname(sys.executable), "lkm")
    print(f"{options.rounds} runs of each, alternating; cores: {os.cpu_count()}")
    for module in modules:
        decompress = f"import lzma; lzma.decompress(open({module!r}, 'rb').read())"
        commands = {
            "python3 -c pass": [sys.executable, "-c", "pass"],
            "lkm show MODULE": [script, "show", module],
            "lkm modinfo MODULE": [script, "modinfo", module],
            "python3 -c 'import re, typing'": [sys.executable, "-c", "import re, typing"],
            "python3 -c 'lzma.decompress(MODULE)'": [sys.executable, "-c", decompress],
        }
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(options.rounds):
            for label, cmd in commands.items():
                samples[label].append(_run(cmd))
        medians = {label: statistics.median(times) for label, times in samples.items()}
        minimums = {label: min(times) for label, times in samples.items()}
        bare, bare_min = medians["python3 -c pass"], minimums["python3 -c pass"]
        print()
        print(f"module: {module} ({os.path.getsize(module)} bytes)")
        print(f"{'measurement':<38} {'median s':>9} {'ratio':>7} {'min s':>9} {'ratio':>7}")
        for label in commands:
            median, least = medians[label], minimums[label]
            print(
                f"{label:<38} {median:9.4f} {median / bare:6.2f}x {least:9.4f} "
                f"{least / bare_min:6.2f}x"
            )
        ratio = medians["lkm show MODULE"] / bare
        print(f"lkm show / python3 -c pass (medians, console script): {ratio:.2f}x")
        # Through pip's console script, whose own ``import re`` comes first: the 2.0x target is
        # for lkm started directly, which startup.py measures.
        row("show", f"lkm show of one xz module ({os.path.getsize(module) // 1024} KiB), "
            "through the console script", lkm=medians["lkm show MODULE"],
            reference="python3 -c pass", reference_value=bare, target=None,
            samples=options.rounds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
