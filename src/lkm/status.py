"""Where a module stands, for configuration management: one record per module a name stands for.

A playbook that wants a module loaded (or gone) needs to know more than ``/proc/modules`` says:
whether the module is built into the kernel (then it is always there and can never be
removed), whether a file for it exists at all, what modprobe.d and the kernel command line do
to it (blacklist, options, install and remove commands, each with the file and line that says
so), whether systemd loads it at boot, and what ``modprobe NAME`` would do now::

    from lkm.status import Want, status
    from lkm.system import System

    system = System.running()
    with system.module_directory() as moddir:
        for record in status(["e1000e"], system, moddir, want=Want.LOADED):
            record.presence, record.blacklist, record.effective_options, record.satisfied

Names are looked up as modprobe looks them up (configuration aliases, module names, symbols,
commands, device aliases, built-ins), so an alias gives a record for each module it stands for.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.config import Config, Origin, Origins
    from lkm.moddir import ModuleDirectory
    from lkm.resolve import Action, Match, Resolver, SysfsState
    from lkm.system import System


class Want(enum.Enum):
    """The state a caller wants a module in (``--want``)."""

    LOADED = "loaded"  # live in the kernel, or built in
    ABSENT = "absent"  # not in the kernel at all (never true of a built-in module)


class Presence(enum.Enum):
    """Where the module is, the first that holds."""

    BUILTIN = "builtin"  # part of the kernel image (modules.builtin, or /sys/module says so)
    LOADED = "loaded"  # the kernel has it (``loaded`` gives its state)
    AVAILABLE = "available"  # not in the kernel; the tree has its file
    MISSING = "missing"  # neither: modprobe could only run an install command for it


class Source(NamedTuple):
    """Where a setting was read: a file and line, or the kernel command line (``file`` and
    ``line`` None)."""

    file: str | None
    line: int | None

    def __str__(self) -> str:
        return "kernel command line" if self.file is None else f"{self.file}:{self.line}"

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "text": str(self)}


class Option(NamedTuple):
    """One ``options`` line (or command line ``NAME.param=``) that applies: ``name`` is the
    module or alias it was given for, ``options`` its text."""

    name: str
    options: str
    source: Source


class CommandRule(NamedTuple):
    """The ``install`` or ``remove`` line modprobe runs instead of loading or removing:
    the first whose pattern matches the module."""

    pattern: str
    command: str
    source: Source


class BootLoad(NamedTuple):
    """A name systemd-modules-load loads at boot that stands for this module."""

    name: str  # as written
    source: Source
    initrd: bool  # rd.modules_load=: only the initrd loads it


class Step(NamedTuple):
    """One step of modprobe's plan; ``line`` is how ``modprobe -n -v`` prints it."""

    action: str  # insmod, install or builtin
    module: str
    path: str | None
    options: str
    command: str | None
    line: str


class ModuleStatus(NamedTuple):
    """Everything about one module (or, with ``error`` set, why a name gave none)."""

    query: str  # the name asked about
    module: str | None  # the module it stands for (None with an error)
    found_as: str | None  # how the name was found (resolve.Stage value); None: only loaded
    alias: str | None  # the alias it was found through, if any
    presence: Presence | None
    loaded: str | None  # the kernel's state (live, coming, going); None: not loaded
    builtin: bool  # modules.builtin lists it, or /sys/module shows it built in (no initstate)
    path: str | None  # the module's file in the tree
    blacklisted: bool  # a blacklist line names the module
    blacklist: tuple[Source, ...]  # every place that blacklists it
    blacklist_applies: bool  # ``modprobe QUERY`` skips it for that (found through an alias)
    options: tuple[Option, ...]  # every options line that applies, in modprobe's order
    effective_options: str  # what modprobe passes (those, space-joined)
    install: CommandRule | None
    install_ignored: bool  # modprobe loads the file instead: the module's softdeps found modules
    remove: CommandRule | None
    boot: tuple[BootLoad, ...]  # where systemd-modules-load is told to load it
    plan: tuple[Step, ...]  # what ``modprobe QUERY`` does now (``modprobe -n -v``)
    want: Want | None
    satisfied: bool | None  # whether the wanted state holds (None: nothing wanted)
    reason: str | None  # why it does not
    error: str | None = None


class _Context(NamedTuple):
    resolver: Resolver
    origins: Origins
    sysfs: str
    state: SysfsState
    boot: tuple[tuple[BootLoad, frozenset[str]], ...]  # each boot name and its modules


def status(
    names: Sequence[str],
    system: System,
    moddir: ModuleDirectory,
    *,
    want: Want | None = None,
) -> tuple[ModuleStatus, ...]:
    """A record per module each of ``names`` stands for (one with ``error`` for a name that
    stands for none), read from ``system`` (its modprobe.d, kernel command line, /sys and
    modules-load.d) and ``moddir``."""
    from lkm.config import load_config_located
    from lkm.resolve import Resolver, SysfsState

    config, origins = load_config_located(
        system.modprobe_dirs, module_dir=moddir.path, cmdline=system.cmdline
    )
    resolver = Resolver(moddir, config)
    state = SysfsState(system.sysfs)
    context = _Context(resolver, origins, system.sysfs, state, _boot(system, resolver))
    records: list[ModuleStatus] = []
    for name in names:
        records += _records(name, context, want)
    return tuple(records)


def _boot(system: System, resolver: Resolver) -> tuple[tuple[BootLoad, frozenset[str]], ...]:
    from lkm.modules_load import boot_entries

    found = []
    for entry in boot_entries(system.modules_load_directories(), system.cmdline):
        source = Source(None, None) if entry.line is None else Source(entry.path, entry.line)
        modules = frozenset(m.name for m in _lookup(resolver, entry.name))
        found.append((BootLoad(entry.name, source, entry.initrd), modules))
    return tuple(found)


def _lookup(resolver: Resolver, name: str) -> tuple[Match, ...]:
    from lkm.resolve import PathError

    try:
        return resolver.lookup(name)
    except PathError:
        return ()


def _records(name: str, context: _Context, want: Want | None) -> list[ModuleStatus]:
    from lkm.errors import LkmError
    from lkm.resolve import Match, PathError, Stage

    resolver = context.resolver
    try:
        matches = resolver.lookup(name)
    except PathError as err:
        return [_error(name, str(err), want)]
    except LkmError as err:
        return [_error(name, str(err), want)]
    if not matches:
        from lkm.moddir import normalize_name

        module = normalize_name(name)
        if ":" in name or context.state.state(module) is None:
            return [_error(name, f"Module {name} not found.", want)]
        # Loaded from a file the tree does not have: the kernel's word is enough.
        matches = (Match(module, None, Stage.MODULE),)
        return [_record(name, matches[0], context, want, found=False)]
    return [_record(name, match, context, want, found=True) for match in matches]


def _error(name: str, message: str, want: Want | None) -> ModuleStatus:
    return ModuleStatus(
        name, None, None, None, None, None, False, None, False, (), False, (), "", None, False,
        None, (), (), want, None, None, message,
    )  # fmt: skip


def _builtin_in_sysfs(sysfs: str, name: str) -> bool:
    """Whether the kernel shows ``name`` as built in: a ``/sys/module`` directory without
    ``initstate`` (one for a built-in module with parameters; a loaded module has the file
    from the start). libkmod calls it coming and modprobe loads over it; for a check it is
    there, and can never go."""
    import os

    path = f"{sysfs}/module/{name}"
    return os.path.isdir(path) and not os.path.lexists(f"{path}/initstate")


def _source(origin: Origin) -> Source:
    return Source(None, None) if origin.line is None else Source(origin.path, origin.line)


def _record(
    query: str, match: Match, context: _Context, want: Want | None, *, found: bool
) -> ModuleStatus:
    resolver, origins = context.resolver, context.origins
    config = resolver.config
    name = match.name
    builtin = resolver.moddir.is_builtin(name) or _builtin_in_sysfs(context.sysfs, name)
    loaded = None if builtin else context.state.state(name)
    path = match.path
    if path is None:
        line = resolver.moddir.dependency_line(name)
        path = resolver.moddir.absolute_module_path(line[0]) if line else None
    if builtin:
        presence = Presence.BUILTIN
    elif loaded is not None:
        presence = Presence.LOADED
    else:
        presence = Presence.AVAILABLE if path is not None else Presence.MISSING
    blacklist = tuple(
        _source(origin)
        for entry, origin in zip(config.blacklist, origins.blacklist, strict=True)
        if entry == name
    )
    applies = bool(resolver.filter_blacklist([match]) == ())
    install = _rule(config.install, origins.install, name)
    satisfied, reason = _judge(want, presence, loaded)
    return ModuleStatus(
        query,
        name,
        match.stage.value if found else None,
        match.alias,
        presence,
        loaded,
        builtin,
        path,
        bool(blacklist),
        blacklist,
        applies,
        _options(config, origins, name, match.alias),
        resolver.options(name, match.alias),
        install,
        install is not None and found and _install_ignored(resolver, match),
        _rule(config.remove, origins.remove, name),
        tuple(load for load, modules in context.boot if name in modules),
        () if applies or not found else _plan(context, match),
        want,
        satisfied,
        reason,
    )


def _options(config: Config, origins: Origins, name: str, alias: str | None) -> tuple[Option, ...]:
    """The options lines modprobe joins for ``name`` found through ``alias``: those of both
    names, in the order they were read (the kernel command line's last)."""
    keys = {name} if alias is None else {name, alias}
    return tuple(
        Option(entry.module, entry.options, _source(origin))
        for entry, origin in zip(config.options, origins.options, strict=True)
        if entry.module in keys
    )


def _rule(
    commands: Sequence[tuple[str, str]], where: Sequence[Origin], name: str
) -> CommandRule | None:
    from lkm.config import matches

    for (pattern, command), origin in zip(commands, where, strict=True):
        if matches(pattern, name):
            return CommandRule(pattern, command, _source(origin))
    return None


def _install_ignored(resolver: Resolver, match: Match) -> bool:
    """Whether modprobe loads the module although an install line matches it: kmod 34 passes
    the command over when the module's softdeps stand for any module."""
    from lkm.resolve import ActionKind

    return not any(
        action.name == match.name and action.kind is ActionKind.INSTALL
        for action in resolver.probe(match)
    )


def _plan(context: _Context, match: Match) -> tuple[Step, ...]:
    """What ``modprobe -n -v`` shows for this module: nothing when it is there already, else
    each step of the probe whose module is not there."""
    resolver, state = context.resolver, context.state
    if resolver.skips_loading(match.name, state):
        return ()
    return tuple(
        _step(action)
        for action in resolver.probe(match)
        if not resolver.skips_loading(action.name, state)
    )


def _step(action: Action) -> Step:
    return Step(
        action.kind.value,
        action.name,
        action.path,
        action.options,
        action.command,
        action.line().removesuffix("\n"),
    )


def _judge(
    want: Want | None, presence: Presence, loaded: str | None
) -> tuple[bool | None, str | None]:
    """Whether the wanted state holds and, when not, why."""
    if want is None:
        return None, None
    if want is Want.LOADED:
        if presence is Presence.BUILTIN or loaded == "live":
            return True, None
        if loaded is not None:
            return False, f"in the kernel but {loaded}, not live"
        return False, "not loaded"
    if presence is Presence.BUILTIN:
        return False, "built into the kernel: it can never be absent"
    if loaded is not None:
        return False, f"loaded ({loaded})"
    return True, None


__all__ = [
    "BootLoad",
    "CommandRule",
    "ModuleStatus",
    "Option",
    "Presence",
    "Source",
    "Step",
    "Want",
    "status",
]
