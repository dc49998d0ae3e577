"""What modprobe decides before it touches the kernel: lookups, dependencies and the plan.

A :class:`Resolver` holds one module directory and one configuration (both injectable) and
answers the questions kmod 34's modprobe asks, in kmod's order and with kmod's results, pinned
by black-box comparison:

- :meth:`Resolver.lookup`: what a name means. An argument starting with ``/`` or ``./`` is a
  module file; otherwise the first of these stages with a result wins: configuration aliases
  (fnmatch, every match in file order), modules.dep.bin (names without ``:``),
  modules.symbols.bin (``symbol:`` names), ``install``/``remove`` commands, modules.alias.bin
  (wildcards), modules.builtin.bin, modules.builtin.alias.bin. A configuration alias is taken
  as it is, whether or not its module exists.
- :meth:`Resolver.probe`: the ordered list of modules one probe goes through. For each
  dependency (from the end of its modules.dep line): its pre-softdeps, itself, its
  post-softdeps; then the same for the target. Softdeps are probed recursively, each module at
  most once per probe ("visited"); dependencies are listed without that check, so one module
  can appear twice. A module whose softdeps resolved to anything has its ``install`` command
  ignored (a kmod quirk kept on purpose); ``-i`` makes the target skip its own softdeps and
  command, but not its dependencies'.
- Options: every ``options`` line for the module's name or for the alias it was found
  through, in file order, joined by spaces; the target also gets the command line's, after a
  space that is written even when those are empty and configuration options exist.
- Blacklist: applied to the lookup's results only, to those found through an alias (or to all
  with ``use_blacklist``); dependencies and softdeps are never filtered.
- A modules.dep line naming a dependency whose file cannot be found (``stat`` fails): kmod
  takes the module to have no dependencies at all, and reports the first such file each time
  it reads the line, which is when a name is found in modules.dep and again when a probe
  needs the module's dependencies (:class:`MissingDependency`, to ``on_missing``).
"""

from __future__ import annotations

import os

from lkm.enum_lite import Enum
from lkm.errors import LkmError, NotFoundError
from lkm.moddir import ModuleDirectory, module_name_from_path, normalize_alias, normalize_name
from lkm.typing_lite import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import EllipsisType

    from lkm.config import Config, SoftDep
    from lkm.system import System
else:
    EllipsisType = type(...)  # types.EllipsisType, without importing types for it


class Stage(Enum):
    """Where a lookup found its modules, in kmod's order of trying."""

    PATH = "path"
    CONFIG_ALIAS = "config-alias"
    MODULE = "module"
    SYMBOL = "symbol"
    COMMAND = "command"
    ALIAS = "alias"
    BUILTIN = "builtin"
    BUILTIN_ALIAS = "builtin-alias"


class Match(NamedTuple):
    """One module a name stands for.

    ``alias`` is the key it was found under when that was an alias (the configuration's
    pattern, or the normalised query for the indexes), else None; ``path`` is set only for a
    module given as a file.
    """

    name: str
    alias: str | None
    stage: Stage
    path: str | None = None


class ActionKind(Enum):
    INSMOD = "insmod"  # load the file
    INSTALL = "install"  # run the configured command instead
    BUILTIN = "builtin"  # part of the kernel image: nothing to load
    MISSING = "missing"  # no file, not builtin, no command: kmod does nothing, says nothing
    RMMOD = "rmmod"  # unload the module
    REMOVE = "remove"  # run the configured remove command instead


class Action(NamedTuple):
    """One step of a plan, as ``modprobe -D`` and ``-n -v`` print it (:meth:`line`)."""

    kind: ActionKind
    name: str
    path: str | None
    options: str
    command: str | None = None

    def line(self) -> str:
        if self.kind is ActionKind.INSMOD:
            return f"insmod {self.path} {self.options}\n"
        if self.kind is ActionKind.INSTALL:
            return f"install {self.command} {self.options}\n"
        if self.kind is ActionKind.BUILTIN:
            return f"builtin {self.name}\n"
        if self.kind is ActionKind.RMMOD:
            return f"rmmod {self.name}\n"
        if self.kind is ActionKind.REMOVE:
            return f"remove {self.command}\n"
        return ""


class Refusal(NamedTuple):
    """Why a removal stops: kmod's message (``Module X is in use.``) for module ``name``.

    A refusal that does not ``stop`` is a complaint kmod makes on its way (an error line).
    """

    name: str
    message: str
    stop: bool = True


class ModuleInfo(NamedTuple):
    """What the resolver knows about one module name."""

    name: str
    path: str | None  # absolute path of its file, from modules.dep.bin
    builtin: bool
    dependencies: tuple[str, ...]  # absolute paths, in modules.dep order
    softdep_pre: tuple[str, ...]  # names as configured (aliases allowed)
    softdep_post: tuple[str, ...]
    weakdeps: tuple[str, ...]
    options: str
    install_command: str | None
    remove_command: str | None


class MissingDependency(NamedTuple):
    """A file named on ``module``'s modules.dep line that ``stat`` cannot find."""

    module: str
    path: str  # absolute
    errno: int


class PathError(LkmError):
    """A module given as a file path that cannot be used; kmod's wording."""

    def __init__(self, path: str, code: int) -> None:
        self.path = path
        self.errno = code
        super().__init__(f"Failed to get module from path {path}: {os.strerror(code)}")


class LoadedState(Protocol):
    """Which modules the running kernel has: what dry runs need to skip and to remove."""

    def state(self, name: str) -> str | None:
        """``live``, ``coming`` (also a ``/sys/module`` directory without ``initstate``, as
        libkmod takes it), ``going``, or None when the kernel has no such module (or its
        state cannot be read)."""

    def holders(self, name: str) -> list[str]:
        """The modules using ``name``; LkmError (kmod's message) when they cannot be read."""

    def refcount(self, name: str) -> int | None:
        """The module's reference count; None when it cannot be read."""


class SysfsState:
    """:class:`LoadedState` read from ``<sysfs>/module`` (the real default: ``/sys``).

    ``report`` receives kmod's message for each value that cannot be read or makes no sense
    (``unknown /sys/module/x/initstate: 'y'``), as kmod prints it on its way; None: silence.
    """

    def __init__(self, sysfs: str = "/sys", report: Callable[[str], None] | None = None) -> None:
        self.sysfs = sysfs
        self.report = report

    def _complain(self, err: LkmError) -> None:
        if self.report is not None and not getattr(err, "quiet", False):
            self.report(str(err))

    def state(self, name: str) -> str | None:
        from lkm.state import SysModule

        try:
            found = SysModule(name, self.sysfs).initstate()
        except LkmError as err:
            self._complain(err)
            return None
        return None if found is None else found.value

    def holders(self, name: str) -> list[str]:
        from lkm.state import SysModule

        return SysModule(name, self.sysfs).holders()

    def refcount(self, name: str) -> int | None:
        from lkm.state import SysModule

        try:
            return SysModule(name, self.sysfs).refcount()
        except LkmError as err:
            self._complain(err)
            return None


class _Removal(NamedTuple):
    """One ``modprobe -r`` walk: the kernel's state, whether to check it, the steps so far."""

    state: LoadedState
    checks: bool
    steps: list[Action | Refusal]
    active: set[str]  # modules being removed further up: a softdep cycle ends here


class ProbeStep(NamedTuple):
    """One action of a probe, and whether a softdep led to it (its failure stops nothing)."""

    action: Action
    soft: bool


class _Entry(NamedTuple):
    """A module in a probe list: its identity as kmod keys it (name, alias)."""

    name: str
    alias: str | None
    path: str | None


class _Listing(NamedTuple):
    """What a probe has listed so far, and what it knows of each entry."""

    listed: list[_Entry]
    visited: set[tuple[str, str | None]]
    ignore: dict[tuple[str, str | None], bool]  # its install command is not run
    soft: set[tuple[str, str | None]]  # reached through a softdep

    def add(self, entry: _Entry, soft: bool) -> None:
        self.listed.append(entry)
        if soft:
            self.soft.add((entry.name, entry.alias))


def _compile(pattern: str) -> Callable[[bytes], object]:
    import re  # here: most commands compile no pattern of the configuration

    from lkm.wildcard import fnmatch_regex

    return re.compile(fnmatch_regex(os.fsencode(pattern)), re.DOTALL).match


class Resolver:
    """modprobe's decisions for one module directory and one configuration.

    ``config`` defaults to an empty configuration; :meth:`open` reads the system's.
    """

    def __init__(
        self,
        moddir: ModuleDirectory,
        config: Config | None = None,
        *,
        on_missing: Callable[[MissingDependency], None] | None = None,
    ) -> None:
        if config is None:
            from lkm.config import Config

            config = Config()
        self.moddir = moddir
        self.config = config
        self._aliases: list[tuple[Callable[[bytes], object], str, str]] | None = None
        options: dict[str, list[tuple[int, str]]] = {}
        for at, entry in enumerate(config.options):
            options.setdefault(entry.module, []).append((at, entry.options))
        self._options = options
        self._blacklist = frozenset(config.blacklist)
        self._commands = {c.module for c in config.install} | {c.module for c in config.remove}
        self._on_missing = on_missing
        self._remembered: dict[str, tuple[str, ...] | None] | None = None
        self._softdeps: dict[str, SoftDep | None] | None = None

    @classmethod
    def open(
        cls,
        *,
        basedir: str | None = None,
        release: str | None = None,
        config_paths: Sequence[str] | None = None,
        cmdline: str | EllipsisType | None = ...,
        strict: bool = False,
        system: System | None = None,
    ) -> Resolver:
        """A resolver as modprobe builds one: ``-d``, ``-S``, ``-C`` and the kernel command
        line file; ``strict`` makes a corrupt index an error instead of an empty one.

        Raises ModuleDirectoryError when the release has no module directory (modprobe
        itself goes on and finds nothing there; a library caller is told). What is not
        given is ``system``'s (default: the running one): its root, release, modprobe.d
        directories and kernel command line file (``cmdline=None``: none).
        """
        from lkm.config import load_config
        from lkm.system import System

        system = system or System()
        moddir = ModuleDirectory.for_release(
            basedir if basedir is not None else system.basedir or None,
            release if release is not None else system.kernel_release(),
            strict=strict,
        )
        if isinstance(cmdline, EllipsisType):
            cmdline = system.cmdline
        if not os.path.isdir(moddir.path):
            import errno

            from lkm.errors import ModuleDirectoryError

            code = errno.ENOTDIR if os.path.exists(moddir.path) else errno.ENOENT
            raise ModuleDirectoryError(moddir.path, code)
        config = load_config(
            config_paths or system.modprobe_dirs, module_dir=moddir.path, cmdline=cmdline
        )
        return cls(moddir, config)

    def close(self) -> None:
        self.moddir.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups -------------------------------------------------------------------------

    def lookup(self, name: str, *, paths: bool = True) -> tuple[Match, ...]:
        """The modules ``name`` stands for (see the module docstring); empty if none.

        PathError for a path that cannot be used. With ``paths`` false, a name that looks like
        a path is looked up like any other (modinfo decides about files by itself).
        """
        if paths and name.startswith(("/", "./")):
            return (self._path_match(name),)
        from lkm.config import normalize

        if normalize(name) is None:
            # No valid alias pattern (a ``[`` never closed, a stray ``]``): kmod looks it up
            # nowhere, even where an index pattern would match it.
            return ()
        found = self._config_aliases(name)
        if found:
            return found
        moddir = self.moddir
        if ":" not in name:
            module = normalize_name(name)
            # kmod reads the module's whole line here (its dependencies included).
            if self.dependencies(module) is not None:
                return (Match(module, None, Stage.MODULE),)
        alias = normalize_alias(name)
        if name.startswith("symbol:"):
            # kmod normalises the symbol like any alias (``symbol:a-b`` finds ``a_b``).
            owners = moddir.symbol_owners(alias)
            if owners:
                return tuple(Match(owner, alias, Stage.SYMBOL) for owner in owners)
        module = normalize_name(name)
        if module in self._commands:
            return (Match(module, None, Stage.COMMAND),)
        owners = moddir.alias_owners(name)
        if owners:
            return tuple(Match(owner, alias, Stage.ALIAS) for owner in owners)
        if moddir.is_builtin(module):
            return (Match(module, None, Stage.BUILTIN),)
        owners = moddir.builtin_alias_owners(name)
        return tuple(Match(owner, alias, Stage.BUILTIN_ALIAS) for owner in owners)

    def remember(self) -> None:
        """From now on read each module's modules.dep line (and look for its files) once, and
        find its softdep line once.

        modprobe reads them each time it needs them, once or twice in a process; a run that
        probes many modules of a tree that does not change under it need not.
        """
        if self._remembered is None:
            self._remembered = {}
            self._softdeps = {}

    def softdep(self, name: str) -> SoftDep | None:
        """The configuration's softdep line for ``name`` (see :meth:`Config.softdep`)."""
        softdeps = self._softdeps
        if softdeps is None:
            return self.config.softdep(name)
        if name not in softdeps:
            softdeps[name] = self.config.softdep(name)
        return softdeps[name]

    def resolve(self, name: str) -> tuple[str, ...]:
        """Module names ``name`` stands for, as ``modprobe -R`` prints them."""
        return tuple(match.name for match in self.lookup(name))

    def dependencies(self, name: str) -> tuple[str, ...] | None:
        """The absolute paths on ``name``'s modules.dep line, as kmod reads the line: None
        without one; none at all when a file is missing (reported to ``on_missing``)."""
        remembered = self._remembered
        if remembered is not None:
            if name not in remembered:
                remembered[name] = self._read_dependencies(name)
            return remembered[name]
        return self._read_dependencies(name)

    def _read_dependencies(self, name: str) -> tuple[str, ...] | None:
        moddir = self.moddir
        line = moddir.dependency_line(name)
        if line is None:
            return None
        paths = tuple(moddir.absolute_module_path(dep) for dep in line[1])
        for path in paths:
            try:
                os.stat(path)
            except OSError as err:
                if self._on_missing is not None:
                    self._on_missing(MissingDependency(name, path, err.errno or 0))
                return ()
        return paths

    def _path_match(self, path: str) -> Match:
        import errno

        from lkm.moddir import absolute

        name = module_name_from_path(path)
        try:
            os.stat(path)
        except OSError as err:
            raise PathError(path, err.errno or errno.ENOENT) from err
        except ValueError as err:  # a NUL inside: no such file can exist (no argv holds one)
            raise PathError(path, errno.ENOENT) from err
        if not name:
            raise PathError(path, errno.ENOENT)
        return Match(name, None, Stage.PATH, absolute(path))

    def _config_aliases(self, name: str) -> tuple[Match, ...]:
        if not self.config.aliases:
            return ()
        if self._aliases is None:
            self._aliases = [
                (_compile(a.pattern), a.pattern, a.module) for a in self.config.aliases
            ]
        raw = os.fsencode(normalize_alias(name))
        return tuple(
            Match(module, pattern, Stage.CONFIG_ALIAS)
            for matcher, pattern, module in self._aliases
            if matcher(raw) is not None
        )

    # -- one module ----------------------------------------------------------------------

    def options(self, name: str, alias: str | None = None) -> str:
        """Configured options of ``name`` and of ``alias``, in file order, space-joined."""
        picked = list(self._options.get(name, ()))
        if alias is not None and alias != name:
            picked += self._options.get(alias, ())
            picked.sort()
        return " ".join(text for _, text in picked)

    def info(self, name: str) -> ModuleInfo:
        """Everything known about the module ``name`` (normalised)."""
        name = normalize_name(name)
        moddir = self.moddir
        line = moddir.dependency_line(name)
        path = moddir.absolute_module_path(line[0]) if line else None
        deps = tuple(moddir.absolute_module_path(d) for d in line[1]) if line else ()
        softdep = self.softdep(name)
        weakdep = self.config.weakdep(name)
        return ModuleInfo(
            name,
            path,
            moddir.is_builtin(name),
            deps,
            softdep.pre if softdep else (),
            softdep.post if softdep else (),
            weakdep.names if weakdep else (),
            self.options(name),
            self.config.install_command(name),
            self.config.remove_command(name),
        )

    def is_blacklisted(self, name: str) -> bool:
        return name in self._blacklist

    def filter_blacklist(
        self, matches: Iterable[Match], *, use_blacklist: bool = False
    ) -> tuple[Match, ...]:
        """What modprobe keeps of a lookup: blacklisted modules found through an alias (with
        ``use_blacklist``, any) are dropped."""
        return tuple(
            m
            for m in matches
            if not (m.name in self._blacklist and (use_blacklist or m.alias is not None))
        )

    # -- probing ---------------------------------------------------------------------------

    def probe(
        self, match: Match, *, extra_options: str = "", ignore_commands: bool = False
    ) -> tuple[Action, ...]:
        """The actions of one probe of ``match``, in order (see the module docstring)."""
        steps = self.probe_steps(
            match, extra_options=extra_options, ignore_commands=ignore_commands
        )
        return tuple(step.action for step in steps)

    def probe_steps(
        self, match: Match, *, extra_options: str = "", ignore_commands: bool = False
    ) -> tuple[ProbeStep, ...]:
        """:meth:`probe`'s actions, each marked ``soft`` when it was reached through a
        softdep (at any depth, the softdep's own dependencies included): kmod 34 goes on past
        such a step when it fails, and stops at any other."""
        listed: list[_Entry] = []
        visited: set[tuple[str, str | None]] = set()
        ignore: dict[tuple[str, str | None], bool] = {}
        soft: set[tuple[str, str | None]] = set()
        target = _Entry(match.name, match.alias, match.path)
        self._probe_list(target, _Listing(listed, visited, ignore, soft), ignore_commands, False)
        steps = []
        for entry in listed:
            key = (entry.name, entry.alias)
            action = self._action(
                entry,
                extra_options if key == (target.name, target.alias) else "",
                ignore.get(key, False),
            )
            steps.append(ProbeStep(action, key in soft))
        return tuple(steps)

    def plan(
        self,
        name: str,
        *,
        extra_options: str = "",
        use_blacklist: bool = False,
        ignore_commands: bool = False,
    ) -> tuple[Action, ...]:
        """Every action ``modprobe NAME`` would take, nothing loaded yet; NotFoundError when
        ``name`` means nothing."""
        matches = self.lookup(name)
        if not matches:
            raise NotFoundError(f"Module {name} not found in directory {self.moddir.path}")
        actions: list[Action] = []
        for match in self.filter_blacklist(matches, use_blacklist=use_blacklist):
            actions += self.probe(
                match, extra_options=extra_options, ignore_commands=ignore_commands
            )
        return tuple(actions)

    def _probe_list(
        self, entry: _Entry, listing: _Listing, ignore_commands: bool, soft: bool
    ) -> None:
        key = (entry.name, entry.alias)
        if key in listing.visited:
            return
        listing.visited.add(key)
        for path in reversed(self.dependencies(entry.name) or ()):
            dep_entry = _Entry(module_name_from_path(path), None, path)
            self._fill_softdeps(dep_entry, listing, soft)
        if ignore_commands:
            listing.add(entry, soft)
            listing.ignore[key] = True
        else:
            self._fill_softdeps(entry, listing, soft)

    def _fill_softdeps(self, entry: _Entry, listing: _Listing, soft: bool) -> None:
        softdep = self.softdep(entry.name)
        pre: list[Match] = []
        post: list[Match] = []
        if softdep is not None:
            for name in softdep.pre:
                pre += self._soft_lookup(name)
            for name in softdep.post:
                post += self._soft_lookup(name)
        for match in pre:
            self._probe_list(_Entry(*match[:2], match.path), listing, False, True)
        listing.add(entry, soft)
        listing.ignore[(entry.name, entry.alias)] = bool(pre or post)
        for match in post:
            self._probe_list(_Entry(*match[:2], match.path), listing, False, True)

    # -- removal ---------------------------------------------------------------------------

    def removal(
        self,
        match: Match,
        state: LoadedState,
        *,
        checks: bool = True,
        remove_holders: bool = False,
        ignore_commands: bool = False,
        first_time: bool = False,
        steps: list[Action | Refusal] | None = None,
    ) -> list[Action | Refusal]:
        """What ``modprobe -r`` does for ``match``, ending in a Refusal if it stops.

        kmod 34's order: post-softdeps (last first), holders (``remove_holders``), the
        refcount check, the module or its ``remove`` command, the dependencies nothing uses
        any more, pre-softdeps (last first). Without ``checks`` (``-D``) nothing is checked
        but the dependencies' refcounts. ``steps`` receives each step as it is decided: a
        list whose ``append`` carries the step out makes later checks see its effect, as in
        kmod, which checks a dependency's refcount after removing its user.
        """
        if steps is None:
            steps = []
        run = _Removal(state, checks, steps, set())
        self._remove(
            match.name,
            run,
            target=True,
            holders=remove_holders,
            ignore_commands=ignore_commands,
            first_time=first_time,
        )
        return steps

    def in_kernel(self, name: str, state: LoadedState) -> str | None:
        """``builtin`` when modules.builtin lists the module (the kernel is not asked then),
        else its state (:meth:`LoadedState.state`); None if not loaded."""
        if self.moddir.is_builtin(name):
            return "builtin"
        return state.state(name)

    def skips_loading(self, name: str, state: LoadedState) -> bool:
        """Whether loading leaves ``name`` alone as already there, as kmod 34 judges it: only
        when modules.builtin lists it or its ``initstate`` reads ``live``. A module coming or
        going, or a ``/sys/module`` directory without ``initstate`` (a kernel with the module
        built in shows one when it has parameters), is loaded anyway."""
        return self.moddir.is_builtin(name) or state.state(name) == "live"

    def _remove(
        self,
        name: str,
        run: _Removal,
        *,
        target: bool = False,
        holders: bool = False,
        ignore_commands: bool = False,
        first_time: bool = False,
    ) -> bool:
        if name in run.active:
            # kmod 34 recurses until its stack overflows (``softdep m pre: m`` with -r -D).
            return True
        run.active.add(name)
        try:
            return self._remove_one(
                name,
                run,
                target=target,
                holders=holders,
                ignore_commands=ignore_commands,
                first_time=first_time,
            )
        finally:
            run.active.discard(name)

    def _remove_one(
        self,
        name: str,
        run: _Removal,
        *,
        target: bool,
        holders: bool,
        ignore_commands: bool,
        first_time: bool,
    ) -> bool:
        state, steps = run.state, run.steps
        command = None if ignore_commands else self.config.remove_command(name)
        if run.checks and command is None:  # a remove command runs whatever the state
            # Only modules.builtin makes a module builtin here; any state the kernel shows
            # (also a directory without initstate) makes it loaded.
            if self.moddir.is_builtin(name):
                if target:
                    steps.append(Refusal(name, f"Module {name} is builtin."))
                return not target
            if state.state(name) is None:
                if first_time:
                    steps.append(Refusal(name, f"Module {name} is not in kernel."))
                    return False
                return True
        softdep = None if ignore_commands else self.softdep(name)
        pre = [m for n in softdep.pre for m in self._soft_lookup(n)] if softdep else []
        post = [m for n in softdep.post for m in self._soft_lookup(n)] if softdep else []
        for match in reversed(post):
            if not self._remove(match.name, run, first_time=first_time):
                return False
        if holders:
            try:
                using = state.holders(name)
            except LkmError as err:
                steps.append(Refusal(name, str(err), stop=False))
                using = []
            for holder in using:
                if not self._remove(
                    holder, run, target=True, holders=True, ignore_commands=ignore_commands
                ):
                    return False
        if command is None and run.checks and (state.refcount(name) or 0) > 0:
            steps.append(Refusal(name, f"Module {name} is in use."))
            return False
        if command is not None:
            steps.append(
                Action(ActionKind.REMOVE, name, None, "", command.replace("$CMDLINE_OPTS", ""))
            )
        else:
            steps.append(Action(ActionKind.RMMOD, name, None, ""))
            for dep in reversed(self.dependencies(name) or ()):
                dep_name = module_name_from_path(dep)
                # kmod reads only the refcount of a dependency: readable and 0, it goes.
                if state.refcount(dep_name) == 0:
                    steps.append(Action(ActionKind.RMMOD, dep_name, None, ""))
        return all(self._remove(match.name, run, first_time=first_time) for match in reversed(pre))

    def _soft_lookup(self, name: str) -> tuple[Match, ...]:
        try:
            return self.lookup(name)
        except PathError:
            return ()

    def _action(self, entry: _Entry, extra: str, ignore_command: bool) -> Action:
        configured = self.options(entry.name, entry.alias)
        options = f"{configured} {extra}" if configured else extra
        command = None if ignore_command else self.config.install_command(entry.name)
        if command is not None:
            return Action(ActionKind.INSTALL, entry.name, entry.path, options, command)
        path = entry.path
        if path is None:
            line = self.moddir.dependency_line(entry.name)
            if line is not None:
                path = self.moddir.absolute_module_path(line[0])
        if path is None and self.moddir.is_builtin(entry.name):
            return Action(ActionKind.BUILTIN, entry.name, None, options)
        if path is None:
            return Action(ActionKind.MISSING, entry.name, None, options)
        return Action(ActionKind.INSMOD, entry.name, path, options)


__all__ = [
    "Action",
    "ActionKind",
    "LoadedState",
    "Match",
    "MissingDependency",
    "ModuleInfo",
    "PathError",
    "Refusal",
    "Resolver",
    "Stage",
    "SysfsState",
]
