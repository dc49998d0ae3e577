"""``rmmod``: remove modules from the kernel, like kmod 34's rmmod."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.kernel import Kernel
    from lkm.state import SysModule
    from lkm.system import System

PROG = "rmmod"

OPTIONS = (
    Option("f", "force"),
    Option("s", "syslog"),
    Option("v", "verbose"),
    Option("V", "version"),
    Option("h", "help"),
)

USAGE = """\
Usage:
\t{prog} [options] [list of modulenames]
Options:
\t-f, --force       DANGEROUS: forces a module unload and may
\t                  crash your machine
\t-s, --syslog      print to syslog, not stderr
\t-v, --verbose     enables more messages
\t-V, --version     show version
\t-h, --help        show this help
"""


def module_name(arg: str) -> str:
    """The module an argument names: a module file's name, else the text up to its first '.'.

    kmod takes the name from the file only when the path is an existing regular file; any other
    argument is cut at its first '.' whole, directories included (``/x/y/a.ko`` is ``/x/y/a``).
    """
    from lkm.moddir import module_name_from_path, normalize_name

    try:
        if stat.S_ISREG(os.stat(arg).st_mode):
            return module_name_from_path(arg)
    except OSError:
        pass
    return normalize_name(arg.split(".", 1)[0])


def main(
    args: Sequence[str],
    prog: str = PROG,
    *,
    kernel: Kernel | None = None,
    sysfs: str | None = None,
    moddir: str | None = None,
    system: System | None = None,
) -> int:
    """rmmod on ``system`` (default: the running one; ``sysfs`` replaces its ``/sys`` and
    ``moddir`` its module directory), asking ``kernel`` (default: the system calls)."""
    from lkm.cli.common import kernel_compression, parse_tool_args
    from lkm.system import System

    system = system or System()
    sysfs = system.sysfs if sysfs is None else sysfs
    moddir = system.module_dir() if moddir is None else moddir
    printer = Printer(prog)
    try:
        arguments = parse_tool_args(args, OPTIONS, printer, USAGE)
        if isinstance(arguments, int):
            return arguments
        parsed, operands = arguments
        force = any(key == "f" for key, _ in parsed)
        if not operands:
            printer.error("missing module name.")
            return 1
        kernel_compression(printer, sysfs)  # read as libkmod starts up; only its complaint shows
        remover = _Remover(printer, kernel, sysfs, moddir, force=force)
        try:
            ok = True
            for arg in operands:
                ok = remover.remove(arg) and ok
            return 0 if ok else 1
        finally:
            remover.close()
    finally:
        printer.stdout.flush()


class _Remover:
    def __init__(
        self,
        printer: Printer,
        kernel: Kernel | None,
        sysfs: str,
        moddir: str,
        *,
        force: bool,
    ) -> None:
        from lkm.moddir import ModuleDirectory

        self.printer = printer
        self._kernel = kernel
        self.sysfs = sysfs
        self.force = force
        self.moddir = ModuleDirectory(moddir, strict=False)

    def close(self) -> None:
        self.moddir.close()

    def kernel(self) -> Kernel:
        if self._kernel is None:
            from lkm.kernel import SyscallKernel

            self._kernel = SyscallKernel()
        return self._kernel

    def remove(self, arg: str) -> bool:
        """Check as kmod does (builtin, loaded, in use), then ask the kernel; False on failure."""
        from lkm.errors import LkmError
        from lkm.kernel import KernelCallError, remove_module

        printer = self.printer
        name = module_name(arg)
        # Forced, kmod asks the kernel without checking anything first.
        if not self.force and not self._removable(name):
            return False
        try:
            remove_module(self.kernel(), name, force=self.force)
        except KernelCallError as err:
            text = os.strerror(err.errno)
            printer.error(f"could not remove '{name}': {text}")
            printer.error(f"could not remove module {arg}: {text}")
            return False
        except LkmError as err:
            printer.error(str(err))
            return False
        return True

    def _removable(self, name: str) -> bool:
        from lkm.state import StateError, SysModule

        printer = self.printer
        if self.moddir.is_builtin(name):
            printer.error(f"Module {name} is builtin.")
            return False
        module = SysModule(name, self.sysfs)
        try:
            loaded = module.initstate() is not None
        except StateError as err:
            printer.error(str(err))
            loaded = False
        if not loaded:
            printer.error(f"Module {name} is not currently loaded")
            return False
        return self._unused(module)

    def _unused(self, module: SysModule) -> bool:
        import errno

        from lkm.state import StateError

        printer = self.printer
        try:
            holders = module.holders()
        except StateError as err:
            printer.error(str(err))
            holders = []
        if holders:
            printer.error(f"Module {module.name} is in use by: {' '.join(holders)}")
            return False
        try:
            refcount = module.refcount()
        except StateError as err:
            if err.errno == errno.ENOENT:
                printer.error("Module unloading is not supported")
            else:
                printer.error(str(err))
            return False
        if refcount > 0:
            printer.error(f"Module {module.name} is in use")
            return False
        return True
