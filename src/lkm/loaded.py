"""The loaded modules as records, and who holds whom as a tree (``lkm loaded``).

The kernel lists its loaded modules in ``/proc/modules``; ``/sys/module/NAME`` says more of
each (size, use count, state, holders, taint). Modules built into the kernel are not in
``/proc/modules`` and so are not listed, even when ``/sys/module`` has a directory for one.

    >>> from lkm.loaded import loaded, tree
    >>> from lkm.system import System
    >>> modules = loaded(System.running())
    >>> [(m.name, m.refcount, m.holders) for m in modules][:1]
    [('vfat', 0, ())]
    >>> [root.name for root in tree(modules)][:1]  # nobody holds vfat: it is a root
    ['vfat']

Values are read as lsmod reads them (:func:`lkm.state.listed`): size from ``coresize``,
use count from ``refcnt``, holders from ``holders/``. Where lsmod shows a negative errno for a
value it cannot read, a record has the refcount None and the size of ``/proc/modules``, and
says what could not be read in ``problems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.state import ProcModule
    from lkm.system import System

# /proc/modules' words for a module's state, as /sys/module/NAME/initstate says them.
_PROC_STATES = {"Live": "live", "Loading": "coming", "Unloading": "going"}


class LoadedModule(NamedTuple):
    """One loaded module."""

    name: str
    size: int  # bytes of its core (``coresize``; /proc/modules' column when unreadable)
    refcount: int | None  # ``refcnt``: None when it cannot be read (a kernel that cannot unload)
    state: str  # live, coming or going (``initstate``, else /proc/modules' column)
    holders: tuple[str, ...]  # modules using this one (``holders/``), sorted
    holds: tuple[str, ...]  # loaded modules this one uses (those it is a holder of), sorted
    taint: str  # taint letters (``OE``), empty when none
    problems: tuple[str, ...]  # what could not be read, in kmod's words


class TreeNode(NamedTuple):
    """A module in the tree of who holds whom: its children are the modules it uses."""

    name: str
    children: tuple[TreeNode, ...]
    # Already on the path from the root (only odd sysfs trees have such cycles): its children
    # are not repeated.
    cycle: bool = False


def loaded(system: System) -> tuple[LoadedModule, ...]:
    """Every module of ``system``'s /proc/modules, in its order; StateError (kmod's words)
    when /proc/modules cannot be read."""
    from lkm.state import read_proc_modules

    found = [_module(module, system.sysfs) for module in read_proc_modules(system.procfs)]
    names = {module.name for module in found}
    holds: dict[str, list[str]] = {}
    for module in found:
        for holder in module.holders:
            if holder in names:
                holds.setdefault(holder, []).append(module.name)
    return tuple(m._replace(holds=tuple(sorted(holds.get(m.name, ())))) for m in found)


def _module(module: ProcModule, sysfs: str) -> LoadedModule:
    from lkm.state import StateError, SysModule, listed

    problems: list[StateError] = []
    shown = listed(module, sysfs, problems)
    size_unread = shown.size < 0 or any(p.path.endswith("/coresize") for p in problems)
    sys_module = SysModule(module.name, sysfs)
    try:
        state = sys_module.initstate()
    except StateError as err:
        problems.append(err)
        state = None
    return LoadedModule(
        name=module.name,
        size=module.size if size_unread else shown.size,
        refcount=None if shown.refcount < 0 else shown.refcount,
        state=state.value if state is not None else _PROC_STATES.get(module.state, module.state),
        holders=tuple(sorted(shown.holders)),
        holds=(),
        taint=sys_module.taint() or module.taint,
        problems=tuple(str(p) for p in problems),
    )


def tree(modules: Sequence[LoadedModule]) -> tuple[TreeNode, ...]:
    """Who holds whom: the roots are the modules no loaded module holds, sorted; each node's
    children are the modules it uses, sorted, so a module used by several appears under each.
    Modules reached from no root (only a cycle holds them) become roots too."""
    by_name = {module.name: module for module in modules}
    names = set(by_name)
    shown: set[str] = set()

    def node(name: str, path: frozenset[str]) -> TreeNode:
        shown.add(name)
        if name in path:
            return TreeNode(name, (), cycle=True)
        inner = path | {name}
        return TreeNode(name, tuple(node(used, inner) for used in by_name[name].holds))

    roots = [
        node(m.name, frozenset())
        for m in sorted(modules, key=lambda m: m.name)
        if not names.intersection(m.holders)
    ]
    for name in sorted(names):
        if name not in shown:
            roots.append(node(name, frozenset()))
    return tuple(roots)


__all__ = ["LoadedModule", "TreeNode", "loaded", "tree"]
