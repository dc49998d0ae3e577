"""What the tools' command lines share: ``-V``'s text, the small tools' ``-s -v -V -h``, and
libkmod's complaint about the kernel's module compression."""

from __future__ import annotations

import io

from lkm import __version__
from lkm.cli.output import Printer, encode
from lkm.typing_lite import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.cli.getopt import Option

FEATURES = "+ZSTD +XZ +ZLIB +PKCS7"


def print_version(printer: Printer) -> None:
    """``-V`` of every tool: the version, then the compiled-in features as kmod lists them."""
    printer.out(f"lkm version {__version__}\n{FEATURES}\n")


class _Syslog(io.RawIOBase):
    """A stream whose lines go to syslog (``-s``), as kmod's tools log there instead."""

    def __init__(self, prog: str) -> None:
        import syslog

        self._syslog = syslog
        syslog.openlog(prog, 0, syslog.LOG_DAEMON)

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raw = bytes(cast("bytes", data))
        for line in raw.decode("utf-8", "replace").splitlines():
            self._syslog.syslog(self._syslog.LOG_ERR, line)
        return len(raw)


def parse_tool_args(
    args: Sequence[str], options: Sequence[Option], printer: Printer, usage: str
) -> tuple[list[tuple[str, str | None]], list[str]] | int:
    """getopt for insmod, rmmod and lsmod, then their shared ``-s -V -h``: the parsed options
    and the operands, or the exit status when the command line already decided it."""
    from lkm.cli.getopt import UsageError, getopt_long  # here: ``lkm --version`` needs no getopt

    try:
        parsed, operands = getopt_long(args, options)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    done = common_options(parsed, printer, usage)
    return (parsed, operands) if done is None else done


def common_options(
    parsed: Sequence[tuple[str, str | None]], printer: Printer, usage: str
) -> int | None:
    """Apply ``-s -V -h`` (``-v`` adds nothing kmod prints); an exit status ends the tool."""
    for key, _value in parsed:
        if key == "s":
            printer.stderr = cast("io.BufferedWriter", _Syslog(printer.prog))
        elif key == "V":
            print_version(printer)
            return 0
        elif key == "h":
            printer.out(usage.format(prog=printer.prog))
            return 0
    return None


def kernel_compression(printer: Printer, sysfs: str) -> str | None:
    """``/sys/module/compression``, with libkmod's complaint when it names something unknown."""
    from lkm.kernel import UnknownCompression, read_compression

    try:
        return read_compression(sysfs)
    except UnknownCompression as err:
        # kmod prints the file as it is: an empty file leaves the line without its newline.
        printer.stderr.write(
            encode(f"libkmod: ERROR: get_kernel_compression: unknown kernel compression {err.raw}")
        )
        printer.stderr.flush()
        return None
