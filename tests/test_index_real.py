"""The binary index on real trees: kmod 34's files read back, found line by line, rewritten
byte for byte, and wildcard searches compared with kmod 34's ``modprobe -R``."""

from __future__ import annotations

import random

import pytest

from lkm.index import Index, write_index
from support import world

pytestmark = pytest.mark.slow


def module_name(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[: name.index(".ko")].replace("-", "_")


def normalised(alias: str) -> str:
    """depmod stores aliases with "-" as "_", except inside [...] where "-" makes a range."""
    out, depth = [], 0
    for char in alias:
        depth += char == "["
        depth -= char == "]" and depth > 0
        out.append("_" if char == "-" and not depth else char)
    return "".join(out)


def text_lines(tree: world.Tree, name: str) -> list[str]:
    return (tree.moddir / name).read_text().splitlines()


def test_every_index_round_trips_byte_for_byte(real_tree: world.Tree) -> None:
    files = sorted(real_tree.moddir.glob("modules*.bin"))
    assert files
    for path in files:
        original = path.read_bytes()
        with Index.open(path) as index:
            # Values come out priority first, equal ones newest first: add them in reverse.
            entries = [
                (key, value.value, value.priority)
                for key, values in index.items()
                for value in reversed(values)
            ]
        assert write_index(entries) == original, path.name


def test_every_text_line_is_found_through_the_bin(real_tree: world.Tree) -> None:
    with Index.open(real_tree.moddir / "modules.dep.bin") as dep:
        for line in text_lines(real_tree, "modules.dep"):
            path = line.split(":", 1)[0]
            assert [v.value for v in dep.lookup(module_name(path))] == [line]
    for text, binary in (
        ("modules.alias", "modules.alias.bin"),
        ("modules.symbols", "modules.symbols.bin"),
    ):
        with Index.open(real_tree.moddir / binary) as index:
            for line in text_lines(real_tree, text):
                if line.startswith("#"):
                    continue
                _, key, module = line.split(" ")
                assert module in [v.value for v in index.lookup(normalised(key))], line
    with Index.open(real_tree.moddir / "modules.builtin.bin") as builtin:
        for line in text_lines(real_tree, "modules.builtin"):
            assert builtin.lookup(module_name(line)), line


def test_wildcard_search_agrees_with_modprobe(real_tree: world.Tree) -> None:
    """Concrete keys made from real patterns give the modules kmod 34 finds, in its order."""
    patterns = [
        line.split(" ")[1]
        for line in text_lines(real_tree, "modules.alias")
        if line.startswith("alias ") and "-" not in line and "[" not in line
    ]
    keys = [p.replace("*", "").replace("?", "0") for p in random.Random(34).sample(patterns, 40)]
    with Index.open(real_tree.moddir / "modules.alias.bin") as index:
        for key in keys:
            shown = world.kmod(
                "modprobe", "-C", "/nonexistent", "-d", real_tree.chroot_root, "-S",
                real_tree.kver, "-R", key,
            )  # fmt: skip
            assert [v.value for v in index.search_wildcard(key)] == shown.stdout.decode().split(), (
                key
            )
