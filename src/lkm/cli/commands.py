"""Every command lkm answers to, in one table that dispatch and ``lkm --help`` read (and that
completions and manual pages can read too).

Entry points are ``module:function`` strings, imported only when their command runs, so that
starting one tool never loads another: this module imports none of them.
"""

from __future__ import annotations

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class Kind:
    """Whose command it is. Plain strings rather than an enum: every start-up reads this table,
    and ``enum`` would be imported for it alone."""

    TOOL = "tool"  # one of kmod 34's programs: also run through a link named after it
    VERB = "verb"  # lkm's own


class Command:
    """One command. A plain class rather than a named tuple, for the same reason as ``Kind``."""

    __slots__ = ("entry", "kind", "name", "options", "summary")

    def __init__(self, name: str, summary: str, entry: str, kind: str, options: str = "") -> None:
        self.name = name
        self.summary = summary  # one line, for ``lkm --help``
        # "module:function"; the function takes the arguments, returns the exit status
        self.entry = entry
        self.kind = kind  # Kind.TOOL or Kind.VERB
        # Where its getopt table is, "module:NAME" (default: the entry's module, NAME
        # ``OPTIONS``): completions and manual pages read it there, and the command's ``--help``
        # for the words.
        self.options = options

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.entry!r})"

    @property
    def option_table(self) -> str:
        """``module:NAME`` of the command's getopt table."""
        return self.options or self.entry.partition(":")[0] + ":OPTIONS"

    def load(self) -> Callable[[Sequence[str]], int]:
        module, _, function = self.entry.partition(":")
        # __import__ with a fromlist gives the module itself; importlib would be one more import.
        main: Callable[[Sequence[str]], int] = getattr(__import__(module, fromlist=["_"]), function)
        return main


COMMANDS = (
    Command("modinfo", "show information about kernel modules", "lkm.cli.modinfo:main", Kind.TOOL),
    Command("modprobe", "load and remove modules with their dependencies",
            "lkm.cli.modprobe:main", Kind.TOOL),
    Command("depmod", "write a module tree's dependency and alias indexes",
            "lkm.cli.depmod:main", Kind.TOOL),
    Command("lsmod", "list the loaded modules", "lkm.cli.lsmod:main", Kind.TOOL),
    Command("insmod", "load one module file", "lkm.cli.insmod:main", Kind.TOOL),
    Command("rmmod", "remove one loaded module", "lkm.cli.rmmod:main", Kind.TOOL),
    Command("kmod", "kmod itself: list, static-nodes, help", "lkm.cli.kmodcmd:main", Kind.TOOL,
            "lkm.cli.kmodcmd:KMOD_OPTIONS"),
    Command("list", "list the loaded modules (kmod list)", "lkm.cli.kmodcmd:list_main", Kind.VERB,
            "lkm.cli.lsmod:OPTIONS"),
    Command("static-nodes", "the device nodes modules want created at boot (kmod static-nodes)",
            "lkm.cli.kmodcmd:static_nodes_main", Kind.VERB,
            "lkm.cli.kmodcmd:STATIC_NODES_OPTIONS"),
    Command("sandbox", "run an lkm command in a throwaway VM with a chosen kernel",
            "lkm.cli.sandbox:main", Kind.VERB),
    Command("links", "put links named after kmod's tools, starting lkm, in a directory (or "
            "take them away)", "lkm.cli.links:main", Kind.VERB),
    Command("loaded", "the loaded modules as records, or who holds whom as a tree",
            "lkm.cli.loaded:main", Kind.VERB),
    Command("closure", "the module files and firmware an initramfs needs for some modules",
            "lkm.cli.closure:main", Kind.VERB),
    Command("status", "where modules stand (loaded, built in, blacklisted, options, at boot) "
            "and whether a wanted state holds", "lkm.cli.status:main", Kind.VERB),
    Command("drivers", "each device's modalias, the modules that match it, and its driver now",
            "lkm.cli.drivers:main", Kind.VERB),
    Command("graph", "modules' dependencies as a Graphviz graph (dot, SVG or PNG)",
            "lkm.cli.graph:main", Kind.VERB),
    Command("show", "everything about modules: typed modinfo fields, file, signature, build-id, "
            "kernel state", "lkm.cli.show:main", Kind.VERB),
    Command("completion", "print the bash, zsh or fish completion script for lkm",
            "lkm.cli.completion:main", Kind.VERB),
    Command("keys", "the certificates built into a kernel image, or the running kernel's keys",
            "lkm.cli.keys:main", Kind.VERB),
    Command("sign", "append a signature to module files, as the kernel's sign-file does",
            "lkm.cli.sign:main", Kind.VERB),
    Command("audit", "what in the running kernel's modules is not as it should be: taint, "
            "files, hidden and blacklisted modules, lockdown", "lkm.cli.audit:main", Kind.VERB),
    Command("verify", "check modules' signatures as the kernel does, against given or built-in "
            "certificates", "lkm.cli.verify:main", Kind.VERB),
    Command("modules-load", "load the modules systemd-modules-load loads at boot, independent "
            "ones in parallel", "lkm.cli.modules_load:main", Kind.VERB),
)  # fmt: skip

# Commands the completion scripts call, left out of ``lkm --help``: the names they complete.
HIDDEN = (
    Command("complete-modules", "module names of a tree starting with a prefix",
            "lkm.cli.completion:modules_main", Kind.VERB),
    Command("complete-releases", "kernel releases with a module directory under a root",
            "lkm.cli.completion:releases_main", Kind.VERB),
)  # fmt: skip

BY_NAME = {command.name: command for command in COMMANDS}
HIDDEN_BY_NAME = {command.name: command for command in HIDDEN}
TOOLS = tuple(command.name for command in COMMANDS if command.kind is Kind.TOOL)
