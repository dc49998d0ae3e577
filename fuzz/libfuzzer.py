"""The atheris child: ``python -m fuzz.libfuzzer TARGET LIBFUZZER-ARGS...``.

lkm's modules are imported under atheris' instrumentation (and each seed run once, so that the
modules lkm imports lazily are instrumented too), then libFuzzer drives the target. Anything
but ``LkmError`` escaping the target is a crash: libFuzzer stops and writes the input.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import atheris

from fuzz.targets import ERRORS, TARGETS
from lkm.errors import LkmError


def main() -> None:
    target = TARGETS[sys.argv[1]]
    with atheris.instrument_imports(include=["lkm"]):
        for name in target.modules:
            importlib.import_module(f"lkm.{name}")
        for seed in target.seeds():
            with contextlib.suppress(LkmError):
                target.run(seed)

    def one_input(data: bytes) -> None:
        with contextlib.suppress(LkmError):
            target.run(data)
        ERRORS.clear()  # only the pure-Python engine steers by them

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
