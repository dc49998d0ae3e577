"""The records a depmod run is made of and its errors, shared by the computation and by
the writing of the output files."""

from __future__ import annotations

from lkm.dataclasses_lite import dataclass, field
from lkm.errors import LkmError
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.depmod.scan import ModuleScan

__all__ = [
    "DependencyCycleError",
    "DepmodError",
    "DepmodResult",
    "FoundModule",
    "Module",
    "ModuleArgumentError",
]


class DepmodError(LkmError):
    """A depmod run that could not finish; nothing was written.

    ``lines`` are the (level, text) messages kmod 34 ends such a run with: one line, FATAL
    unless the subclass says otherwise.
    """

    level = "FATAL"

    @property
    def lines(self) -> tuple[tuple[str, str], ...]:
        return ((self.level, str(self)),)


class DependencyCycleError(DepmodError):
    """Modules depend on each other in a circle; ``cycles`` holds each one as kmod prints it."""

    level = "ERROR"

    def __init__(self, cycles: Sequence[Sequence[str]], count: int) -> None:
        self.cycles = tuple(tuple(cycle) for cycle in cycles)
        self.count = count
        super().__init__(f"Found {count} modules in dependency cycles!")


class ModuleArgumentError(DepmodError):
    """A module file named on the command line cannot be taken: missing, or its name taken."""


@dataclass(frozen=True)
class FoundModule:
    """A module file chosen for its name: absolute path and the path modules.dep shows."""

    path: str
    relpath: str
    name: str


@dataclass
class Module:
    """A module in depmod's order with what was read from it and what it depends on."""

    index: int
    found: FoundModule
    scan: ModuleScan | None  # None when the file could not be read
    deps: list[int] = field(default_factory=list)  # direct dependencies, first use first
    sort_index: int = 0

    @property
    def name(self) -> str:
        return self.found.name


@dataclass
class DepmodResult:
    """Everything the output files are made of."""

    modules: list[Module]
    owners: dict[bytes, int]  # exported symbol -> index of the module that wins it
    builtin: list[str] | None  # module names of modules.builtin, None when unreadable
    builtin_modinfo: bytes | None

    def closure(self, module: Module) -> list[Module]:
        """Every module ``module`` needs, directly or not, in kmod's topological rank."""
        seen: set[int] = set()
        todo = list(module.deps)
        while todo:
            index = todo.pop()
            if index not in seen:
                seen.add(index)
                todo.extend(self.modules[index].deps)
        found = [self.modules[i] for i in seen]
        found.sort(key=lambda m: m.sort_index)
        return found
