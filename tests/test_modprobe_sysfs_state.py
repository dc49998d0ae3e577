"""How modprobe judges what the kernel has, from ``/sys/module``, against kmod 34.

A kernel shows ``/sys/module/NAME`` without ``initstate`` for a module built into it that
has parameters (this is how a host kernel with ``loop`` or ``jbd2`` built in looks to a module
tree of another release). kmod 34's rule, found black-box here:

- ``initstate`` is opened; if that fails for any reason, a directory ``/sys/module/NAME``
  (links followed) stands for a module coming (libkmod's ``kmod_module_get_initstate`` says
  so: tests/test_kmod_api_libkmod.py), anything else for no module. A read that fails
  (``could not read from '...': Is a directory``) or a value other than ``live``,
  ``coming``, ``going`` and a newline (``unknown ...: '...'``) is an error message, and the
  module counts as absent.
- Loading (real, ``-n``, ``--first-time``, ``-a``; the target, then each step) leaves a module
  alone only when modules.builtin lists it or its state is ``live``: a directory without
  ``initstate``, a module coming or going, is loaded again. ``-D`` reads no state.
- Removal (``-r``, real or ``-n``) takes any state, and a directory without ``initstate``, as
  loaded (only modules.builtin gives "is builtin"); the refcount then decides, and one that
  cannot be opened counts as 0. A dependency is removed when its ``refcnt`` reads 0, whatever
  its ``initstate``; an unreadable or garbage ``refcnt`` is reported and keeps it.
- The errors are modprobe's, silenced by ``-q``.

Real runs make their system calls under strace, which fails them with ENOSYS (REAL).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from support.differential import COMPARED, assert_same
from support.modprobe_world import REAL, SCRATCH, make_state, run_kmod, run_lkm, scratch, tree_args

pytestmark = pytest.mark.slow

LIVE = {"initstate": "live\n", "refcnt": "0\n", "holders": None}
# What /sys/module/NAME holds, by case (paths relative to that directory).
STATES: dict[str, Mapping[str, str | None] | None] = {
    "absent": None,
    "directory-only": {"": None},
    "parameters-only": {"parameters/max_loop": "8\n"},
    "refcnt-without-initstate": {"refcnt": "0\n", "holders": None},
    "refcnt-1-without-initstate": {"refcnt": "1\n", "holders": None},
    "garbage-refcnt-without-initstate": {"refcnt": "abc\n"},
    "live": LIVE,
    "live-in-use": {**LIVE, "refcnt": "1\n"},
    "live-garbage-refcnt": {**LIVE, "refcnt": "abc\n"},
    "live-refcnt-directory": {**LIVE, "refcnt": None},
    "coming": {**LIVE, "initstate": "coming\n"},
    "going": {**LIVE, "initstate": "going\n"},
    "initstate-builtin": {**LIVE, "initstate": "builtin\n"},
    "initstate-empty": {"initstate": ""},
    "initstate-without-newline": {"initstate": "live"},
    "initstate-trailing": {"initstate": "live\nx"},
    "initstate-directory": {"initstate": None},
    "initstate-link-loop": {"initstate": "-> initstate"},
    "initstate-dangling-link": {"initstate": "-> nowhere"},
    "a-file": {},  # /sys/module/NAME is a regular file
}

LOOP_COMMANDS = (
    ("-n", "-v", "loop"),
    ("-n", "loop"),
    ("-q", "-n", "-v", "loop"),
    ("-n", "-v", "--first-time", "loop"),
    ("-D", "loop"),
    ("-r", "-n", "-v", "loop"),
    ("-r", "-n", "-v", "--first-time", "loop"),
    ("-r", "-n", "-v", "--remove-holders", "loop"),
    ("-r", "-D", "loop"),
    ("-a", "-n", "-v", "loop", "dummy"),
)
# ext4 needs crc16, mbcache and jbd2; jbd2 takes the state of the case.
DEPENDENCY_COMMANDS = (
    ("-n", "-v", "ext4"),
    ("-n", "ext4"),
    ("-a", "-n", "-v", "ext4", "jbd2"),
    ("-a", "-n", "-v", "--first-time", "jbd2", "ext4"),
)
# The same with ext4 live: what -r takes with it.
REMOVAL_COMMANDS = (
    ("-r", "-n", "-v", "ext4"),
    ("-r", "-n", "-v", "--remove-holders", "ext4"),
    ("-r", "-D", "ext4"),
)
# ecb is in the tree's modules.builtin: then /sys is not asked.
BUILTIN_COMMANDS = (
    ("-n", "-v", "--first-time", "ecb"),
    ("-r", "-n", "-v", "ecb"),
)
REAL_COMMANDS = (("loop",), ("--first-time", "loop"), ("-r", "loop"), ("-r", "-v", "loop"))


def _entries(name: str, state: str) -> dict[str, str | None]:
    spec = STATES[state]
    if spec is None:
        return {}
    if not spec:
        return {name: "x\n"}
    return {f"{name}/{path}".rstrip("/"): text for path, text in spec.items()}


def _compare(state: str, sysfs: Mapping[str, str | None], commands: tuple[tuple[str, ...], ...],
             env: Mapping[str, str] | None = None) -> None:  # fmt: skip
    base = scratch(f"sysfs-state-{state}")
    (base / "empty.conf").write_text("")  # the host's configuration stays out
    config = ["-C", f"/{SCRATCH}/{base.name}/empty.conf"]
    where = make_state(base, sysfs=sysfs)
    for args in commands:
        full = [*tree_args(), *config, *args]
        expected = run_kmod(full, where, env)
        actual = run_lkm(full, where, env)
        try:
            assert_same(expected, actual)
        except AssertionError as err:
            raise AssertionError(f"{state}: modprobe {' '.join(args)}: {err}") from None
        COMPARED["modprobe with /sys/module states"] += 1


@pytest.mark.parametrize("state", sorted(STATES))
def test_target_state_matches_kmod(state: str) -> None:
    _compare(state, _entries("loop", state), LOOP_COMMANDS)


@pytest.mark.parametrize("state", sorted(STATES))
def test_dependency_state_matches_kmod(state: str) -> None:
    _compare(state, _entries("jbd2", state), DEPENDENCY_COMMANDS)
    live_ext4 = {**_entries("jbd2", state), **_entries("ext4", "live")}
    _compare(state, live_ext4, REMOVAL_COMMANDS)


@pytest.mark.parametrize("state", ["directory-only", "parameters-only", "live", "coming"])
def test_modules_builtin_wins_over_sysfs(state: str) -> None:
    _compare(state, _entries("ecb", state), BUILTIN_COMMANDS)


@pytest.mark.parametrize("state", sorted(STATES))
def test_real_loading_and_removal_match_kmod(state: str) -> None:
    _compare(state, _entries("loop", state), REAL_COMMANDS, REAL)


def _host_builtins(names: set[str]) -> dict[str, str | None]:
    """This machine's own ``/sys/module`` directories without ``initstate`` (modules its kernel
    has built in) for modules the tree has as files, copied with what can be read."""
    import os

    entries: dict[str, str | None] = {}
    for name in sorted(names):
        top = f"/sys/module/{name}"
        if not os.path.isdir(top) or os.path.exists(f"{top}/initstate"):
            continue
        entries[name] = None
        for where, dirs, files in os.walk(top):
            relative = os.path.relpath(where, "/sys/module")
            for directory in dirs:
                entries[f"{relative}/{directory}"] = None
            for file in files:
                try:
                    with open(f"{where}/{file}") as text:
                        entries[f"{relative}/{file}"] = text.read()
                except OSError:
                    continue
    return entries


def test_this_kernels_builtin_modules_match_kmod() -> None:
    """The case as users meet it: a real kernel's built-in modules, a tree of another release."""
    from support import world

    tree = world.tree("trixie-amd64")
    files = {
        line.split(":", 1)[0].rsplit("/", 1)[-1].split(".", 1)[0].replace("-", "_")
        for line in (tree.moddir / "modules.dep").read_text().splitlines()
    }
    entries = _host_builtins(files)
    names = sorted(n for n in entries if "/" not in n)
    if not names:
        pytest.skip("this machine's kernel shows no built-in module that the tree has as a file")
    commands = tuple(
        (*cmd, name) for name in names[:8] for cmd in (("-n", "-v"), ("-r", "-n", "-v"))
    )
    _compare("host", entries, commands)
