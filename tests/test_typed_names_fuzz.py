"""Names as users type them, lkm against kmod 34: modinfo (plain and ``-m``), ``modprobe -a -R``
and ``modprobe -a -n -v``, byte for byte.

A fixed seed turns the trixie tree's real module names, builtin names, aliases and symbols into
what people type: dashes for underscores and back, suffixes (``.ko``, ``.ko.xz``, ...), paths
(real files, relative and absolute, and paths to nothing), aliases cut short, glob characters,
brackets balanced and not, upper case. Names go in batches, one process per tool and batch;
a difference is narrowed down to its names.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from support import world
from support.differential import COMPARED, Result, diff, lkm
from support.modprobe_world import make_state, run_kmod, run_lkm, scratch, tree_args

pytestmark = pytest.mark.slow

SEED = 9_1_9
TREE = "trixie-amd64"
BATCHES = 10
BATCH = 40


def _sources(tree: world.Tree) -> dict[str, list[str]]:
    modules = []
    for line in (tree.moddir / "modules.dep").read_text().splitlines():
        modules.append(line.partition(":")[0])
    aliases = []
    for line in (tree.moddir / "modules.alias").read_text().splitlines():
        fields = line.split()
        if len(fields) == 3:
            aliases.append(fields[1])
    symbols = []
    for line in (tree.moddir / "modules.symbols").read_text().splitlines():
        fields = line.split()
        if len(fields) == 3:
            symbols.append(fields[1])
    builtin = [
        line.rsplit("/", 1)[-1].split(".", 1)[0]
        for line in (tree.moddir / "modules.builtin").read_text().splitlines()
    ]
    return {"paths": modules, "aliases": aliases, "symbols": symbols, "builtin": builtin}


def typed_name(rng: random.Random, tree: world.Tree, sources: dict[str, list[str]]) -> str:
    kind = rng.choice(("module", "module", "builtin", "alias", "alias", "symbol", "path"))
    relative = rng.choice(sources["paths"])
    if kind == "path":
        where = rng.choice(("absolute", "relative", "nowhere"))
        inside = f"{tree.chroot_root}{str(tree.moddir).removeprefix(str(tree.root))}/{relative}"
        if where == "absolute":
            return inside
        if where == "relative":  # to /trees, where both tools run
            return inside.removeprefix("/trees/")
        return rng.choice(("/nowhere/", "./", "kernel/", "")) + relative.rsplit("/", 1)[-1]
    if kind == "module":
        name = relative.rsplit("/", 1)[-1].split(".", 1)[0]
    elif kind == "builtin":
        name = rng.choice(sources["builtin"])
    elif kind == "symbol":
        name = rng.choice(sources["symbols"])
    else:
        name = rng.choice(sources["aliases"])
        if rng.random() < 0.5:  # the concrete device string a user would copy
            name = name.replace("*", "").replace("?", "0")
    for _ in range(rng.randrange(3)):
        name = _mutate(rng, name)
    return name or "x"


def _mutate(rng: random.Random, name: str) -> str:
    roll = rng.random()
    at = rng.randrange(len(name) + 1)
    if roll < 0.2:
        return name.replace("_", "-") if rng.random() < 0.5 else name.replace("-", "_")
    if roll < 0.35:
        return name + rng.choice((".ko", ".ko.xz", ".ko.gz", ".ko.zst", ".o", ".ko.xz.bak"))
    if roll < 0.5:
        return name[:at]  # cut short
    if roll < 0.7:
        return name[:at] + rng.choice(("*", "?", "[", "]", "[a-z]", "[!x]", "[]", "\\")) + name[at:]
    if roll < 0.8:
        return name.upper() if rng.random() < 0.5 else name.capitalize()
    if roll < 0.9:
        return name[:at] + rng.choice(("-", "_", ":", ".", "/", " ")) + name[at:]
    return rng.choice(("pci:v[", "a[b", "]", "[", "usb:v*", "symbol:", "fs-", "net-pf-"))


def names(tree: world.Tree) -> list[list[str]]:
    rng = random.Random(SEED)
    sources = _sources(tree)
    batches = []
    for _ in range(BATCHES):
        batch = [typed_name(rng, tree, sources) for _ in range(BATCH)]
        # A leading dash would be an option to both tools.
        batches.append([n for n in batch if not n.startswith("-")])
    return batches


def _host(tree: world.Tree, name: str) -> str:
    return str(world.CHROOT) + name if name.startswith("/trees/") else name


def _differences(run: Callable[[list[str]], tuple[Result, Result]]) -> list[str]:
    """Each batch whose outputs differ; the first few narrowed down to their names."""
    problems = []
    for batch in names(world.tree(TREE)):
        expected, actual = run(batch)
        if expected == actual:
            continue
        if len(problems) >= 3:
            problems.append(f"batch {batch!r}:\n{_show(expected, actual)}")
            continue
        for name in batch:
            alone = run([name])
            if alone[0] != alone[1]:
                problems.append(f"{name!r}:\n{_show(*alone)}")
    return problems


def _show(expected: Result, actual: Result) -> str:
    return (
        f"stdout:\n{diff(expected.stdout, actual.stdout)}\n"
        f"stderr:\n{diff(expected.stderr, actual.stderr)}\n"
        f"status {expected.status} / {actual.status}"
    )


@pytest.mark.parametrize("by_name", [False, True], ids=["names", "modname"])
def test_modinfo_of_typed_names_matches_kmod(by_name: bool) -> None:
    tree = world.tree(TREE)
    base = ["-b", tree.chroot_root, "-k", tree.kver] + (["-m"] if by_name else [])
    host_base = ["-b", str(tree.root), "-k", tree.kver] + (["-m"] if by_name else [])

    def run(batch: list[str]) -> tuple[Result, Result]:
        # kmod runs in the chroot's /trees (relative paths start there), as lkm does.
        done = world.kmod("sh", "-c", 'cd /trees && exec modinfo "$@"', "sh", *base, *batch)
        expected = Result(done.stdout, done.stderr, done.returncode)
        host_names = [_host(tree, n) for n in batch]
        actual = lkm("modinfo", *host_base, *host_names, cwd=world.CHROOT / "trees")
        COMPARED["modinfo typed names"] += len(batch)
        return expected, actual

    problems = _differences(run)
    assert not problems, "\n\n".join(problems)


def test_modprobe_of_typed_names_matches_kmod() -> None:
    base = scratch("typed-names")
    (base / "conf").mkdir()
    state = make_state(base)
    conf = "/" + str((base / "conf").relative_to(world.CHROOT))

    def run(batch: list[str]) -> tuple[Result, Result]:
        # Relative paths are left out: kmod's modprobe runs in the chroot's /.
        batch = [n for n in batch if n.startswith("/") or ".ko" not in n]
        args = ["-C", conf, *tree_args(), "-a", "-n", "-v", *batch]
        expected, actual = run_kmod(args, state), run_lkm(args, state, cwd=world.CHROOT)
        args[args.index("-n") : args.index("-v") + 1] = ["-R"]
        expected_r, actual_r = run_kmod(args, state), run_lkm(args, state, cwd=world.CHROOT)
        COMPARED["modprobe typed names (-n -v and -R)"] += len(batch)
        joined = Result(
            expected.stdout + b"\0" + expected_r.stdout,
            expected.stderr + b"\0" + expected_r.stderr,
            expected.status * 256 + expected_r.status,
        )
        return joined, Result(
            actual.stdout + b"\0" + actual_r.stdout,
            actual.stderr + b"\0" + actual_r.stderr,
            actual.status * 256 + actual_r.status,
        )

    problems = _differences(run)
    assert not problems, "\n\n".join(problems)


def test_the_names_cover_every_kind() -> None:
    """The generator makes the cases this test is for (so a change to it cannot empty it)."""
    tree = world.tree(TREE)
    every = [n for batch in names(tree) for n in batch]
    assert any("[" in n and "]" not in n for n in every)
    assert any(n.endswith(".ko.xz") and n.startswith("/trees/") for n in every)
    assert any(n.endswith(".ko.xz") and n.startswith("trixie-amd64/") for n in every)
    assert any(n.startswith("symbol:") for n in every)
    assert any("-" in n for n in every)
    assert Path(_host(tree, next(n for n in every if n.startswith("/trees/")))).is_file()
