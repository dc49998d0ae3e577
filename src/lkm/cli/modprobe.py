"""``modprobe``: kmod 34's options, ``$MODPROBE_OPTIONS``, the queries, loading and removal.

The arguments are parsed into a :class:`Settings` and dispatched on its :class:`Mode`. Real
loading and removal go through :mod:`lkm.probe` (the kernel and ``/sys`` are a
:class:`Machine`, fakes in tests); the decisions are :mod:`lkm.resolve`'s.
"""

from __future__ import annotations

import os

from lkm.cli.getopt import Option, UsageError, getopt_long
from lkm.cli.output import Printer, encode
from lkm.enum_lite import Enum
from lkm.system import System
from lkm.typing_lite import TYPE_CHECKING, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import BinaryIO

    from lkm.config import Config
    from lkm.kernel import Kernel
    from lkm.moddir import ModuleDirectory
    from lkm.probe import ProbeError
    from lkm.resolve import Match, Refusal, Resolver, SysfsState

PROG = "modprobe"

# In kmod's table order: getopt lists ambiguous abbreviations in this order.
OPTIONS = (
    Option("a", "all"),
    Option("r", "remove"),
    Option(None, "remove-dependencies", key="remove-holders"),
    Option(None, "remove-holders"),
    Option("w", "wait", has_arg=True, kind="text"),
    Option(None, "first-time"),
    Option("i", "ignore-install"),
    Option(None, "ignore-remove", key="i"),
    Option("b", "use-blacklist"),
    Option("f", "force"),
    Option(None, "force-modversion"),
    Option(None, "force-vermagic"),
    Option("R", "resolve-alias"),
    Option("D", "show-depends"),
    Option("c", "showconfig"),
    Option(None, "show-config", key="c"),
    Option(None, "show-modversions"),
    Option(None, "dump-modversions", key="show-modversions"),
    Option(None, "show-exports"),
    Option("n", "dry-run"),
    Option(None, "show", key="n"),
    Option("C", "config", has_arg=True, kind="file"),
    Option("d", "dirname", has_arg=True, kind="directory"),
    Option("S", "set-version", has_arg=True, kind="release"),
    Option("s", "syslog"),
    Option("q", "quiet"),
    Option("v", "verbose"),
    Option("V", "version"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\t{prog} [options] [-i] [-b] modulename
\t{prog} [options] -a [-i] [-b] modulename [modulename...]
\t{prog} [options] -r [-i] modulename
\t{prog} [options] -r -a [-i] modulename [modulename...]
\t{prog} [options] -c
\t{prog} [options] --dump-modversions filename
Management Options:
\t-a, --all                   Consider every non-argument to
\t                            be a module name to be inserted
\t                            or removed (-r)
\t-r, --remove                Remove modules instead of inserting
\t    --remove-dependencies   Deprecated: use --remove-holders
\t    --remove-holders        Also remove module holders (use together with -r)
\t-w, --wait=<MSEC>           When removing a module, wait up to MSEC for
\t                            module's refcount to become 0 so it can be
\t                            removed (use together with -r)
\t    --first-time            Fail if module already inserted or removed
\t-i, --ignore-install        Ignore install commands
\t-i, --ignore-remove         Ignore remove commands
\t-b, --use-blacklist         Apply blacklist to resolved alias.
\t-f, --force                 Force module insertion or removal.
\t                            implies --force-modversions and
\t                            --force-vermagic
\t    --force-modversion      Ignore module's version
\t    --force-vermagic        Ignore module's version magic

Query Options:
\t-R, --resolve-alias         Only lookup and print alias and exit
\t-D, --show-depends          Only print module dependencies and exit
\t-c, --showconfig            Print out known configuration and exit
\t-c, --show-config           Same as --showconfig
\t    --show-modversions      Dump module symbol version and exit
\t    --dump-modversions      Same as --show-modversions
\t    --show-exports          Only print module exported symbol versions and exit

General Options:
\t-n, --dry-run               Do not execute operations, just print out
\t-n, --show                  Same as --dry-run
\t-C, --config=FILE           Use FILE instead of default search paths
\t-d, --dirname=DIR           Use DIR as filesystem root for /lib/modules
\t-S, --set-version=VERSION   Use VERSION instead of `uname -r`
\t-s, --syslog                print to syslog, not stderr
\t-q, --quiet                 disable messages
\t-v, --verbose               enables more messages
\t-V, --version               show version
\t-h, --help                  show this help
"""


T = TypeVar("T")


class Mode(Enum):
    """What one modprobe run does; ``-c`` overrides every other mode."""

    SHOW_CONFIG = "show-config"
    SHOW_MODVERSIONS = "show-modversions"
    SHOW_EXPORTS = "show-exports"
    RESOLVE_ALIAS = "resolve-alias"
    SHOW_DEPENDS = "show-depends"
    REMOVE = "remove"
    INSERT = "insert"


class Settings(NamedTuple):
    """Every option kmod 34's modprobe takes, parsed."""

    mode: Mode
    operands: tuple[str, ...]
    all: bool = False
    remove_holders: bool = False
    wait_msec: str | None = None
    first_time: bool = False
    ignore_commands: bool = False
    use_blacklist: bool = False
    force_modversion: bool = False
    force_vermagic: bool = False
    dry_run: bool = False
    config_paths: tuple[str, ...] = ()  # -C, in order; empty: kmod's directories
    dirname: str | None = None
    release: str | None = None
    syslog: bool = False
    show_depends: bool = False  # -D given, whatever the mode
    resolve_only: bool = False  # -R given, whatever the mode
    verbosity: int = 0  # -v adds one, -q takes one
    silent: bool = False  # -q given: kmod then prints no message, whatever -v says

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0 or self.silent

    @property
    def verbose(self) -> bool:
        """-v: the actions are shown; never with -q, whatever the count of -v (kmod 34)."""
        return self.verbosity > 0 and not self.silent


_FLAGS = {
    "a": "all",
    "remove-holders": "remove_holders",
    "first-time": "first_time",
    "i": "ignore_commands",
    "b": "use_blacklist",
    "force-modversion": "force_modversion",
    "force-vermagic": "force_vermagic",
    "n": "dry_run",
    "s": "syslog",
}
_MODE_KEYS = {
    "r": Mode.REMOVE,
    "R": Mode.RESOLVE_ALIAS,
    "D": Mode.SHOW_DEPENDS,
    "show-modversions": Mode.SHOW_MODVERSIONS,
    "show-exports": Mode.SHOW_EXPORTS,
}
# Which mode wins when several are asked for (-c above all; the rest is not yet pinned).
_MODE_ORDER = (
    Mode.SHOW_CONFIG,
    Mode.SHOW_MODVERSIONS,
    Mode.SHOW_EXPORTS,
    Mode.REMOVE,  # -r -D shows the removal; -r -R removes nothing and shows nothing
    Mode.RESOLVE_ALIAS,
    Mode.SHOW_DEPENDS,
)


def arguments(args: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The arguments as kmod sees them: ``$MODPROBE_OPTIONS`` words first."""
    from lkm.config import split_modprobe_options

    return [*split_modprobe_options(environ.get("MODPROBE_OPTIONS", "")), *args]


def parse(args: Sequence[str], printer: Printer) -> Settings | int:
    """Settings from the (already prefixed) arguments, or the exit status of -h/-V/a usage error."""
    try:
        parsed, operands = getopt_long(args, OPTIONS)
    except UsageError as err:
        printer.raw_error(f"{printer.prog}: {err}")
        return 1
    values: dict[str, object] = {}
    modes: set[Mode] = set()
    config_paths: list[str] = []
    verbosity = 0
    for key, value in parsed:
        if key in _FLAGS:
            values[_FLAGS[key]] = True
        elif key in _MODE_KEYS:
            modes.add(_MODE_KEYS[key])
        elif key == "c":
            modes.add(Mode.SHOW_CONFIG)
        elif key == "f":
            values["force_modversion"] = values["force_vermagic"] = True
        elif key == "w":
            values["wait_msec"] = value
        elif key == "C":
            config_paths.append(value or "")
        elif key == "d":
            values["dirname"] = value
        elif key == "S":
            values["release"] = value
        elif key == "q":
            verbosity -= 1
            values["silent"] = True
        elif key == "v":
            verbosity += 1
        elif key == "V":
            from lkm.cli.common import print_version

            print_version(printer)
            return 0
        elif key == "h":
            printer.out(USAGE.format(prog=printer.prog))
            return 0
    mode = next((m for m in _MODE_ORDER if m in modes), Mode.INSERT)
    values["show_depends"] = Mode.SHOW_DEPENDS in modes
    values["resolve_only"] = Mode.RESOLVE_ALIAS in modes
    return Settings(
        mode,
        tuple(operands),
        config_paths=tuple(config_paths),
        verbosity=verbosity,
        **values,  # type: ignore[arg-type]
    )


class _Output(Printer):
    """modprobe's printer once it has a libkmod context.

    ``-s`` sends modprobe's messages to syslog, but libkmod's own lines about the configuration,
    printed before modprobe registers its logging function, still go to stderr. A FATAL is
    remembered: kmod's modprobe exits there, without releasing the context (no ``-vv`` line).
    """

    def __init__(self, printer: Printer) -> None:
        super().__init__(printer.prog, printer.stdout, printer.stderr)
        self.libkmod = printer.stderr
        self.fatal = False

    def message(self, level: str, text: str) -> None:
        self.fatal = self.fatal or level == "FATAL"
        super().message(level, text)

    def libkmod_error(self, text: str) -> None:
        # libkmod reports these itself, whatever -q or -s say.
        self.libkmod.write(encode(f"libkmod: ERROR: {text}\n"))
        self.libkmod.flush()


def _debug(settings: Settings) -> bool:
    """-vv: kmod's modprobe then shows libkmod's INFO lines too."""
    return settings.verbosity >= 2 and not settings.quiet


def _context(
    settings: Settings, printer: _Output, system: System
) -> tuple[ModuleDirectory, Config]:
    """The module directory and configuration, as kmod's modprobe sets up libkmod: the
    configuration's problems, then (-vv) its logging function registered, then the indexes."""
    from lkm.config import load_config

    moddir = system.module_directory(settings.dirname, settings.release)
    config = load_config(
        settings.config_paths or system.modprobe_dirs,
        module_dir=moddir.path,
        cmdline=system.cmdline,
    )
    for problem in config.problems:
        printer.libkmod_error(problem.message)
    if _debug(settings):
        # The address of kmod's function: lkm shows one of its own (they can never match).
        printer.message("INFO", f"custom logging function {id(printer):#x} registered")
    load_indexes(moddir, settings, printer)
    return moddir, config


def show_config(settings: Settings, printer: _Output, machine: Machine) -> int:
    from lkm.config import show_config

    moddir, config = _context(settings, printer, machine.system)
    moddir.close()
    printer.out("".join(show_config(config, moddir.path)))
    return 0


def _resolver(settings: Settings, printer: _Output, machine: Machine) -> Resolver:
    from lkm.resolve import MissingDependency, Resolver

    def missing(problem: MissingDependency) -> None:
        # libkmod's error through modprobe's logging, which -q silences; the context's
        # address is lkm's own, the one its INFO line shows.
        if not settings.quiet:
            reason = os.strerror(problem.errno)
            printer.message("ERROR", f"ctx={id(settings):#x} path={problem.path} error={reason}")

    moddir, config = _context(settings, printer, machine.system)
    return Resolver(moddir, config, on_missing=missing)


# The indexes modprobe opens before its first lookup, in its order. An index that cannot be
# read ends the loading (silently when it is missing), except the optional builtin aliases;
# one with a bad header is reported. Lookups read the others when they need them, silently.
_LOAD_ORDER = (
    "modules.dep.bin",
    "modules.alias.bin",
    "modules.symbols.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.bin",
)


def load_indexes(moddir: ModuleDirectory, settings: Settings, printer: Printer) -> None:
    """Open the indexes as kmod 34's modprobe does at start, with its messages (pinned)."""
    from lkm.errors import IndexHeaderError, IndexMapError

    for name in _LOAD_ORDER:
        if moddir.index(name) is not None:
            continue
        failure = moddir.failures.get(name)
        if isinstance(failure, IndexHeaderError) and not settings.quiet:
            if failure.field == "magic":
                text = f"magic check fail: {failure.found:x} instead of {failure.expected:x}"
            else:
                text = f"major version check fail: {failure.found} instead of {failure.expected}"
            printer.error(text)
        elif isinstance(failure, IndexMapError) and not settings.quiet:
            # A directory in the index's place: the call that failed, as kmod prints it.
            reason = os.strerror(failure.errno)
            printer.error(
                f"mmap(NULL, {failure.size}, PROT_READ, MAP_PRIVATE, {failure.fd}, 0): {reason}"
            )
        if name != "modules.builtin.alias.bin":
            return


def _targets(settings: Settings) -> tuple[list[str], str]:
    """The module names of this run and the options the command line gives the target."""
    if settings.all:
        return list(settings.operands), ""
    return [settings.operands[0]], " ".join(_quoted(a) for a in settings.operands[1:])


def _quoted(option: str) -> str:
    """An option with a space has its value quoted, as kmod passes it (``word="a b"``)."""
    if " " not in option:
        return option
    key, equals, value = option.partition("=")
    return f'{key}="{value}"' if equals else f'"{option}"'


class _Lookups(Generic[T]):
    """Each name with what it stands for, in turn; a name that fails is reported as kmod does.

    A path that cannot be used or a name not found is a FATAL that ends the run, or with -a a
    WARNING and the next name; ``failed`` and ``stopped`` tell the caller which happened.
    """

    def __init__(
        self,
        settings: Settings,
        printer: Printer,
        resolver: Resolver,
        names: Sequence[str],
        find: Callable[[str], Sequence[T]],
        *,
        missing: Callable[[str], str] | None = None,
        unnoticed: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings, self.printer, self.resolver = settings, printer, resolver
        self.names, self.find = names, find
        self.missing = missing or (
            lambda name: f"Module {name} not found in directory {resolver.moddir.path}"
        )
        # Names that fail without a word and without stopping the run.
        self.unnoticed = unnoticed
        self.failed = False
        self.stopped = False

    def __iter__(self) -> Iterator[tuple[str, Sequence[T]]]:
        from lkm.resolve import PathError

        settings = self.settings
        for name in self.names:
            if self.unnoticed is not None and self.unnoticed(name):
                self.failed = True
                continue
            try:
                found = self.find(name)
            except PathError as err:
                found, problem = (), str(err)
            else:
                problem = self.missing(name)
            if not found:
                if not settings.quiet:
                    self.printer.message(_level(settings), problem)
                self.failed = True
                if not settings.all:
                    self.stopped = True
                    return
                continue
            yield name, found

    def status(self, status: int) -> int:
        """The run's exit status, given the status of the work done on the names found."""
        return 1 if self.stopped or self.failed else status


def resolve_names(settings: Settings, printer: _Output, machine: Machine) -> int:
    """-R: the modules each name stands for, one per line."""
    resolver = _resolver(settings, printer, machine)
    names, _ = _targets(settings)
    lookups = _Lookups(settings, printer, resolver, names, resolver.resolve)
    for _name, found in lookups:
        printer.out("".join(f"{module}\n" for module in found))
    return lookups.status(0)


def _level(settings: Settings) -> str:
    # kmod reports a failing module as a warning when -a lets it go on with the others.
    return "WARNING" if settings.all else "FATAL"


def show_plan(settings: Settings, printer: _Output, machine: Machine) -> int:
    """-D, and -n for loading: what modprobe would do, one line per action.

    A dry run skips what the kernel has already (:meth:`Resolver.skips_loading`), asking
    about the target and then about each action, as kmod does (its complaints about
    unreadable states show once per asking); -D asks nothing and shows everything.
    """
    resolver = _resolver(settings, printer, machine)
    names, extra = _targets(settings)
    depends = settings.mode is Mode.SHOW_DEPENDS
    show = depends or settings.verbose
    state = _state(settings, printer, machine)
    status = 0
    lookups = _Lookups(settings, printer, resolver, names, resolver.lookup)
    for _name, matches in lookups:
        kept = resolver.filter_blacklist(matches, use_blacklist=settings.use_blacklist)
        for match in kept:
            if not depends and resolver.skips_loading(match.name, state):
                # The target is there already: nothing to do, an error with --first-time.
                if settings.first_time:
                    if not settings.quiet:
                        printer.error(f"could not insert '{match.name}': Module already in kernel")
                    status = 1
                continue
            actions = resolver.probe(
                match, extra_options=extra, ignore_commands=settings.ignore_commands
            )
            lines = [
                action.line()
                for action in actions
                if depends or not resolver.skips_loading(action.name, state)
            ]
            if show:
                printer.out("".join(lines))
    return lookups.status(status)


def _state(settings: Settings, printer: Printer, machine: Machine) -> SysfsState:
    """The running kernel's modules as this run sees them; kmod reports values it cannot
    read or understand as errors on its way, unless -q."""
    from lkm.resolve import SysfsState

    return SysfsState(machine.sysfs, None if settings.quiet else printer.error)


def _removal_lookups(settings: Settings, printer: Printer, resolver: Resolver) -> _Lookups[Match]:
    """The operands of -r, each a module name (kmod removes by name only: a path is simply
    not found)."""

    def find(name: str) -> Sequence[Match]:
        return () if name.startswith(("/", "./")) else resolver.lookup(name)

    def missing(name: str) -> str:
        return f"Module {name} not found."

    def unnoticed(name: str) -> bool:
        # kmod 34 fails on a name that is no valid alias pattern (a ``[`` never closed, a stray
        # ``]``) without a message, and goes on with the next name.
        from lkm.config import normalize

        return normalize(name) is None

    return _Lookups(
        settings, printer, resolver, settings.operands, find, missing=missing, unnoticed=unnoticed
    )


def _report(settings: Settings, printer: Printer, refusal: Refusal) -> bool:
    """A refusal of a removal step, as kmod reports it; True if it stops the removal."""
    if not settings.quiet:
        if refusal.stop:
            printer.message(_level(settings), refusal.message)
        else:
            printer.error(refusal.message)
    return refusal.stop


def remove_names(settings: Settings, printer: _Output, machine: Machine) -> int:
    """-r with -n or -D: the removals modprobe would make; every operand is a module."""
    from lkm.resolve import Action

    resolver = _resolver(settings, printer, machine)
    depends = settings.show_depends
    show = depends or settings.verbose
    state = _state(settings, printer, machine)
    status = 0
    lookups = _removal_lookups(settings, printer, resolver)

    class Shown(list["Action | Refusal"]):
        """Each step shown as it is decided, between the complaints that reading the kernel's
        state makes on the way (kmod's order)."""

        def append(self, step: Action | Refusal) -> None:
            nonlocal status
            super().append(step)
            if isinstance(step, Action):
                if show:
                    printer.out(step.line())
            elif _report(settings, printer, step):
                status = 1

    for _name, matches in lookups:
        for match in matches:
            resolver.removal(
                match,
                state,
                checks=not depends,
                remove_holders=settings.remove_holders,
                ignore_commands=settings.ignore_commands,
                first_time=settings.first_time,
                steps=Shown(),
            )
            if status:
                break  # the other modules of this name are left alone
        if status and not settings.all:
            return status
    return lookups.status(status)


def show_symbols(settings: Settings, printer: _Output, machine: Machine) -> int:
    """--show-modversions and --show-exports: CRC and name of each symbol of one module file.

    kmod takes the first operand only (even with -a) and reads it as a path, relative or not.
    """
    import errno

    from lkm.compress import LIBRARY_NAMES
    from lkm.errors import DecompressionError, LkmError
    from lkm.module import ModuleFile, kmod_errno

    _context(settings, printer, machine.system)[0].close()  # kmod sets libkmod up for these too
    path = settings.operands[0]
    if not os.path.exists(path):
        if not settings.quiet:
            printer.message("WARNING" if settings.all else "FATAL", f"Module {path} not found.")
        return 1
    versions = settings.mode is Mode.SHOW_MODVERSIONS
    try:
        module = ModuleFile.from_path(path)
        if versions:
            # kmod shows a name without one leading dot (as 64-bit PowerPC's ELFv1 writes them).
            lines = [f"0x{v.crc:08x}\t{v.symbol.removeprefix('.')}\n" for v in module.versions]
        else:
            # kmod reads exports as depmod does, leniently (lkm.depmod.scan).
            from lkm.depmod.scan import scan_bytes
            from lkm.text import decode as _text

            exports = scan_bytes(module.data, path=path).exports
            lines = [f"0x{crc or 0:08x}\t{_text(name)}\n" for name, crc in exports]
        code = 0 if lines else errno.ENODATA
    except DecompressionError as err:
        code = kmod_errno(err)
        library = LIBRARY_NAMES.get(err.method)
        if library and err.reason and not settings.quiet:
            # kmod names the decompressor's failure first, once.
            printer.message("ERROR", f"{library}: {err.reason}")
    except LkmError as err:
        code = kmod_errno(err)
    if code:
        if not settings.quiet:
            what = "modversions" if versions else "symbols"
            printer.message("FATAL", f"could not get {what} of {path}: {os.strerror(code)}")
        return 1
    printer.out("".join(lines))
    return 0


class Machine(NamedTuple):
    """The kernel a real run changes and the system it looks at (fakes in tests)."""

    kernel: Kernel | None = None  # None: the running kernel's system calls
    system: System = System()

    @property
    def sysfs(self) -> str:
        return self.system.sysfs

    def syscalls(self) -> Kernel:
        if self.kernel is not None:
            return self.kernel
        from lkm.kernel import SyscallKernel

        return SyscallKernel()


def load_modules(settings: Settings, printer: _Output, machine: Machine) -> int:
    """Loading for real: each name's modules with what they need, through lkm.probe."""
    from lkm.cli.common import kernel_compression
    from lkm.probe import ProbeError, ProbeFlag, insert
    from lkm.resolve import Action

    compression = kernel_compression(printer, machine.sysfs)
    resolver = _resolver(settings, printer, machine)
    names, extra = _targets(settings)
    state = _state(settings, printer, machine)
    kernel = machine.syscalls()
    flags = ProbeFlag(0)
    if settings.force_vermagic:
        flags |= ProbeFlag.FORCE_VERMAGIC
    if settings.force_modversion:
        flags |= ProbeFlag.FORCE_MODVERSION
    if settings.ignore_commands:
        flags |= ProbeFlag.IGNORE_COMMAND
    if settings.first_time:
        flags |= ProbeFlag.FAIL_ON_LOADED
    flags |= ProbeFlag.APPLY_BLACKLIST if settings.use_blacklist else ProbeFlag(0)
    flags |= ProbeFlag.APPLY_BLACKLIST_ALIAS_ONLY

    def show(action: Action) -> None:
        # Not flushed: kmod's lines wait in its buffer while an install command prints.
        if settings.verbose:
            printer.out(action.line())

    def error(text: str) -> None:
        if not settings.quiet:
            printer.error(text)

    def failed_step(err: ProbeError) -> None:
        """What kmod says of a step that failed, before it stops or (softdeps) goes on."""
        if err.path is not None and _debug(settings):
            # libkmod's own line when the kernel refuses a file, shown at -vv.
            text = f"Failed to insert module '{err.path}': {os.strerror(err.errno)}"
            printer.message("INFO", text)
        if err.command is not None:
            error(
                f"Error running install command '{err.command}' "
                f"for module {err.name}: retcode {err.status}"
            )

    status = 0
    lookups = _Lookups(settings, printer, resolver, names, resolver.lookup)
    for _name, matches in lookups:
        for match in matches:
            try:
                insert(
                    resolver,
                    match,
                    kernel=kernel,
                    state=state,
                    flags=flags,
                    extra_options=extra,
                    kernel_compression=compression,
                    on_action=show,
                    decompress_note=None if settings.quiet else printer.error,
                    on_error=error,
                    on_soft_failure=failed_step,
                )
            except ProbeError as err:
                failed_step(err)
                error(_insert_message(err, match.name))
                status = 1
                if not settings.all:
                    return status
    return lookups.status(status)


def _insert_message(err: ProbeError, target: str) -> str:
    """kmod names the module it was asked for, even when a dependency was what failed."""
    import errno

    detail = err.detail
    if err.errno == errno.ENOENT and detail == os.strerror(errno.ENOENT):
        detail = "Unknown symbol in module, or unknown parameter (see dmesg)"
    return f"could not insert '{target}': {detail}"


def remove_modules(settings: Settings, printer: _Output, machine: Machine) -> int:
    """-r for real: each module, its holders with --remove-holders, then what it used.

    What kmod reports as FATAL (a refusal, a failing remove command, a name not found) ends
    the run; with -a it is a WARNING and the next name follows.
    """
    from lkm.cli.common import kernel_compression
    from lkm.probe import RemoveError, remove
    from lkm.resolve import Action

    kernel_compression(printer, machine.sysfs)
    resolver = _resolver(settings, printer, machine)
    state = _state(settings, printer, machine)
    kernel = machine.syscalls()
    wait = None if settings.wait_msec is None else int(settings.wait_msec)
    status = 0
    refused = False

    def show(step: Action | Refusal) -> None:
        nonlocal status, refused
        if isinstance(step, Action):
            if settings.verbose:
                printer.out(step.line())
            # Unlike an install command's, a remove command's output follows kmod's line.
            printer.stdout.flush()
        elif _report(settings, printer, step):
            status, refused = 1, True

    lookups = _removal_lookups(settings, printer, resolver)
    for _name, matches in lookups:
        for match in matches:
            try:
                remove(
                    resolver,
                    match,
                    kernel=kernel,
                    state=state,
                    remove_holders=settings.remove_holders,
                    ignore_commands=settings.ignore_commands,
                    first_time=settings.first_time,
                    force=settings.force_vermagic and settings.force_modversion,
                    wait_msec=wait,
                    on_step=show,
                )
            except RemoveError as err:
                if err.command is None:
                    if not settings.quiet:
                        printer.error(str(err))
                else:
                    # Unlike a failing install command, neither the command nor its status.
                    if not settings.quiet:
                        text = f"Error running remove command for {err.name}"
                        printer.message(_level(settings), text)
                    refused = True
                status = 1
            if status:
                break
        if refused and not settings.all:
            return status
    return lookups.status(status)


def run(settings: Settings, printer: Printer, machine: Machine | None = None) -> int:
    output = printer if isinstance(printer, _Output) else _Output(printer)
    if settings.syslog:
        from lkm.cli.common import common_options

        common_options([("s", None)], output, "")
    if settings.mode is not Mode.SHOW_CONFIG and not settings.operands:
        output.error("missing parameters. See -h.")
        return 1
    status = _dispatch(settings, output, machine)
    if _debug(settings) and not output.fatal:
        output.message("INFO", f"context {id(settings):#x} released")
    return status


def _dispatch(settings: Settings, printer: _Output, machine: Machine | None) -> int:
    machine = machine or Machine()
    if settings.mode is Mode.SHOW_CONFIG:
        return show_config(settings, printer, machine)
    if settings.mode in (Mode.SHOW_MODVERSIONS, Mode.SHOW_EXPORTS):
        return show_symbols(settings, printer, machine)
    if settings.mode is Mode.REMOVE and (settings.dry_run or settings.show_depends):
        return remove_names(settings, printer, machine)
    if settings.mode is Mode.RESOLVE_ALIAS:
        return resolve_names(settings, printer, machine)
    if settings.mode is Mode.SHOW_DEPENDS or (settings.mode is Mode.INSERT and settings.dry_run):
        return show_plan(settings, printer, machine)
    if settings.mode is Mode.REMOVE:
        return remove_modules(settings, printer, machine)
    return load_modules(settings, printer, machine)


def _held_stdout() -> BinaryIO:
    """Standard output held in a buffer as C's stdio holds kmod's (a pipe or file: until exit),
    even under ``PYTHONUNBUFFERED``: what install commands print comes before it."""
    import io
    import sys

    try:
        if sys.stdout.isatty():
            return sys.stdout.buffer
        return open(sys.stdout.fileno(), "wb", closefd=False)
    except (AttributeError, io.UnsupportedOperation):
        return sys.stdout.buffer  # not a file: a test's capture, say


def main(
    args: Sequence[str],
    prog: str = PROG,
    *,
    kernel: Kernel | None = None,
    sysfs: str | None = None,
    system: System | None = None,
) -> int:
    """modprobe on ``system`` (default: the running one; ``sysfs`` replaces its ``/sys``),
    changing ``kernel`` (default: the running kernel's system calls)."""
    system = system or System()
    if sysfs is not None:
        system = system._replace(sysfs=sysfs)
    printer = Printer(prog, _held_stdout())
    try:
        parsed = parse(arguments(args, os.environ), printer)
        status = (
            parsed if isinstance(parsed, int) else run(parsed, printer, Machine(kernel, system))
        )
        printer.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (``modprobe -c | head``): stop quietly, as kmod dies of SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), printer.stdout.fileno())
        return 1
