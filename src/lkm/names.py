"""Module names as kmod makes them from a module file's path."""

from __future__ import annotations

__all__ = ["module_name_from_path"]


def module_name_from_path(path: str) -> str:
    """kmod's name for a module file: the basename up to its first '.', '-' as '_'."""
    # The basename, as os.path.basename finds it, without its call.
    return path.rpartition("/")[2].split(".", 1)[0].replace("-", "_")
