"""Loading and unloading: lkm against kmod 34 on a real kernel, and lsmod's start-up on the host.

    python benchmarks/load.py [--rounds N] [--startup-rounds N]

1. In one QEMU boot of the trixie 6.12 kernel (tests/vm, lkm.sandbox): a module with four
   dependencies (nf_conntrack_ftp: nf_conntrack, nf_defrag_ipv6, nf_defrag_ipv4, libcrc32c;
   xz files the kernel decompresses itself) is loaded with ``modprobe`` and removed with
   ``modprobe -r`` (one process each), then loaded with insmod in dependency order and removed
   with rmmod in reverse (one process per module), by lkm and by kmod 34 in alternating rounds;
   the guest times each round. ``lsmod`` and ``python3 -c pass`` are timed there too. The guest
   is emulated (TCG), so its absolute times are slow; the ratios are what count.
2. On the host, which has no module support, ``lkm lsmod`` against ``python3 -c pass`` in a
   private mount namespace where a fake ``/proc`` and ``/sys/module`` list 100 modules.

Prints median seconds and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "vm"))

import harness

from _report import row
from support import world

TARGET = "nf_conntrack_ftp"


def load_order(moddir: Path, name: str) -> list[str]:
    """Module paths (relative to moddir) to insmod for ``name``, dependencies first."""
    deps: dict[str, list[str]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {Path(p).name.split(".")[0].replace("-", "_"): p for p in deps}
    order: list[str] = []

    def visit(path: str) -> None:
        for dependency in deps[path]:
            visit(dependency)
        if path not in order:
            order.append(path)

    visit(by_name[name])
    return order


GUEST_SCRIPT = """
now() {{ date +%s%N; }}
# Once, untimed: the soft dependencies of libcrc32c (crc32c) load and stay, in use by the kernel.
$LKM modprobe -d {root} {target} && $LKM modprobe -r -d {root} {target} {rmmods_after}
for round in $(seq {rounds}); do
  for tool in lkm kmod; do
    if [ $tool = lkm ]; then run="$LKM"; root={root}; else run="$KMOD"; root={chroot_root}; fi
    start=$(now)
    $run modprobe -d $root {target} || echo "modprobe failed ($tool)"
    # -r takes the module and the dependencies it leaves unused (one level), then the others.
    $run modprobe -r -d $root {target} {rmmods_after} || echo "modprobe -r failed ($tool)"
    echo "$tool $(( $(now) - start ))" >> /tmp/modprobe.times
  done
done
# modprobe -r took libcrc32c's soft dependencies too: insmod loads none, and the kernel's own
# request for crc32c cannot reach a modprobe in this guest.
$LKM modprobe -d {root} crc32c
for round in $(seq {rounds}); do
  for tool in lkm kmod; do
    if [ $tool = lkm ]; then run="$LKM"; base={moddir}; else run="$KMOD"; base={chroot_moddir}; fi
    start=$(now)
    for m in {insmods}; do $run insmod $base/$m || echo "insmod $m failed ($tool)"; done
    for m in {rmmods}; do $run rmmod $m || echo "rmmod $m failed ($tool)"; done
    echo "$tool $(( $(now) - start ))" >> /tmp/load.times
  done
done
for round in $(seq {startup_rounds}); do
  for what in lkm kmod python; do
    start=$(now)
    case $what in
      lkm) $LKM lsmod > /dev/null;;
      kmod) $KMOD lsmod > /dev/null;;
      python) {python} -c pass;;
    esac
    echo "$what $(( $(now) - start ))" >> /tmp/lsmod.times
  done
done
"""


def medians(path: Path) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        tool, nanoseconds = line.split()
        samples.setdefault(tool, []).append(int(nanoseconds) / 1e9)
    return {tool: statistics.median(values) for tool, values in samples.items()}


def guest_figures(rounds: int, startup_rounds: int) -> dict[str, dict[str, float]]:
    guest = harness.guest("trixie-amd64")
    tree = world.tree("trixie-amd64")
    order = load_order(guest.moddir, TARGET)
    names = [Path(p).name.split(".")[0] for p in order]
    script = GUEST_SCRIPT.format(
        rounds=rounds,
        startup_rounds=startup_rounds,
        target=TARGET,
        rmmods_after=" ".join(reversed(names[:-2])),
        root=tree.root,
        chroot_root=tree.chroot_root,
        moddir=guest.moddir,
        chroot_moddir="/" + str(guest.moddir.relative_to(world.CHROOT)),
        insmods=" ".join(order),
        rmmods=" ".join(reversed(names)),
        python=sys.executable,
    )
    out = Path(tempfile.mkdtemp(prefix="lkm-load-bench-"))
    run = harness.boot(guest, script, out, timeout=3600)
    log = (out / "console.log").read_text() if (out / "console.log").exists() else ""
    if run.status != 0 or "failed" in log:
        raise SystemExit(f"the guest run failed (status {run.status}):\n{log}{run.console[-2000:]}")
    print(f"module: {TARGET}, load order: {' '.join(names)}")
    return {what: medians(out / f"{what}.times") for what in ("modprobe", "load", "lsmod")}


FAKE_NAMESPACE = """
set -e
mount -t tmpfs fake {fake}
mkdir -p {fake}/proc {fake}/module
{python} -c '
import os, sys
base = sys.argv[1]
with open(base + "/proc/modules", "w") as proc:
    for i in range(100):
        name = f"mod{{i:03}}"
        holders = f"mod{{i + 1:03}}," if i % 3 == 0 and i < 99 else "-"
        proc.write(f"{{name}} {{16384 * (i + 1)}} 0 {{holders}} Live 0x0000000000000000\\n")
        d = f"{{base}}/module/{{name}}"
        os.makedirs(d + "/holders")
        for leaf, value in (("initstate", "live"), ("refcnt", "0"), ("coresize", 16384)):
            with open(f"{{d}}/{{leaf}}", "w") as f:
                f.write(f"{{value}}\\n")
' {fake}
mount --bind {fake}/proc /proc
mount --bind {fake}/module /sys/module
{python} {this} --inner {rounds}
"""


def inner(rounds: int) -> None:
    """Inside the namespace: alternate ``python3 -c pass`` and ``lkm lsmod``, print medians."""
    script = os.path.join(os.path.dirname(sys.executable), "lkm")
    commands = {"python": [sys.executable, "-c", "pass"], "lkm": [script, "lsmod"]}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - start)
    for name, values in samples.items():
        print(name, statistics.median(values))


def host_figures(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as fake:
        script = FAKE_NAMESPACE.format(
            fake=fake, python=sys.executable, this=Path(__file__).resolve(), rounds=rounds
        )
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            capture_output=True,
            text=True,
            check=True,
        )
    return {
        name: float(value) for name, value in (line.split() for line in done.stdout.splitlines())
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--startup-rounds", type=int, default=20)
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inner:
        inner(options.inner)
        return 0
    import compileall

    import lkm

    # As installed: with its bytecode (this environment sets PYTHONDONTWRITEBYTECODE).
    compileall.compile_dir(os.path.dirname(lkm.__file__), quiet=1)
    host = host_figures(options.startup_rounds)
    guest = guest_figures(options.rounds, max(5, options.startup_rounds // 4))
    modprobe, load, lsmod = guest["modprobe"], guest["load"], guest["lsmod"]
    print(f"{'measurement (median seconds)':<52} {'seconds':>9}")
    rows = {
        "guest: modprobe + modprobe -r, kmod 34": modprobe["kmod"],
        "guest: modprobe + modprobe -r, lkm": modprobe["lkm"],
        "guest: insmod 5 + rmmod 5, kmod 34": load["kmod"],
        "guest: insmod 5 + rmmod 5, lkm": load["lkm"],
        "guest: kmod lsmod": lsmod["kmod"],
        "guest: lkm lsmod": lsmod["lkm"],
        "guest: python3 -c pass": lsmod["python"],
        "host: python3 -c pass": host["python"],
        "host: lkm lsmod (100 fake modules)": host["lkm"],
    }
    for label, seconds in rows.items():
        print(f"{label:<52} {seconds:9.3f}")
    print()
    print(f"guest modprobe load+unload, lkm / kmod: {modprobe['lkm'] / modprobe['kmod']:6.2f}x")
    print(f"guest insmod+rmmod x5, lkm / kmod:      {load['lkm'] / load['kmod']:6.2f}x")
    print(f"guest lsmod, lkm / python3 -c pass:   {lsmod['lkm'] / lsmod['python']:6.2f}x")
    print(f"host lsmod, lkm / python3 -c pass:    {host['lkm'] / host['python']:6.2f}x")
    guest_rounds = max(5, options.startup_rounds // 4)
    for case, figures, reference, samples in (
        (f"guest: modprobe {TARGET} + modprobe -r", modprobe, "kmod", options.rounds),
        ("guest: insmod 5 + rmmod 5", load, "kmod", options.rounds),
        ("guest: lsmod", lsmod, "kmod", guest_rounds),
        ("guest: lsmod", lsmod, "python", guest_rounds),
        ("host: lsmod of 100 fake modules", host, "python", options.startup_rounds),
    ):
        name = {"kmod": "kmod 34", "python": "python3 -c pass"}[reference]
        row("load", case, lkm=figures["lkm"], reference=name,
            reference_value=figures[reference], samples=samples)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
