"""Reading every module of a tree on every CPU: forked workers that share out the work.

depmod's hot loop is reading (and for compressed trees, decompressing) thousands of module
files, each on its own. The main process forks ``jobs - 1`` workers once and works along with
them. The paths are cut into many interleaved chunks (big and small modules mixed); the chunk
numbers wait in a pipe, and whoever is free takes the next one: a 4-byte read from a pipe is
atomic, so no chunk is taken twice and a busy machine balances itself. A worker sends back
its results once, pickled; symbol names repeated across its modules are one object each, so
pickling writes every name once. A worker that dies costs nothing but time: the chunks it
did not send are read again by the main process.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import struct
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Background", "run_chunks"]

T = TypeVar("T")
_TOKEN = struct.Struct("=I")
# Chunk numbers must fit in the pipe at once (64 KiB on Linux; stay far below).
_MAX_CHUNKS = 1024


def run_chunks(
    work: Callable[[Sequence[str], dict[bytes, bytes]], list[T]],
    paths: Sequence[str],
    jobs: int,
    chunks_per_job: int = 128,
) -> list[T]:
    """``work(chunk, names)`` over interleaved chunks of ``paths`` in ``jobs`` processes; the
    results in the order of ``paths``. ``names`` is a per-process cache for interning.

    Small chunks (a few dozen modules of a tree, a few milliseconds of work each) cost a
    4-byte read each and keep the processes' ends close together: when the chunks run out, a
    process waits at most about one chunk of xz decompression for the others.
    """
    count = max(1, min(len(paths), jobs * chunks_per_job, _MAX_CHUNKS))
    chunks = [paths[i::count] for i in range(count)]
    tokens_r, tokens_w = os.pipe()
    os.write(tokens_w, b"".join(_TOKEN.pack(i) for i in range(count)))
    os.close(tokens_w)
    workers: list[tuple[int, int]] = []
    try:
        try:
            for _ in range(jobs - 1):
                results_r, results_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child leaves through os._exit
                    os.close(results_r)
                    _child(work, chunks, tokens_r, results_w)
                os.close(results_w)
                workers.append((pid, results_r))
            done = _take_chunks(work, chunks, tokens_r)
        finally:
            os.close(tokens_r)
        while workers:
            pid, results_r = workers[0]
            data = _read_to_end(results_r)
            del workers[0]  # it has finished: nothing left to stop
            os.close(results_r)
            os.waitpid(pid, 0)
            try:
                done.update(pickle.loads(data))
            except (pickle.UnpicklingError, EOFError):  # a worker died mid-way: redo its chunks
                continue
    except BaseException:
        # Interrupted (Ctrl-C) or failed here: the workers' results are no longer wanted, and
        # they must not run on, orphaned, after this process is gone.
        for pid, results_r in workers:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(results_r)
        raise
    results: list[T | None] = [None] * len(paths)
    names: dict[bytes, bytes] = {}
    for index, chunk in enumerate(chunks):
        part = done.get(index)
        if part is None:
            part = work(chunk, names)
        results[index::count] = part
    return results  # type: ignore[return-value]  # every slot was filled above


def _read_to_end(fd: int) -> bytes:
    parts = []
    while part := os.read(fd, 1 << 20):
        parts.append(part)
    return b"".join(parts)


def _take_chunks(
    work: Callable[[Sequence[str], dict[bytes, bytes]], list[T]],
    chunks: list[Sequence[str]],
    tokens: int,
) -> dict[int, list[T]]:
    done: dict[int, list[T]] = {}
    names: dict[bytes, bytes] = {}
    while True:
        token = os.read(tokens, _TOKEN.size)
        if len(token) < _TOKEN.size:
            return done
        (index,) = _TOKEN.unpack(token)
        done[index] = work(chunks[index], names)


def _child(
    work: Callable[[Sequence[str], dict[bytes, bytes]], list[T]],
    chunks: list[Sequence[str]],
    tokens: int,
    results: int,
) -> None:  # pragma: no cover - runs in the forked worker
    status = 1
    # No collection in the worker: it would touch every object shared with the parent and so
    # copy their pages; the worker is short-lived and makes no reference cycles.
    gc.disable()
    try:
        data = pickle.dumps(_take_chunks(work, chunks, tokens), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(results, "wb") as stream:
            stream.write(data)
        status = 0
    finally:
        os._exit(status)


class Background(Generic[T]):
    """``produce()`` computed in a forked child while this process goes on; ``result()`` waits
    for it. If the child fails, ``result()`` computes it here instead."""

    def __init__(self, produce: Callable[[], list[T]]) -> None:
        self._produce = produce
        self._fd, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # pragma: no cover - the child leaves through os._exit
            os.close(self._fd)
            status = 1
            gc.disable()
            try:
                data = pickle.dumps(produce(), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as stream:
                    stream.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)

    def result(self) -> list[T]:
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
