"""Run every benchmark in turn and write the table of benchmarks/README.md.

    python benchmarks/run.py [--quick] [--only NAME...] [--skip NAME...] [--no-readme]
                             [--rows FILE] [--wait-quiet SECONDS]

Checks first that the machine is quiet (its load average, and each core's speed on a fixed
loop, steady from sample to sample; a busy or unsteady machine is warned about, and its load and
core speeds written beside the figures), then runs each benchmark script with this interpreter,
its own table printed as it goes, while the script hands its rows over (benchmarks/_report.py).
At the end the table of every row replaces the results section of benchmarks/README.md, with
the date, the machine, the interpreter, the kernel, the lkm commit and the load averages.

``--quick`` runs each with few rounds to check the wiring: its figures are not measurements, so
it prints the section and leaves the README alone, as does a run of some of them (``--only``,
``--skip``), whose table would lack the others' rows. A script that is missing (one still being
written) is skipped with a line saying so; one that fails is named in the section.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _report

HERE = Path(__file__).resolve().parent
# In the order of the table: name, and the arguments of a --quick run.
BENCHMARKS: dict[str, list[str]] = {
    "depmod": ["--rounds", "1"],
    "depmod_incremental": ["--rounds", "1"],
    "modules_load": ["--rounds", "1"],
    "startup": ["--rounds", "3", "--no-importtime"],
    "show": ["--rounds", "3"],
    "modinfo": ["--rounds", "1", "--startup-rounds", "3"],
    "resolve": ["--sample", "3"],
    "closure": ["--rounds", "1", "--modules", "60"],
    "verify": ["--rounds", "1", "--sample", "200"],
    "load": ["--rounds", "1", "--startup-rounds", "4"],
}

# What a full run passes where a script's own default takes fewer than 5 rounds: every ratio in
# the table is a median of at least 5. verify's openssl loop over the whole tree takes about three
# minutes a round; 1,000 modules give the same per-module ratio in a fifth of the time.
FULL: dict[str, list[str]] = {
    "depmod": ["--rounds", "5"],
    "modinfo": ["--rounds", "5"],
    "verify": ["--rounds", "5", "--sample", "1000"],
}

# Above this one-minute load average per core the machine is not quiet.
QUIET_LOAD_PER_CORE = 0.25


@dataclass(frozen=True)
class Outcome:
    name: str
    status: int | None  # None: the script is missing
    seconds: float
    load: float  # one-minute load average when it started


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def quiet(load: float, cores: int) -> bool:
    return load <= QUIET_LOAD_PER_CORE * cores


# A core's samples of the loop below may differ by this much (slowest over fastest) on a
# steady machine.
STEADY_SPREAD = 1.10
_LOOP = 5_000_000  # about 75 ms


def core_speeds(samples: int = 3) -> dict[int, list[float]]:
    """Seconds of a fixed loop of bytecode on each core this process may run on, ``samples``
    times each, taking turns. On a shared host a core can run at a fraction of its speed for
    minutes, its time taken by another guest, while the load average (this machine's own
    work) stays low; lkm, which uses every core, then loses more than single-threaded kmod."""
    cpus = sorted(os.sched_getaffinity(0))
    speeds: dict[int, list[float]] = {cpu: [] for cpu in cpus}
    try:
        for _ in range(samples):
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                start = time.perf_counter()
                for _ in range(_LOOP):
                    pass
                speeds[cpu].append(time.perf_counter() - start)
    finally:
        os.sched_setaffinity(0, cpus)
    return speeds


def steady(speeds: dict[int, list[float]]) -> bool:
    """Every sample of every core within STEADY_SPREAD of the fastest."""
    every = [value for values in speeds.values() for value in values]
    return max(every) <= STEADY_SPREAD * min(every)


def describe_speeds(speeds: dict[int, list[float]]) -> str:
    return ", ".join(
        f"core {cpu} {min(values) * 1000:.0f}-{max(values) * 1000:.0f} ms"
        for cpu, values in speeds.items()
    )


def wait_quiet(limit: float, cores: int) -> None:
    """Wait up to ``limit`` seconds for the load average to fall below the quiet line and the
    cores to run steadily."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if quiet(load_average()[0], cores) and steady(core_speeds()):
            return
        time.sleep(15)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def commit() -> str:
    done = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def machine() -> dict[str, str]:
    cores = os.cpu_count() or 1
    load = load_average()
    speeds = core_speeds()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{cores} x {cpu_model()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{platform.system()} {platform.release()}",
        "commit": commit(),
        "load": " ".join(f"{value:.2f}" for value in load),
        "quiet": "yes" if quiet(load[0], cores) and steady(speeds) else "no",
        "speeds": f"{describe_speeds(speeds)} for a fixed loop"
        + ("" if steady(speeds) else " (**unsteady**)"),
    }


def section(info: dict[str, str], outcomes: list[Outcome], rows: list[_report.Row],
            quick: bool) -> str:  # fmt: skip
    """The README's results section: the run's circumstances, the table, each script's time."""
    lines = []
    if quick:
        lines += ["**Wiring check (`--quick`): too few rounds; these figures are not "
                  "measurements.**", ""]  # fmt: skip
    lines += [
        f"Measured {info['date']} on {info['cpus']}; {info['python']}; {info['kernel']};"
        f" lkm {info['commit']}. At the start: load average {info['load']}; {info['speeds']}"
        + ("" if info["quiet"] == "yes" else " (**not quiet**: wall-time ratios are noisy)")
        + ". Ratios are lkm / reference (below 1: lkm is faster); figures are medians.",
        "",
        _report.table(rows).rstrip("\n"),
        "",
    ]
    ran = [o for o in outcomes if o.status is not None]
    if ran:
        lines.append(
            "Time per script (load average at its start): "
            + ", ".join(f"{o.name} {o.seconds / 60:.1f} min ({o.load:.2f})" for o in ran)
            + f"; {sum(o.seconds for o in ran) / 60:.1f} min in all."
        )
    failed = [f"{o.name} (exit status {o.status})" for o in ran if o.status]
    missing = [o.name for o in outcomes if o.status is None]
    if failed:
        lines.append(f"Failed, so missing from the table: {', '.join(failed)}.")
    if missing:
        lines.append(f"Not run (no script yet): {', '.join(missing)}.")
    return "\n".join(lines) + "\n"


def write_section(readme: Path, text: str) -> None:
    """The results section of ``readme`` replaced by ``text`` (a temporary file renamed)."""
    new = _report.replace_section(readme.read_text(encoding="utf-8"), text)
    temporary = readme.with_name(readme.name + ".new")
    temporary.write_text(new, encoding="utf-8")
    os.replace(temporary, readme)


def run(name: str, quick: bool, rows_file: str) -> Outcome:
    script = HERE / f"{name}.py"
    load = load_average()[0]
    if not script.exists():
        print(f"run.py: {name}: no benchmarks/{name}.py, skipped", flush=True)
        return Outcome(name, None, 0.0, load)
    command = [sys.executable, str(script), *(BENCHMARKS[name] if quick else FULL.get(name, []))]
    print(f"\n===== {' '.join(command[1:])} (load average {load:.2f})", flush=True)
    start = time.monotonic()
    env = {**os.environ, _report.ROWS_VARIABLE: rows_file}
    status = subprocess.run(command, env=env, check=False).returncode
    return Outcome(name, status, time.monotonic() - start, load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: check the wiring")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=BENCHMARKS, default=[])
    parser.add_argument("--skip", nargs="+", metavar="NAME", choices=BENCHMARKS, default=[])
    parser.add_argument("--no-readme", action="store_true", help="print the section only")
    parser.add_argument("--rows", metavar="FILE", help="keep the rows (JSON lines) in FILE")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="wait up to this long for a quiet and steady machine")  # fmt: skip
    options = parser.parse_args()

    cores = os.cpu_count() or 1
    if options.wait_quiet:
        wait_quiet(options.wait_quiet, cores)
    info = machine()
    if info["quiet"] != "yes":
        print(f"run.py: warning: the machine is not quiet (load average {info['load']},"
              f" {cores} cores; {info['speeds']}): wall-time ratios will be noisy",
              file=sys.stderr)  # fmt: skip
    wanted = options.only or list(BENCHMARKS)
    names = [name for name in wanted if name not in options.skip]
    if options.rows:
        rows_file = options.rows
        Path(rows_file).write_text("")
    else:
        # Removed at the end only: if the run breaks off, the rows handed over so far stay.
        handle, rows_file = tempfile.mkstemp(prefix="lkm-bench-rows-", suffix=".jsonl")
        os.close(handle)
    print(f"run.py: rows go to {rows_file}", file=sys.stderr)
    outcomes = [run(name, options.quick, rows_file) for name in names]
    text = section(info, outcomes, _report.read_rows(rows_file), options.quick)
    print("\n" + text, end="")
    # Only a full run makes the README's table: a partial one would drop the others' rows.
    if not (options.quick or options.no_readme or options.only or options.skip):
        write_section(HERE / "README.md", text)
        print(f"run.py: {HERE / 'README.md'} written", file=sys.stderr)
    if not options.rows:
        os.unlink(rows_file)
    return 1 if any(o.status for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
