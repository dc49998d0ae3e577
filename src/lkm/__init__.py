"""lkm: the Linux kernel module tools as a typed Python library and one command-line program."""

from __future__ import annotations

from lkm.errors import LkmError

__version__ = "0.1.0"

__all__ = ["LkmError", "__version__"]
