"""depmod as a library: find a release's modules, resolve their symbols, order everything as
kmod 34 does and produce the eleven output files.

The steps, each a function an image builder can call on its own:

1. ``find_modules``: walk the module directory (and depmod.d ``external`` directories) and keep
   one file per module name (override, then search rank, then the first found);
2. ``order_modules``: kmod's hash order of the names, with ``modules.order`` moved to the front;
3. ``scan_modules``: read every file (in parallel worker processes);
4. ``resolve``: owners of symbols, dependencies, their topological rank, cycles;
5. ``lkm.depmod.output.render`` and ``lkm.depmod.output.write_outputs``.

``run_depmod`` does all of it, as the ``depmod`` command does, from a ``DepmodOptions``: it
writes the files (or returns them for ``-n``). Messages go to a ``Reporter`` (by default kept
as records in it) so that the library never prints; a run that cannot finish raises a
``DepmodError`` whose ``lines`` are kmod's last words.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import stat

from lkm.compress import LIBRARY_NAMES
from lkm.dataclasses_lite import dataclass, field
from lkm.depmod.config import BUILT_IN, EXTERNAL, DepmodConfig
from lkm.depmod.order import depmod_order
from lkm.depmod.records import (
    DependencyCycleError,
    DepmodError,
    DepmodResult,
    FoundModule,
    Module,
    ModuleArgumentError,
)
from lkm.depmod.scan import ModuleFailure, ModuleScan, scan_file, scan_files
from lkm.moddir import MODULE_SUFFIXES as _MODULE_SUFFIXES
from lkm.names import module_name_from_path as module_name
from lkm.text import decode as _text
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
    from typing import Any

    from lkm.depmod.cache import Cache
    from lkm.depmod.parallel import Handoff

__all__ = [
    "DependencyCycleError",
    "DepmodError",
    "DepmodOptions",
    "DepmodResult",
    "DepmodRun",
    "FoundModule",
    "Module",
    "ModuleArgumentError",
    "Reporter",
    "default_jobs",
    "find_modules",
    "modules_from_files",
    "order_modules",
    "read_builtin",
    "read_builtin_modinfo",
    "resolve",
    "run_depmod",
    "scan_modules",
    "up_to_date",
    "walk_modules",
]

# Module files: lkm is kmod 34 built with xz, zstd and zlib, as ``-V`` says (Debian's kmod 34,
# built without zlib, passes over ``.ko.gz`` files without a word).
MODULE_SUFFIXES = _MODULE_SUFFIXES
_DECOMPRESSOR = LIBRARY_NAMES


@dataclass
class Reporter:
    """Where depmod's messages go: ``message(level, text)`` (kmod's ``depmod: LEVEL: text``
    lines), ``verbose(line)`` (``-v``'s lines on stdout) and ``libkmod(text)`` (a problem the
    library context of kmod reports, a bad modprobe.d line: ``libkmod: ERROR: text``).

    By default every message is kept in ``records`` as (level, text), with level ``libkmod``
    for the last kind, and verbose lines are dropped.
    """

    message: Callable[[str, str], None] | None = None
    verbose: Callable[[str], None] | None = None
    libkmod: Callable[[str], None] | None = None
    records: list[tuple[str, str]] = field(default_factory=list)

    def report(self, level: str, text: str) -> None:
        if self.message is None:
            self.records.append((level, text))
        else:
            self.message(level, text)

    def warning(self, text: str) -> None:
        self.report("WARNING", text)

    def error(self, text: str) -> None:
        self.report("ERROR", text)

    def library_error(self, text: str) -> None:
        if self.libkmod is None:
            self.records.append(("libkmod", text))
        else:
            self.libkmod(text)


# Directory names kmod 34 never descends into, at any depth, in the module directory and in
# external directories alike (as if every depmod.d had ``exclude build`` and ``exclude source``).
ALWAYS_EXCLUDED = frozenset(("build", "source"))


# Paths of this many bytes or more cannot be opened (PATH_MAX, with the terminating NUL).
PATH_MAX = 4096


def walk_modules(
    top: str,
    excludes: frozenset[str] = frozenset(),
    report: Callable[[str], None] | None = None,
) -> Generator[str, None, None]:
    """Module files below ``top`` as kmod 34 walks them: directory-reading order, descending
    into a directory (or a symlink to one) as soon as it is met, skipping entries named in
    ``excludes`` or ``ALWAYS_EXCLUDED``.

    What cannot be walked is reported with kmod's words: a directory that cannot be opened
    (``top`` itself included: a missing ``external`` directory is reported and the run goes
    on); a symlink that cannot be followed, with the number of the descriptor its directory is
    open on (each directory is opened for real, relative to its parent's descriptor, so the
    number is the lowest one free, as it is for kmod: 3 at the top, one more per level, unless
    the caller holds others); an entry that is neither a directory nor a regular file (a FIFO,
    socket or device, followed through symlinks, module suffix or not); and a module file whose
    path is too long to be opened (kmod walks any depth, relative to each directory, but opens
    a module by its whole path, and says so in two lines).
    """
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        if report is not None:
            report(f"could not open directory {top}: {os.strerror(err.errno or 0)}")
        return
    yield from _walk_open(fd, top, excludes, report)


def _walk_open(
    fd: int, top: str, excludes: frozenset[str], report: Callable[[str], None] | None
) -> Generator[str, None, None]:
    # The directories being walked, each open as a recursion would hold them (for the numbers
    # of their descriptors): a stack of levels rather than a generator per level, so a path
    # found deep down is handed out once, not through every level above it.
    fds = [fd]
    tops = [top]
    try:
        levels = [_entries(fd)]
        while levels:
            fd = fds[-1]
            top = tops[-1]
            for entry in levels[-1]:
                name = entry.name
                if name in excludes or name in ALWAYS_EXCLUDED:
                    continue
                try:
                    # Regular files first: nearly every entry is one.
                    if entry.is_file(follow_symlinks=False):
                        mode = stat.S_IFREG
                    elif entry.is_dir(follow_symlinks=False):
                        mode = stat.S_IFDIR
                    elif entry.is_symlink():
                        mode = stat.S_IFMT(os.stat(name, dir_fd=fd).st_mode)
                    else:
                        mode = stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode)
                except OSError as err:
                    if report is not None:
                        report(f"fstatat({fd}, {name}): {os.strerror(err.errno or 0)}")
                    continue
                # Joined as kmod joins them: an external directory written with a trailing
                # slash gives paths with two.
                path = f"{top}/{name}"
                if mode not in (stat.S_IFDIR, stat.S_IFREG):
                    # A FIFO, socket or device, whatever its name: kmod 34 names its type bits
                    # in octal and goes on (reading a FIFO named like a module would block).
                    if report is not None:
                        report(f"unsupported file type {path}: {mode:o}")
                    continue
                if mode == stat.S_IFDIR:
                    try:
                        child = os.open(
                            name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd
                        )
                    except OSError as err:
                        if report is not None:
                            reason = os.strerror(err.errno or 0)
                            report(f"could not open directory {path}: {reason}")
                        continue
                    fds.append(child)
                    tops.append(path)
                    levels.append(_entries(child))
                    break  # into the child; this level goes on after it
                if name.endswith(MODULE_SUFFIXES):
                    # A character takes at most 4 bytes: most paths need no encoding to tell.
                    if len(path) * 4 >= PATH_MAX and len(os.fsencode(path)) >= PATH_MAX:
                        if report is not None:
                            reason = os.strerror(errno.ENAMETOOLONG)
                            report(f"could not create module {path}: {reason}")
                            report(f"failed {path}: {reason}")
                        continue
                    yield path
            else:
                levels.pop()
                tops.pop()
                os.close(fds.pop())
    finally:
        for fd in fds:
            os.close(fd)


def _entries(fd: int) -> Iterator[os.DirEntry[str]]:
    """The entries of the directory open on ``fd``, read at once (scandir works on a copy of
    the descriptor, closed when it is done)."""
    with os.scandir(fd) as listing:
        return iter(list(listing))


def find_modules(
    moddir: str, config: DepmodConfig, reporter: Reporter | None = None
) -> list[FoundModule]:
    """One module file per name, in the order they were found; see the module docstring."""
    excludes = frozenset(config.excludes)
    search = list(config.search)
    external_rank = search.index(EXTERNAL) if EXTERNAL in search else len(search)
    # A path's rank is that of the first search entry it is under; built-in takes any path,
    # so the entries after it are never reached.
    builtin_rank = search.index(BUILT_IN) if BUILT_IN in search else len(search)
    prefixes = [(i, f"{e}/") for i, e in enumerate(search[:builtin_rank]) if e != EXTERNAL]
    under_any = tuple(prefix for _, prefix in prefixes)
    overrides: dict[str, list[str]] = {}
    for override in config.overrides:
        overrides.setdefault(override.module, []).append(override.subdir.strip("/") + "/")
    # Each name's best file so far: (rank, path, relpath), in the order they were found; a
    # better one found later replaces it at its own place (deleted and added again).
    best: dict[str, tuple[int, str, str]] = {}

    def consider(path: str, relpath: str, rank: int) -> None:
        name = module_name(path)
        if overrides:
            subdirs = overrides.get(name)
            if subdirs is not None and relpath.startswith(tuple(subdirs)):
                rank = -1
        current = best.get(name)
        if current is None:
            best[name] = (rank, path, relpath)
        elif rank < current[0]:
            del best[name]
            best[name] = (rank, path, relpath)

    report = reporter.error if reporter is not None else None
    cut = len(moddir.rstrip("/")) + 1
    for path in walk_modules(moddir, excludes, report=report):
        relpath = path[cut:]
        rank = builtin_rank
        if under_any and relpath.startswith(under_any):
            rank = next(i for i, prefix in prefixes if relpath.startswith(prefix))
        consider(path, relpath, rank)
    for external in config.externals:
        for path in walk_modules(external.path, excludes, report):
            consider(path, path, external_rank)
    return [FoundModule(path, relpath, name) for name, (_, path, relpath) in best.items()]


def modules_from_files(
    moddir: str, files: Sequence[str], reporter: Reporter | None = None
) -> list[FoundModule]:
    """The modules named on the command line, checked as kmod 34 does, one after the other:
    each must be an absolute path (kmod 34 does not resolve a relative one against the working
    directory) and exist, and no two may share a module name; ModuleArgumentError otherwise."""
    prefix = moddir.rstrip("/") + "/"
    found: dict[str, FoundModule] = {}
    for path in files:
        if not path.startswith("/"):
            raise ModuleArgumentError(f"{path}: not absolute path.")
        try:
            os.stat(path)
        except OSError as err:
            reason = os.strerror(err.errno or 0)
            raise ModuleArgumentError(f"could not create module {path}: {reason}") from err
        name = module_name(path)
        known = found.get(name)
        if known is not None:
            exists = os.strerror(errno.EEXIST)
            if known.path == path:
                if reporter is not None:
                    reporter.error(f"hash_add_unique {name}: {exists}")
                raise ModuleArgumentError(f"could not add module {path}: {exists}")
            if reporter is not None:
                reporter.error(
                    f"kmod_module '{name}' already exists with different path: "
                    f"new-path='{path}' old-path='{known.path}'"
                )
            raise ModuleArgumentError(f"could not create module {path}: {exists}")
        relpath = path[len(prefix) :] if path.startswith(prefix) else path
        found[name] = FoundModule(path, relpath, name)
    return list(found.values())


def order_modules(modules: Sequence[FoundModule], order_lines: Iterable[str]) -> list[FoundModule]:
    """kmod's order: hash order of the names, then ``modules.order`` entries moved up front."""
    return [modules[i] for i in depmod_order(modules, order_lines)]


def default_jobs() -> int:
    """One process per CPU this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scan_modules(
    paths: Sequence[str],
    jobs: int | None = None,
    handoff: Callable[[], Handoff[ModuleScan | ModuleFailure, Any, Any]] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[ModuleScan | ModuleFailure]:
    """Read every module; ``jobs`` processes (default: one per CPU, one for a few modules).
    ``handoff`` makes work a worker process goes on with (see ``lkm.depmod.parallel.Handoff``:
    its ``pending`` is set only if a worker took it on); it is called only when there are
    worker processes, so that a small run imports nothing of them. ``meanwhile`` is called
    before this process reads its first module (and after the workers started)."""
    if jobs is None:
        jobs = default_jobs()
    if jobs <= 1 or len(paths) < 64 or not hasattr(os, "fork"):
        if meanwhile is not None:
            meanwhile()
        names: dict[bytes, bytes] = {}
        return [scan_file(path, names) for path in paths]
    from lkm.depmod.parallel import run_chunks

    return run_chunks(
        scan_files,
        paths,
        jobs,
        handoff=handoff() if handoff is not None else None,
        meanwhile=meanwhile,
    )


@dataclass(frozen=True)
class KernelSymbols:
    """Symbols the kernel image provides (System.map or Module.symvers), with CRCs if known."""

    crcs: dict[bytes, int | None]
    # From Module.symvers: only then does kmod 34 compare symbol versions at all (with -F
    # alone it reports no disagreement, not even between two modules).
    versions: bool = False


def load_kernel_symbols(
    system_map: str | None,
    symvers: str | None,
    prefix: str | None,
    reporter: Reporter | None = None,
) -> KernelSymbols | None:
    """The kernel's own exports from ``-F System.map`` or ``-E Module.symvers``."""
    crcs: dict[bytes, int | None] = {}
    if symvers is not None:
        with open(symvers, "rb") as stream:
            for line in stream.read().split(b"\n"):
                parts = line.split(b"\t")
                if len(parts) < 3 or parts[2] != b"vmlinux":
                    continue
                try:
                    crc = int(parts[0], 16)
                except ValueError:
                    continue
                crcs[_unprefix(parts[1], prefix)] = crc
        return KernelSymbols(crcs, versions=True)
    if system_map is not None:
        with open(system_map, "rb") as stream:
            lines = stream.read().split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        for number, line in enumerate(lines, 1):
            parts = line.split(b" ", 2)
            if len(parts) < 3:
                # kmod prints the line with its newline, and then its own.
                if reporter is not None:
                    reporter.error(f"{system_map}:{number}: invalid line: {_text(line)}\n")
                continue
            if parts[2].startswith(b"__ksymtab_"):
                crcs[_unprefix(parts[2][len(b"__ksymtab_") :], prefix)] = None
        return KernelSymbols(crcs)
    return None


def _unprefix(name: bytes, prefix: str | None) -> bytes:
    if prefix and name.startswith(prefix.encode()):
        return name[len(prefix) :]
    return name


def report_failure(reporter: Reporter, path: str, failure: ModuleFailure) -> None:
    """kmod's messages for a module it could not read: the decompressor's reason around the
    failure. kmod tries to decompress the file three times, once before the failure line and
    twice after; an xz file is read on from where the last attempt stopped
    (``ModuleFailure.rereads``)."""
    decompressor = _DECOMPRESSOR.get(failure.method)
    if not decompressor or not failure.reason:
        reporter.error(f"failed to load symbols from {path}: {os.strerror(failure.errno)}")
        return
    reporter.error(f"{decompressor}: {failure.reason}")
    reporter.error(f"failed to load symbols from {path}: {os.strerror(failure.errno)}")
    for reason in failure.rereads or (failure.reason, failure.reason):
        reporter.error(f"{decompressor}: {reason}")


def resolve(
    ordered: Sequence[FoundModule],
    scans: Sequence[ModuleScan | ModuleFailure],
    reporter: Reporter,
    *,
    kernel: KernelSymbols | None = None,
    errsyms: bool = False,
    prefix: str | None = None,
    collected: Callable[[list[Module], dict[bytes, int]], None] | None = None,
) -> tuple[list[Module], dict[bytes, int]]:
    """Owners of exported symbols and each module's dependencies, in topological rank.

    ``collected``, if given, is called with the modules and the owners once the owners are
    known, before any dependency is (work that needs none can start there).
    Raises DependencyCycleError (after reporting each cycle) when modules need each other.
    """
    modules = []
    owners: dict[bytes, int] = {}
    export_crcs: dict[bytes, int | None] = {}
    check = errsyms and kernel is not None
    versions = check and kernel is not None and kernel.versions
    for index, (found, scan) in enumerate(zip(ordered, scans, strict=False)):
        if isinstance(scan, ModuleFailure):
            report_failure(reporter, found.path, scan)
            modules.append(Module(index, found, None))
            continue
        modules.append(Module(index, found, scan))
        names = scan.export_names
        if prefix:
            names = tuple(_unprefix(name, prefix) for name in names)
        # The last exporter in depmod's order wins; names and CRCs go in at C speed.
        owners.update(dict.fromkeys(names, index))
        if versions:  # the exporters' CRCs are compared with the users' only then
            export_crcs.update(zip(names, scan.export_crcs, strict=True))
    if collected is not None:
        collected(modules, owners)
    kernel_crcs = kernel.crcs if kernel is not None else {}
    if not check and not prefix and reporter.verbose is None:
        # Nothing to report and no name to rewrite: only the owners matter.
        _plain_dependencies(modules, owners)
        _rank(modules, reporter)
        return modules, owners
    for module in modules:
        readable = module.scan
        if readable is None:
            continue
        deps: dict[int, None] = {}
        path = module.found.path
        for raw_name, crc, weak in readable.imports:
            name = _unprefix(raw_name, prefix)
            owner = owners.get(name)
            if owner is None:
                if name in kernel_crcs:
                    known = kernel_crcs[name]
                    if check and crc is not None and known is not None and crc != known:
                        reporter.warning(f"{path} disagrees about version of symbol {_text(name)}")
                elif check and not weak:
                    reporter.warning(f"{path} needs unknown symbol {_text(name)}")
                continue
            if owner == module.index:
                continue
            if reporter.verbose is not None and owner not in deps:
                # One line per dependency: the first symbol that makes it.
                reporter.verbose(f'{path} needs "{_text(name)}": {modules[owner].found.path}\n')
            known = export_crcs.get(name)
            if versions and crc is not None and known is not None and crc != known:
                reporter.warning(f"{path} disagrees about version of symbol {_text(name)}")
            deps[owner] = None
        module.deps = list(deps)
    _rank(modules, reporter)
    return modules, owners


def _plain_dependencies(modules: list[Module], owners: dict[bytes, int]) -> None:
    """Each module's dependencies, the owners of the symbols it needs in the order of their
    first use, itself and unknown symbols left out: ``resolve``'s loop without its reports, a
    few C-level calls per module instead of bytecode per needed symbol."""
    for module in modules:
        if module.scan is not None:
            deps = dict.fromkeys(map(owners.get, module.scan.import_names))
            deps.pop(None, None)
            deps.pop(module.index, None)
            module.deps = list(deps)  # type: ignore[arg-type]  # None was taken out


def _rank(modules: list[Module], reporter: Reporter) -> None:
    """Kahn's algorithm: users before what they use, roots taken last-in first-out."""
    users = [0] * len(modules)
    for module in modules:
        for dep in module.deps:
            users[dep] += 1
    remaining = list(users)
    roots = [m.index for m in modules if users[m.index] == 0]
    sorted_count = 0
    while roots:
        index = roots.pop()
        module = modules[index]
        module.sort_index = sorted_count
        sorted_count += 1
        for dep in module.deps:
            remaining[dep] -= 1
            if remaining[dep] == 0:
                roots.append(dep)
    if sorted_count < len(modules):
        _report_cycles(modules, remaining, reporter)


def _report_cycles(modules: list[Module], remaining: list[int], reporter: Reporter) -> None:
    """Report the cycles among the modules Kahn's algorithm could not rank, and raise."""
    stuck = {m.index for m in modules if remaining[m.index] > 0}
    found = kmod_cycle_report(modules, stuck)
    if found is None:
        found = find_cycles(modules, stuck)
    cycles = [[modules[i].name for i in cycle] for cycle in found]
    for names in cycles:
        reporter.error("Cycle detected: " + " -> ".join(names))
    count = len({i for cycle in found if len(cycle) > 1 for i in cycle})
    raise DependencyCycleError(cycles, count)


# How many steps the walk of kmod's cycle report may take before lkm gives up copying it
# (a knot of many modules has more paths than anyone would read).
_WALK_LIMIT = 200_000


def kmod_cycle_report(modules: Sequence[Module], stuck: Collection[int]) -> list[list[int]] | None:
    """The lines of kmod 34's cycle report, as module indexes, or None where kmod never ends.

    Found by running kmod 34 on many small trees. Its report walks from one stuck module (one
    that Kahn's algorithm could not rank) at a time, following dependencies depth first (a
    module's dependencies in the order of their first use, the last one first) along every
    path, and reports each path that comes back to the module it started from, from that
    module round to it again. It follows modules an earlier walk reached too (they lead back
    to no start of a later walk, but through an earlier cycle they make the walk endless).

    Which modules it starts from is a scan of depmod's order, starting at the first and going
    round past the end, over the stuck modules that have dependencies, skipping those already
    started from or in a reported cycle, until none is left. A module an earlier walk reached
    is not walked again: as a start it is reported alone (``Cycle detected: NAME``, though it
    is on no cycle) and the scan goes on with the next module. After a walk the scan goes on
    from the walk's last mark, looking at that module again, or, if the walk made none, from
    the module after its start. A walk marks the last module it adds to the modules of the
    reported cycles (each reported path adds its modules not in an earlier one, in the
    path's order) and each module without dependencies that it reaches for the first time,
    whichever comes later (reached for the first time: by no earlier walk, not looked at by
    the scan, and not earlier in this walk). The count kmod prints is the number of distinct
    modules in the cycles.

    Where a path comes back to a module on it other than the start, kmod's walk goes round for
    ever (printing ever longer cycles, or exhausting memory or its stack and aborting): None
    then, and the caller reports every cycle once instead (``find_cycles``). On a few walks that
    do end, kmod's stack overflows as well and it aborts; lkm reports those walks' lines.
    """
    count = len(modules)
    pending = {i for i in stuck if modules[i].deps}
    passed: set[int] = set()  # reached by an earlier walk or looked at by the scan
    in_cycles: set[int] = set()
    found: list[list[int]] = []
    steps = 0
    position = 0
    while pending:
        start = position % count
        if start not in pending:
            passed.add(start)
            position += 1
            continue
        pending.discard(start)
        if start in passed:
            found.append([start])
            position = start + 1
            continue
        reached = {start}
        path = [start]
        stack = [(dep, 1) for dep in modules[start].deps]
        mark = None
        while stack:
            steps += 1
            if steps > _WALK_LIMIT:
                return None
            index, depth = stack.pop()
            del path[depth:]
            if index == start:
                found.append([*path, start])
                pending.difference_update(path)
                for member in path:
                    if member not in in_cycles:
                        in_cycles.add(member)
                        mark = member
                continue
            if index in path:
                return None
            if not modules[index].deps and index not in reached and index not in passed:
                mark = index
            reached.add(index)
            path.append(index)
            stack.extend((dep, depth + 1) for dep in modules[index].deps)
        passed |= reached
        position = mark if mark is not None else start + 1
    return found


def find_cycles(modules: Sequence[Module], stuck: Iterable[int]) -> list[list[int]]:
    """Every simple cycle among the ``stuck`` modules, each once, from its first module in
    depmod's order: lkm's report where kmod's never ends.

    From each stuck module in turn, the walk of kmod's report (see ``kmod_cycle_report``),
    through modules after it in depmod's order only and never twice through one module on a
    path. Where every cycle of a knot of modules passes through its first module, these are
    the cycles kmod reports, in its order.
    """
    order = sorted(stuck)
    members = set(order)
    users: dict[int, list[int]] = {i: [] for i in order}
    for i in order:
        for dep in modules[i].deps:
            if dep in members:
                users[dep].append(i)
    cycles: list[list[int]] = []
    for root in order:
        # Only modules after the root that lead back to it can be on a cycle from it.
        back = {root}
        todo = [root]
        while todo:
            for user in users[todo.pop()]:
                if user > root and user not in back:
                    back.add(user)
                    todo.append(user)
        path = [root]
        stack = [(dep, 1) for dep in modules[root].deps if dep in back]
        while stack:
            index, depth = stack.pop()
            del path[depth:]
            if index == root:
                cycles.append([*path, root])
            elif index not in path:
                path.append(index)
                stack.extend((dep, depth + 1) for dep in modules[index].deps if dep in back)
    return cycles


def read_lines(path: str) -> list[str] | OSError:
    """The lines of a text file, or the OSError that stopped its reading."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as err:
        return err
    return [_text(line) for line in data.split(b"\n") if line]


def build(
    moddir: str,
    config: DepmodConfig,
    reporter: Reporter,
    *,
    files: Sequence[str] | None = None,
    kernel: KernelSymbols | None = None,
    errsyms: bool = False,
    prefix: str | None = None,
    jobs: int | None = None,
    builtin: bool = True,
    cache: Cache | None = None,
    collected: Callable[[list[Module], dict[bytes, int]], None] | None = None,
    handoff: Callable[
        [Sequence[FoundModule], Sequence[str]], Handoff[ModuleScan | ModuleFailure, Any, Any]
    ]
    | None = None,
) -> DepmodResult:
    """Everything depmod computes for the module directory ``moddir``.

    ``files``, when given, are the only modules looked at (absolute paths); ``builtin`` false
    skips the builtin files (``-n`` shows no binary index, so kmod does not read them); with
    ``cache``, only the files it holds no valid entry for are read (see lkm.depmod.cache);
    ``collected`` is passed to ``resolve``; ``handoff``, given the modules as they were found
    and the lines of ``modules.order``, makes work for a scan worker to go on with, over the
    scans in that order (``scan_modules``; not with ``cache``). Raises
    DependencyCycleError when modules need each other in a circle.
    """
    # kmod finds the modules (and reports what it cannot follow) before reading modules.order.
    if files is None:
        found = find_modules(moddir, config, reporter)
    else:
        found = modules_from_files(moddir, files, reporter)
    order = read_lines(f"{moddir}/modules.order")
    if isinstance(order, OSError):
        reporter.warning(
            f"could not open modules.order at {moddir}: {os.strerror(order.errno or 0)}"
        )
        order = []
    if cache is None:
        # The modules are read in the order they were found, and put in depmod's order by this
        # process while the workers read the first ones.
        places: list[int] = []

        def place() -> None:
            places.extend(depmod_order(found, order))

        paths = [m.path for m in found]
        if handoff is not None:
            make = handoff
            lines = order
            found_scans = scan_modules(paths, jobs, lambda: make(found, lines), meanwhile=place)
        else:
            found_scans = scan_modules(paths, jobs, meanwhile=place)
        ordered = [found[i] for i in places]
        scans = [found_scans[i] for i in places]
    else:
        from lkm.depmod.cache import scan_with_cache

        ordered = order_modules(found, order)
        scans = scan_with_cache(
            [m.path for m in ordered], cache, lambda paths: scan_modules(paths, jobs)
        )
    modules, owners = resolve(
        ordered,
        scans,
        reporter,
        kernel=kernel,
        errsyms=errsyms,
        prefix=prefix,
        collected=collected,
    )
    if not builtin:
        return DepmodResult(modules, owners, None, None)
    return DepmodResult(
        modules, owners, read_builtin(moddir, reporter), read_builtin_modinfo(moddir, reporter)
    )


def read_builtin(moddir: str, reporter: Reporter) -> list[str] | None:
    """The module names of ``modules.builtin``; None (after a warning) when it is unreadable."""
    lines = read_lines(f"{moddir}/modules.builtin")
    if isinstance(lines, OSError):
        reason = os.strerror(lines.errno or 0)
        reporter.warning(f"could not open modules.builtin at {moddir}: {reason}")
        return None
    return [module_name(line) for line in lines]


def read_builtin_modinfo(moddir: str, reporter: Reporter) -> bytes | None:
    """``modules.builtin.modinfo``; None (after a warning) when it is unreadable."""
    try:
        with open(f"{moddir}/modules.builtin.modinfo", "rb") as stream:
            return stream.read()
    except OSError as err:
        reason = os.strerror(err.errno or 0)
        reporter.warning(f"could not open modules.builtin.modinfo at {moddir}: {reason}")
        return None


@dataclass(frozen=True)
class DepmodOptions:
    """One depmod run, as the command's options say it (see ``depmod --help``).

    The module directory is ``basedir + moduledir + "/" + release``; the files go to the same
    path under ``outdir`` (default: ``basedir``). ``config`` replaces depmod.d's directories;
    ``files``, absolute paths, are the only modules looked at unless ``all_modules`` or
    ``quick``.
    """

    release: str
    basedir: str = ""
    moduledir: str = "/lib/modules"
    outdir: str | None = None
    config: tuple[str, ...] | None = None
    symvers: str | None = None
    system_map: str | None = None
    errsyms: bool = False
    dry_run: bool = False
    prefix: str | None = None
    verbose: bool = False
    quick: bool = False
    all_modules: bool = False
    files: tuple[str, ...] = ()
    # What the libkmod context of the run reads: modprobe.d (None: kmod's directories) and
    # the kernel command line file (None: none).
    modprobe_config: tuple[str, ...] | None = None
    cmdline: str | None = "/proc/cmdline"
    # Read and write the module cache (lkm.depmod.cache) in the output directory; only runs
    # over the whole tree use it, and -n reads it but writes nothing.
    cache: bool = False

    @property
    def module_dir(self) -> str:
        return f"{self.basedir}{self.moduledir}/{self.release}"

    @property
    def output_dir(self) -> str:
        root = self.outdir if self.outdir is not None else self.basedir
        return f"{root}{self.moduledir}/{self.release}"


@dataclass(frozen=True)
class DepmodRun:
    """What a run did. ``outputs``: the files as (name, bytes), in the order kmod writes them
    (for ``dry_run`` only the text files ``-n`` shows, in its order); empty when nothing was
    done (``quick`` found the files up to date). ``written``: the files are on disk.
    ``result``: what they were made of (None when nothing was done)."""

    outputs: tuple[tuple[str, bytes], ...]
    written: bool
    result: DepmodResult | None = None

    @property
    def shown(self) -> bytes:
        """What ``-n`` prints: the text files one after the other."""
        return b"".join(data for _, data in self.outputs) if not self.written else b""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside, the collector's previous state restored after.

    A depmod run allocates a great many small objects and makes no reference cycles: the
    collector would only cost time (and, in forked workers, copied pages)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def up_to_date(moddir: str, reporter: Reporter) -> bool:
    """``-A``: modules.dep exists and no module file is newer than it (in whole seconds).

    kmod 34 looks only in the module directory, at every module file of it, depmod.d's
    ``exclude`` lines notwithstanding (only ``build`` and ``source`` are skipped), and at
    no ``external`` directory; it stops at the first newer file."""
    try:
        reference = int(os.stat(f"{moddir}/modules.dep").st_mtime)
    except OSError as err:
        reason = os.strerror(err.errno or 0)
        reporter.error(f"could not fstatat({moddir}, modules.dep): {reason}")
        return False
    with contextlib.closing(walk_modules(moddir, report=reporter.error)) as paths:
        for path in paths:
            try:
                if int(os.stat(path).st_mtime) > reference:
                    return False
            except OSError:
                continue
    return True


def _open_cache(directory: str, reporter: Reporter) -> Cache:
    """The cache in ``directory``: empty when there is none, and when it cannot be used, after
    one line saying why (the run then reads every module)."""
    from lkm.depmod.cache import CACHE_NAME, Cache, CacheError, load

    path = f"{directory}/{CACHE_NAME}"
    try:
        return load(path)
    except FileNotFoundError:
        return Cache()
    except (OSError, CacheError) as err:
        reason = os.strerror(err.errno or 0) if isinstance(err, OSError) else str(err)
        reporter.warning(f"ignoring the module cache {path} ({reason}): reading every module")
        return Cache()


def run_depmod(options: DepmodOptions, reporter: Reporter | None = None) -> DepmodRun:
    """A whole depmod run, as kmod 34's ``depmod`` makes it: find and read the modules, compute
    the files and write them (or return them, for ``dry_run``).

    Messages go to ``reporter`` in kmod's order (by default kept in a fresh Reporter's
    records); a run that cannot finish raises DepmodError, whose ``lines`` end the report.
    """
    if reporter is None:
        reporter = Reporter()
    if options.quick and options.dry_run:
        # kmod 34 does nothing at all for -A with -n, whatever the times.
        return DepmodRun((), False)
    with collector_paused():
        return _run(options, reporter)


def _run(options: DepmodOptions, reporter: Reporter) -> DepmodRun:
    from lkm.config import load_config as load_modprobe_config
    from lkm.depmod.config import load_config
    from lkm.depmod.output import (
        TEXT_FILES,
        BadIndexKey,
        Content,
        builtin_alias_index,
        builtin_index,
        independent_handoff,
        render,
        start_render,
        write_outputs,
    )

    if TYPE_CHECKING:
        from lkm.depmod.parallel import Pending

    moddir = options.module_dir
    if not options.dry_run:
        from lkm.fileset import recover

        # A commit a killed run left half done is finished first (-A looks at its files).
        recover(options.output_dir)
    if options.quick and up_to_date(moddir, reporter):
        return DepmodRun((), False)
    # kmod's depmod opens a libkmod context on the module directory, which reads modprobe.d
    # and the directory's modules.softdep and modules.weakdep, reporting their bad lines.
    modprobe_config = load_modprobe_config(
        options.modprobe_config, module_dir=moddir, cmdline=options.cmdline
    )
    for problem in modprobe_config.problems:
        reporter.library_error(problem.message)
    # With -a or -A, module files named on the command line are ignored: all are looked at.
    files = None if options.all_modules or options.quick else list(options.files) or None
    if options.errsyms and options.symvers is None and options.system_map is None:
        reporter.warning("-e needs -E or -F")
    if not options.verbose:
        reporter = Reporter(reporter.report, None, reporter.library_error)
    kernel = None
    if options.symvers is not None or options.system_map is not None:
        try:
            kernel = load_kernel_symbols(
                options.system_map, options.symvers, options.prefix, reporter
            )
        except OSError as err:
            name = options.symvers if options.symvers is not None else options.system_map
            raise DepmodError(f"could not load {name}: {os.strerror(err.errno or 0)}") from err
    if files is None and not os.path.isdir(moddir):
        try:
            os.listdir(moddir)
        except OSError as err:
            reason = os.strerror(err.errno or 0)
            reporter.error(f"could not open directory {moddir}: {reason}")
            raise DepmodError(f"could not search modules: {reason}") from err

    config = load_config(options.config, options.release, reporter.error)
    cache = _open_cache(options.output_dir, reporter) if options.cache and files is None else None
    # What needs no other module is laid out in a second process while this one resolves the
    # dependencies: the scan worker goes on with it, holding half the modules already and
    # sent the rest; without one (all but a few modules were in the cache), a process is
    # forked for it (above a few hundred modules, where it pays for its start).
    forked: list[Pending[Content]] = []

    def handoff(
        found: Sequence[FoundModule], order: Sequence[str]
    ) -> Handoff[ModuleScan | ModuleFailure, Any, Any]:
        made = independent_handoff(found, order)
        handoffs.append(made)
        return made

    handoffs: list[Handoff[ModuleScan | ModuleFailure, Any, Content]] = []

    def collected(modules: list[Module], owners: dict[bytes, int]) -> None:
        taken = [made.pending for made in handoffs if made.pending is not None]
        if taken:
            forked.extend(taken)
        elif len(modules) >= 256 and default_jobs() > 1 and hasattr(os, "fork"):
            forked.append(start_render(DepmodResult(modules, owners, None, None)))

    try:
        # The builtin files are read as their indexes are written (below), as kmod does.
        result = build(
            moddir,
            config,
            reporter,
            files=files,
            kernel=kernel,
            errsyms=options.errsyms,
            prefix=options.prefix,
            builtin=False,
            cache=cache,
            collected=collected,
            handoff=handoff,
        )
    except BaseException:
        for started in forked:
            started.cancel()
        for made in handoffs:
            if made.pending is not None:
                made.pending.cancel()
        raise
    outputs = render(result, started=forked[0] if forked else None)
    if options.dry_run:
        shown = {name: data for name, data in outputs if isinstance(data, bytes)}
        return DepmodRun(tuple((name, shown[name]) for name in TEXT_FILES), False, result)
    later = {
        "modules.builtin.bin": lambda: builtin_index(read_builtin(moddir, reporter)),
        "modules.builtin.alias.bin": lambda: builtin_alias_index(
            read_builtin_modinfo(moddir, reporter)
        ),
    }
    written: dict[str, bytes] = {}

    def produce(name: str, data: Content) -> Callable[[], bytes]:
        def made() -> bytes:
            made_now = later[name]() if name in later else data
            if isinstance(made_now, BadIndexKey):
                # kmod stops here: the files before this one are in place, no later one is.
                raise made_now.error()
            written[name] = made_now
            return made_now

        return made

    write_outputs(options.output_dir, [(name, produce(name, data)) for name, data in outputs])
    if cache is not None:
        from lkm.depmod.cache import save

        save(options.output_dir, cache)
    return DepmodRun(tuple((name, written[name]) for name, _ in outputs), True, result)
