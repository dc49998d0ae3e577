"""Write lkm's completion scripts and manual pages from the table of commands, or check that
the ones in the package are up to date (a test does, so a changed command cannot ship stale
ones):

    python -m lkm.cli.docs            # rewrite src/lkm/share
    python -m lkm.cli.docs --check    # exit 1, naming the stale files, when one is out of date

The files land in ``share/`` of the package (``completions/bash/lkm``, ``completions/zsh/_lkm``,
``completions/fish/lkm.fish``, ``man/man1/lkm*.1``) and ship in the sdist and wheel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

SHARE = Path(__file__).resolve().parent.parent / "share"


def generated() -> dict[str, str]:
    """Every generated file, by its path under ``share/``."""
    from lkm.cli import completions, manpages
    from lkm.cli.interface import interfaces

    found = interfaces()
    files = {
        "completions/bash/lkm": completions.bash(found),
        "completions/zsh/_lkm": completions.zsh(found),
        "completions/fish/lkm.fish": completions.fish(found),
    }
    for name, text in manpages.pages(found).items():
        files[f"man/man1/{name}"] = text
    return files


def stale(share: Path = SHARE) -> list[str]:
    """The files under ``share`` that differ from what would be generated, or are left over
    from a command that is gone."""
    files = generated()
    differ = [
        name for name, text in files.items()
        if not (share / name).is_file() or (share / name).read_text(encoding="utf-8") != text
    ]  # fmt: skip
    pages = share / "man" / "man1"
    present = sorted(f"man/man1/{p.name}" for p in pages.glob("*.1")) if pages.is_dir() else []
    return differ + [name for name in present if name not in files]


def write(share: Path = SHARE) -> list[str]:
    """Write every generated file under ``share`` (each to a temporary name, then renamed) and
    remove pages of commands that are gone; the names changed."""
    changed = stale(share)
    files = generated()
    for name in changed:
        path = share / name
        if name not in files:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(files[name], encoding="utf-8")
        os.replace(temporary, path)
    return changed


def main(args: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if args == ["--check"]:
        names = stale()
        for name in names:
            print(f"out of date: share/{name} (run: python -m lkm.cli.docs)", file=sys.stderr)
        return 1 if names else 0
    if args:
        print("usage: python -m lkm.cli.docs [--check]", file=sys.stderr)
        return 2
    for name in write():
        print(f"wrote share/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
