"""``lkm graph``: dependency graphs of a tree built by depmod from small modules, and of the
real trixie tree against what kmod 34's ``modprobe --show-depends`` lists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lkm.cli import graph as cli
from lkm.graph import Edge, EdgeKind, ModuleGraph, Node, NodeKind, to_dot
from support.depmod_trees import module_elf, write_tree
from support.schemas import validate_output

# top uses mid and low (mid uses low too: no edge of its own from top to low); its own modinfo
# names soft and weak dependencies, one of them built in and one that stands for nothing.
# The configuration makes mid and cyc soft dependencies of each other.
FILES = {
    "kernel/top.ko": module_elf(
        imports=["mid_fn", "low_fn"],
        modinfo=["alias=fs-top", "softdep=pre: pre1 bi post: post1 nothere", "weakdep=wk"],
    ),
    "kernel/mid.ko": module_elf(exports=["mid_fn"], imports=["low_fn"]),
    "kernel/low.ko": module_elf(exports=["low_fn"]),
    "kernel/pre1.ko": module_elf(imports=["helper_fn"]),
    "kernel/helper.ko": module_elf(exports=["helper_fn"]),
    "kernel/post1.ko": module_elf(),
    "kernel/wk.ko": module_elf(),
    "kernel/cyc.ko": module_elf(),
    "kernel/both.ko": module_elf(imports=["mid_fn"]),
    "modules.builtin": b"kernel/bi.ko\n",
}
CONFIG = "softdep mid pre: cyc\nsoftdep cyc pre: mid\nsoftdep both pre: mid\n"

TOP = """\
digraph modules {
	"bi" [shape=box, style=filled, fillcolor=lightgrey, label="bi\\n(built-in)"];
	"cyc";
	"low";
	"mid";
	"nothere" [style=dashed, label="nothere\\n(not found)"];
	"post1";
	"pre1";
	"top" [peripheries=2];
	"wk";
	"mid" -> "cyc" [style=dashed, label="pre"];
	"mid" -> "low";
	"top" -> "bi" [style=dashed, label="pre"];
	"top" -> "mid";
	"top" -> "nothere" [style=dashed, label="post"];
	"top" -> "post1" [style=dashed, label="post"];
	"top" -> "pre1" [style=dashed, label="pre"];
	"top" -> "wk" [style=dotted, label="weak"];
}
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lkm.depmod import DepmodOptions, run_depmod

    root = tmp_path_factory.mktemp("graph-tree")
    write_tree(root, "1.0", FILES)
    run_depmod(DepmodOptions("1.0", str(root), config=("/nonexistent",)))
    (root / "conf").write_text(CONFIG)
    return root


def _run(
    tree: Path, args: list[str], capsysbinary: pytest.CaptureFixture[bytes]
) -> tuple[int, bytes, str]:
    status = cli.main(["-b", str(tree), "-k", "1.0", "-C", str(tree / "conf"), *args])
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def test_hard_soft_weak_and_builtin(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert _run(tree, ["top"], capsysbinary) == (0, TOP.encode(), "")


def test_softdeps_followed(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """pre1's own dependency appears, and the softdep cycle of mid and cyc ends."""
    status, out, err = _run(tree, ["--softdeps", "top"], capsysbinary)
    assert (status, err) == (0, "")
    added = ['\t"helper";', '\t"cyc" -> "mid" [style=dashed, label="pre"];',
             '\t"pre1" -> "helper";']  # fmt: skip
    lines = TOP.splitlines()
    expected = sorted(set(lines[1:-1]) | set(added), key=lambda line: ("->" in line, line))
    assert out.decode().splitlines() == [lines[0], *expected, lines[-1]]


def test_a_soft_target_that_is_a_hard_one_too(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """both uses mid and names it as a softdep: mid's own dependencies are drawn all the same."""
    status, out, err = _run(tree, ["both"], capsysbinary)
    assert (status, err) == (0, "")
    assert out.decode() == (
        "digraph modules {\n"
        '\t"both" [peripheries=2];\n'
        '\t"cyc";\n'
        '\t"low";\n'
        '\t"mid";\n'
        '\t"both" -> "mid";\n'
        '\t"both" -> "mid" [style=dashed, label="pre"];\n'
        '\t"mid" -> "cyc" [style=dashed, label="pre"];\n'
        '\t"mid" -> "low";\n'
        "}\n"
    )


def test_an_alias_is_a_node_of_its_own(
    tree: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, _ = _run(tree, ["fs-top", "low"], capsysbinary)
    lines = out.decode().splitlines()
    assert status == 0
    assert '\t"fs-top" [shape=plaintext];' in lines
    assert '\t"fs-top" -> "top" [arrowhead=empty];' in lines
    assert '\t"low" [peripheries=2];' in lines
    assert '\t"top" [peripheries=2];' in lines
    # The names: the same graph as top's, the alias and its edge added.
    assert len(lines) == len(TOP.splitlines()) + 2


def test_json_nodes_and_edges(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status, out, err = _run(tree, ["--json", "mid", "nosuch"], capsysbinary)
    assert (status, err) == (1, "")  # in JSON the error is the record's
    records = validate_output("graph", out)["records"]
    moddir = tree / "lib/modules/1.0"
    assert records == [
        {
            "query": "mid",
            "modules": ["mid"],
            "nodes": [
                {"name": "cyc", "kind": "module", "path": f"{moddir}/kernel/cyc.ko"},
                {"name": "low", "kind": "module", "path": f"{moddir}/kernel/low.ko"},
                {"name": "mid", "kind": "module", "path": f"{moddir}/kernel/mid.ko"},
            ],
            "edges": [
                {"source": "mid", "target": "cyc", "kind": "pre"},
                {"source": "mid", "target": "low", "kind": "hard"},
            ],
            "error": None,
        },
        {
            "query": "nosuch",
            "modules": [],
            "nodes": [],
            "edges": [],
            "error": "Module nosuch not found.",
        },
    ]


def test_unknown_module(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """One line for it, exit status 1, and the graph of the rest still printed."""
    status, out, err = _run(tree, ["nosuch", "low"], capsysbinary)
    assert status == 1
    assert err == "lkm graph: ERROR: Module nosuch not found.\n"
    assert out == b'digraph modules {\n\t"low" [peripheries=2];\n}\n'


def test_builtin_and_path(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status, out, _ = _run(tree, ["bi"], capsysbinary)
    assert status == 0
    assert out.decode().splitlines()[1] == (
        '\t"bi" [shape=box, style=filled, fillcolor=lightgrey, label="bi\\n(built-in)", '
        "peripheries=2];"
    )
    ko = tree / "lib/modules/1.0/kernel/mid.ko"
    status, out, err = _run(tree, ["--json", str(ko)], capsysbinary)
    assert (status, err) == (0, "")
    record = validate_output("graph", out)["records"][0]
    assert record["modules"] == ["mid"]
    assert [e["target"] for e in record["edges"]] == ["cyc", "low"]
    status, _, err = _run(tree, [str(ko) + ".missing"], capsysbinary)
    assert status == 1
    assert err == (
        f"lkm graph: ERROR: Failed to get module from path {ko}.missing: "
        "No such file or directory\n"
    )


def test_names_are_quoted_for_dot() -> None:
    """Quotes and backslashes in a name (an alias asked for can hold anything) are escaped;
    the output is the same whatever the order of the records."""
    alias = 'a"b\\c'
    graphs = [
        ModuleGraph("x", ("x",), (Node("x", NodeKind.MODULE, "/m/x.ko"),), ()),
        ModuleGraph(
            alias,
            ("x",),
            (Node(alias, NodeKind.ALIAS, None), Node("x", NodeKind.MODULE, "/m/x.ko")),
            (Edge(alias, "x", EdgeKind.ALIAS),),
        ),
        ModuleGraph("gone", (), (), (), "Module gone not found."),
    ]
    text = to_dot(graphs)
    assert text == (
        "digraph modules {\n"
        '\t"a\\"b\\\\c" [shape=plaintext];\n'
        '\t"x" [peripheries=2];\n'
        '\t"a\\"b\\\\c" -> "x" [arrowhead=empty];\n'
        "}\n"
    )
    assert to_dot(graphs[::-1]) == text
    if shutil.which("dot"):
        from lkm.graph import render

        # The label Graphviz draws is the name itself.
        assert b">a&quot;b\\c</text>" in render(text, "svg")


def test_bad_command_lines(tree: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert _run(tree, ["-T", "gif", "top"], capsysbinary) == (
        1, b"", "lkm graph: ERROR: unknown format 'gif': use dot, svg, png\n",
    )  # fmt: skip
    assert _run(tree, [], capsysbinary) == (
        1, b"", "lkm graph: ERROR: missing module or alias name.\n",
    )  # fmt: skip
    assert _run(tree, ["--json", "--format=svg", "top"], capsysbinary) == (
        1, b"", "lkm graph: ERROR: --json gives nodes and edges: it takes no --format\n",
    )  # fmt: skip
    assert _run(tree, ["-o", str(tree / "no/such/dir/x.dot"), "top"], capsysbinary) == (
        1, b"", f"lkm graph: ERROR: could not write {tree}/no/such/dir/x.dot: "
        "No such file or directory\n",
    )  # fmt: skip
    status = cli.main(["-b", str(tree), "-k", "2.0", "top"])
    assert status == 1
    assert capsysbinary.readouterr().err.decode() == (
        f"lkm graph: ERROR: module directory {tree}/lib/modules/2.0: No such file or directory\n"
    )


def test_output_file(
    tree: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    target = tmp_path / "top.dot"
    target.write_text("old\n")
    assert _run(tree, ["-o", str(target), "top"], capsysbinary) == (0, b"", "")
    assert target.read_text() == TOP
    assert os.listdir(tmp_path) == ["top.dot"]  # no temporary file left


needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed"
)


@needs_dot
def test_svg_and_png_drawn_by_graphviz(
    tree: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = _run(tree, ["--format", "svg", "top"], capsysbinary)
    assert (status, err) == (0, "")
    assert out.startswith(b"<?xml") and out.rstrip().endswith(b"</svg>")
    for name in ("top", "mid", "bi", "wk"):
        assert f"<title>{name}</title>".encode() in out
    assert b"<title>top&#45;&gt;mid</title>" in out
    target = tmp_path / "top.png"
    assert _run(tree, ["-T", "png", "-o", str(target), "top"], capsysbinary) == (0, b"", "")
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert os.listdir(tmp_path) == ["top.png"]


def test_without_dot(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path))
    target = tmp_path / "top.svg"
    assert _run(tree, ["-T", "svg", "-o", str(target), "top"], capsysbinary) == (
        1, b"", "lkm graph: ERROR: --format svg needs Graphviz's dot, which is not on PATH "
        "(install graphviz, or use --format dot)\n",
    )  # fmt: skip
    assert not target.exists()
    # dot text needs no Graphviz.
    assert _run(tree, ["top"], capsysbinary) == (0, TOP.encode(), "")


# A dot that fails: what it does, and what lkm says of it after "failed (".
FAILING_DOTS = {
    "complaint": ("echo 'Error: <stdin>: syntax error in line 1' >&2; echo more >&2; exit 3",
                  "exit status 3): Error: <stdin>: syntax error in line 1"),
    "signal": ("kill -SEGV $$", "killed by SIGSEGV)"),
    "silent": ("exit 1", "exit status 1)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FAILING_DOTS))
def test_dot_failing(
    case: str, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:  # fmt: skip
    """Its first line of complaint, status 1, and the output file untouched."""
    script, why = FAILING_DOTS[case]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text(f"#!/bin/sh\n/bin/cat > /dev/null\n{script}\n")
    (bin_dir / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    target = tmp_path / "top.svg"
    target.write_text("old\n")
    assert _run(tree, ["-T", "svg", "-o", str(target), "top"], capsysbinary) == (
        1, b"", f"lkm graph: ERROR: {bin_dir}/dot -Tsvg failed ({why}\n",
    )  # fmt: skip
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["bin", "top.svg"]


# -- the real trixie tree against kmod 34 ---------------------------------------------------

REAL_MODULES = ("vfat", "ext4", "nfsd", "btrfs", "xfs", "snd_hda_intel", "e1000e", "kvm_intel",
                "cifs", "amdgpu", "usb_storage", "dm_crypt")  # fmt: skip


def _reached(record: dict[str, object], kinds: set[str]) -> set[str]:
    edges = record["edges"]
    assert isinstance(edges, list)
    todo = list(record["modules"])  # type: ignore[call-overload]
    seen = set(todo)
    while todo:
        name = todo.pop()
        for edge in edges:
            if edge["source"] == name and edge["kind"] in kinds and edge["target"] not in seen:
                seen.add(edge["target"])
                todo.append(edge["target"])
    return seen


@pytest.mark.slow
def test_real_tree_like_modprobe_show_depends(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """For each module, what kmod 34's ``modprobe --show-depends`` lists (no modprobe.d, the
    tree's own modules.softdep) is what the graph reaches through hard, pre and post edges with
    ``--softdeps``, each a module file of that path or a built-in one; where the graph has no
    soft edges at all, its hard edges alone reach all of it (modules.dep's closure)."""
    from support import world
    from support.differential import COMPARED

    world.ensure_chroot()
    tree = world.tree("trixie-amd64")
    args = ["-b", str(tree.root), "-k", tree.kver, "-C", "/dev/null", "--softdeps", "--json"]
    assert cli.main([*args, *REAL_MODULES]) == 0
    records = validate_output("graph", capsysbinary.readouterr().out)["records"]
    hard_only = 0
    for name, record in zip(REAL_MODULES, records, strict=True):
        done = world.kmod("modprobe", "-d", tree.chroot_root, "-S", tree.kver, "-C", "/dev/null",
                          "--show-depends", name)  # fmt: skip
        assert done.returncode == 0 and done.stderr == b"", done
        listed: dict[str, str | None] = {}
        for line in done.stdout.decode().splitlines():
            word, _, rest = line.partition(" ")
            if word == "insmod":
                path = rest.rstrip(" ")
                listed[os.path.basename(path).partition(".ko")[0].replace("-", "_")] = path
            else:
                assert word == "builtin", line
                listed[rest] = None
        assert _reached(record, {"hard", "pre", "post"}) == set(listed), name
        nodes = {node["name"]: node for node in record["nodes"]}
        for module, path in listed.items():
            node = nodes[module]
            if path is None:
                assert node["kind"] == "builtin", (name, module)
            else:
                assert node["kind"] == "module", (name, module)
                assert tree.chroot_path(node["path"]) == path
        if all(edge["kind"] == "hard" for edge in record["edges"]):
            hard_only += 1
            assert _reached(record, {"hard"}) == set(listed)
    assert hard_only >= 5
    COMPARED["lkm graph against modprobe --show-depends on trixie"] += len(REAL_MODULES)
