"""Module names completed from the real trees: exactly the modules kmod 34's depmod listed in
modules.dep and the kernel package's modules.builtin, in the merged-/usr layout too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import shells, world

pytestmark = pytest.mark.slow


def names(tree: world.Tree) -> list[str]:
    """Module names from the text files: modules.dep (depmod's) and modules.builtin."""
    found = set()
    for index in ("modules.dep", "modules.builtin"):
        for line in (tree.moddir / index).read_text().splitlines():
            path = line.partition(":")[0]
            name = path.rsplit("/", 1)[-1]
            found.add(name[: name.index(".ko")].replace("-", "_"))
    return sorted(found)


def complete(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "lkm", *args], capture_output=True, text=True, check=True
    )
    assert done.stderr == ""
    return done.stdout.splitlines()


@pytest.mark.parametrize("name", ["trixie-amd64", "bookworm-amd64"])
def test_every_module_of_the_tree_and_no_other(trees: dict[str, world.Tree], name: str) -> None:
    tree = trees[name]
    expected = names(tree)
    assert len(expected) > 3000
    assert complete("complete-modules", "-b", str(tree.root), "-k", tree.kver) == expected
    snd = sorted(n.replace("_", "-") for n in expected if n.startswith("snd_"))
    assert complete("complete-modules", "-b", str(tree.root), "-k", tree.kver, "snd-") == snd
    assert complete("complete-releases", "-b", str(tree.root)) == [tree.kver]


def test_bash_completes_modprobe_from_the_trixie_tree(trixie: world.Tree) -> None:
    from lkm.cli.docs import SHARE

    [found] = shells.bash(
        SHARE / "completions" / "bash" / "lkm",
        [["lkm", "modprobe", "-d", str(trixie.root), "-S", trixie.kver, "ext"]],
    )
    assert found == [n for n in names(trixie) if n.startswith("ext")]
