"""Messages and output shared by the tools, in kmod's shapes.

Text from module files is held as ``str`` decoded with ``surrogateescape``; it is written back
as the original bytes, so output is byte-identical to kmod's even for invalid UTF-8.
"""

from __future__ import annotations

import os
import sys

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import BinaryIO


def encode(text: str) -> bytes:
    return os.fsencode(text)


class Printer:
    """A tool's stdout and stderr, with kmod's ``prog: LEVEL: message`` lines."""

    def __init__(
        self, prog: str, stdout: BinaryIO | None = None, stderr: BinaryIO | None = None
    ) -> None:
        self.prog = prog
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.stderr = stderr if stderr is not None else sys.stderr.buffer

    def out(self, text: str) -> None:
        self.stdout.write(encode(text))

    def message(self, level: str, text: str) -> None:
        self.raw_error(f"{self.prog}: {level}: {text}")

    def error(self, text: str) -> None:
        self.message("ERROR", text)

    def raw_error(self, line: str) -> None:
        # Like C's stderr, messages are not held back behind buffered standard output.
        self.stderr.write(encode(line + "\n"))
        self.stderr.flush()
