"""``lkm links install DIR`` and ``lkm links remove DIR``: try lkm's tools first on PATH."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

PROG = "links"

OPTIONS = (Option("h", "help"),)

USAGE = """\
Usage:
\tlkm links install DIR
\tlkm links remove DIR
install puts in DIR a link named after each of kmod's tools, each starting lkm as that tool:
	{tools}
With DIR first on PATH they run instead of kmod's, which stays installed. A file there that
is not a link to lkm is never replaced. remove takes the links to lkm away again and leaves
any other file.
Options:
\t-h, --help   show this help
"""


def main(args: Sequence[str], prog: str = PROG) -> int:
    from lkm.cli.commands import TOOLS

    printer = Printer(f"lkm {prog}")
    try:
        return _run(args, printer, TOOLS)
    finally:
        printer.stdout.flush()


def _run(args: Sequence[str], printer: Printer, tools: Sequence[str]) -> int:
    from lkm.links import Change, LinkError, install_links, remove_links

    try:
        parsed, operands = getopt_long(args, OPTIONS)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    if parsed:
        printer.out(USAGE.format(tools=" ".join(tools)))
        return 0
    if len(operands) != 2 or operands[0] not in ("install", "remove"):
        printer.error("expected 'install DIR' or 'remove DIR'.")
        return 1
    program = _program()
    if program is None:
        printer.error("cannot find the lkm program to link to; run this as lkm.")
        return 1
    action, directory = operands[0], Path(operands[1])
    run = install_links if action == "install" else remove_links
    try:
        records = run(directory, program, tools)
    except LinkError as err:
        printer.error(str(err))
        return 1
    status = 0
    for record in records:
        if record.change is Change.NOT_OURS:
            printer.error(f"{record.path}: not a link to lkm; left alone")
            status = 1
        elif record.change is Change.REMOVED:
            printer.out(f"removed {record.path}\n")
        elif record.change is not Change.ABSENT:
            printer.out(f"{record.change.value} {record.path} -> {record.target}\n")
    return status


def _program() -> Path | None:
    """The ``lkm`` program this runs as: the script started, else the one installed beside
    this Python (``python -m lkm``), else the first on PATH."""
    import shutil

    started = Path(sys.argv[0])
    if started.name == "lkm" and started.is_file():
        return started.absolute()
    beside = Path(sys.executable).parent / "lkm"
    if beside.is_file():
        return beside
    found = shutil.which("lkm")
    return Path(found) if found else None
