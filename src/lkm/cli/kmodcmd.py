"""``kmod`` itself: ``kmod list``, ``kmod static-nodes``, ``kmod help`` and ``kmod -V``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.system import System

HELP = """\
kmod - Manage kernel modules: list, load, unload, etc
Usage:
\tkmod [options] command [command_options]

Options:
\t-V, --version     show version
\t-h, --help        show this help

Commands:
  help         show help message
  list         list currently loaded modules
  static-nodes output the static-node information installed with the currently running kernel

kmod also handles gracefully if called from following symlinks:
  lsmod        compat lsmod command
  rmmod        compat rmmod command
  insmod       compat insmod command
  modinfo      compat modinfo command
  modprobe     compat modprobe command
  depmod       compat depmod command
"""

KMOD_OPTIONS = (Option("V", "version"), Option("h", "help"))


class Roots(NamedTuple):
    """Where the kernel's state and the running release's module directory are read."""

    procfs: str = "/proc"
    sysfs: str = "/sys"
    moddir: str | None = None  # default: /lib/modules/$(uname -r)


# ----------------------------------------------------------------------------- static-nodes

STATIC_NODES_USAGE = """\
Usage:
\t{prog} static-nodes [options]

kmod static-nodes outputs the static-node information of the currently running kernel.

Options:
\t-f, --format=FORMAT  choose format to use: see "Formats"
\t-o, --output=FILE    write output to file
\t-h, --help           show this help

Formats:
\thuman        (default) a human readable format. Do not parse.
\ttmpfiles     the tmpfiles.d(5) format used by systemd-tmpfiles.
\tdevname      the modules.devname format.
"""

FORMATS = ("human", "tmpfiles", "devname")

STATIC_NODES_OPTIONS = (
    Option("f", "format", has_arg=True, kind="choice", choices=FORMATS),
    Option("o", "output", has_arg=True, kind="file"),
    Option("h", "help"),
)


class DeviceNode(NamedTuple):
    """A line of ``modules.devname``: the module, its node under /dev, type, major, minor."""

    module: str
    devname: str
    type: str  # "c" or "b"
    major: int
    minor: int


def _scan_unsigned(text: str) -> tuple[int, str] | None:
    """scanf's ``%u``: white space, a sign, digits; a negative number wraps to 32 bits."""
    rest = text.lstrip()
    sign = -1 if rest[:1] == "-" else 1
    if rest[:1] in "+-" and rest[:1]:
        rest = rest[1:]
    digits = len(rest) - len(rest.lstrip("0123456789"))
    if digits == 0:
        return None
    return (sign * int(rest[:digits])) & 0xFFFFFFFF, rest[digits:]


def parse_devname_line(line: str) -> DeviceNode | None:
    """One entry, read like ``sscanf(line, "%s %s %c%u:%u")``; None when it does not fit."""
    parts = line.split(None, 2)
    if len(parts) < 3:
        return None
    module, devname, rest = parts
    kind, rest = rest[0], rest[1:]
    if kind not in "cb":
        return None
    major = _scan_unsigned(rest)
    if major is None or not major[1].startswith(":"):
        return None
    minor = _scan_unsigned(major[1][1:])
    if minor is None:
        return None
    return DeviceNode(module, devname, kind, major[0], minor[0])


def format_node(node: DeviceNode, style: str) -> str:
    if style == "devname":
        return f"{node.module} {node.devname} {node.type}{node.major}:{node.minor}\n"
    if style == "tmpfiles":
        out = ""
        directory = os.path.dirname(node.devname)
        if directory:
            out = f"d /dev/{directory} 0755 - - -\n"
        return out + f"{node.type}! /dev/{node.devname} 0600 - - - {node.major}:{node.minor}\n"
    kind = "character" if node.type == "c" else "block"
    return (
        f"Module: {node.module}\n\tDevice node: /dev/{node.devname}\n"
        f"\t\tType: {kind} device\n\t\tMajor: {node.major}\n\t\tMinor: {node.minor}\n"
    )


def static_nodes(args: Sequence[str], printer: Printer, *, moddir: str | None = None) -> int:
    """``kmod static-nodes``; ``moddir`` defaults to the running kernel's module directory."""
    try:
        parsed, _operands = getopt_long(args, STATIC_NODES_OPTIONS)
    except UsageError as err:
        printer.raw_error(f"static-nodes: {err}")
        return 1
    style = "human"
    output: str | None = None
    for key, value in parsed:
        if key == "f":
            if value not in FORMATS:
                printer.raw_error(f"Unknown format: '{value}'.")
                printer.out(STATIC_NODES_USAGE.format(prog=printer.prog))
                return 1
            style = value
        elif key == "o":
            output = value
        elif key == "h":
            printer.out(STATIC_NODES_USAGE.format(prog=printer.prog))
            return 0
    if moddir is None:
        moddir = f"/lib/modules/{os.uname().release}"
    path = f"{moddir}/modules.devname"
    try:
        with open(path, "rb") as file:
            text = file.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        printer.raw_error(f"Warning: {path} not found - ignoring")
        return 0
    except OSError as err:
        printer.raw_error(f"Error: could not open {path} - {err.strerror}")
        return 1
    status = 0
    chunks = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        node = parse_devname_line(line)
        if node is None:
            printer.raw_error(f"Error: invalid devname entry: {line}")
            status = 1
            continue
        chunks.append(format_node(node, style))
    if output is None:
        printer.out("".join(chunks))
        return status
    try:
        with open(output, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write("".join(chunks))
    except OSError:
        # kmod 34 says nothing and succeeds when it cannot create the output file.
        return status
    return status


# ----------------------------------------------------------------------------- kmod


def main(
    args: Sequence[str],
    prog: str = "kmod",
    *,
    roots: Roots | None = None,
    system: System | None = None,
) -> int:
    """``kmod`` on ``system`` (default: the running one); ``roots`` replaces its places."""
    from lkm.system import System

    system = system or System()
    if roots is None:
        roots = Roots(system.procfs, system.sysfs, system.module_dir())
    elif roots.moddir is None:
        roots = roots._replace(moddir=system.module_dir())
    printer = Printer(prog)
    try:
        return _dispatch(args, printer, roots)
    finally:
        printer.stdout.flush()


def _dispatch(args: Sequence[str], printer: Printer, roots: Roots) -> int:
    # Options before the command belong to kmod; the command's own follow it.
    try:
        parsed, operands = getopt_long(args, KMOD_OPTIONS, permute=False)
    except UsageError as err:
        printer.raw_error(f"kmod: {err}")
        return 1
    for key, _value in parsed:
        if key == "V":
            from lkm.cli.common import print_version

            print_version(printer)
            return 0
        if key == "h":
            printer.out(HELP)
            return 0
    if not operands:
        printer.raw_error("missing command")
        printer.out(HELP)
        return 1
    command, rest = operands[0], operands[1:]
    if command == "help":
        printer.out(HELP)
        return 0
    if command == "list":
        from lkm.cli.lsmod import main as lsmod_main

        return lsmod_main(rest, printer.prog, procfs=roots.procfs, sysfs=roots.sysfs)
    if command == "static-nodes":
        return static_nodes(rest, printer, moddir=roots.moddir)
    printer.raw_error(f"invalid command '{command}'")
    printer.out(HELP)
    return 1


def list_main(args: Sequence[str]) -> int:
    """``lkm list``: ``kmod list``, with lkm's own name in its messages."""
    return main(["list", *args], "lkm")


def static_nodes_main(args: Sequence[str]) -> int:
    """``lkm static-nodes``: ``kmod static-nodes``, with lkm's own name in its messages."""
    return main(["static-nodes", *args], "lkm")
