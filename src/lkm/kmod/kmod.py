"""``kmod.Kmod`` of python-kmod: one module directory and its configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from lkm.errors import LkmError
from lkm.kmod.error import KmodError
from lkm.kmod.module import Context, Module
from lkm.probe import ProbeFlag

if TYPE_CHECKING:
    from lkm.kernel import Kernel
    from lkm.probe import CommandRunner
    from lkm.system import System


def _text(value: str | bytes) -> str:
    """python-kmod takes ``str`` or ``bytes`` names and encodes them as ASCII."""
    if isinstance(value, bytes):
        return value.decode("ascii", "surrogateescape")
    return value


class Kmod:
    """The context python-kmod wraps: ``mod_dir`` is the module directory itself
    (``/lib/modules/RELEASE``; default: the running kernel's).

    Keyword-only, and not in python-kmod: ``system`` (the :class:`lkm.system.System` looked
    at; default the running one), and each of its places on its own: ``config_paths``
    (modprobe's ``-C``), ``cmdline`` (the kernel command line file, None for none),
    ``procfs`` and ``sysfs``; ``kernel`` (what loads and removes; default the running
    kernel's system calls) and ``run_command`` (how install commands run).
    """

    def __init__(
        self,
        mod_dir: str | bytes | None = None,
        *,
        config_paths: Sequence[str] | None = None,
        cmdline: str | EllipsisType | None = ...,
        procfs: str | None = None,
        sysfs: str | None = None,
        kernel: Kernel | None = None,
        run_command: CommandRunner | None = None,
        system: System | None = None,
    ) -> None:
        from lkm.system import System

        system = system or System()
        self._system = system
        self._config_paths = tuple(config_paths) if config_paths is not None else None
        if self._config_paths is None:
            self._config_paths = system.modprobe_dirs
        self._cmdline = system.cmdline if isinstance(cmdline, EllipsisType) else cmdline
        self._procfs = system.procfs if procfs is None else procfs
        self._sysfs = system.sysfs if sysfs is None else sysfs
        self._kernel = kernel
        self._run_command = run_command
        self._context: Context | None = None
        self.mod_dir: str | bytes | None = None
        self.set_mod_dir(mod_dir=mod_dir)

    def set_mod_dir(self, mod_dir: str | bytes | None = None) -> None:
        """Use another module directory (and read the configuration again)."""
        from lkm.config import load_config
        from lkm.moddir import ModuleDirectory
        from lkm.resolve import Resolver

        self._cleanup()
        self.mod_dir = mod_dir
        if mod_dir:
            moddir = ModuleDirectory(os.fsdecode(mod_dir), strict=False)
        else:
            moddir = self._system.module_directory()
        try:
            config = load_config(self._config_paths, module_dir=moddir.path, cmdline=self._cmdline)
        except LkmError as err:
            raise KmodError("Could not initialize") from err
        self._context = Context(
            Resolver(moddir, config),
            procfs=self._procfs,
            sysfs=self._sysfs,
            kernel=self._kernel,
            run_command=self._run_command,
        )

    def _cleanup(self) -> None:
        if self._context is not None:
            self._context.resolver.close()
            self._context = None

    @property
    def context(self) -> Context:
        if self._context is None:
            raise KmodError("Could not initialize")
        return self._context

    def loaded(self) -> Iterator[Module]:
        """Iterate through the currently loaded modules (``/proc/modules`` order)."""
        from lkm.state import read_proc_modules

        try:
            modules = read_proc_modules(self._procfs)
        except LkmError as err:
            raise KmodError("Could not get loaded modules") from err
        for entry in modules:
            yield Module(self.context, entry.name)

    def lookup(
        self, alias_name: str | bytes, flags: int = ProbeFlag.APPLY_BLACKLIST
    ) -> Iterator[Module]:
        """Iterate through the modules ``alias_name`` stands for.

        ``flags`` is accepted and ignored, as python-kmod does: the blacklist is applied
        when loading, by :meth:`Module.insert`'s flags.
        """
        try:
            matches = self.context.resolver.lookup(_text(alias_name), paths=False)
        except LkmError as err:
            raise KmodError("Could not modprobe") from err
        for match in matches:
            yield Module(self.context, match.name, match.alias)

    def module_from_name(self, name: str | bytes) -> Module:
        """The module called ``name`` (``-`` read as ``_``), whether or not it exists."""
        from lkm.moddir import normalize_name

        text = _text(name)
        if not text:
            raise KmodError("Could not get module")
        return Module(self.context, normalize_name(text))

    def list(self) -> Iterator[tuple[str, int]]:
        """Iterate through the currently loaded modules and sizes."""
        for module in self.loaded():
            yield (module.name, module.size)

    def modprobe(self, name: str | bytes, quiet: bool = False, *args: Any, **kwargs: Any) -> None:
        """Load a module (or alias) and all modules on which it depends.

        ``quiet`` makes a name that means nothing no error; the other arguments go to
        :meth:`Module.insert` (``flags``, ``extra_options``, ...).
        """
        modules = list(self.lookup(alias_name=name))
        if not modules and not quiet:
            raise KmodError(f"Could not modprobe {_text(name)}")
        for module in modules:
            module.insert(*args, **kwargs)

    def rmmod(self, module_name: str | bytes, *args: Any, **kwargs: Any) -> None:
        """Remove a module from the kernel, e.g. ``km.rmmod("thinkpad_acpi")``."""
        self.module_from_name(name=module_name).remove(*args, **kwargs)


__all__ = ["Kmod"]
