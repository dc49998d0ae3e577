"""Tiny module files and scenario trees for depmod: exports, imports, aliases, cycles.

``module_elf`` builds a little-endian ELF64 relocatable object with a ``.modinfo``, a
``__ksymtab_strings`` (what depmod takes for the exports when there are no ``__crc_``
symbols), ``__crc_`` symbols when CRCs are given, and undefined symbols for the imports, with
their CRCs in ``__versions``. That is all depmod reads of a module.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

SHN_ABS = 0xFFF1

# The eleven files depmod writes, in the order kmod 34 writes them.
OUTPUTS = (
    "modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.softdep",
    "modules.weakdep", "modules.symbols", "modules.symbols.bin", "modules.builtin.bin",
    "modules.builtin.alias.bin", "modules.devname",
)  # fmt: skip
# What depmod reads in the module directory and never writes.
KEPT = ("modules.order", "modules.builtin", "modules.builtin.modinfo")

# depmod.d contents tried on duplicates_tree.
CONFIGS = {
    "default": "",
    "search": "search extra updates built-in\n",
    "override": "override dup * extra\n",
    "override-other-release": "override dup 2.* extra\nexclude skipme\n",
    "bad-line": "search extra\nbogus line\n",
    "override-subdir": "search updates\noverride dup 1.0.* kernel/drivers\n",
}

# Options tried on a small tree (``{base}``: its base directory); the last names a module file.
MESSAGE_OPTIONS = [
    ["-n"], ["-n", "-v"], ["-n", "-e"], ["-n", "-e", "-F", "{base}/System.map"],
    ["-n", "-e", "-E", "{base}/Module.symvers"], ["-n", "-F", "{base}/nonexistent"],
    ["-n", "-w"], ["-n", "-P", "_"], ["-h"], ["--bogus"], ["-n", "{base}/x"],
]  # fmt: skip


def module_elf(
    *,
    exports: Sequence[str] = (),
    imports: Sequence[str] = (),
    modinfo: Sequence[str] = (),
    export_crcs: dict[str, int] | None = None,
    import_crcs: dict[str, int] | None = None,
    weak: Sequence[str] = (),
) -> bytes:
    strtab = bytearray(b"\0")
    symbols = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]

    def name(text: str) -> int:
        offset = len(strtab)
        strtab.extend(text.encode() + b"\0")
        return offset

    for symbol, crc in (export_crcs or {}).items():
        # Local absolute symbols, as the kernel's build makes them.
        symbols.append(struct.pack("<IBBHQQ", name("__crc_" + symbol), 0, 0, SHN_ABS, crc, 0))
    first_global = len(symbols)
    for symbol in imports:
        bind = 2 if symbol in weak else 1
        symbols.append(struct.pack("<IBBHQQ", name(symbol), bind << 4, 0, 0, 0, 0))
    versions = b"".join(
        struct.pack("<Q56s", crc, symbol.encode()) for symbol, crc in (import_crcs or {}).items()
    )
    sections: list[tuple[str, int, bytes, int, int, int]] = [
        # name, type, data, link, info, entsize
        (".modinfo", 1, b"".join(s.encode() + b"\0" for s in modinfo), 0, 0, 0),
        ("__ksymtab_strings", 1, b"".join(s.encode() + b"\0" for s in exports), 0, 0, 0),
        ("__versions", 1, versions, 0, 0, 0),
        (".symtab", 2, b"".join(symbols), 5, first_global, 24),
        (".strtab", 3, bytes(strtab), 0, 0, 0),
    ]
    names = b"\0" + b"".join(s[0].encode() + b"\0" for s in sections) + b".shstrtab\0"
    sections.append((".shstrtab", 3, names, 0, 0, 0))
    body = bytearray(64)
    headers = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    name_offset = 1
    for sname, kind, data, link, info, entsize in sections:
        while len(body) % 8:
            body += b"\0"
        offset = len(body)
        body += data
        headers.append(
            struct.pack(
                "<IIQQQQIIQQ", name_offset, kind, 0, 0, offset, len(data), link, info, 8, entsize
            )
        )
        name_offset += len(sname) + 1
    while len(body) % 8:
        body += b"\0"
    shoff = len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    body[:64] = ident + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(headers), len(headers) - 1
    )
    return bytes(body) + b"".join(headers)


def write_tree(root: Path, release: str, files: dict[str, bytes]) -> Path:
    """A module directory ``root/lib/modules/<release>`` holding ``files`` (relative paths)."""
    moddir = root / "lib" / "modules" / release
    for relative, data in files.items():
        path = moddir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    moddir.mkdir(parents=True, exist_ok=True)
    return moddir


def cycle_tree() -> dict[str, bytes]:
    """a -> b -> c -> a, plus d -> e -> d, plus f using a (not in a cycle itself)."""
    return {
        "kernel/a.ko": module_elf(exports=["a_fn"], imports=["b_fn"]),
        "kernel/b.ko": module_elf(exports=["b_fn"], imports=["c_fn"]),
        "kernel/c.ko": module_elf(exports=["c_fn"], imports=["a_fn"]),
        "kernel/d.ko": module_elf(exports=["d_fn"], imports=["e_fn"]),
        "kernel/e.ko": module_elf(exports=["e_fn"], imports=["d_fn"]),
        "kernel/f.ko": module_elf(imports=["a_fn"]),
    }


def duplicates_tree() -> dict[str, bytes]:
    """The same module names in several places, for search, override, exclude and external."""

    def mod(tag: str) -> bytes:
        return module_elf(exports=[f"dup_{tag}"], modinfo=[f"alias=where-{tag}"])

    return {
        "kernel/drivers/dup.ko": mod("kernel"),
        "updates/dup.ko": mod("updates"),
        "extra/dup.ko": mod("extra"),
        "extra/other.ko": module_elf(imports=["dup_extra", "dup_kernel", "dup_updates"]),
        "kernel/skipme/hidden.ko": mod("hidden"),
        "updates/skipme/hidden2.ko": mod("hidden2"),
        "kernel/twice.ko": module_elf(exports=["shared_sym"]),
        "extra/twice2.ko": module_elf(exports=["shared_sym"]),
        "kernel/user.ko": module_elf(imports=["shared_sym"]),
    }


def graph_tree(graph: dict[str, list[str]], order: Sequence[str]) -> dict[str, bytes]:
    """``kernel/NAME.ko`` for each module of ``graph``, each exporting ``NAME_fn`` and using the
    symbol of each of its dependencies in the order given, with a ``modules.order`` listing
    ``order`` (which fixes depmod's order of the modules)."""
    files = {
        f"kernel/{name}.ko": module_elf(exports=[f"{name}_fn"], imports=[f"{d}_fn" for d in deps])
        for name, deps in graph.items()
    }
    files["modules.order"] = "".join(f"kernel/{name}.ko\n" for name in order).encode()
    return files


# Dependency cycles and what kmod 34 reports for them (its ``Cycle detected:`` lines, in order,
# and the count of ``Found N modules in dependency cycles!``), recorded from kmod 34's depmod.
# A line of one name is kmod's report of a module on no cycle that an earlier walk reached.
CYCLE_CASES: dict[str, tuple[dict[str, list[str]], list[str], list[str], int]] = {
    "two cycles sharing their first module": (
        {"a": ["b", "c"], "b": ["a"], "c": ["a"]}, ["a", "b", "c"],
        ["a -> c -> a", "a -> b -> a"], 3,
    ),
    "the same, first use first": (
        {"a": ["c", "b"], "b": ["a"], "c": ["a"]}, ["a", "b", "c"],
        ["a -> b -> a", "a -> c -> a"], 3,
    ),
    "a cycle the longer way round": (
        {"a": ["b", "c"], "b": ["d"], "d": ["a"], "c": ["a"]}, ["a", "b", "c", "d"],
        ["a -> c -> a", "a -> b -> d -> a"], 4,
    ),
    "a diamond back to the start": (
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["a"]}, ["a", "b", "c", "d"],
        ["a -> c -> d -> a", "a -> b -> d -> a"], 4,
    ),
    "a figure eight": (
        {"a": ["n"], "n": ["a", "m"], "m": ["a"]}, ["a", "n", "m"],
        ["a -> n -> m -> a", "a -> n -> a"], 3,
    ),
    "separate cycles in depmod's order": (
        {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}, ["c", "a", "b", "d"],
        ["c -> d -> c", "a -> b -> a"], 4,
    ),
    "a chain behind a cycle": (
        {"a": ["b"], "b": ["a", "r"], "r": ["x"], "x": ["y"], "y": ["d"], "d": []},
        ["a", "b", "r", "x", "y", "d"],
        ["a -> b -> a", "r", "x", "y"], 2,
    ),
    "the chain first in depmod's order": (
        {"a": ["b"], "b": ["a", "r"], "r": ["x"], "x": ["y"], "y": ["d"], "d": []},
        ["r", "x", "y", "d", "a", "b"],
        ["a -> b -> a", "x", "y"], 2,
    ),
    "a walk that skips ahead": (
        {"r": ["d1", "d2"], "a": ["b"], "b": ["c"], "c": ["a", "r"], "d1": [], "d2": []},
        ["r", "a", "d1", "b", "d2", "c"],
        ["b -> c -> a -> b"], 3,
    ),
    "a walk that goes round the end": (
        {"q0": ["q3"], "q2": ["q1", "q3"], "q1": ["q0", "q2"], "q3": []}, ["q0", "q2", "q1", "q3"],
        ["q2 -> q1 -> q2"], 2,
    ),
    "a long chain into a cycle": (
        {"s": ["u"], "u": ["v"], "v": ["w"], "w": ["x"], "x": ["y"], "y": ["z"], "z": ["y"]},
        ["s", "u", "v", "w", "x", "y", "z"],
        ["y -> z -> y"], 2,
    ),
    # After a walk the scan goes on from the walk's last mark: the last module it added to
    # those of the reported cycles, or a module without dependencies it reached first.
    "a dead end reached after the cycle": (
        {"a": ["d", "b"], "b": ["c", "a"], "c": ["z"], "d": ["z"], "z": []},
        ["a", "c", "b", "d", "z"],
        ["a -> b -> a", "c", "d"], 2,
    ),
    "a dead end the scan has looked at": (
        {"a": ["d", "b"], "b": ["c", "a"], "c": ["z"], "d": ["z"], "z": []},
        ["z", "a", "d", "b", "c"],
        ["a -> b -> a", "c", "d"], 2,
    ),
    "a dead end reached again after the cycle": (
        {"a": ["b", "d"], "b": ["z", "c"], "c": ["a", "z", "e"], "d": ["e"], "e": ["z"], "z": []},
        ["a", "e", "c", "d", "z", "b"],
        ["a -> b -> c -> a", "d", "e"], 3,
    ),
    "a walk from no cycle into an earlier walk": (
        {"a": ["e"], "c": ["d", "n"], "d": ["c"], "e": [], "n": ["s"], "s": ["a"]},
        ["a", "c", "d", "s", "e", "n"],
        ["c -> d -> c", "s"], 2,
    ),
    "a second cycle adding a module": (
        {"a": ["c", "b"], "b": ["a"], "c": ["b"], "x": ["y"], "y": ["x"], "u": ["v"], "v": ["u"]},
        ["a", "b", "x", "y", "c", "u", "v"],
        ["a -> b -> a", "a -> c -> b -> a", "u -> v -> u", "x -> y -> x"], 7,
    ),
    "a last cycle adding no module": (
        {"e": ["d", "a"], "a": ["e"], "d": ["c"], "c": ["e", "b"], "b": ["e"], "x": ["y"],
         "y": ["x"], "u": ["v"], "v": ["u"]},
        ["e", "d", "c", "x", "y", "b", "u", "v", "a"],
        ["e -> a -> e", "e -> d -> c -> b -> e", "e -> d -> c -> e", "u -> v -> u",
         "x -> y -> x"], 9,
    ),
}  # fmt: skip

# Where kmod 34 never ends (its walk goes round a cycle that does not pass through where it
# started, printing ever longer cycles or exhausting memory), lkm reports every cycle once.
ENDLESS_CYCLE_CASES: dict[str, tuple[dict[str, list[str]], list[str], list[str], int]] = {
    "a cycle behind another": (
        {"x": ["y"], "y": ["x", "z"], "z": ["w"], "w": ["z"]}, ["x", "y", "z", "w"],
        ["x -> y -> x", "z -> w -> z"], 4,
    ),
    "two cycles sharing a module that is not first": (
        {"a": ["b", "c"], "b": ["a"], "c": ["a"]}, ["b", "c", "a"],
        ["b -> a -> b", "c -> a -> c"], 3,
    ),
    "a cycle walked again from one in front of it": (
        {"x": ["y"], "y": ["x", "z"], "z": ["w"], "w": ["z"]}, ["z", "w", "x", "y"],
        ["z -> w -> z", "x -> y -> x"], 4,
    ),
    "a cycle inside a cycle": (
        {"a": ["b"], "b": ["c"], "c": ["a", "b"]}, ["a", "b", "c"],
        ["a -> b -> c -> a", "b -> c -> b"], 3,
    ),
}  # fmt: skip
