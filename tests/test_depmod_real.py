"""depmod against kmod 34: every output file of every real tree, scenario trees, messages."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from support import world
from support.depmod_trees import (
    CONFIGS,
    CYCLE_CASES,
    ENDLESS_CYCLE_CASES,
    MESSAGE_OPTIONS,
    OUTPUTS,
    cycle_tree,
    duplicates_tree,
    graph_tree,
    write_tree,
)
from support.differential import COMPARED, Result, assert_same, kmod, lkm

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-depmod-tests"


@pytest.fixture(scope="module")
def scratch() -> Path:
    SCRATCH.mkdir(exist_ok=True)
    return SCRATCH


@pytest.mark.parametrize("name", world.ALL_TREES)
def test_every_file_of_a_real_tree(name: str, scratch: Path) -> None:
    """lkm reads the shared tree and writes elsewhere (-o); kmod 34's files are in the tree.

    Debian's kmod 34 has no zlib and passes over ``.ko.gz`` files; lkm reads them as kmod built
    with zlib does: its files for the tree with some modules gzipped are kmod's for the
    original tree, paths aside (``.ko.gz`` for ``.ko``, which the dependency index keeps)."""
    tree = world.tree(name)
    reference = world.tree(world.DERIVED[name]) if name.endswith("-gzip") else tree
    out = scratch / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    relative = tree.moddir.relative_to(tree.root)
    (out / relative).mkdir(parents=True)
    # kmod reads lib/modules (a symlink into usr/lib on merged trees): so does lkm.
    result = lkm("depmod", "-b", str(tree.root), "-o", str(out), tree.kver)
    assert result.status == 0, result.stderr
    for output in OUTPUTS:
        expected = (reference.moddir / output).read_bytes()
        actual = (out / relative / output).read_bytes()
        if reference is not tree and output == "modules.dep":
            assert actual.count(b".ko.gz") > 100
            actual = actual.replace(b".ko.gz", b".ko")
        elif reference is not tree and output == "modules.dep.bin":
            actual = _dep_index_unzipped(actual)
            expected = _dep_index_unzipped(expected)
        assert actual == expected, f"{name}: {output} differs"
    COMPARED["depmod: modules of real trees"] += len(tree.modules())


def _dep_index_unzipped(data: bytes) -> bytes:
    """The entries of a modules.dep.bin as text, ``.ko.gz`` written ``.ko``."""
    from lkm.index import Index

    with Index.from_bytes(data) as index:
        lines = [
            f"{key} {value.priority} {value.value}\n"
            for key, values in index.items()
            for value in values
        ]
    return "".join(lines).replace(".ko.gz", ".ko").encode()


def _scenario(scratch: Path, name: str, files: dict[str, bytes]) -> str:
    root = scratch / name
    shutil.rmtree(root, ignore_errors=True)
    write_tree(root, "1.0.0", files)
    return "/" + str(root.relative_to(world.CHROOT))


def _both(args: list[str], chroot_paths: list[str]) -> None:
    """Run kmod with chroot paths and lkm with the same paths on the host."""
    host = [str(world.CHROOT) + a if a in chroot_paths else a for a in args]
    assert_same(kmod("depmod", *args), lkm("depmod", *host))
    COMPARED["depmod: command lines"] += 1


@pytest.mark.parametrize("config", CONFIGS)
def test_depmod_d_with_duplicate_names(config: str, scratch: Path) -> None:
    base = _scenario(scratch, "dup", duplicates_tree())
    confdir = scratch / f"conf-{config}"
    shutil.rmtree(confdir, ignore_errors=True)
    confdir.mkdir()
    (confdir / "a.conf").write_text(CONFIGS[config])
    conf = "/" + str(confdir.relative_to(world.CHROOT))
    _both(["-C", conf, "-b", base, "-n", "1.0.0"], [conf, base])
    _both(["-C", conf, "-b", base, "-v", "-n", "1.0.0"], [conf, base])


def test_cycle_is_reported_and_nothing_written(scratch: Path) -> None:
    base = _scenario(scratch, "cycle", cycle_tree())
    _both(["-C", "/nonexistent", "-b", base, "1.0.0"], [base])
    assert sorted(p.name for p in (scratch / "cycle/lib/modules/1.0.0").iterdir()) == ["kernel"]


@pytest.fixture(scope="module")
def small(scratch: Path) -> str:
    """A few real modules with a dependency chain, plus broken files."""
    source = world.tree("bookworm-amd64")
    root = scratch / "small"
    shutil.rmtree(root, ignore_errors=True)
    moddir = root / "lib/modules" / source.kver
    for rel in (
        "kernel/drivers/net/mii.ko", "kernel/drivers/net/ethernet/3com/3c59x.ko",
        "kernel/crypto/twofish_common.ko", "kernel/arch/x86/crypto/twofish-x86_64.ko",
        "kernel/arch/x86/crypto/twofish-x86_64-3way.ko",
    ):  # fmt: skip
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.moddir / rel, moddir / rel)
    (moddir / "kernel/bad1.ko").write_bytes(b"garbage\n")
    (moddir / "kernel/bad2.ko").write_bytes(
        (source.moddir / "kernel/drivers/net/mii.ko").read_bytes()[:100]
    )
    (moddir / "kernel/empty.ko").write_bytes(b"")
    (moddir / "kernel/dir.ko").mkdir()
    (root / "System.map").write_text(
        "ffffffff81000000 r __ksymtab__printk\nffffffff81000000 T __fentry__\n"
        "ffffffff81000000 R __ksymtab___stack_chk_fail\nbadline\n"
        "  ffffffff81000000 r __ksymtab_boot_cpu_data\n"
    )
    # Kernel CRCs that disagree with the modules', one symbol of a module (not the kernel's).
    (root / "Module.symvers").write_text(
        "0x12345678\t_printk\tvmlinux\tEXPORT_SYMBOL\n"
        "0xdeadbeef\t__fentry__\tvmlinux\tEXPORT_SYMBOL\n"
        "0x1\tmii_check_media\tdrivers/net/mii\tEXPORT_SYMBOL_GPL\n"
    )
    return "/" + str(root.relative_to(world.CHROOT))


@pytest.mark.parametrize("options", MESSAGE_OPTIONS)
def test_messages_on_a_small_tree(options: list[str], small: str) -> None:
    args = [o.format(base=small) for o in options]
    paths = [a for a in args if a.startswith(small)]
    release = world.tree("bookworm-amd64").kver
    tail = [] if options[-1].startswith("{base}/x") else [release]
    _both(
        [*args[:-1], "-b", small, args[-1], *tail] if tail == [] else [*args, "-b", small, *tail],
        [*paths, small],
    )


def _kmod_bounded(*args: str) -> subprocess.CompletedProcess[bytes]:
    """kmod 34's depmod with a time and memory bound: on some cycles it never ends."""
    return subprocess.run(
        ["timeout", "-s", "KILL", "3", "prlimit", "--as=200000000", "chroot",
         str(world.CHROOT), "depmod", *args],
        capture_output=True, check=False,
    )  # fmt: skip


def _cycle_graphs() -> list[tuple[dict[str, list[str]], list[str]]]:
    """The recorded cases, then random graphs (fixed seed) in a random depmod order: a cycle or
    two of two or three modules with others depending on them or on each other, and graphs
    that are orderly but for a few uses back."""
    cases = [(graph, order) for graph, order, _, _ in CYCLE_CASES.values()]
    cases += [(graph, order) for graph, order, _, _ in ENDLESS_CYCLE_CASES.values()]
    rng = random.Random(9)
    for _ in range(80):
        names = [f"m{i}" for i in range(rng.randint(3, 8))]
        graph: dict[str, list[str]] = {name: [] for name in names}
        for _ in range(rng.randint(1, 2)):
            members = rng.sample(names, rng.randint(2, 3))
            for i, name in enumerate(members):
                graph[name].append(members[(i + 1) % len(members)])
        for name in names:
            for other in names:
                if other != name and other not in graph[name] and rng.random() < 0.2:
                    graph[name].insert(rng.randint(0, len(graph[name])), other)
        order = rng.sample(names, len(names))
        cases.append((graph, order))
    # Graphs kmod mostly finishes: modules in a hidden rank, each using some after it, and one
    # to three uses back against the rank (each making cycles, often overlapping), with many
    # walks that end on modules without dependencies or on modules an earlier walk reached.
    for _ in range(120):
        names = [f"m{i}" for i in range(rng.randint(3, 10))]
        rank = rng.sample(names, len(names))
        graph = {name: [] for name in names}
        density = rng.choice([0.15, 0.25, 0.4])
        for i, name in enumerate(rank):
            graph[name] = [other for other in rank[i + 1 :] if rng.random() < density]
        for _ in range(rng.randint(1, 3)):
            low, high = sorted(rng.sample(range(len(rank)), 2))
            if rank[low] not in graph[rank[high]]:
                graph[rank[high]].append(rank[low])
            if not _leads_to(graph, rank[low], rank[high]):
                graph[rank[low]].append(rank[high])  # so that the use back closes a cycle
        for deps in graph.values():
            rng.shuffle(deps)
        cases.append((graph, rng.sample(names, len(names))))
    return cases


def _leads_to(graph: dict[str, list[str]], start: str, goal: str) -> bool:
    todo, seen = [start], {start}
    while todo:
        for dep in graph[todo.pop()]:
            if dep == goal:
                return True
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


def test_cycle_reports_agree_with_kmod(scratch: Path) -> None:
    """Every cycle report kmod 34 finishes is lkm's, byte for byte; where kmod never ends
    (or aborts), lkm reports its cycles and fails as kmod would have."""
    finished = endless = 0
    for number, (graph, order) in enumerate(_cycle_graphs()):
        base = _scenario(scratch, f"cycles-{number}", graph_tree(graph, order))
        args = ["-C", "/nonexistent", "-b", base, "-n", "1.0.0"]
        theirs = _kmod_bounded(*args)
        ours = lkm("depmod", *[str(world.CHROOT) + a if a == base else a for a in args])
        if theirs.returncode == 1 and theirs.stderr.endswith(b"dependency cycles!\n"):
            expected = Result(theirs.stdout, theirs.stderr, theirs.returncode)
            assert_same(expected, ours)
            finished += 1
        else:
            assert ours.status == 1 and ours.stderr.endswith(b"dependency cycles!\n"), graph
            endless += 1
        shutil.rmtree(scratch / f"cycles-{number}")
    COMPARED["depmod: dependency cycle reports"] += finished
    # The seed gives both kinds; a change that made every case endless would prove nothing.
    assert finished >= 90 and endless >= 3, (finished, endless)
