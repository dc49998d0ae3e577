"""``modprobe -R`` and ``-D`` of lkm against kmod 34 on every alias of the other trees.

The trixie amd64 tree has its own test (test_modprobe_real.py); these are the 32-bit ARM,
big-endian s390x and bookworm amd64 trees, each alias pattern of modules.alias made into a
concrete device string, resolved with ``-a`` in chunks by both tools.
"""

from __future__ import annotations

import pytest

from support import world
from support.differential import COMPARED, assert_same
from support.modprobe_world import (
    SCRATCH,
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
TREES = ("bookworm-amd64", "trixie-armhf", "bookworm-s390x")


@pytest.mark.parametrize("mode", ["-R", "-D"])
@pytest.mark.parametrize("name", TREES)
def test_every_alias_like_kmod(name: str, mode: str) -> None:
    tree = world.tree(name)
    strings = device_strings(tree)
    assert len(strings) == len(alias_patterns(tree)) > 10000
    base = scratch(f"aliases-{name}{mode}")
    (base / "conf").mkdir()
    state = make_state(base)
    args = [*tree_args(name), "-C", f"/{SCRATCH}/{base.name}/conf", mode, "-a"]
    for start in range(0, len(strings), CHUNK):
        chunk = strings[start : start + CHUNK]
        expected = run_kmod([*args, *chunk], state)
        assert expected.status == 0 and not expected.stderr
        assert_same(expected, run_lkm([*args, *chunk], state))
    COMPARED[f"modprobe {mode} on {name}: device strings, one per alias pattern"] += len(strings)
