"""``lkm modules-load``: systemd-modules-load's work, with independent modules loaded in parallel.

What is loaded is what systemd-modules-load (257, run black-box) loads, and each outcome is
reported in its words (:class:`Outcome`); how is modprobe's: each name is looked up as
modprobe looks it up (an alias can stand for several modules, each loaded), and each module
found is probed with its dependencies, softdeps, options and install commands
(:meth:`lkm.resolve.Resolver.probe_steps`).

Parallel: every step of every name's probe becomes one node of a graph, keyed by module name,
so a module several names need is loaded once (with the options of the first probe listing
it: only an alias's own options can differ). A node waits for the modules its probe loads
before it that it needs: its modules.dep dependencies and its pre-softdeps (their own needs
are theirs); a post-softdep waits for its module. ``jobs`` threads take the ready nodes in
the order of the configuration (``finit_module`` releases the GIL; the kernel serialises only
what it must). A module the kernel already has (``EEXIST``: another loader got there first) is
loaded, as modprobe takes it.

A failing step stops the probes that need it as modprobe's would (each such name fails with
its errno, its later steps not taken), except a softdep's, which stops nothing. Steps of a
stopped probe that another probe still needs are taken for that one. Unlike a serial loop, a
step that does not depend on the failed one may already have been taken when it fails.
"""

from __future__ import annotations

import enum
import errno
import os
import threading
import time
from collections.abc import Callable, Sequence

from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.kernel import Kernel
    from lkm.modules_load import BootEntry, ConfigProblem
    from lkm.probe import CommandRunner, ProbeError
    from lkm.resolve import Action, LoadedState, Match, ProbeStep, Resolver
    from lkm.system import System


class Outcome(enum.Enum):
    """What became of one module named for loading, in systemd-modules-load's terms."""

    INSERTED = "inserted"  # "Inserted module 'M'"
    ALREADY_LOADED = "already-loaded"  # live before (or loaded for a name before it): silent
    BUILT_IN = "built-in"  # "Module 'M' is built in"
    BLACKLISTED = "blacklisted"  # "Module 'M' is deny-listed (by kmod)"
    NOT_FOUND = "not-found"  # "Failed to find module 'NAME'": not a failure for the status
    FAILED = "failed"  # "Failed to insert module 'M': strerror": exit status 1
    UNREADABLE = "unreadable"  # a configuration file given that cannot be read: exit status 1


class ModuleLoad(NamedTuple):
    """One module a name of the configuration stands for, and what loading it did.

    ``name`` is the name as configured (for ``UNREADABLE``: the file), ``source`` and ``line``
    where it was named (``line`` None on the kernel command line), ``module`` the module found
    (None when none was); ``message`` is systemd-modules-load's line for the outcome (None for
    ``ALREADY_LOADED``, of which it says nothing but in debug output), ``error`` the same line
    when the outcome is a failure; ``notes`` the lines logged on the way (an install command
    that failed); ``seconds`` the time this module's own step took (0 when it took none).
    """

    name: str
    source: str
    line: int | None
    module: str | None
    outcome: Outcome
    message: str | None
    error: str | None
    notes: tuple[str, ...]
    seconds: float


FAILURES = (Outcome.FAILED, Outcome.UNREADABLE)


def exit_status(records: Sequence[ModuleLoad]) -> int:
    """systemd-modules-load's exit status: 1 when a module failed to insert or a file given
    could not be read, else 0 (a name that finds nothing is logged, not counted)."""
    return 1 if any(r.outcome in FAILURES for r in records) else 0


class _Target(NamedTuple):
    """One probe: a module a configured name found, and the node names of its steps."""

    entry: BootEntry
    module: str
    steps: tuple[str, ...]  # node names in probe order; the target among them
    hard: frozenset[str]  # steps whose failure stops this probe


class _Node:
    """One step, shared by every probe that takes it."""

    def __init__(self, action: Action, order: int) -> None:
        self.action = action
        self.order = order  # position of its first probe: the ready queue's priority
        self.needs: set[str] = set()
        self.users: list[str] = []
        self.targets: list[int] = []  # indexes of the probes taking this step
        self.waiting = 0
        self.done = False
        self.error: ProbeError | None = None
        self.notes: tuple[str, ...] = ()
        self.seconds = 0.0
        self.taken_for: int | None = None  # the first probe still going when it was taken


def plan(
    entries: Sequence[BootEntry | ConfigProblem],
    resolver: Resolver,
    state: LoadedState,
) -> tuple[list[ModuleLoad | _Target], dict[str, _Node]]:
    """Each entry's outcome decided before anything loads, or its probe; and the step graph."""
    from lkm.modules_load import ConfigProblem
    from lkm.resolve import ActionKind

    items: list[ModuleLoad | _Target] = []
    nodes: dict[str, _Node] = {}
    for entry in entries:
        if isinstance(entry, ConfigProblem):
            items.append(
                ModuleLoad(
                    entry.path,
                    entry.path,
                    None,
                    None,
                    Outcome.UNREADABLE,
                    entry.message,
                    entry.message,
                    (),
                    0.0,
                )
            )
            continue
        # systemd looks names up as libkmod does: one starting with "/" is a name too.
        matches = resolver.lookup(entry.name, paths=False)
        if not matches:
            text = f"Failed to find module '{entry.name}'"
            items.append(_record(entry, None, Outcome.NOT_FOUND, text, error=text))
            continue
        for match in matches:
            decided = _decided(resolver, state, entry, match)
            if decided is not None:
                items.append(decided)
                continue
            steps = resolver.probe_steps(match)
            names: list[str] = []
            hard: set[str] = set()
            for position, (action, soft) in enumerate(steps):
                if action.name in names:
                    continue  # listed again as another's dependency: once is enough
                node = nodes.get(action.name)
                if node is None:
                    node = nodes[action.name] = _Node(action, len(items))
                node.targets.append(len(items))
                for earlier in _needs(resolver, steps, position):
                    _link(nodes, earlier, action.name)
                names.append(action.name)
                if not soft and action.kind is not ActionKind.BUILTIN:
                    hard.add(action.name)
            items.append(_Target(entry, match.name, tuple(names), frozenset(hard)))
    return items, nodes


def _record(
    entry: BootEntry,
    module: str | None,
    outcome: Outcome,
    message: str | None,
    *,
    error: str | None = None,
    notes: tuple[str, ...] = (),
    seconds: float = 0.0,
) -> ModuleLoad:
    return ModuleLoad(
        entry.name, entry.path, entry.line, module, outcome, message, error, notes, seconds
    )


def _decided(
    resolver: Resolver, state: LoadedState, entry: BootEntry, match: Match
) -> ModuleLoad | None:
    """The outcome systemd-modules-load decides before probing: the kernel's state first
    (built in, live), then the blacklist, which it applies to every name (not only aliases)."""
    name = match.name
    if resolver.moddir.is_builtin(name):
        return _record(entry, name, Outcome.BUILT_IN, f"Module '{name}' is built in")
    if state.state(name) == "live":
        return _record(entry, name, Outcome.ALREADY_LOADED, None)
    if resolver.is_blacklisted(name):
        text = f"Module '{name}' is deny-listed (by kmod)"
        return _record(entry, name, Outcome.BLACKLISTED, text)
    return None


def _needs(resolver: Resolver, steps: Sequence[ProbeStep], position: int) -> list[str]:
    """The steps before ``position`` that the step there must wait for: its modules.dep
    dependencies and its pre-softdeps' modules; a post-softdep waits for its module."""
    from lkm.moddir import module_name_from_path

    name = steps[position].action.name
    before = {step.action.name for step in steps[:position]}
    wanted = [module_name_from_path(p) for p in resolver.dependencies(name) or ()]
    wanted += _softdep_modules(resolver, name, post=False)
    wanted += [other for other in before if name in _softdep_modules(resolver, other, post=True)]
    return [need for need in dict.fromkeys(wanted) if need in before and need != name]


def _softdep_modules(resolver: Resolver, name: str, *, post: bool) -> tuple[str, ...]:
    """The modules ``name``'s pre- (or post-) softdeps stand for."""
    softdep = resolver.softdep(name)
    if softdep is None:
        return ()
    from lkm.resolve import PathError

    found: list[str] = []
    for wanted in softdep.post if post else softdep.pre:
        try:
            found += [match.name for match in resolver.lookup(wanted)]
        except PathError:
            continue
    return tuple(found)


def _link(nodes: dict[str, _Node], need: str, user: str) -> None:
    """``user`` waits for ``need``, unless ``need`` already waits for ``user`` (two probes
    ordering softdeps both ways: the first order seen stays, and nothing waits forever)."""
    if need in nodes[user].needs or _reaches(nodes, user, need):
        return
    nodes[user].needs.add(need)
    nodes[need].users.append(user)


def _reaches(nodes: dict[str, _Node], start: str, goal: str) -> bool:
    seen = {start}
    stack = [start]
    while stack:
        for user in nodes[stack.pop()].users:
            if user == goal:
                return True
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return False


class Loader(NamedTuple):
    """How steps are taken: the kernel, its compression, the install command runner."""

    kernel: Kernel
    kernel_compression: str | None = None
    run_command: CommandRunner | None = None


def load(
    entries: Sequence[BootEntry | ConfigProblem],
    resolver: Resolver,
    state: LoadedState,
    loader: Loader,
    *,
    jobs: int = 1,
    on_step: Callable[[Action], None] | None = None,
) -> tuple[ModuleLoad, ...]:
    """Load what ``entries`` name (see the module docstring) with ``jobs`` threads; one record
    per entry and module found, in the entries' order.

    ``entries`` are :func:`lkm.modules_load.boot_entries`' or
    :func:`lkm.modules_load.argument_entries`'. ``on_step`` sees each step as it starts (from
    the worker threads)::

        records = load(entries, resolver, SysfsState(), Loader(SyscallKernel()), jobs=4)
    """
    items, nodes = plan(entries, resolver, state)
    targets = {i: item for i, item in enumerate(items) if isinstance(item, _Target)}
    _Run(nodes, targets, _Context(resolver, state, loader, on_step)).go(max(1, jobs))
    return tuple(_result(i, item, nodes) for i, item in enumerate(items))


class _Context(NamedTuple):
    resolver: Resolver
    state: LoadedState
    loader: Loader
    on_step: Callable[[Action], None] | None


class _Run:
    """The graph's walk: worker threads take ready nodes until none is left."""

    def __init__(
        self, nodes: dict[str, _Node], targets: dict[int, _Target], context: _Context
    ) -> None:
        self.nodes = nodes
        self.targets = targets
        self.resolver = context.resolver
        self.state = context.state
        self.loader = context.loader
        self.on_step = context.on_step
        self.stopped: set[int] = set()  # probes a failed step stopped
        self.ready: list[tuple[int, str]] = []
        self.left = len(nodes)
        self.lock = threading.Condition()

    def go(self, jobs: int) -> None:
        import heapq

        for name, node in self.nodes.items():
            node.waiting = len(node.needs)
            if not node.waiting:
                heapq.heappush(self.ready, (node.order, name))
        workers = min(jobs, len(self.nodes))
        if workers <= 1:
            self.work()
            return
        threads = [threading.Thread(target=self.work, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def work(self) -> None:
        import heapq

        while True:
            with self.lock:
                while not self.ready and self.left:
                    self.lock.wait()
                if not self.left:
                    return
                _, name = heapq.heappop(self.ready)
                node = self.nodes[name]
                going = [t for t in node.targets if t not in self.stopped]
            if going:
                self.take(node, min(going))
            with self.lock:
                node.done = True
                self.left -= 1
                if node.error is not None:
                    self.stopped.update(
                        t for t in node.targets if node.action.name in self.targets[t].hard
                    )
                for user in node.users:
                    other = self.nodes[user]
                    other.waiting -= 1
                    if not other.waiting:
                        heapq.heappush(self.ready, (other.order, user))
                self.lock.notify_all()

    def take(self, node: _Node, taker: int) -> None:
        """Carry one step out, as lkm.probe does: skipped when the kernel has the module."""
        from lkm.probe import ProbeError, carry_out, run_shell
        from lkm.resolve import ActionKind

        action = node.action
        if action.kind is ActionKind.BUILTIN or self.resolver.skips_loading(
            action.name, self.state
        ):
            return
        if action.kind is ActionKind.MISSING:
            node.notes = (f"could not find module by name='{action.name}'",)
            node.error = ProbeError(action.name, errno.ENOENT)
            return
        if self.on_step is not None:
            self.on_step(action)
        started = time.perf_counter()
        node.taken_for = taker
        try:
            carry_out(
                action,
                self.loader.kernel,
                kernel_compression=self.loader.kernel_compression,
                run_command=self.loader.run_command or run_shell,
            )
        except ProbeError as failed:
            if not (failed.errno == errno.EEXIST and failed.path):  # another loader's: loaded
                node.error = failed
                if failed.command is not None:
                    node.notes = (
                        f"Error running install command '{failed.command}' "
                        f"for module {failed.name}: retcode {failed.status}",
                    )
        finally:
            node.seconds = time.perf_counter() - started


def _result(index: int, item: ModuleLoad | _Target, nodes: dict[str, _Node]) -> ModuleLoad:
    """A probe's record: failed at its first hard step that failed (in probe order), else
    inserted when its own step was first taken for it, else already loaded."""
    if isinstance(item, ModuleLoad):
        return item
    notes = tuple(note for step in item.steps for note in nodes[step].notes)
    target = nodes[item.module]
    for step in item.steps:
        failed = nodes[step].error
        if step in item.hard and failed is not None:
            text = f"Failed to insert module '{item.module}': {os.strerror(failed.errno)}"
            return _record(item.entry, item.module, Outcome.FAILED, text, error=text, notes=notes)
    if target.taken_for != index:
        # The kernel had it already, or a name before this one loaded it (a serial run
        # loads it for that one, and this one finds it loaded).
        return _record(item.entry, item.module, Outcome.ALREADY_LOADED, None, notes=notes)
    text = f"Inserted module '{item.module}'"
    return _record(
        item.entry, item.module, Outcome.INSERTED, text, notes=notes, seconds=target.seconds
    )


def modules_load(
    system: System,
    *,
    arguments: Sequence[str] = (),
    jobs: int = 1,
    kernel: Kernel | None = None,
    run_command: CommandRunner | None = None,
) -> tuple[ModuleLoad, ...]:
    """systemd-modules-load's run on ``system`` with ``jobs`` threads: the files given as
    ``arguments`` (none: its directories and the kernel command line). ``kernel`` defaults to
    the running kernel's system calls. Raises ModuleDirectoryError when modules are named and
    the release has no module directory::

        records = modules_load(System.running(), jobs=os.cpu_count() or 1)
    """
    from lkm.kernel import SyscallKernel, UnknownCompression, read_compression
    from lkm.modules_load import argument_entries, boot_entries, in_initrd
    from lkm.resolve import Resolver, SysfsState

    directories = system.modules_load_directories()
    entries: Sequence[BootEntry | ConfigProblem]
    if arguments:
        entries = argument_entries(arguments, directories)
    else:
        initrd = in_initrd(system.basedir)
        entries = [e for e in boot_entries(directories, system.cmdline) if initrd or not e.initrd]
    if not entries:
        # Nothing to load needs no module directory: a system without one (a container) that
        # names no module succeeds, as systemd-modules-load does.
        return ()
    try:
        compression = read_compression(system.sysfs)
    except UnknownCompression:
        compression = None
    with Resolver.open(system=system) as resolver:
        resolver.remember()
        loader = Loader(kernel or SyscallKernel(), compression, run_command)
        return load(entries, resolver, SysfsState(system.sysfs), loader, jobs=jobs)


__all__ = [
    "FAILURES",
    "Loader",
    "ModuleLoad",
    "Outcome",
    "exit_status",
    "load",
    "modules_load",
    "plan",
]
