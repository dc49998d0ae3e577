"""Start-up of short lkm commands against ``python3 -c pass`` with the same interpreter.

    python benchmarks/startup.py [--rounds N] [--no-callgrind] [--no-importtime]

Commands: ``lkm --version``; ``lsmod`` on a small system; ``modprobe -R ALIAS`` and ``modinfo``
and ``lkm show`` of one ``.ko.xz`` module, both on the trixie amd64 tree of the test world
(tests/support/world.py prepares it). lkm's bytecode is compiled first, as an installed package
has it, and PYTHONDONTWRITEBYTECODE is dropped from the children's environment.

Each command is started three ways, all with this interpreter and no shim in front of it:
``direct`` (``python3 -c 'from lkm.cli import main ...'``, what a three-line script installed
by a distribution does), ``-m`` (``python3 -m lkm``, through runpy) and ``script`` (the console
script pip generates, whose first line is ``import re``). Every command runs once per round, in
turn (a busy moment weighs on all alike); the table shows medians and their ratio to
``python3 -c pass``. The load average is printed first: ratios from a busy machine are noisy.
Instruction counts (valgrind's callgrind, one run each, when valgrind is installed) are stable
on a noisy machine; the last column is their ratio to ``python3 -c pass``'s. Then, per command,
the modules whose import took longest (``python3 -X importtime``, cumulative microseconds).

Without ``/proc/modules`` (a container), lsmod needs a system to list: the benchmark then runs
itself again in a private mount namespace (``unshare -m``, as root) where a small fake ``/proc``
(``modules``, and ``self`` leading to the real one) and ``/sys/module`` (four modules) are
mounted over the real ones; every command, the baseline too, runs in it.

Targets: ``--version``, ``lsmod`` and ``modprobe -R`` at most 1.5x, ``modinfo`` and ``show`` of
one xz module at most 2.0x (started directly).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import row
from support import world

ALIAS = "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"  # e1000e
TARGETS = {"--version": 1.5, "lsmod": 1.5, "modprobe -R": 1.5, "modinfo": 2.0, "show": 2.0}
SMALL_SYSTEM = {  # name: (size, holders)
    "ext4": (1036288, ()),
    "mbcache": (16384, ("ext4",)),
    "jbd2": (192512, ("ext4",)),
    "crc16": (12288, ("ext4",)),
}


def _make_small_system(where: Path) -> None:
    """A ``/proc/modules`` and ``/sys/module`` of four live modules."""
    (where / "proc").mkdir()
    lines = []
    for name, (size, holders) in SMALL_SYSTEM.items():
        used = "".join(f"{h}," for h in holders) or "-"
        users = sum(name in other for _size, other in SMALL_SYSTEM.values())
        lines.append(f"{name} {size} {users} {used} Live 0x0000000000000000\n")
        module = where / "sys" / "module" / name
        (module / "holders").mkdir(parents=True)
        (module / "initstate").write_text("live\n")
        (module / "refcnt").write_text(f"{users}\n")
        (module / "coresize").write_text(f"{size}\n")
    for name, (_size, holders) in SMALL_SYSTEM.items():
        for holder in holders:
            (where / "sys" / "module" / name / "holders" / holder).symlink_to(f"../../{holder}")
    (where / "proc" / "modules").write_text("".join(lines))


def _in_small_system() -> int:
    """Run this benchmark again where /proc and /sys/module show the small system."""
    scratch = Path(tempfile.mkdtemp(prefix="lkm-startup-"))
    try:
        _make_small_system(scratch)
        # The real /proc stays reachable for what needs /proc/self (valgrind does).
        (scratch / "realproc").mkdir()
        for name in ("self", "thread-self"):
            (scratch / "proc" / name).symlink_to(scratch / "realproc" / name)
        script = (
            f"mount --rbind /proc {scratch}/realproc && "
            f"mount --bind {scratch}/proc /proc && "
            f"mount --bind {scratch}/sys/module /sys/module && "
            'exec "$@"'
        )
        argv = [sys.executable, *sys.argv, "--small-system-mounted"]
        unshare = ["unshare", "-m", "sh", "-c", script, "sh", *argv]
        return subprocess.run(unshare, check=False).returncode
    finally:
        shutil.rmtree(scratch)


def _run(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds taken by ``cmd``; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0 or done.stderr:
        raise SystemExit(f"{' '.join(cmd)}: exit status {done.returncode}: {done.stderr!r}")
    return seconds


def _instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    """Instructions ``cmd`` executes, counted by callgrind (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=True,
    )
    for line in done.stderr.decode().splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    return None


def _importtime(cmd: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """The ``top`` imports with the largest cumulative time, in microseconds."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=True,
    )
    found = []
    for line in done.stderr.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, name = line.split(":", 1)[1].split("|")
            if cumulative.strip().isdigit():
                found.append((int(cumulative), name.rstrip()))
    return sorted(found, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--no-importtime", action="store_true")
    parser.add_argument("--small-system-mounted", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if not options.small_system_mounted and not os.path.exists("/proc/modules"):
        return _in_small_system()

    import compileall

    import lkm

    compileall.compile_dir(os.path.dirname(lkm.__file__), quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    tree = world.tree("trixie-amd64")
    every = world.tree("trixie-amd64").modules()
    module = str(every[len(every) // 2])  # what benchmarks/modinfo.py shows
    python = sys.executable
    direct = [python, "-c", "import sys; from lkm.cli import main; sys.exit(main())"]
    ways = {
        "direct": direct,
        "-m": [python, "-m", "lkm"],
        "script": [os.path.join(os.path.dirname(python), "lkm")],
    }
    commands = {
        "--version": ["--version"],
        "lsmod": ["lsmod"],
        "modprobe -R": ["modprobe", "-R", ALIAS, "-d", str(tree.root), "-S", tree.kver],
        "modinfo": ["modinfo", module],
        "show": ["show", module],
    }
    runs = {"python3 -c pass": [python, "-c", "pass"]}
    for label, args in commands.items():
        for way, start in ways.items():
            runs[f"{label} ({way})"] = start + args

    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cores: {os.cpu_count()}")
    print(f"python: {python} {sys.version.split()[0]}; module: {module}")
    print(f"{options.rounds} runs of each, alternating")
    samples: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(options.rounds):
        for label, cmd in runs.items():
            samples[label].append(_run(cmd, env))
    medians = {label: statistics.median(times) for label, times in samples.items()}
    counts = {
        label: (None if options.no_callgrind else _instructions(cmd, env))
        for label, cmd in runs.items()
    }
    bare, bare_count = medians["python3 -c pass"], counts["python3 -c pass"]
    print()
    print(f"{'command':<26} {'median ms':>9} {'ratio':>7} {'instr. M':>9} {'ratio':>7} target")
    for label in runs:
        median, count = medians[label], counts[label]
        line = f"{label:<26} {median * 1000:9.1f} {median / bare:6.2f}x"
        if count is not None and bare_count:
            line += f" {count / 1e6:9.1f} {count / bare_count:6.2f}x"
        else:
            line += f" {'-':>9} {'-':>7}"
        target = TARGETS.get(label.rsplit(" (", 1)[0])
        if target is not None and label.endswith("(direct)"):
            line += f" {target:.1f}x {'ok' if median / bare <= target else 'MISSED'}"
        print(line)
    for label in commands:
        median, count = medians[f"{label} (direct)"], counts[f"{label} (direct)"]
        instructions = f"instructions {count / bare_count:.2f}x" if count and bare_count else ""
        case = {"lsmod": "lsmod, small system", "modinfo": "modinfo of one xz module",
                "show": "show of one xz module"}.get(label, label)  # fmt: skip
        row("startup", f"lkm {case}", lkm=median, reference="python3 -c pass",
            reference_value=bare, target=TARGETS.get(label), samples=options.rounds,
            note=instructions)  # fmt: skip
    if not options.no_importtime:
        for label, args in commands.items():
            print(f"\npython3 -X importtime, {label} (direct): slowest imports, cumulative")
            for micros, name in _importtime(direct + args, env, 8):
                print(f"  {micros / 1000:7.1f} ms  {name.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
