"""``lkm modinfo`` against kmod 34's modinfo on every module of every real tree."""

from __future__ import annotations

import re

import pytest

from support import world
from support.differential import COMPARED, assert_same, kmod, lkm

pytestmark = pytest.mark.slow


def base_args(tree: world.Tree, *, host: bool) -> list[str]:
    root = str(tree.root) if host else tree.chroot_root
    return ["-b", root, "-k", tree.kver]


def compare_names(tree: world.Tree, names: list[str], *options: str) -> None:
    expected = kmod("modinfo", *base_args(tree, host=False), *options, *names)
    actual = lkm("modinfo", *base_args(tree, host=True), *options, *names)
    assert_same(expected, actual)


def module_names(tree: world.Tree) -> list[str]:
    """Every module of the tree by name, as modules.dep lists them."""
    names = []
    for line in (tree.moddir / "modules.dep").read_text().splitlines():
        path = line.partition(":")[0]
        names.append(path.rsplit("/", 1)[-1].split(".", 1)[0])
    return names


ALL_TREES = [*world.SPECS, "trixie-amd64-zstd"]


@pytest.mark.parametrize("name", ALL_TREES)
def test_every_module_by_name(name: str) -> None:
    tree = world.tree(name)
    names = module_names(tree)
    compare_names(tree, names)
    COMPARED[f"modinfo by name, {name}"] += len(names)


@pytest.mark.parametrize("name", ALL_TREES)
def test_every_module_by_path(name: str) -> None:
    tree = world.tree(name)
    paths = tree.modules()
    expected = kmod("modinfo", *[tree.chroot_path(p) for p in paths])
    actual = lkm("modinfo", *[str(p) for p in paths])
    assert_same(expected, actual)
    COMPARED[f"modinfo by path, {name}"] += len(paths)


OPTION_SETS = [
    ["-a"],
    ["-d"],
    ["-l"],
    ["-p"],
    ["-n"],
    ["-0"],
    ["-m"],
    ["-0", "-p"],
    ["-0", "-F", "alias"],
    ["-F", "alias"],
    ["-F", "parmtype"],
    ["-F", "depends"],
    ["-F", "firmware"],
    ["-F", "vermagic"],
    ["-F", "name"],
    ["-F", "filename"],
    ["-F", "signer"],
    ["-F", "sig_key"],
    ["-F", "sig_hashalgo"],
    ["-F", "signature"],
    ["-F", "sig_id"],
    ["-F", "Alias"],
    ["-F", "nonexistent"],
    ["--field=license", "--null"],
    ["-a", "-d"],
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=" ".join)
@pytest.mark.parametrize("name", ["trixie-amd64", "trixie-armhf", "bookworm-s390x"])
def test_options_on_every_module(name: str, options: list[str]) -> None:
    tree = world.tree(name)
    names = module_names(tree)
    compare_names(tree, names, *options)
    COMPARED[f"modinfo {' '.join(options)}, {name}"] += len(names)


def builtin_names(tree: world.Tree) -> list[str]:
    lines = (tree.moddir / "modules.builtin").read_text().splitlines()
    return [line.rsplit("/", 1)[-1].removesuffix(".ko") for line in lines]


@pytest.mark.parametrize("options", [[], ["-0"], ["-p"], ["-F", "file"], ["-n"], ["-m"]])
@pytest.mark.parametrize("name", list(world.SPECS))
def test_builtin_modules(name: str, options: list[str]) -> None:
    tree = world.tree(name)
    names = builtin_names(tree)
    compare_names(tree, names, *options)
    COMPARED[f"modinfo {' '.join(options)} builtin, {name}"] += len(names)


def builtin_aliases(tree: world.Tree) -> list[str]:
    data = (tree.moddir / "modules.builtin.modinfo").read_bytes()
    found = set()
    for item in data.split(b"\0"):
        _module, _, rest = item.partition(b".")
        if rest.startswith(b"alias=") and b"*" not in rest:
            found.add(rest.removeprefix(b"alias=").decode())
    return sorted(found)


@pytest.mark.parametrize("options", [[], ["-m"]])
def test_builtin_aliases(trixie: world.Tree, options: list[str]) -> None:
    aliases = builtin_aliases(trixie)
    compare_names(trixie, aliases, *options)
    COMPARED["modinfo builtin aliases"] += len(aliases)


def concrete(pattern: str) -> str:
    """A string that the fnmatch pattern matches: '*' empty, '?' and '[..]' one character."""
    out = re.sub(r"\[!?([^\]])[^\]]*\]", r"\1", pattern)
    return out.replace("*", "").replace("?", "X")


def alias_patterns(tree: world.Tree) -> list[tuple[str, str]]:
    pairs = []
    for line in (tree.moddir / "modules.alias").read_text().splitlines():
        _, pattern, module = line.split(" ", 2)
        pairs.append((pattern, module))
    return pairs


def test_aliases(trixie: world.Tree) -> None:
    """A concrete device string for every eighth alias pattern of the tree (`-F name`).

    Every pattern is resolved by the modprobe tests; here the point is modinfo's lookup stages.
    """
    queries = sorted({concrete(p) for p, _ in alias_patterns(trixie)[::8]})
    compare_names(trixie, queries, "-F", "name")
    COMPARED["modinfo -F name on concrete aliases"] += len(queries)


def test_aliases_matching_several_modules(trixie: world.Tree) -> None:
    owners: dict[str, set[str]] = {}
    for pattern, module in alias_patterns(trixie):
        owners.setdefault(concrete(pattern), set()).add(module)
    several = sorted(q for q, mods in owners.items() if len(mods) > 1)
    assert len(several) > 10
    # Each hit is read in full, and CPU feature aliases hit dozens of modules: take a sample.
    sample = several[::4]
    compare_names(trixie, sample, "-F", "name")
    compare_names(trixie, several[::40])
    COMPARED["modinfo aliases matching several modules"] += len(sample)


def test_symbol_lookups(trixie: world.Tree) -> None:
    lines = (trixie.moddir / "modules.symbols").read_text().splitlines()
    symbols = [line.split()[1] for line in lines[::40]]
    compare_names(trixie, [*symbols, "symbol:no_such_symbol"], "-F", "name")
    COMPARED["modinfo symbol: lookups"] += len(symbols)


def test_gzip_modules_read_like_their_originals(trees: dict[str, world.Tree]) -> None:
    """kmod 34 as Debian builds it has no zlib: compare with the uncompressed originals."""
    gz, plain = trees["bookworm-amd64-gzip"], trees["bookworm-amd64"]
    compressed = [p for p in gz.modules() if p.name.endswith(".ko.gz")]
    assert compressed
    originals = [plain.root / p.relative_to(gz.root).with_suffix("") for p in compressed]
    expected = kmod("modinfo", *[plain.chroot_path(p) for p in originals])
    actual = lkm("modinfo", *[str(p) for p in compressed])
    # Only the file names differ: the gzip copy lives in another tree and has a suffix.
    renamed = actual.stdout.replace(b"/bookworm-amd64-gzip/", b"/bookworm-amd64/")
    renamed = renamed.replace(b".ko.gz\n", b".ko\n")
    assert renamed == expected.stdout
    assert (actual.stderr, actual.status) == (expected.stderr, expected.status)
    COMPARED["modinfo gzip copies"] += len(compressed)
