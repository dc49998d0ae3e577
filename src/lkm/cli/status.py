"""``lkm status MOD... [--want loaded|absent]``: where modules stand, as a check a playbook can
run (see :mod:`lkm.status`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.status import ModuleStatus, Step
    from lkm.system import System

USAGE = """\
Usage: {prog} [options] MODULE|ALIAS...

Where each module a name stands for is (built in, loaded, available in the tree, or missing)
and what the configuration does to it: the blacklist, options (modprobe.d and the kernel
command line merged as modprobe merges them), install and remove commands, each with the file
and line it comes from; whether systemd loads it at boot (modules-load.d, modules_load= on the
kernel command line); and what 'modprobe NAME' would do now.

Exit status: 0 when the wanted state holds for every module (or nothing is wanted), 1 when it
does not hold for one, 2 when a name stands for no module or the command line is wrong.
'--want loaded' holds for a module that is built in or live in the kernel; '--want absent'
for one the kernel does not have at all. A built-in module can never be absent.

Options:
      --want=loaded|absent  the state the exit status checks
"""
OPTIONS = (Option(None, "want", has_arg=True, kind="choice", choices=("loaded", "absent")),)

ERROR = 2  # a name that stands for nothing, a bad command line
UNSATISFIED = 1


def main(args: Sequence[str], system: System | None = None) -> int:
    printer = Printer("lkm status")
    try:
        return _run(args, printer, system)
    finally:
        printer.stdout.flush()


def _run(args: Sequence[str], printer: Printer, system: System | None) -> int:
    from lkm.cli.verb import parse, print_json
    from lkm.errors import LkmError
    from lkm.status import Want, status

    parsed = parse("status", args, USAGE, OPTIONS, printer=printer)
    if isinstance(parsed, int):
        return ERROR if parsed else 0
    want = None
    for _key, value in parsed.options:
        try:
            want = Want(value)
        except ValueError:
            printer.error(f"--want takes 'loaded' or 'absent', not '{value}'.")
            return ERROR
    if not parsed.operands:
        printer.error("missing module or alias name.")
        return ERROR
    system = parsed.system(system)
    try:
        with parsed.module_directory(system) as moddir:
            records = status(parsed.operands, system, moddir, want=want)
    except LkmError as err:
        printer.error(str(err))
        return ERROR
    if parsed.json:
        print_json(printer, "status", records)
    else:
        printer.out("".join(_text(record) for record in records))
        for record in records:
            if record.error is not None:
                printer.error(record.error)
    if any(record.error is not None for record in records):
        return ERROR
    return UNSATISFIED if any(record.satisfied is False for record in records) else 0


def _text(record: ModuleStatus) -> str:
    if record.error is not None or record.presence is None:
        return ""
    state = record.presence.value
    if record.loaded is not None:
        state += f" ({record.loaded})"
    head = record.module if record.query == record.module else f"{record.module} ({record.query})"
    lines = [f"{head}: {state}"]
    lines.append(f"  file: {record.path or '-'}")
    if record.blacklist:
        where = ", ".join(map(str, record.blacklist))
        note = "; modprobe skips it for this name" if record.blacklist_applies else ""
        lines.append(f"  blacklisted: {where}{note}")
    else:
        lines.append("  blacklisted: no")
    if record.options:
        lines.append(f"  options: {record.effective_options}")
        lines += [f"    {o.options}  ({o.source}{_for(o.name, record)})" for o in record.options]
    else:
        lines.append("  options: -")
    for label, rule in (("install", record.install), ("remove", record.remove)):
        lines.append(f"  {label}: " + (f"{rule.command}  ({rule.source})" if rule else "-"))
        if label == "install" and record.install_ignored:
            lines.append("    (not run: the module's softdeps find modules, so modprobe loads it)")
    if record.boot:
        for load in record.boot:
            extra = ", initrd only" if load.initrd else ""
            named = "" if load.name == record.module else f" as {load.name}"
            lines.append(f"  at boot: {load.source}{named}{extra}")
    else:
        lines.append("  at boot: no")
    if record.plan:
        lines += [f"  plan: {_step(step)}" for step in record.plan]
    else:
        lines.append("  plan: nothing to do")
    if record.want is not None:
        verdict = "holds" if record.satisfied else f"does not hold: {record.reason}"
        lines.append(f"  want {record.want.value}: {verdict}")
    return "\n".join(lines) + "\n"


def _step(step: Step) -> str:
    if step.line:
        return step.line.rstrip(" ")  # modprobe ends a line with a space when options are empty
    return f"nothing to load for {step.module} (no file, not built in)"


def _for(name: str, record: ModuleStatus) -> str:
    return "" if name == record.module else f", for {name}"
