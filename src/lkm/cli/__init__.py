"""The multi-call command line: ``lkm TOOL ...`` or a link named after the tool."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lkm import __version__

if TYPE_CHECKING:
    from lkm.cli.output import Printer

TOOLS = (
    "modinfo", "modprobe", "depmod", "lsmod", "insmod", "rmmod", "kmod", "list", "static-nodes",
    "sandbox",
)  # fmt: skip


FEATURES = "+ZSTD +XZ +ZLIB +PKCS7"


def print_version(printer: Printer) -> None:
    """``-V`` of every tool: the version, then the compiled-in features as kmod lists them."""
    printer.out(f"lkm version {__version__}\n{FEATURES}\n")


def _tool(name: str) -> Callable[[list[str]], int]:
    # Imported on demand so that one tool's start-up never pays for the others.
    if name == "modinfo":
        from lkm.cli.modinfo import main as modinfo_main

        return modinfo_main
    if name == "depmod":
        from lkm.cli.depmod import main as depmod_main

        return depmod_main
    if name == "modprobe":
        from lkm.cli.modprobe import main as modprobe_main

        return modprobe_main
    if name in ("lsmod", "insmod", "rmmod", "kmod"):
        import importlib

        tool: Callable[[list[str]], int] = importlib.import_module(
            f"lkm.cli.{name}cmd" if name == "kmod" else f"lkm.cli.{name}"
        ).main
        return tool
    if name == "sandbox":
        from lkm.cli.sandbox import main as sandbox_main

        return sandbox_main
    if name in ("list", "static-nodes"):
        from lkm.cli.kmodcmd import main as kmod_main

        # ``lkm list`` is ``kmod list`` with lkm's own name in its messages.
        return lambda args: kmod_main([name, *args], "lkm")
    raise KeyError(name)


def main(argv: Sequence[str] | None = None) -> int:
    """The program: every tool, however started, ends here on an interrupt or a closed pipe.

    kmod's tools leave SIGINT and SIGPIPE at their default action: Ctrl-C, or a write to a
    pipe nobody reads any more (``modinfo ext4 | head -1``), kills them silently, and the caller
    sees a death by that signal (a shell reports 130 or 141). Python turns the first into
    KeyboardInterrupt and ignores the second; both are put back as C has them. SIGPIPE can take
    its default action right away: nothing needs tidying before it. SIGINT stays an exception so
    that ``finally`` blocks (temporary files, child processes) run on the way out; then the
    process dies of it. Output still in the buffers is dropped, as a C program's is.
    """
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return dispatch(argv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 128 + signal.SIGINT  # not reached: the signal is not blocked, it just arrived


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Run the tool named by ``argv[0]`` or by the first argument; its exit status."""
    args = list(sys.argv if argv is None else argv)
    prog = os.path.basename(args[0]) if args else "lkm"
    if prog in TOOLS:
        return _tool(prog)(args[1:])
    rest = args[1:]
    if not rest or rest[0] in ("-h", "--help", "help"):
        print(f"Usage: lkm TOOL [options]\nTools: {' '.join(TOOLS)}")
        return 0 if rest else 1
    if rest[0] in ("-V", "--version"):
        print(f"lkm version {__version__}\n{FEATURES}")
        return 0
    if rest[0] in TOOLS:
        return _tool(rest[0])(rest[1:])
    print(f"lkm: ERROR: unknown command '{rest[0]}'", file=sys.stderr)
    return 1
