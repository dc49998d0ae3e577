"""Run lkm and kmod 34 on the same input and compare what they print, byte for byte."""

from __future__ import annotations

import difflib
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from support import world

# lkm's hash seed: a new one each run, so that output whose order hangs on the hashing of
# strings would differ from kmod's in some run; LKM_TEST_HASHSEED=N runs with N again.
HASH_SEED = os.environ.get("LKM_TEST_HASHSEED") or str(random.SystemRandom().randrange(1, 2**32))

# How many modules each differential test compared, reported at the end of the run.
COMPARED: Counter[str] = Counter()


@dataclass(frozen=True)
class Result:
    stdout: bytes
    stderr: bytes
    status: int


# The only memory addresses kmod 34 prints: libkmod's two INFO lines at -vv (its logging
# function's and its context's) and the context in the ERROR line about a module file that is
# missing (``ctx=0x... path=...``). They can never match, so they alone are masked; every other
# ``0x...`` (the CRCs of --show-modversions and --show-exports) is compared as it is.
ADDRESS_LINE = (
    r"(?<=INFO: custom logging function )0x[0-9a-f]+(?= registered$)"
    r"|(?<=INFO: context )0x[0-9a-f]+(?= released$)"
    r"|(?<=ctx=)0x[0-9a-f]+(?= path=)"
)
_ADDRESS_LINE = re.compile(ADDRESS_LINE.encode(), re.MULTILINE)


def addresses_hidden(data: bytes) -> bytes:
    """``data`` with the addresses of kmod's address-carrying lines made ``0xADDR``."""
    return _ADDRESS_LINE.sub(b"0xADDR", data)


def kmod(tool: str, *args: str) -> Result:
    done = world.kmod(tool, *args)
    return Result(done.stdout, done.stderr, done.returncode)


def lkm(tool: str, *args: str, cwd: Path | None = None) -> Result:
    """lkm run as ``tool`` (so messages carry the same program name), paths made chroot-like."""
    done = subprocess.run(
        [sys.executable, "-m", "lkm", tool, *args],
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": HASH_SEED},
    )
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def host(tree: world.Tree, chroot_path: str) -> str:
    return str(world.CHROOT) + chroot_path


def diff(expected: bytes, actual: bytes, limit: int = 60) -> str:
    lines = difflib.unified_diff(
        expected.decode(errors="replace").splitlines(),
        actual.decode(errors="replace").splitlines(),
        "kmod",
        "lkm",
        lineterm="",
    )
    return "\n".join(list(lines)[:limit])


def assert_same(expected: Result, actual: Result) -> None:
    seed = f" (lkm ran with PYTHONHASHSEED={HASH_SEED})"
    assert actual.stdout == expected.stdout, f"stdout differs{seed}:\n" + diff(
        expected.stdout, actual.stdout
    )
    assert actual.stderr == expected.stderr, f"stderr differs{seed}:\n" + diff(
        expected.stderr, actual.stderr
    )
    assert actual.status == expected.status, f"status differs{seed}"


def compare(tool: str, kmod_args: Sequence[str], lkm_args: Sequence[str] | None = None) -> Result:
    """Run both with the same arguments (``lkm_args`` when lkm needs host paths)."""
    expected = kmod(tool, *kmod_args)
    actual = lkm(tool, *(kmod_args if lkm_args is None else lkm_args))
    assert_same(expected, actual)
    return expected
