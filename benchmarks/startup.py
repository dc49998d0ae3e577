"""Start-up of short lkm commands against ``python3 -c pass`` with the same interpreter.

    python benchmarks/startup.py [--rounds N] [--no-callgrind] [--no-importtime]

Commands: ``lkm --version``; ``lsmod`` on a small system; ``modprobe -R ALIAS``; ``modinfo``
and ``lkm show`` of two ``.ko.xz`` modules of the trixie amd64 tree of the test world
(tests/support/world.py prepares it): the one of median size (a typical module, about 9 KiB,
which the targets are about) and the one ``benchmarks/modinfo.py`` shows (``bnxt_en``, about
200 KiB), beside ``python3 -c`` decompressing that one with ``lzma`` alone, which is what any
Python program pays for it. lkm decompresses a module named on the command line in a thread
while its code is imported (lkm.readahead), so on two free cores its time mostly hides that of
the imports; on one, or a busy machine, it adds to it. lkm's bytecode is compiled first, as an
installed package has it, and PYTHONDONTWRITEBYTECODE is dropped from the children's
environment.

Each command is started three ways, all with this interpreter and no shim in front of it:
``direct`` (``python3 -c 'from lkm.cli import main ...'``, what a three-line script installed
by a distribution does), ``-m`` (``python3 -m lkm``, through runpy, which imports about 15
modules of its own) and ``script`` (the console script pip generates: its first line is
``import re``, which costs about a third of a bare interpreter's start-up before lkm's code
runs; a distribution's package or a link made by ``lkm links`` avoids it). The console script
must start this same interpreter (its first line is checked). Every command runs once per
round, in turn (a busy moment weighs on all alike); the table shows medians and minimums and
their ratios to ``python3 -c pass``'s. The load average is printed first: ratios from a busy
machine are noisy. Instruction counts are stable on a noisy machine: ``perf stat -e
instructions:u`` where the processor's counters can be read, else valgrind's callgrind (one run
each, when valgrind is installed; a virtual machine often has no counters); the last column
is their ratio to ``python3 -c pass``'s. Then, per command, the modules whose import took
longest (``python3 -X importtime``, cumulative microseconds).

Without ``/proc/modules`` (a container), lsmod needs a system to list: the benchmark then runs
itself again in a private mount namespace (``unshare -m``, as root) where a small fake ``/proc``
(``modules``, and ``self`` leading to the real one) and ``/sys/module`` (four modules) are
mounted over the real ones; every command, the baseline too, runs in it.

Targets: ``--version``, ``lsmod`` and ``modprobe -R`` at most 1.5x, ``modinfo`` and ``show`` of
one (typical) xz module at most 2.0x (started directly).
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
BIG = "200 KiB"  # the label of the commands on the large module
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
    """Instructions ``cmd`` executes in user space: perf's count where the processor's counters
    can be read, else callgrind's (None with neither)."""
    counted = _perf_instructions(cmd, env)
    if counted is not None:
        return counted
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


def _perf_instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    """``perf stat -e instructions:u``'s count, or None without perf or without counters."""
    if shutil.which("perf") is None:
        return None
    done = subprocess.run(
        ["perf", "stat", "-x,", "-e", "instructions:u", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    for line in done.stderr.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
            return int(fields[0])
    return None


def _counter() -> str:
    """Which counter ``_instructions`` uses on this machine."""
    probe = [sys.executable, "-c", "pass"]
    if _perf_instructions(probe, dict(os.environ)) is not None:
        return "perf stat -e instructions:u"
    return "callgrind" if shutil.which("valgrind") else "none"


def _same_interpreter(script: str) -> None:
    """Stop unless the console script starts the interpreter that runs this benchmark."""
    with open(script, "rb") as stream:
        first = stream.readline()
    shebang = first[2:].decode().strip() if first.startswith(b"#!") else ""
    if os.path.realpath(shebang) != os.path.realpath(sys.executable):
        raise SystemExit(f"{script} starts {shebang or 'no interpreter'}, not {sys.executable}")


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
    every = tree.modules()
    by_size = sorted(
        (p for p in every if p.name.endswith(".ko.xz")), key=lambda p: p.stat().st_size
    )
    module = str(by_size[len(by_size) // 2])  # a typical module
    big = str(every[len(every) // 2])  # what benchmarks/modinfo.py shows
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
        f"modinfo {BIG}": ["modinfo", big],
        f"show {BIG}": ["show", big],
    }
    _same_interpreter(ways["script"][0])
    decompress = f"import lzma; lzma.decompress(open({big!r}, 'rb').read())"
    runs = {"python3 -c pass": [python, "-c", "pass"]}
    for label, args in commands.items():
        for way, start in ways.items():
            runs[f"{label} ({way})"] = start + args
    runs[f"lzma alone {BIG}"] = [python, "-c", decompress]

    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cores: {os.cpu_count()}")
    print(f"python: {python} {sys.version.split()[0]}")
    print(f"modules: {module} ({os.path.getsize(module) // 1024} KiB, of median size);")
    print(f"         {big} ({os.path.getsize(big) // 1024} KiB)")
    print(f"{options.rounds} runs of each, alternating; instructions: ", end="")
    print("not counted" if options.no_callgrind else _counter())
    samples: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(options.rounds):
        for label, cmd in runs.items():
            samples[label].append(_run(cmd, env))
    medians = {label: statistics.median(times) for label, times in samples.items()}
    minimums = {label: min(times) for label, times in samples.items()}
    counts = {
        label: (None if options.no_callgrind else _instructions(cmd, env))
        for label, cmd in runs.items()
    }
    bare, bare_count = medians["python3 -c pass"], counts["python3 -c pass"]
    bare_min = minimums["python3 -c pass"]
    print()
    print(
        f"{'command':<28} {'median ms':>9} {'ratio':>7} {'min ms':>7} {'ratio':>7} "
        f"{'instr. M':>9} {'ratio':>7} target"
    )
    for label in runs:
        median, count, least = medians[label], counts[label], minimums[label]
        line = f"{label:<28} {median * 1000:9.1f} {median / bare:6.2f}x"
        line += f" {least * 1000:7.1f} {least / bare_min:6.2f}x"
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
        case = {"lsmod": "lsmod, small system",
                "modinfo": "modinfo of one xz module (typical)",
                "show": "show of one xz module (typical)",
                f"modinfo {BIG}": f"modinfo of one xz module ({BIG})",
                f"show {BIG}": f"show of one xz module ({BIG})"}.get(label, label)  # fmt: skip
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
