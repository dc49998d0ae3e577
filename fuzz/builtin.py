"""A mutation fuzzer in pure Python, for machines where atheris does not install.

Without coverage feedback from the interpreter, it steers by what the parser says instead: an
input whose ``LkmError`` message (digits blanked) was never seen before reached a new check,
and joins the corpus. The mutations are libFuzzer's usual ones: bit flips, interesting bytes
and words in either byte order, erased, duplicated and inserted ranges, truncation, tokens of
the target's dictionary and splices of two corpus entries. One seed makes one run.
"""

from __future__ import annotations

import random
import re
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NamedTuple

from lkm.errors import LkmError

_INTERESTING_BYTES = (0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x5C)
_INTERESTING_WORDS = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                      0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)  # fmt: skip
_MAX_CORPUS = 4096
_QUOTED = re.compile(r"'[^']*'")  # the input's own words, quoted in messages
_DIGITS = re.compile(r"(0x)?[0-9a-f]*[0-9][0-9a-f]*")


class Finding(NamedTuple):
    kind: str  # the exception's type, or "timeout"
    where: str  # the innermost frame: file:line
    message: str
    data: bytes


class Hang(BaseException):
    """Raised by the alarm when one execution takes too long."""


class Result(NamedTuple):
    executions: int
    seconds: float
    corpus: int
    findings: tuple[Finding, ...]


def mutate(data: bytes, rng: random.Random, corpus: Sequence[bytes], tokens: Sequence[bytes],
           max_len: int) -> bytes:  # fmt: skip
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 8))):
        kind = rng.randrange(10)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[min(at, len(out) - 1)] = rng.choice(_INTERESTING_BYTES)
        elif kind == 2:
            size = rng.choice((2, 4, 8))
            word = rng.choice(_INTERESTING_WORDS) & ((1 << (8 * size)) - 1)
            if rng.random() < 0.3:
                word = (len(out) + rng.randrange(-8, 9)) & ((1 << (8 * size)) - 1)
            out[at : at + size] = word.to_bytes(size, rng.choice(("little", "big")))
        elif kind == 3 and out:
            del out[at : at + rng.choice((1, 2, 4, 16, 256))]
        elif kind == 4:
            start = rng.randrange(len(out) + 1)
            out[at:at] = out[start : start + rng.choice((1, 4, 16, 64))]
        elif kind == 5:
            del out[at:]
        elif kind == 6 and tokens:
            token = rng.choice(tokens)
            if rng.random() < 0.5:
                out[at:at] = token
            else:
                out[at : at + len(token)] = token
        elif kind == 7 and corpus:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = (
                out[:at] + other[cut:] if rng.random() < 0.5 else bytearray(other[:cut]) + out[at:]
            )
        elif kind == 8 and out:
            for _ in range(rng.randrange(1, 5)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        else:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return bytes(out[:max_len])


def _steer(data: bytes, errors: list[str], outcomes: set[str], corpus: list[bytes]) -> None:
    """Keep ``data`` if one of the errors it caused was never seen (digits do not count)."""
    fresh = False
    for error in errors:
        outcome = _QUOTED.sub("''", _DIGITS.sub("#", error[:200]))
        if outcome not in outcomes:
            outcomes.add(outcome)
            fresh = True
    errors.clear()
    if fresh and len(corpus) < _MAX_CORPUS:
        corpus.append(data)


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


def run(target: Callable[[bytes], None], seeds: Sequence[bytes], tokens: Sequence[bytes],
        errors: list[str], *, runs: int, seed: int, timeout: float = 10.0, max_len: int = 1 << 20,
        report: Callable[[str], None] | None = None) -> Result:  # fmt: skip
    """Run ``target`` on ``runs`` inputs made from ``seeds``; what escapes is a finding."""
    rng = random.Random(seed)
    corpus = [bytes(s) for s in seeds] or [b""]
    outcomes: set[str] = set()
    findings: dict[tuple[str, str], Finding] = {}
    previous = signal.signal(signal.SIGALRM, _alarm)
    started = time.monotonic()
    try:
        for number in range(runs):
            data = corpus[number] if number < len(corpus) else mutate(
                rng.choice(corpus), rng, corpus, tokens, max_len)  # fmt: skip
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                target(data)
                _steer(data, errors, outcomes, corpus)
            except LkmError as err:
                errors.append(f"{type(err).__name__}: {err}")
                _steer(data, errors, outcomes, corpus)
            except Hang:
                errors.clear()
                findings.setdefault(("timeout", ""), Finding("timeout", "", "", data))
            except Exception as err:
                errors.clear()
                frame = traceback.extract_tb(err.__traceback__)[-1]
                where = f"{frame.filename}:{frame.lineno}"
                key = (type(err).__name__, where)
                if key not in findings:
                    findings[key] = Finding(type(err).__name__, where, str(err)[:300], data)
                    if report:
                        report("".join(traceback.format_exception(err)))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if report and number and number % 100_000 == 0:
                rate = number / (time.monotonic() - started)
                report(f"#{number} corpus: {len(corpus)} exec/s: {rate:.0f}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    return Result(runs, time.monotonic() - started, len(corpus), tuple(findings.values()))
