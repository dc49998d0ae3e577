"""``modprobe -R`` and ``-D`` of lkm against kmod 34 on every alias of the trixie tree.

Each alias pattern of modules.alias is made into a concrete device string that matches it
(``modprobe_world.concrete``); all of them are resolved with ``-a`` in chunks, by both tools,
with an empty configuration directory and an empty kernel command line.
"""

from __future__ import annotations

import pytest

from support import world
from support.differential import COMPARED, assert_same
from support.modprobe_world import (
    SCRATCH,
    TREE,
    alias_patterns,
    device_strings,
    make_state,
    run_kmod,
    run_lkm,
    scratch,
    tree_args,
)

pytestmark = pytest.mark.slow

CHUNK = 5000


def test_every_alias_pattern_gives_a_device_string() -> None:
    tree = world.tree(TREE)
    assert len(device_strings(tree)) == len(alias_patterns(tree)) > 20000


@pytest.mark.parametrize("mode", ["-R", "-D"])
def test_every_alias_like_kmod(mode: str) -> None:
    tree = world.tree(TREE)
    strings = device_strings(tree)
    base = scratch(f"every-alias{mode}")
    (base / "conf").mkdir()
    state = make_state(base)
    args = [*tree_args(), "-C", f"/{SCRATCH}/{base.name}/conf", mode, "-a"]
    several = 0
    for start in range(0, len(strings), CHUNK):
        chunk = strings[start : start + CHUNK]
        expected = run_kmod([*args, *chunk], state)
        assert expected.status == 0 and not expected.stderr
        assert_same(expected, run_lkm([*args, *chunk], state))
        if mode == "-R":
            several += expected.stdout.count(b"\n") - len(chunk)
    COMPARED[f"modprobe {mode}: device strings, one per alias pattern"] += len(strings)
    if mode == "-R":
        # Many strings stand for several modules; the outputs above include them.
        assert several > 1000
