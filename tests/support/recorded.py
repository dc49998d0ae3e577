"""Running a tool's ``main`` in this process as if it were a process of its own.

Standard output and error are the process's descriptors 1 and 2, pointed at files while the
tool runs, so what its children print (modprobe's install commands) lands where it would, in
the order it would, next to what the tool itself prints.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Sequence

from support.modinfo_cases import Output


def run_captured(main: Callable[[Sequence[str]], int], args: Sequence[str]) -> Output:
    """``main(args)``'s exit status and everything written to descriptors 1 and 2."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = os.dup(1), os.dup(2)
        saved = sys.stdout, sys.stderr
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with open(1, "wb", closefd=False) as raw_out, open(2, "wb", closefd=False) as raw_err:
                sys.stdout = io.TextIOWrapper(raw_out, write_through=True)
                sys.stderr = io.TextIOWrapper(raw_err, write_through=True)
                status = main(args)
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
        finally:
            sys.stdout, sys.stderr = saved
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
        out.seek(0)
        err.seek(0)
        return Output(out.read(), err.read(), status)
