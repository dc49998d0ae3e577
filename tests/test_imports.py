"""The import graph of ``src/lkm``, read from the source (imports inside functions included): no
cycle, no library module that imports the command line, and layers that only look down.

    parsers -> tree and configuration -> kernel and state -> operations -> command line

A module may import modules of its own layer and of the layers below it, never above.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Each module's layer, lowest first. "pkg.*" is the package and everything under it; any other
# entry is one module. A new module must be given its place here.
LAYERS: dict[str, tuple[str, ...]] = {
    "parsers": (
        "lkm",  # the package itself: the version and the error root
        "lkm.errors",
        "lkm.typing_lite",  # typing's names for type checkers, without typing at run time
        "lkm.enum_lite",  # enum's classes for type checkers, without enum at run time
        "lkm.dataclasses_lite",  # dataclasses' decorator for type checkers, without it at run time
        "lkm.text",
        "lkm.names",
        "lkm.wildcard",
        "lkm.compress",
        "lkm.xz_buffer",  # whole xz files by liblzma itself (ctypes), checks verified by zlib
        "lkm.readahead",  # xz module files decompressed in a thread while lkm is imported
        "lkm.elf",
        "lkm.der",
        "lkm.signature",
        "lkm.module",
        "lkm.index",
        "lkm.jsonable",  # records as JSON documents
        "lkm.kernelimage",  # the kernel inside a bzImage, and where its certificates are
        "lkm.certificates",  # X.509 certificates as records
    ),
    "tree and configuration": (
        "lkm.moddir",
        "lkm.fileset",  # depmod's output files written and read as one set
        "lkm.config",
        "lkm.depmod.*",
        "lkm.depmod.config",
        "lkm.depmod.order",
        "lkm.depmod.output",
        "lkm.depmod.parallel",
        "lkm.depmod.scan",
        "lkm.modules_load",  # systemd's modules-load.d and modules_load= of the command line
    ),
    "kernel and state": (
        "lkm.kernel",
        "lkm.state",
        "lkm.system",  # where a system's kernel state, module trees and settings are
    ),
    "operations": (
        "lkm.resolve",  # plans from the tree, the configuration and the kernel's state
        "lkm.probe",  # carries plans out through the kernel
        "lkm.bulk",
        "lkm.modinfo",  # what modinfo shows, as records
        "lkm.closure",  # the modules and firmware an initramfs needs
        "lkm.firmware_cache",  # modules' firmware fields kept between runs
        "lkm.show",  # lkm show: a module's typed record
        "lkm.sandbox_kernel",  # the kernel a sandbox boots: a package, unpacked and indexed
        "lkm.sandbox",
        "lkm.links",  # links named after the tools, to try lkm first on PATH
        "lkm.kmod.*",  # python-kmod's API
        "lkm.loaded",  # the loaded modules as records, and who holds whom
        "lkm.status",  # where modules stand, for configuration management
        "lkm.drivers",  # devices, the modules matching their modaliases, their drivers now
        "lkm.graph",  # dependency graphs as records and Graphviz text
        "lkm.keys",  # the keys a kernel trusts
        "lkm.sign",  # module signatures made as the kernel's sign-file makes them
        "lkm.audit",  # what in a running kernel's modules is not as it should be
        "lkm.verify",  # module signatures checked as the kernel checks them
        "lkm.boot_load",  # modules-load.d's modules loaded, independent ones in parallel
    ),
    "command line": (
        "lkm.cli.*",
        "lkm.__main__",
    ),
}

# Edges (importer, imported) known to close a cycle, waiting to be removed. The test fails when
# one of them is gone, so that the list only shrinks.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "lkm").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> Iterator[str]:
    """What every import statement anywhere in the file names, made absolute: ``from a import
    b`` gives ``a.b``, which is module a when b is not a module of its own."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        targets: set[str] = set()
        for imported in imported_names(name, path):
            # The longest known module the name starts with (``a.b`` where b is a function
            # is module ``a``).
            module = imported
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def layer_of(name: str) -> str | None:
    for layer, entries in LAYERS.items():
        for entry in entries:
            package = entry.removesuffix(".*")
            if name == package or (entry.endswith(".*") and name.startswith(package + ".")):
                return layer
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_inside_functions_are_read() -> None:
    graph = import_graph()
    # Both are imported only inside functions.
    assert "lkm.cli.lsmod" in graph["lkm.cli.kmodcmd"]
    assert "lkm.state" in graph["lkm.cli.lsmod"]


def test_every_module_has_a_layer() -> None:
    unknown = [name for name in modules() if layer_of(name) is None]
    assert not unknown, (
        f"modules without a layer: {', '.join(unknown)}; add each to LAYERS in {__file__} "
        "(parsers, tree and configuration, kernel and state, operations or command line)"
    )


def test_every_layer_entry_names_a_module() -> None:
    known = modules()
    stale = [
        entry
        for entries in LAYERS.values()
        for entry in entries
        if entry.removesuffix(".*") not in known
    ]
    assert not stale, f"LAYERS lists modules that are gone: {', '.join(stale)}; remove them"


def test_no_import_cycle() -> None:
    graph = import_graph()
    for importer, imported in KNOWN_VIOLATIONS:
        assert imported in graph[importer], (
            f"{importer} no longer imports {imported}: remove it from KNOWN_VIOLATIONS"
        )
        graph[importer].discard(imported)
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_library_module_imports_the_command_line() -> None:
    offenders = [
        f"{importer} imports {imported}"
        for importer, targets in import_graph().items()
        if layer_of(importer) != "command line"
        for imported in targets
        if imported == "lkm.cli" or imported.startswith("lkm.cli.")
    ]
    assert not offenders, "; ".join(offenders)


def test_layers_only_look_down() -> None:
    order = list(LAYERS)
    upward = []
    for importer, targets in import_graph().items():
        importer_layer = layer_of(importer)
        if importer_layer is None:
            continue  # reported by test_every_module_has_a_layer
        for imported in sorted(targets):
            imported_layer = layer_of(imported)
            if imported_layer is None:
                continue
            if order.index(imported_layer) > order.index(importer_layer):
                upward.append(
                    f"{importer} ({importer_layer}) imports {imported} ({imported_layer})"
                )
    assert not upward, "; ".join(upward)
