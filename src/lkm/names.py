"""Module names as kmod makes them from a module file's path."""

from __future__ import annotations

import os

__all__ = ["module_name_from_path"]


def module_name_from_path(path: str) -> str:
    """kmod's name for a module file: the basename up to its first '.', '-' as '_'."""
    return os.path.basename(path).split(".", 1)[0].replace("-", "_")
