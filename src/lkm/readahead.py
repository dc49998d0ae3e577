"""Decompressing the xz module files named on a command line while the rest of lkm is imported.

``modinfo FILE.ko.xz`` and ``lkm show FILE.ko.xz`` spend most of their time in two things that
need not wait for each other: importing lkm's code (Python, holding the interpreter's lock) and
decompressing the file (liblzma, which lets go of that lock). The command line calls
:func:`start` for the first such operand before it imports the command (one: a command given
many files reads them one by one, without holding them all), and a thread reads and
decompresses the file meanwhile; :class:`~lkm.module.ModuleFile` asks :func:`decompressed`
for bytes it read itself, and gets the thread's result only when the thread read the very same
bytes (so a file replaced in between, or named by another path, changes nothing).

The thread does only what :func:`lkm.compress.decompress` does for the common case, one xz
stream with nothing after it, and keeps no result otherwise: anything unusual (concatenated
streams, padding, a damaged or short file, an error of any kind) is decompressed again the
usual way, with the usual messages. It imports nothing of lkm, so that no import of the main
thread ever waits for it; ``_thread`` rather than ``threading``, which would cost more to import
than it saves here.
"""

from __future__ import annotations

import _thread

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    LockType = _thread.LockType

# One (lock held until the thread is done, [(compressed, decompressed)] once it succeeded) per
# file started.
_STARTED: list[tuple[LockType, list[tuple[bytes, bytes]]]] = []


def start(path: str) -> None:
    """Begin reading and decompressing ``path`` in a thread, if it names an xz module file."""
    if not path.endswith(".ko.xz"):
        return
    done = _thread.allocate_lock()
    done.acquire()
    result: list[tuple[bytes, bytes]] = []
    try:
        _thread.start_new_thread(_decompress, (path, result, done))
    except RuntimeError:  # no thread to be had: the file is read the usual way
        return
    _STARTED.append((done, result))


def decompressed(data: bytes) -> bytes | None:
    """What ``data`` decompresses to, if a thread started by :func:`start` did it; else None."""
    for done, result in _STARTED:
        with done:  # wait for that thread
            pass
        if result and result[0][0] == data:
            return result[0][1]
    return None


def _decompress(path: str, result: list[tuple[bytes, bytes]], done: LockType) -> None:
    try:
        with open(path, "rb") as stream:
            data = stream.read()
        import lzma

        decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        raw = decoder.decompress(data)
        if decoder.eof and not decoder.unused_data:
            result.append((data, raw))
    except BaseException:
        pass
    finally:
        done.release()
