"""Running kmod 34's modprobe and lkm's side by side on the trixie tree, with chosen state.

Both run in a private mount namespace. kmod runs chrooted, with a tmpfs over the chroot's
``/proc`` holding the chosen kernel command line and, when a loaded-module state is given, a
``/sys/module`` made of it; lkm gets the same files bound over the host's ``/proc/cmdline`` and
``/sys/module``. Paths are written chroot-relative; lkm's arguments get the chroot prefixed and
its output has it removed again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from support import world
from support.differential import HASH_SEED, Result

SCRATCH = "scratch-resolve"
TREE = "trixie-amd64"


class Loaded(NamedTuple):
    """A module the fake kernel has: ``state`` is initstate (None: a builtin-like directory
    without the file), with its refcount and holders."""

    name: str
    state: str | None = "live"
    refcount: int = 0
    holders: tuple[str, ...] = ()


_SCRIPT = """
root=$0; mode=$1; state=$2; shift 2
if [ "$mode" = kmod ]; then
    mount -t tmpfs none "$root/proc" || exit 99
    cp "$state/cmdline" "$root/proc/cmdline" || exit 99
    if [ -d "$state/module" ]; then
        mount -t tmpfs none "$root/sys" || exit 99
        cp -a "$state/module" "$root/sys/module" || exit 99
    fi
    exec $WRAP chroot "$root" modprobe "$@"
fi
mount --bind "$state/cmdline" /proc/cmdline || exit 99
if [ -d "$state/module" ]; then mount --bind "$state/module" /sys/module || exit 99; fi
exec $WRAP "$@"
"""

# Real loading and removal make their system calls under strace, which fails each with ENOSYS
# before it reaches the kernel (whatever kernel the machine runs).
_CALLS = "init_module,finit_module,delete_module"
REAL = {"WRAP": f"strace -f -o /dev/null -e trace={_CALLS} -e inject={_CALLS}:error=ENOSYS"}


def scratch(name: str) -> Path:
    """A fresh directory ``chroot/scratch-resolve/<name>``."""
    base = world.CHROOT / SCRATCH / name
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    return base


def write_files(base: Path, files: Mapping[str, bytes]) -> None:
    for relative, data in files.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def make_state(
    base: Path,
    cmdline: str = "",
    loaded: Sequence[Loaded] | None = None,
    sysfs: Mapping[str, str | None] | None = None,
) -> Path:
    """The kernel state files (outside the chroot's scratch of the scenario).

    ``sysfs`` adds raw entries under ``/sys/module``: a path to its text, None for a
    directory, ``-> target`` for a symbolic link.
    """
    state = base / ".state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "cmdline").write_text(cmdline)
    # Always a /sys/module, empty when nothing is loaded: lkm must not see the host's.
    module = state / "module"
    module.mkdir()
    if loaded is not None:
        for entry in loaded:
            directory = module / entry.name
            (directory / "holders").mkdir(parents=True)
            for holder in entry.holders:
                (directory / "holders" / holder).mkdir()
            if entry.state is not None:
                (directory / "initstate").write_text(entry.state + "\n")
                (directory / "refcnt").write_text(f"{entry.refcount}\n")
    for relative, text in (sysfs or {}).items():
        path = module / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.mkdir(exist_ok=True)
        elif text.startswith("-> "):
            path.symlink_to(text.removeprefix("-> "))
        else:
            path.write_text(text)
    return state


def tree_args(name: str = TREE) -> list[str]:
    tree = world.tree(name)
    return ["-d", tree.chroot_root, "-S", tree.kver]


def run_kmod(args: Sequence[str], state: Path, env: Mapping[str, str] | None = None) -> Result:
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT]
    command += [str(world.CHROOT), "kmod", str(state), *args]
    done = subprocess.run(command, capture_output=True, check=False, env=_env(env))
    assert done.returncode != 99, done.stderr
    return Result(done.stdout, done.stderr, done.returncode)


def host_args(args: Sequence[str]) -> list[str]:
    """Chroot-absolute paths made host paths (``-C``, ``-d`` values and module paths)."""
    out = []
    for arg in args:
        if arg.startswith("/"):
            out.append(str(world.CHROOT) + arg)
        elif arg.startswith("--config=/"):
            out.append(f"--config={world.CHROOT}/{arg.removeprefix('--config=/')}")
        else:
            out.append(arg)
    return out


def run_lkm(
    args: Sequence[str],
    state: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT]
    command += [str(world.CHROOT), "lkm", str(state), sys.executable, "-m", "lkm", "modprobe"]
    command += host_args(args)
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
        env={**_env(env), "PYTHONHASHSEED": HASH_SEED},
        cwd=cwd,
    )
    assert done.returncode != 99, done.stderr
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MODPROBE_OPTIONS", "WRAP")}
    env.update(extra or {})
    return env


# -- concrete device strings -----------------------------------------------------------------


def concrete(pattern: str) -> str | None:
    """A string the fnmatch ``pattern`` matches: ``*`` taken empty, ``?`` as ``0``, a bracket
    as its first member (or, negated, the first of ``0aA_`` it lacks); None if unsure."""
    import re

    from lkm.wildcard import fnmatch_regex

    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            i += 1
            continue
        if char == "?":
            out.append("0")
            i += 1
            continue
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return None
            body = pattern[i + 1 : end]
            negated = body[:1] in ("!", "^")
            members = body[1:] if negated else body
            if negated:
                pick = next((c for c in "0aA_" if c not in members), None)
                if pick is None:
                    return None
                out.append(pick)
            else:
                out.append(members[0])
            i = end + 1
            continue
        out.append(char)
        i += 1
    text = "".join(out)
    regex = fnmatch_regex(os.fsencode(pattern))
    return text if re.match(regex, os.fsencode(text), re.DOTALL) else None


def alias_patterns(tree: world.Tree) -> list[str]:
    """Every alias pattern of the tree's modules.alias, once each, in file order."""
    seen: dict[str, None] = {}
    for line in (tree.moddir / "modules.alias").read_text().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "alias":
            seen.setdefault(fields[1], None)
    return list(seen)


def device_strings(tree: world.Tree) -> list[str]:
    """One concrete string per alias pattern of the tree (patterns it cannot make are left
    out; the tests check there are none)."""
    return [text for text in map(concrete, alias_patterns(tree)) if text is not None]
