"""``lkm drivers``: each device with a modalias, the modules that match it, its driver now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option

if TYPE_CHECKING:
    from lkm.drivers import Candidate, Device
    from lkm.system import System

VERB = "drivers"

OPTIONS = (Option(None, "sysfs", has_arg=True, kind="directory"),)

USAGE = """\
Usage:
\t{prog} [options]
For every device under SYSFS/bus/*/devices with a modalias: the modules that match it (as
modprobe -R finds them), whether each is loaded, built in or blacklisted, and the driver
bound to the device now.
Options:
      --sysfs=DIR        read the devices (and the loaded modules) from DIR, not /sys
"""


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm drivers`` on ``system`` (default: the running one)."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse, print_json
    from lkm.drivers import drivers
    from lkm.errors import LkmError

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
        if isinstance(parsed, int):
            return parsed
        if parsed.operands:
            printer.error("too many arguments provided.")
            return 1
        system = parsed.system(system)
        for key, value in parsed.options:
            if key == "sysfs" and value is not None:
                system = system._replace(sysfs=value)
        with parsed.module_directory(system) as moddir:
            records = drivers(system, moddir)
        if parsed.json:
            print_json(printer, VERB, records)
        else:
            for device in records:
                printer.out(render(device))
                if device.error is not None:
                    printer.error(device.error)
        return 1 if any(device.error is not None for device in records) else 0
    except LkmError as err:
        printer.error(str(err))
        return 1
    finally:
        printer.stdout.flush()


def render(device: Device) -> str:
    """One device's block of text: a heading line, then what is known of it, then a blank."""
    lines = [
        f"{device.bus} {device.name or '(bus)'}" + (f" {device.devpath}" if device.devpath else "")
    ]
    if device.modalias is not None:
        lines.append(f"  modalias: {device.modalias}")
        modules = ", ".join(_candidate_text(c) for c in device.candidates) or "(none)"
        lines.append(f"  modules:  {modules}")
    if device.driver is not None:
        module = f" (module {device.driver_module})" if device.driver_module else ""
        lines.append(f"  driver:   {device.driver}{module}")
    elif device.error is None:
        lines.append("  driver:   (none)")
    return "\n".join(lines) + "\n\n"


def _candidate_text(candidate: Candidate) -> str:
    marks = [
        word
        for word, on in (
            ("loaded", candidate.loaded),
            ("builtin", candidate.builtin),
            ("blacklisted", candidate.blacklisted),
        )
        if on
    ]
    return candidate.module + (f" ({', '.join(marks)})" if marks else "")
