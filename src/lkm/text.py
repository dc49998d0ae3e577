"""Bytes read from module files, indexes and the kernel, held as text and written back.

UTF-8 with ``surrogateescape``: any byte that is not UTF-8 becomes a lone surrogate and is
written back as the same byte, so whatever a file holds reads back and writes out unchanged
(``os.fsencode`` gives the same bytes back on Linux).
"""

from __future__ import annotations

__all__ = ["decode", "encode"]


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
