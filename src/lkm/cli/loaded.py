"""``lkm loaded [--tree]``: the loaded modules, or who holds whom as a tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option

if TYPE_CHECKING:
    from lkm.cli.output import Printer
    from lkm.loaded import LoadedModule, TreeNode
    from lkm.system import System

VERB = "loaded"

OPTIONS = (Option("t", "tree"),)

USAGE = """\
Usage: {prog} [--tree] [--json]

The loaded modules (/proc/modules and /sys/module): size, use count, state, the modules
holding each one and those it holds, taint. Modules built into the kernel are not listed.

Options:
  -t, --tree             who holds whom: the modules nobody holds, each with the modules it
                         uses below it
"""

_COLUMNS = ("MODULE", "SIZE", "REFS", "STATE", "TAINT", "HOLDERS", "HOLDS")


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm loaded`` on ``system`` (default: the running one)."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse, print_json
    from lkm.loaded import loaded, tree
    from lkm.state import StateError
    from lkm.system import System

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, tree=False, printer=printer)
        if isinstance(parsed, int):
            return parsed
        if parsed.operands:
            printer.error("too many arguments provided.")
            return 1
        as_tree = any(key == "t" for key, _ in parsed.options)
        try:
            modules = loaded(system or System.running())
        except StateError as err:
            printer.error(str(err))
            return 1
        if parsed.json:
            print_json(printer, VERB, tree(modules) if as_tree else modules)
            return 0
        for module in modules:
            for problem in module.problems:
                printer.error(problem)
        if as_tree:
            for root in tree(modules):
                _print_node(printer, root, 0)
        else:
            _print_table(printer, modules)
        return 0
    finally:
        printer.stdout.flush()


def _print_table(printer: Printer, modules: Sequence[LoadedModule]) -> None:
    rows = [_COLUMNS] + [
        (
            m.name,
            str(m.size),
            "-" if m.refcount is None else str(m.refcount),
            m.state,
            m.taint or "-",
            ",".join(m.holders) or "-",
            ",".join(m.holds) or "-",
        )
        for m in modules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        cells = [
            cell.rjust(width) if i in (1, 2) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        printer.out("  ".join(cells).rstrip() + "\n")


def _print_node(printer: Printer, node: TreeNode, depth: int) -> None:
    printer.out("  " * depth + node.name + (" (cycle)" if node.cycle else "") + "\n")
    for child in node.children:
        _print_node(printer, child, depth + 1)
