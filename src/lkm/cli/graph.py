"""``lkm graph MOD|ALIAS...``: modules' dependencies as a Graphviz graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.graph import FORMATS

if TYPE_CHECKING:
    from lkm.system import System

VERB = "graph"

OPTIONS = (
    Option("T", "format", has_arg=True, kind="choice", choices=FORMATS),
    Option("o", "output", has_arg=True, kind="file"),
    Option("s", "softdeps"),
)

USAGE = """\
Usage: {prog} [options] MODULE|ALIAS...

The dependency graph of modules, as Graphviz's dot text, or drawn by Graphviz as SVG or PNG:
hard dependencies (modules.dep) solid, soft dependencies dashed and labelled pre or post, weak
dependencies dotted, built-in modules as grey boxes.

Options:
  -T, --format=FORMAT    dot (the default), svg or png (these two run Graphviz's dot)
  -o, --output=FILE      write to FILE (replaced whole) instead of standard output
  -s, --softdeps         also follow soft and weak dependencies to their own dependencies
"""


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm graph`` on ``system`` (default: the running one), as ``-b``/``-k``/``-C`` change
    it."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse
    from lkm.errors import LkmError
    from lkm.graph import graph, render, to_dot, write_file
    from lkm.resolve import Resolver

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
        if isinstance(parsed, int):
            return parsed
        output_format, output, softdeps = "dot", None, False
        for key, value in parsed.options:
            if key == "T" and value is not None:
                output_format = value
            elif key == "o":
                output = value
            elif key == "s":
                softdeps = True
        if output_format not in FORMATS:
            printer.error(f"unknown format '{output_format}': use {', '.join(FORMATS)}")
            return 1
        if not parsed.operands:
            printer.error("missing module or alias name.")
            return 1
        if parsed.json and output_format != "dot":
            printer.error("--json gives nodes and edges: it takes no --format")
            return 1
        try:
            with Resolver.open(system=parsed.system(system), cmdline=None) as resolver:
                graphs = graph(resolver, parsed.operands, softdeps=softdeps)
            failed = [g.error for g in graphs if g.error is not None]
            if parsed.json:
                data = _json(graphs)
            else:
                for error in failed:
                    printer.error(error)
                text = to_dot(graphs)
                data = (
                    text.encode("utf-8", "surrogateescape")
                    if output_format == "dot"
                    else render(text, output_format)
                )
            if output is None:
                printer.stdout.write(data)
            else:
                write_file(output, data)
        except LkmError as err:
            printer.error(str(err))
            return 1
        return 1 if failed else 0
    finally:
        printer.stdout.flush()


def _json(graphs: Sequence[object]) -> bytes:
    from lkm.jsonable import dumps

    return dumps(VERB, graphs).encode()


__all__ = ["OPTIONS", "USAGE", "main"]
