"""``kmod.Module`` of python-kmod: one module, by name, with what libkmod knows of it."""

from __future__ import annotations

import collections
import errno
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lkm.errors import LkmError
from lkm.kmod.error import KmodError

if TYPE_CHECKING:
    from lkm.kernel import Kernel
    from lkm.module import ModuleFile
    from lkm.probe import CommandRunner
    from lkm.resolve import Resolver


class Context:
    """What the modules of one :class:`lkm.kmod.Kmod` share: resolver, roots and kernel."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        procfs: str,
        sysfs: str,
        kernel: Kernel | None,
        run_command: CommandRunner | None,
    ) -> None:
        from lkm.resolve import SysfsState

        self.resolver = resolver
        self.procfs = procfs
        self.sysfs = sysfs
        self.state = SysfsState(sysfs)
        self._kernel = kernel
        self.run_command = run_command

    @property
    def kernel(self) -> Kernel:
        """The injected kernel, else the running one's system calls (made on first use)."""
        if self._kernel is None:
            from lkm.kernel import SyscallKernel

            self._kernel = SyscallKernel()
        return self._kernel


class Module:
    """A module as libkmod sees one: a name, and the alias it was looked up by if any.

    Every property is read when asked for, as libkmod does: ``path``, ``options`` and the
    commands from the module directory and configuration; ``refcnt`` and ``size`` from the
    running kernel (a negative errno when it has no such module).
    """

    def __init__(self, context: Context, name: str, alias: str | None = None) -> None:
        self._context = context
        self._name = name
        self._alias = alias

    def __repr__(self) -> str:
        return f"<lkm.kmod.Module {self._name!r}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str | None:
        """The module file's absolute path from modules.dep; None if it has none."""
        return self._context.resolver.moddir.module_path(self._name)

    @property
    def options(self) -> str | None:
        """Configured options (of the name, and of the alias it was found by); None if none."""
        resolver = self._context.resolver
        if not resolver.config.options_for(self._name) and not (
            self._alias is not None and resolver.config.options_for(self._alias)
        ):
            return None
        return resolver.options(self._name, self._alias)

    @property
    def install_commands(self) -> str | None:
        return self._context.resolver.config.install_command(self._name)

    @property
    def remove_commands(self) -> str | None:
        return self._context.resolver.config.remove_command(self._name)

    @property
    def refcnt(self) -> int:
        from lkm.state import SysModule

        try:
            return SysModule(self._name, self._context.sysfs).refcount()
        except LkmError as err:
            return -getattr(err, "errno", errno.EINVAL)

    @property
    def size(self) -> int:
        """``coresize`` from sysfs, else the size ``/proc/modules`` gives; -errno on failure."""
        from lkm.state import StateError, SysModule, read_proc_modules

        try:
            coresize = SysModule(self._name, self._context.sysfs).coresize()
            if coresize is not None:
                return coresize
            for entry in read_proc_modules(self._context.procfs):
                if entry.name == self._name:
                    return entry.size
            return -errno.ENOENT
        except StateError as err:
            return 0 if err.errno == errno.EINVAL else -err.errno

    @property
    def info(self) -> collections.OrderedDict[str, str | None]:
        """The ``.modinfo`` keys and values in file order (a later duplicate key replaces the
        value, keeping the first place), then the signature's; for a builtin module, its
        modules.builtin.modinfo. KmodError when there is no file to read."""
        moddir = self._context.resolver.moddir
        info: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        path = self.path
        if path is None:
            if not moddir.is_builtin(self._name):
                raise KmodError("Could not get info")
            for key, value in moddir.builtin(self._name).modinfo:
                info[key] = value
            return info
        try:
            module = _module_file(path)
            pairs = module.modinfo
            signature = module.signature
        except LkmError as err:
            raise KmodError("Could not get info") from err
        for key, value in pairs:
            info[key] = value
        if signature is not None:
            # As modinfo prints them: libkmod itself breaks long hex values with "\n\t\t".
            info.update(signature.modinfo_fields())
        return info

    @property
    def versions(self) -> Iterator[dict[str, Any]]:
        """``{'symbol': str, 'crc': int}`` for each entry of ``__versions``, in file order."""
        path = self.path
        if path is None:
            raise KmodError("Could not get versions")
        try:
            entries = _module_file(path).versions
        except LkmError as err:
            raise KmodError("Could not get versions") from err
        return ({"symbol": entry.symbol, "crc": entry.crc} for entry in entries)

    def insert(
        self,
        flags: int = 0,
        extra_options: str | bytes | None = None,
        install_callback: Callable[..., Any] | None = None,
        data: Any = None,
        print_action_callback: Callable[..., Any] | None = None,
    ) -> None:
        """Load this module and what it needs first, as ``modprobe`` would.

        ``flags`` are libkmod's ``KMOD_PROBE_*``. The callbacks are accepted and unused, as
        in python-kmod (install commands run through ``/bin/sh``).
        """
        from lkm.kernel import UnknownCompression, read_compression
        from lkm.probe import ProbeError, insert, run_shell
        from lkm.resolve import Match, Stage

        context = self._context
        if isinstance(extra_options, bytes):
            extra_options = extra_options.decode("ascii", "surrogateescape")
        try:
            compression = read_compression(context.sysfs)
        except UnknownCompression:
            compression = None
        stage = Stage.ALIAS if self._alias is not None else Stage.MODULE
        try:
            insert(
                context.resolver,
                Match(self._name, self._alias, stage),
                kernel=context.kernel,
                state=context.state,
                flags=flags,
                extra_options=extra_options or "",
                kernel_compression=compression,
                run_command=context.run_command or run_shell,
            )
        except ProbeError as err:
            if err.errno == errno.EEXIST:
                raise KmodError("Module already loaded") from err
            raise KmodError("Could not load module") from err
        except LkmError as err:
            raise KmodError("Could not load module") from err

    def remove(self, flags: int = 0) -> None:
        """Remove this module from the kernel (``delete_module``; no dependencies, no checks).

        ``flags``: ``os.O_TRUNC`` (libkmod's KMOD_REMOVE_FORCE) forces the removal.
        """
        import os

        from lkm.kernel import remove_module

        try:
            remove_module(self._context.kernel, self._name, force=bool(flags & os.O_TRUNC))
        except LkmError as err:
            raise KmodError("Could not remove module") from err


def _module_file(path: str) -> ModuleFile:
    from lkm.module import ModuleFile

    return ModuleFile.from_path(path)


__all__ = ["Context", "Module"]
