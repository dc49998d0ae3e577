"""The multi-call command line: ``lkm COMMAND ...``, or a link named after one of kmod's tools."""

from __future__ import annotations

import os
import sys

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


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
    # The C module the ``signal`` module wraps: the wrapper's enums would cost every start-up.
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    program = argv is None  # the process's own command line: the process ends with it
    if program:
        _freeze()
    _whole_process[0] = program
    try:
        status = dispatch(argv)
    except KeyboardInterrupt:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGINT)
        return 128 + _signal.SIGINT  # not reached: the signal is not blocked, it just arrived
    finally:
        if program:
            _freeze()
    if program:
        _exit_early(status)
    return status


def _exit_early(status: int) -> None:
    """End the process with ``status`` once its output is out, without tearing the interpreter
    down: for a short command that is a twelfth of its run, spent freeing modules, classes and
    the import system's caches that the kernel frees at once anyway.

    Only when nothing else would run at exit: no ``atexit`` callback (multiprocessing's, which
    reaps children, or one a command registered) and no thread started through ``threading``,
    which the interpreter would wait for. When standard output cannot be flushed (a full disk,
    a closed descriptor) the interpreter's usual exit is kept, with its message and status.
    """
    import atexit

    if "threading" in sys.modules or atexit._ncallbacks():
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(status)


def _freeze() -> None:
    """Take every object the collector tracks now out of its sight for good.

    The interpreter's objects and the dispatcher's, at start, live until the process exits;
    so does nearly everything left when the command is done, and the process exits next. Each
    collection would walk them all again for nothing: at exit, three full collections over
    all of them cost a short command about a tenth of its time. Garbage made later is still
    collected as usual (a long depmod's). Called for the process's own command line only: a
    caller that goes on after ``main`` keeps its collector as it was.
    """
    import gc

    gc.freeze()


# True while ``main`` runs the process's own command line (not one a caller passed).
_whole_process = [False]


def ends_process() -> bool:
    """True when the command running is the process's whole run: it exits once done."""
    return _whole_process[0]


def exit_now(status: int) -> None:
    """End the process with ``status`` at once when the command is its whole run; return
    (doing nothing) when lkm runs inside a caller.

    Standard output and error are flushed; nothing else is done on the way out: a command that
    built millions of objects (depmod) would otherwise spend tens of milliseconds freeing them
    one by one and tearing the interpreter down, after its work is done.
    """
    if not _whole_process[0]:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Run the command named by ``argv[0]`` (a link) or by the first argument; its status."""
    from lkm.cli.commands import BY_NAME, HIDDEN_BY_NAME, TOOLS

    args = list(sys.argv if argv is None else argv)
    prog = os.path.basename(args[0]) if args else "lkm"
    if prog in TOOLS:
        _read_ahead(prog, args[1:])
        return BY_NAME[prog].load()(args[1:])
    if len(args) < 2:
        sys.stderr.write(f"lkm: ERROR: missing command\n{usage()}")
        return 1
    word, rest = args[1], args[2:]
    if word in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if word in ("-V", "--version"):
        from lkm.cli.common import print_version
        from lkm.cli.output import Printer

        printer = Printer("lkm")
        print_version(printer)
        printer.stdout.flush()
        return 0
    command = BY_NAME.get(word) or HIDDEN_BY_NAME.get(word)
    if command is None:
        sys.stderr.write(f"lkm: ERROR: unknown command '{word}'\n{usage()}")
        return 1
    _read_ahead(word, rest)
    return command.load()(rest)


def _read_ahead(command: str, args: Sequence[str]) -> None:
    """Start decompressing the xz module file that ``modinfo`` or ``show`` was given (the
    first one), while the command's code is imported: see :mod:`lkm.readahead`."""
    if command in ("modinfo", "show"):
        for arg in args:
            if arg.endswith(".ko.xz"):
                from lkm import readahead

                readahead.start(arg)
                return


def usage() -> str:
    """``lkm --help``: one line for each command, from the table of commands."""
    from lkm.cli.commands import COMMANDS, Kind

    width = max(len(command.name) for command in COMMANDS) + 2

    def lines(kind: str) -> str:
        return "".join(f"  {c.name:<{width}}{c.summary}\n" for c in COMMANDS if c.kind is kind)

    return (
        "Usage: lkm COMMAND [options]\n"
        "   or: TOOL [options], through a link named after one of kmod's tools\n"
        "\n"
        f"kmod 34's tools:\n{lines(Kind.TOOL)}"
        "\n"
        f"lkm's own commands:\n{lines(Kind.VERB)}"
        "\n"
        "Options:\n"
        "  -h, --help     show this help\n"
        "  -V, --version  show the version and the compressions and signatures read\n"
        "\n"
        "'lkm COMMAND --help' shows a command's own options.\n"
    )
