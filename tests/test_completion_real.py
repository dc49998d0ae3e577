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


def aliases(tree: world.Tree) -> set[str]:
    """The aliases that are names, not patterns, of kmod 34's depmod's modules.alias and of
    the kernel's built-in aliases, with '-' as '_' (as the indexes keep them)."""
    from lkm.index import Index

    listed = {
        line.split()[1]
        for line in (tree.moddir / "modules.alias").read_text().splitlines()
        if line.startswith("alias ")
    }
    with Index.open(tree.moddir / "modules.builtin.alias.bin") as index:
        listed |= set(index.keys(""))
    return {a.replace("-", "_") for a in listed if not set("*?[") & set(a)}


@pytest.mark.parametrize("prefix", ["fs-", "net-pf-", "platform:", "crypto-sha", "char-major-"])
def test_aliases_are_the_names_of_kmods_modules_alias(trixie: world.Tree, prefix: str) -> None:
    """The aliases offered for a prefix: those of :func:`aliases` that start with it, with '-'
    and '_' as the prefix spells them."""
    key = prefix.replace("-", "_")
    spell = (lambda a: a.replace("_", "-")) if "-" in prefix else (lambda a: a)
    expected = sorted(spell(a) for a in aliases(trixie) if a.startswith(key))
    assert len(expected) >= 3, expected
    found = complete("complete-modules", "-b", str(trixie.root), "-k", trixie.kver, "--aliases",
                     prefix)  # fmt: skip
    names = complete("complete-modules", "-b", str(trixie.root), "-k", trixie.kver, prefix)
    assert found == sorted({*expected, *names})


def test_bash_completes_modprobe_from_the_trixie_tree(trixie: world.Tree) -> None:
    from lkm.cli.docs import SHARE

    [found] = shells.bash(
        SHARE / "completions" / "bash" / "lkm",
        [["lkm", "modprobe", "-d", str(trixie.root), "-S", trixie.kver, "ext"]],
    )
    # modprobe takes an alias too: ext4's ext2 and ext3 among them.
    expected = {n for n in (*names(trixie), *aliases(trixie)) if n.startswith("ext")}
    assert found == sorted(expected)
    assert {"ext2", "ext3", "ext4"} <= expected
