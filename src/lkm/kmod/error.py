"""``kmod.error`` of python-kmod: its one exception, here also an LkmError."""

from __future__ import annotations

from lkm.errors import LkmError


class KmodError(LkmError):
    """What every python-kmod call raises on failure, with python-kmod's message."""


__all__ = ["KmodError"]
