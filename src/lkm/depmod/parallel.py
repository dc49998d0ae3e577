"""Reading every module of a tree on every CPU: forked workers that share out the work.

depmod's hot loop is reading (and for compressed trees, decompressing) thousands of module
files, each on its own. The main process forks ``jobs - 1`` workers once and works along with
them. The paths are cut into many interleaved chunks (big and small modules mixed); the chunk
numbers wait in a pipe, and whoever is free takes the next one: a 4-byte read from a pipe is
atomic, so no chunk is taken twice and a busy machine balances itself.

A worker sends each chunk's results as soon as they are made, pickled, and the main process
takes them in between its own chunks: pickling and unpickling are done while the others still
read modules, not after. One pickler per worker (and one unpickler for it in the main process)
keeps its memo from chunk to chunk, so a symbol name is sent once and is one object on both
sides. A worker that dies costs nothing but time: the chunks it did not send whole are read
again by the main process.
"""

from __future__ import annotations

import gc
import io
import os
import struct
from collections.abc import Callable, Sequence

from lkm.typing_lite import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import pickle
    import signal
else:
    # The C modules behind pickle and signal: those two import re and enum, which would add to
    # every depmod run's serial start-up.
    import _pickle as pickle
    import _signal as signal

__all__ = ["Background", "run_chunks"]

T = TypeVar("T")
_TOKEN = struct.Struct("=I")
_FRAME = struct.Struct("=I")  # the size of one chunk's pickle, before it
# Chunk numbers must fit in the pipe at once (64 KiB on Linux; stay far below).
_MAX_CHUNKS = 1024
# A results pipe this big holds many chunks' results, so a worker seldom waits for the main
# process to empty it (Linux lets anyone raise a pipe to 1 MiB).
_RESULTS_PIPE_SIZE = 1 << 20

Work = Callable[[Sequence[str], dict[bytes, bytes]], list[T]]


def run_chunks(
    work: Work[T],
    paths: Sequence[str],
    jobs: int,
    chunks_per_job: int = 512,
) -> list[T]:
    """``work(chunk, names)`` over interleaved chunks of ``paths`` in ``jobs`` processes; the
    results in the order of ``paths``. ``names`` is a per-process cache for interning.

    Small chunks (a handful of modules of a tree, a few milliseconds of xz decompression each)
    cost a 4-byte read and a results frame each and keep the processes' ends close together:
    when the chunks run out, a process waits at most about one chunk for the others (with a
    few dozen modules a chunk, that was tens of milliseconds on an xz tree).
    """
    count = max(1, min(len(paths), jobs * chunks_per_job, _MAX_CHUNKS))
    chunks = [paths[i::count] for i in range(count)]
    tokens_r, tokens_w = os.pipe()
    os.write(tokens_w, b"".join(_TOKEN.pack(i) for i in range(count)))
    os.close(tokens_w)
    done: dict[int, list[T]] = {}
    workers: list[_Results[T]] = []
    try:
        try:
            for _ in range(jobs - 1):
                results_r, results_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child leaves through os._exit
                    os.close(results_r)
                    _child(work, chunks, tokens_r, results_w)
                os.close(results_w)
                workers.append(_Results(pid, results_r, done))
            names: dict[bytes, bytes] = {}
            while (index := _next_chunk(tokens_r)) is not None:
                done[index] = work(chunks[index], names)
                for worker in workers:
                    worker.take_available()
        finally:
            os.close(tokens_r)
        while workers:
            workers[0].take_all()
            del workers[0]  # it has finished: nothing left to stop
    except BaseException:
        # Interrupted (Ctrl-C) or failed here: the workers' results are no longer wanted, and
        # they must not run on, orphaned, after this process is gone.
        for worker in workers:
            worker.stop()
        raise
    results: list[T | None] = [None] * len(paths)
    names = {}
    for index, chunk in enumerate(chunks):
        part = done.get(index)
        if part is None:
            part = work(chunk, names)
        results[index::count] = part
    return results  # type: ignore[return-value]  # every slot was filled above


def _next_chunk(tokens: int) -> int | None:
    token = os.read(tokens, _TOKEN.size)
    if len(token) < _TOKEN.size:
        return None
    index: int = _TOKEN.unpack(token)[0]
    return index


class _Results(Generic[T]):
    """One worker's results as they arrive: frames of a size and a pickle of (chunk number,
    results), each put into ``done`` when it is whole."""

    def __init__(self, pid: int, fd: int, done: dict[int, list[T]]) -> None:
        self.pid = pid
        self._fd = fd
        self._done = done
        self._pending = bytearray()
        self._frame = io.BytesIO()
        self._unpickler = pickle.Unpickler(self._frame)
        self._broken = False
        os.set_blocking(fd, False)

    def take_available(self) -> None:
        """Take what the worker has sent so far, without waiting."""
        try:
            while part := os.read(self._fd, _RESULTS_PIPE_SIZE):
                self._take(part)
        except BlockingIOError:
            pass

    def take_all(self) -> None:
        """Wait for the worker to finish, taking all it sends."""
        os.set_blocking(self._fd, True)
        while part := os.read(self._fd, _RESULTS_PIPE_SIZE):
            self._take(part)
        os.close(self._fd)
        os.waitpid(self.pid, 0)

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._fd)

    def _take(self, data: bytes) -> None:
        pending = self._pending
        pending += data
        while not self._broken and len(pending) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(pending)
            end = _FRAME.size + size
            if len(pending) < end:
                return
            frame = self._frame
            frame.seek(0)
            frame.truncate()
            frame.write(memoryview(pending)[_FRAME.size : end])
            frame.seek(0)
            del pending[:end]
            try:
                index, part = self._unpickler.load()
            except (pickle.UnpicklingError, EOFError):
                # Not what a worker sends: nothing more from it is trusted (its later chunks
                # are read again by the main process).
                self._broken = True
                return
            self._done[index] = part


def _child(
    work: Work[T],
    chunks: list[Sequence[str]],
    tokens: int,
    results: int,
) -> None:  # pragma: no cover - runs in the forked worker
    status = 1
    # No collection in the worker: it would touch every object shared with the parent and so
    # copy their pages; the worker is short-lived and makes no reference cycles.
    gc.disable()
    try:
        try:
            import fcntl

            fcntl.fcntl(results, fcntl.F_SETPIPE_SZ, _RESULTS_PIPE_SIZE)
        except (ImportError, AttributeError, OSError):
            pass  # a smaller pipe: the worker waits a little more for the main process
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, -1)  # -1: the highest protocol
        names: dict[bytes, bytes] = {}
        while (index := _next_chunk(tokens)) is not None:
            pickler.dump((index, work(chunks[index], names)))
            frame = buffer.getbuffer()
            _write_all(results, _FRAME.pack(len(frame)))
            _write_all(results, frame)
            del frame
            buffer.seek(0)
            buffer.truncate()
        os.close(results)
        status = 0
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes | memoryview) -> None:  # pragma: no cover - in the worker
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Background(Generic[T]):
    """``produce()`` computed in a forked child while this process goes on; ``result()`` waits
    for it. If the child fails, ``result()`` computes it here instead."""

    def __init__(self, produce: Callable[[], list[T]]) -> None:
        self._produce = produce
        self._taken = False
        self._fd, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # pragma: no cover - the child leaves through os._exit
            os.close(self._fd)
            status = 1
            gc.disable()
            try:
                data = pickle.dumps(produce(), -1)
                with os.fdopen(write, "wb") as stream:
                    stream.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)

    def cancel(self) -> None:
        """Stop the child: its result is no longer wanted (nothing to do once it was taken)."""
        if self._taken:
            return
        self._taken = True
        os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        os.close(self._fd)

    def result(self) -> list[T]:
        self._taken = True
        with os.fdopen(self._fd, "rb") as stream:
            data = stream.read()
        _, status = os.waitpid(self._pid, 0)
        if status == 0:
            try:
                found: list[T] = pickle.loads(data)
                return found
            except (pickle.UnpicklingError, EOFError):
                pass
        return self._produce()
