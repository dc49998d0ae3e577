"""Recorded kmod 34 outputs kept as JSON beside the tests: reading them, and the ``record``
entry point that makes them anew, shared by every kind of recorded case."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar


class Recordable(Protocol):
    def to_json(self) -> Any: ...


T = TypeVar("T")


def load(path: Path, from_json: Callable[[Any], T]) -> dict[str, T]:
    """Every case's recorded outcome, by name."""
    return {name: from_json(value) for name, value in json.loads(path.read_text()).items()}


def record_main(
    argv: list[str], script: str, record: Callable[[], Mapping[str, Recordable]], path: Path
) -> int:
    """``python tests/support/SCRIPT record``: run kmod 34 on every case and write ``path``."""
    if argv != ["record"]:
        print(f"usage: support/{script} record", file=sys.stderr)
        return 2
    recorded = {name: out.to_json() for name, out in record().items()}
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return 0
