"""Boot-time loading: ``lkm modules-load`` against a loop of kmod 34's modprobe and trixie's
systemd-modules-load (systemd 257), on 40 modules of the trixie tree in a QEMU guest.

    python benchmarks/modules_load.py [--rounds N]

One boot of the trixie 6.12 kernel with 2 vCPUs (tests/vm/modules_load_guest.py says where each
loader runs): a first untimed round caches the module files, then each round loads the 40
names with each method in turn (lkm, systemd-modules-load, the modprobe loop), the guest
timing each load, and unloads everything before the next. The guest is emulated (TCG), so
absolute times are slow; the ratios are what count. Prints the median of each method and the
ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "vm"))

from modules_load_guest import MODULES, boot, paths, script, times

from _report import row

LABELS = {
    "lkm": "lkm modules-load (2 threads)",
    "systemd": "systemd-modules-load (systemd 257)",
    "kmod": "modprobe loop (kmod 34), one per name",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    import compileall

    import lkm

    # As installed: with its bytecode (the guest cannot write any).
    compileall.compile_dir(str(Path(lkm.__file__).parent), quiet=1)
    where = paths()
    out = Path(tempfile.mkdtemp(prefix="lkm-modules-load-bench-"))
    run = boot(where, script(where, options.rounds, outcomes=False), out, timeout=7200)
    problems = out / "problems"
    if run.status != 0 or problems.exists():
        detail = problems.read_text() if problems.exists() else run.console[-3000:]
        raise SystemExit(f"the guest run failed (status {run.status}):\n{detail}")
    statuses = {how: (out / f"{how}.list.rc").read_text().strip() for how in LABELS}
    if set(statuses.values()) != {"0"}:
        raise SystemExit(f"a loader failed: {statuses}")
    samples = times(out)
    median = {how: statistics.median(values) for how, values in samples.items()}
    print(f"{len(MODULES)} names, {options.rounds} rounds, guest under {run.accelerator}")
    print(f"{'loader (median seconds)':<44} {'seconds':>9} {'min':>7} {'max':>7}")
    for how, label in LABELS.items():
        values = samples[how]
        print(f"{label:<44} {median[how]:9.3f} {min(values):7.3f} {max(values):7.3f}")
    print()
    print(f"lkm / modprobe loop:          {median['lkm'] / median['kmod']:6.2f}x")
    print(f"lkm / systemd-modules-load:   {median['lkm'] / median['systemd']:6.2f}x")
    print(f"systemd / modprobe loop:      {median['systemd'] / median['kmod']:6.2f}x")
    accelerator = run.accelerator.split()[0]
    case = f"{len(MODULES)} modules loaded at boot, trixie guest (2 vCPUs, {accelerator})"
    for reference, name, target in (
        ("kmod", "a loop of kmod 34 modprobe", 0.5),
        ("systemd", "systemd-modules-load 257", 1.0),
    ):
        row("modules_load", case, lkm=median["lkm"], reference=name,
            reference_value=median[reference], samples=options.rounds, target=target)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
