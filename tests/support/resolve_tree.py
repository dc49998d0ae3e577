"""A hand-made module directory for the resolver, and a loaded-module state to go with it."""

from __future__ import annotations

from pathlib import Path

from lkm.index import write_index
from lkm.moddir import ModuleDirectory

DEP = {
    "a": ("kernel/a.ko", ("kernel/b.ko", "kernel/c.ko")),
    "b": ("kernel/b.ko", ()),
    "c": ("kernel/c.ko", ()),
    "d": ("kernel/d-x.ko", ()),
}


def build(tmp_path: Path) -> ModuleDirectory:
    deps = [
        (n, f"{p}: {' '.join(d)}".rstrip(" ") if d else f"{p}:", 0) for n, (p, d) in DEP.items()
    ]
    (tmp_path / "modules.dep.bin").write_bytes(write_index(deps))
    # The module files exist (kmod drops the dependencies of a line naming a missing one).
    for path, _ in DEP.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    aliases = [("pci:v1*", "a", 0), ("pci:v1*", "d", 1), ("fs-b", "b", 2)]
    (tmp_path / "modules.alias.bin").write_bytes(write_index(aliases))
    (tmp_path / "modules.symbols.bin").write_bytes(write_index([("symbol:c_fn", "c", 0)]))
    (tmp_path / "modules.builtin.bin").write_bytes(write_index([("bi", "", 0)]))
    (tmp_path / "modules.builtin.alias.bin").write_bytes(write_index([("bia", "bi", 0)]))
    return ModuleDirectory(str(tmp_path))


class FakeState:
    def __init__(self, loaded: dict[str, int], holders: dict[str, list[str]] | None = None):
        self.loaded = loaded
        self._holders = holders or {}

    def state(self, name: str) -> str | None:
        return "live" if name in self.loaded else None

    def holders(self, name: str) -> list[str]:
        return self._holders.get(name, [])

    def refcount(self, name: str) -> int | None:
        return self.loaded.get(name)
