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

Work that needs every module's results but little of each (a ``Handoff``) can be left to the
first worker once the chunks run out: the main process sends it that little of the chunks the
worker did not read, and goes on with its own work; the worker already holds the rest, in its
own pages (a process forked for it then would share the main process's pages, and each of the
two would copy every page it touches).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import struct
from collections.abc import Callable, Sequence

from lkm.typing_lite import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    import pickle
    import signal
else:
    # The C modules behind pickle and signal: those two import re and enum, which would add to
    # every depmod run's serial start-up.
    import _pickle as pickle
    import _signal as signal

__all__ = ["Background", "Handoff", "Pending", "run_chunks"]

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")
_TOKEN = struct.Struct("=I")
_FRAME = struct.Struct("=I")  # the size of one chunk's pickle, before it
# Chunk numbers must fit in the pipe at once (64 KiB on Linux; stay far below).
_MAX_CHUNKS = 1024
# A results pipe this big holds many chunks' results, so a worker seldom waits for the main
# process to empty it (Linux lets anyone raise a pipe to 1 MiB).
_RESULTS_PIPE_SIZE = 1 << 20
# Chunk numbers of the frames that are not a chunk's results: a worker's last chunk was sent
# (it waits for its handoff), and the handoff's result.
_SCANNED = -1
_FINISHED = -2

Work = Callable[[Sequence[str], dict[bytes, bytes]], list[T]]


class Pending(Protocol[R]):
    """Work going on in another process: ``result()`` waits for it (or does it here, if that
    process failed), ``cancel()`` stops it."""

    def result(self) -> list[R]: ...

    def cancel(self) -> None: ...


class Handoff(Generic[T, S, R]):
    """Work for after the chunks: ``finish`` of ``share`` of every result, in the order of the
    paths. ``run_chunks`` leaves it to its first worker and sets ``pending``; without a worker
    (or if the worker is gone by then) ``pending`` stays None and nothing was done.

    ``share`` picks out what ``finish`` needs of a result: the main process sends the worker
    that much of each result the worker did not make itself.
    """

    def __init__(self, share: Callable[[T], S], finish: Callable[[list[S]], list[R]]) -> None:
        self.share = share
        self.finish = finish
        self.pending: Pending[R] | None = None


def run_chunks(
    work: Work[T],
    paths: Sequence[str],
    jobs: int,
    chunks_per_job: int = 512,
    *,
    handoff: Handoff[T, S, R] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[T]:
    """``work(chunk, names)`` over interleaved chunks of ``paths`` in ``jobs`` processes; the
    results in the order of ``paths``. ``names`` is a per-process cache for interning.
    ``handoff``, if given, goes on in the first worker (see ``Handoff``); if this raises, its
    ``pending`` was cancelled. ``meanwhile`` is called once the workers are started, before
    this process takes its first chunk.

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
    # The worker the handoff goes to, and the pipe it reads the main process's share from.
    heir: _Results[T] | None = None
    shares: _Shares[T, S] | None = None
    shares_r = shares_w = -1
    try:
        try:
            if handoff is not None and jobs > 1:
                shares_r, shares_w = os.pipe()
                shares = _Shares(shares_w, handoff.share)
            for _ in range(jobs - 1):
                results_r, results_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child leaves through os._exit
                    os.close(results_r)
                    inherits = handoff if heir is None and shares_r >= 0 else None
                    _child(
                        work,
                        chunks,
                        tokens_r,
                        results_w,
                        handoff=inherits,
                        shares=(shares_r, shares_w),
                    )
                os.close(results_w)
                workers.append(_Results(pid, results_r, done))
                if shares_r >= 0 and heir is None:
                    heir = workers[-1]
            if meanwhile is not None:
                meanwhile()
            names: dict[bytes, bytes] = {}
            while (index := _next_chunk(tokens_r)) is not None:
                done[index] = work(chunks[index], names)
                if shares is not None:
                    shares.give(index, done[index])
                for worker in workers:
                    worker.take_available()
        finally:
            os.close(tokens_r)
        for worker in list(workers):
            if worker is heir:
                worker.take_until_scanned()
            else:
                worker.take_all()
                workers.remove(worker)  # it has finished: nothing left to stop
        # Every slot is filled below.
        results = cast("list[T]", [None] * len(paths))
        for index, chunk in enumerate(chunks):
            part = done.get(index)
            if part is None:
                part = done[index] = work(chunk, names)
            results[index::count] = part
        if heir is not None and handoff is not None and shares is not None:
            if heir.scanned:
                # Every chunk the heir did not read is given to it (most were, as they were
                # read here).
                for index in range(count):
                    if index not in heir.sent and index not in shares.given:
                        shares.give(index, done[index])
                if shares.close(heir):
                    handoff.pending = _Heir(heir, handoff, results)
            else:
                heir.take_all()
            workers.remove(heir)  # the handoff's pending stops it now
    except BaseException:
        # Interrupted (Ctrl-C) or failed here: the workers' results are no longer wanted, and
        # they must not run on, orphaned, after this process is gone.
        for worker in workers:
            worker.stop()
        if handoff is not None and handoff.pending is not None:
            handoff.pending.cancel()
        raise
    finally:
        for fd in (shares_r, shares_w):
            if fd >= 0:
                os.close(fd)
    return results


def _next_chunk(tokens: int) -> int | None:
    token = os.read(tokens, _TOKEN.size)
    if len(token) < _TOKEN.size:
        return None
    index: int = _TOKEN.unpack(token)[0]
    return index


class _Results(Generic[T]):
    """One worker's results as they arrive: frames of a size and a pickle of (chunk number,
    results), each put into ``done`` when it is whole (``sent`` keeps their numbers)."""

    def __init__(self, pid: int, fd: int, done: dict[int, list[T]]) -> None:
        self.pid = pid
        self._fd = fd
        self._done = done
        self._pending = bytearray()
        self._frame = io.BytesIO()
        self._unpickler = pickle.Unpickler(self._frame)
        self._broken = False
        self.sent: set[int] = set()
        # Set by the frames of a worker with a handoff: it has sent its last chunk, and the
        # handoff's result.
        self.scanned = False
        self.finished: object = None
        os.set_blocking(fd, False)

    def take_until_scanned(self) -> None:
        """Wait for the worker's last chunk (or its end), taking all it sends."""
        os.set_blocking(self._fd, True)
        while not self.scanned and not self._broken and (part := os.read(self._fd, 1 << 16)):
            self._take(part)

    def gone(self) -> bool:
        """After its last chunk, nothing more comes from the worker until it has its share: the
        end of its results, if they can be read now, means it is gone (it was stopped)."""
        if os.read(self._fd, 1 << 16):
            return False
        self.stop()
        return True

    def fileno(self) -> int:
        return self._fd

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
            if index >= 0:
                self._done[index] = part
                self.sent.add(index)
            elif index == _SCANNED:
                self.scanned = True
            else:
                self.finished = part


class _Shares(Generic[T, S]):
    """What the main process gives the heir of the handoff, chunk by chunk as it reads them:
    pickles of (chunk number, ``share`` of each result) one after the other, with one memo, in
    a pipe the heir reads once its own chunks are done. They are written as far as the pipe
    takes them without waiting (the main process has chunks to read), the rest at ``close``.

    The main process holds the pipe's other end too: a write to it never raises SIGPIPE, and
    an heir gone before reading it all shows as the end of its results."""

    def __init__(self, fd: int, share: Callable[[T], S]) -> None:
        self._fd = fd
        self._share = share
        self._buffer = io.BytesIO()
        self._pickler = pickle.Pickler(self._buffer, -1)
        self._out = bytearray()
        self.given: set[int] = set()
        try:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _RESULTS_PIPE_SIZE)
        except (ImportError, AttributeError, OSError):
            pass  # a smaller pipe: more is left for ``close``
        os.set_blocking(fd, False)

    def give(self, index: int, part: list[T]) -> None:
        share = self._share
        self._pickler.dump((index, [share(result) for result in part]))
        self.given.add(index)
        self._out += self._buffer.getbuffer()
        self._buffer.seek(0)
        self._buffer.truncate()
        if self._out:
            with contextlib.suppress(BlockingIOError):
                del self._out[: os.write(self._fd, self._out)]

    def close(self, heir: _Results[T]) -> bool:
        """Write what is left, waiting for the heir to read it; False if it is gone."""
        while self._out:
            try:
                del self._out[: os.write(self._fd, self._out)]
            except BlockingIOError:
                import select

                readable, _, _ = select.select([heir.fileno()], [self._fd], [])
                if readable and heir.gone():
                    return False
        return True


class _Heir(Generic[T, S, R]):
    """A worker's handoff under way: ``result()`` takes what it sends (or does it here)."""

    def __init__(self, worker: _Results[T], handoff: Handoff[T, S, R], results: list[T]) -> None:
        self._worker: _Results[T] | None = worker
        self._handoff = handoff
        self._results = results

    def result(self) -> list[R]:
        worker = self._worker
        if worker is not None:
            self._worker = None
            worker.take_all()
            if isinstance(worker.finished, list):
                found: list[R] = worker.finished
                return found
        share = self._handoff.share
        return self._handoff.finish([share(result) for result in self._results])

    def cancel(self) -> None:
        """Stop the worker: its result is no longer wanted (nothing to do once it was taken)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


def _child(
    work: Work[T],
    chunks: list[Sequence[str]],
    tokens: int,
    results: int,
    *,
    handoff: Handoff[T, S, R] | None,
    shares: tuple[int, int],
) -> None:  # pragma: no cover - runs in the forked worker
    shares_r, shares_w = shares
    if shares_w >= 0:
        os.close(shares_w)
        if handoff is None:
            os.close(shares_r)
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
        mine: dict[int, list[T]] = {}

        def send(index: int, part: object) -> None:
            pickler.dump((index, part))
            frame = buffer.getbuffer()
            _write_all(results, _FRAME.pack(len(frame)))
            _write_all(results, frame)
            del frame
            buffer.seek(0)
            buffer.truncate()

        while (index := _next_chunk(tokens)) is not None:
            part = work(chunks[index], names)
            send(index, part)
            if handoff is not None:
                mine[index] = part
        if handoff is not None:
            send(_SCANNED, None)
            send(_FINISHED, _finish(handoff, chunks, mine, shares_r))
        os.close(results)
        status = 0
    finally:
        os._exit(status)


def _finish(
    handoff: Handoff[T, S, R], chunks: list[Sequence[str]], mine: dict[int, list[T]], shares: int
) -> list[R]:  # pragma: no cover - runs in the forked worker
    """The handoff's result in the worker: the main process's share of the chunks this worker
    did not read comes on ``shares`` (a chunk missing from it fails the worker, and the main
    process does the handoff itself)."""
    shared: dict[int, list[S]] = {}
    with os.fdopen(shares, "rb") as stream:
        unpickler = pickle.Unpickler(stream)
        while True:
            try:
                index, part = unpickler.load()
            except EOFError:
                break
            shared[index] = part
    share = handoff.share
    for index, part in mine.items():
        shared[index] = [share(result) for result in part]
    count = len(chunks)
    # Every slot is filled below.
    whole = cast("list[S]", [None] * sum(map(len, chunks)))
    for index in range(count):
        whole[index::count] = shared[index]
    return handoff.finish(whole)


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
