"""A module's dependency graph, as records and as Graphviz ``dot`` text (``lkm graph``).

    >>> from lkm.graph import graph, to_dot
    >>> from lkm.resolve import Resolver
    >>> with Resolver.open(release="6.12.0") as resolver:
    ...     found = graph(resolver, ["vfat"])
    >>> [(e.source, e.target, e.kind.value) for e in found[0].edges]
    [('vfat', 'fat', 'hard')]
    >>> print(to_dot(found))  # doctest: +SKIP

What the graph holds, for each module a query stands for (:meth:`Resolver.lookup`, as
modprobe finds it) and every module reached from it:

- Hard dependencies (modules.dep): modules.dep lists a module's whole closure on its line, so
  an edge is drawn only to a dependency that no other dependency on the line leads to (the
  transitive reduction); the modules reached are exactly the line's.
- Soft dependencies (``softdep``, from modprobe.d and from the modules' own modinfo by way of
  modules.softdep) as ``pre`` and ``post`` edges, and weak dependencies (``weakdep``) as
  ``weak`` edges, to each module their names stand for. Their targets are drawn; with
  ``softdeps`` the graph also goes on from them (their own dependencies).
- A query that is not the module's own name (an alias, ``symbol:``) is a node of its own with
  an ``alias`` edge to each module it stands for.
- Built-in modules and names that stand for nothing are nodes of their own kinds.

Nodes and edges are sorted, so the same tree and configuration always give the same text.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from lkm.errors import LkmError

if TYPE_CHECKING:
    from lkm.resolve import Match, Resolver

FORMATS = ("dot", "svg", "png")


class NodeKind(enum.Enum):
    MODULE = "module"  # a module file (modules.dep, or a file given by path)
    BUILTIN = "builtin"  # part of the kernel image
    MISSING = "missing"  # a name that stands for no module of the tree
    ALIAS = "alias"  # a query that is not a module's name


class EdgeKind(enum.Enum):
    HARD = "hard"  # modules.dep: the source cannot load without the target
    PRE = "pre"  # softdep: the target is loaded before the source
    POST = "post"  # softdep: the target is loaded after the source
    WEAK = "weak"  # weakdep: the target may be used, nothing is loaded for it
    ALIAS = "alias"  # the source (a query) stands for the target


class Node(NamedTuple):
    """A module (or an alias asked for) in a graph."""

    name: str
    kind: NodeKind
    path: str | None  # the module's file, absolute; None for other kinds


class Edge(NamedTuple):
    source: str
    target: str
    kind: EdgeKind


class ModuleGraph(NamedTuple):
    """One query's graph; ``error`` (and nothing else) when the query stands for nothing."""

    query: str
    modules: tuple[str, ...]  # the modules the query stands for
    nodes: tuple[Node, ...]  # sorted by name
    edges: tuple[Edge, ...]  # sorted by source, target and kind
    error: str | None = None


class GraphvizError(LkmError):
    """Graphviz's ``dot`` is not installed, or failed to draw the graph."""


def graph(
    resolver: Resolver, queries: Sequence[str], *, softdeps: bool = False
) -> tuple[ModuleGraph, ...]:
    """One :class:`ModuleGraph` for each query, in order (see the module docstring)."""
    return tuple(_graph(resolver, query, softdeps) for query in queries)


def _graph(resolver: Resolver, query: str, softdeps: bool) -> ModuleGraph:
    from lkm.resolve import PathError

    try:
        matches = resolver.lookup(query)
    except PathError as err:
        return ModuleGraph(query, (), (), (), str(err))
    if not matches:
        return ModuleGraph(query, (), (), (), f"Module {query} not found.")
    walk = _Walk(resolver, softdeps)
    for match in matches:
        walk.visit(match.name, match)
    if any(match.alias is not None for match in matches):
        walk.nodes[query] = Node(query, NodeKind.ALIAS, None)
        walk.edges.update(Edge(query, match.name, EdgeKind.ALIAS) for match in matches)
    modules = tuple(dict.fromkeys(match.name for match in matches))
    return ModuleGraph(query, modules, *_sorted(walk.nodes.values(), walk.edges))


_EDGE_ORDER = {kind: at for at, kind in enumerate(EdgeKind)}


def _sorted(
    nodes: Iterable[Node], edges: Iterable[Edge]
) -> tuple[tuple[Node, ...], tuple[Edge, ...]]:
    return (
        tuple(sorted(nodes, key=lambda n: n.name)),
        tuple(sorted(edges, key=lambda e: (e.source, e.target, _EDGE_ORDER[e.kind]))),
    )


class _Walk:
    """The nodes and edges reached so far from a query's modules."""

    def __init__(self, resolver: Resolver, softdeps: bool) -> None:
        self.resolver = resolver
        self.softdeps = softdeps
        self.nodes: dict[str, Node] = {}
        self.edges: set[Edge] = set()
        # Nodes whose own edges are drawn (a soft target without ``softdeps`` is only a node,
        # until a hard dependency reaches it).
        self._expanded: set[str] = set()
        self._lines: dict[str, tuple[str, ...] | None] = {}

    def _line(self, name: str) -> tuple[str, ...] | None:
        """The names on ``name``'s modules.dep line (its closure); None without a line."""
        if name not in self._lines:
            from lkm.names import module_name_from_path

            line = self.resolver.moddir.dependency_line(name)
            self._lines[name] = (
                None if line is None else tuple(module_name_from_path(p) for p in line[1])
            )
        return self._lines[name]

    def _node(self, name: str, match: Match | None = None) -> Node:
        moddir = self.resolver.moddir
        if match is not None and match.path is not None:
            return Node(name, NodeKind.MODULE, match.path)
        path = moddir.module_path(name)
        if path is not None:
            return Node(name, NodeKind.MODULE, path)
        if moddir.is_builtin(name):
            return Node(name, NodeKind.BUILTIN, None)
        return Node(name, NodeKind.MISSING, None)

    def visit(self, name: str, match: Match | None = None) -> None:
        """Add ``name`` and everything it leads to (iteratively: chains can be long)."""
        todo = [(name, match)]
        while todo:
            current, found = todo.pop()
            if current in self._expanded:
                continue
            self._expanded.add(current)
            if current not in self.nodes:
                self.nodes[current] = self._node(current, found)
            closure = self._line(current) or ()
            for dep in self._direct(closure):
                self.edges.add(Edge(current, dep, EdgeKind.HARD))
            todo.extend((dep, None) for dep in closure)
            for kind, target in self._soft(current):
                self.edges.add(Edge(current, target.name, kind))
                if self.softdeps:
                    todo.append((target.name, target))
                elif target.name not in self.nodes:
                    self.nodes[target.name] = self._node(target.name, target)

    def _direct(self, closure: tuple[str, ...]) -> list[str]:
        """The dependencies on a line that no other one on it leads to (two that lead to each
        other, which only a hand-made modules.dep has, both stay)."""
        reached: set[str] = set()
        for dep in closure:
            for further in self._line(dep) or ():
                if further != dep and dep not in (self._line(further) or ()):
                    reached.add(further)
        return [dep for dep in dict.fromkeys(closure) if dep not in reached]

    def _soft(self, name: str) -> list[tuple[EdgeKind, Match]]:
        """The softdep and weakdep targets of ``name``, each as the modules its name stands
        for; a name that stands for nothing is a missing node of that name."""
        from lkm.moddir import normalize_name
        from lkm.resolve import Match, PathError, Stage

        config = self.resolver.config
        softdep = config.softdep(name)
        weakdep = config.weakdep(name)
        wanted = [
            *((EdgeKind.PRE, n) for n in (softdep.pre if softdep else ())),
            *((EdgeKind.POST, n) for n in (softdep.post if softdep else ())),
            *((EdgeKind.WEAK, n) for n in (weakdep.names if weakdep else ())),
        ]
        found = []
        for kind, target in wanted:
            try:
                matches = self.resolver.lookup(target)
            except PathError:
                matches = ()
            if not matches:
                matches = (Match(normalize_name(target), None, Stage.MODULE),)
            found += [(kind, match) for match in matches]
        return found


# -- Graphviz --------------------------------------------------------------------------------

_NODE_STYLE = {
    NodeKind.MODULE: "",
    NodeKind.BUILTIN: 'shape=box, style=filled, fillcolor=lightgrey, label="{label}\\n(built-in)"',
    NodeKind.MISSING: 'style=dashed, label="{label}\\n(not found)"',
    NodeKind.ALIAS: "shape=plaintext",
}
_EDGE_STYLE = {
    EdgeKind.HARD: "",
    EdgeKind.PRE: 'style=dashed, label="pre"',
    EdgeKind.POST: 'style=dashed, label="post"',
    EdgeKind.WEAK: 'style=dotted, label="weak"',
    EdgeKind.ALIAS: "arrowhead=empty",
}


def _quoted(text: str) -> str:
    return '"' + _escaped(text) + '"'


def _escaped(text: str) -> str:
    # Labels read backslash escapes (\n, \N, ...): a name's own backslashes are doubled.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graphs: Sequence[ModuleGraph]) -> str:
    """The graphs (their union, errors left out) as one Graphviz ``digraph``, sorted.

    Hard dependencies are solid arrows, soft ones dashed and labelled ``pre`` or ``post``,
    weak ones dotted; built-in modules are grey boxes, names standing for nothing dashed, the
    modules asked for drawn with a double outline.
    """
    nodes = {node.name: node for g in graphs for node in g.nodes}
    edges = {edge for g in graphs for edge in g.edges}
    asked = {name for g in graphs for name in g.modules}
    sorted_nodes, sorted_edges = _sorted(nodes.values(), edges)
    lines = ["digraph modules {"]
    for node in sorted_nodes:
        attributes = [_NODE_STYLE[node.kind].format(label=_escaped(node.name))]
        if node.name in asked:
            attributes.append("peripheries=2")
        lines.append(f"\t{_quoted(node.name)}{_attributes(attributes)};")
    for edge in sorted_edges:
        attributes = [_EDGE_STYLE[edge.kind]]
        lines.append(
            f"\t{_quoted(edge.source)} -> {_quoted(edge.target)}{_attributes(attributes)};"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _attributes(parts: list[str]) -> str:
    text = ", ".join(part for part in parts if part)
    return f" [{text}]" if text else ""


def render(dot: str, output_format: str) -> bytes:
    """``dot`` text drawn by Graphviz's ``dot`` program as ``svg`` or ``png``.

    GraphvizError when no ``dot`` is on PATH, or it fails (its first line of complaint).
    """
    import shutil
    import signal
    import subprocess

    program = shutil.which("dot")
    if program is None:
        raise GraphvizError(
            f"--format {output_format} needs Graphviz's dot, which is not on PATH "
            "(install graphviz, or use --format dot)"
        )
    try:
        done = subprocess.run(
            [program, f"-T{output_format}"],
            input=dot.encode("utf-8", "surrogateescape"),
            capture_output=True,
            check=False,
        )
    except OSError as err:
        raise GraphvizError(f"could not run {program}: {os.strerror(err.errno or 0)}") from err
    if done.returncode != 0:
        if done.returncode < 0:
            why = f"killed by {signal.Signals(-done.returncode).name}"
        else:
            why = f"exit status {done.returncode}"
        complaint = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {complaint[0]}" if complaint else ""
        raise GraphvizError(f"{program} -T{output_format} failed ({why}){detail}")
    return done.stdout


def write_file(path: str, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file in the same directory, renamed over it
    (a reader sees the old file or the whole new one); LkmError saying why when it cannot be
    written."""
    directory, base = os.path.split(path)
    temporary = os.path.join(directory, f".{base}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise LkmError(f"could not write {path}: {os.strerror(err.errno or 0)}") from err
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as err:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise LkmError(f"could not write {path}: {os.strerror(err.errno or 0)}") from err


__all__ = [
    "FORMATS",
    "Edge",
    "EdgeKind",
    "GraphvizError",
    "ModuleGraph",
    "Node",
    "NodeKind",
    "graph",
    "render",
    "to_dot",
    "write_file",
]
