"""The system a tool looks at, decided once: its kernel's state, its module trees, its settings.

kmod's tools read fixed places: ``/proc/modules`` and ``/proc/cmdline``, ``/sys/module``,
``/lib/modules/$(uname -r)``, the ``modprobe.d`` and ``depmod.d`` directories. A :class:`System`
names each of them; :meth:`System.running` is the real machine (what every tool uses unless told
otherwise) and :meth:`System.under` the same places below another root (an image being built,
a copy of a machine, a test's fake). It is made once, where a tool starts, and passed down, so
nothing deep inside reaches for the host (psutil's captured root, as a value).
"""

from __future__ import annotations

import os

from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.moddir import ModuleDirectory


# Where systemd-modules-load reads the modules to load at boot, highest precedence first (a
# name in a higher directory masks the same name lower down). systemd built for a split /usr
# (Debian 12's 252) reads /lib/modules-load.d too; merged-/usr systems have it as /usr/lib's.
MODULES_LOAD_DIRS = (
    "/etc/modules-load.d",
    "/run/modules-load.d",
    "/usr/local/lib/modules-load.d",
    "/usr/lib/modules-load.d",
)


class System(NamedTuple):
    """Where one system's files are; every path is used as it is (``_replace`` makes another).

    ``basedir`` prefixes ``/lib/modules`` (what ``-b``/``-d`` give when the tool has no such
    option); ``release`` is the running kernel's (None: ``uname -r`` when asked).
    ``modprobe_dirs`` and ``depmod_dirs`` are the configuration directories, highest first
    (None: kmod's five of each); ``cmdline`` is the kernel command line file (None: none is
    read). ``modules_load_dirs`` are systemd's ``modules-load.d`` directories, highest first
    (None: :data:`MODULES_LOAD_DIRS`).
    """

    procfs: str = "/proc"
    sysfs: str = "/sys"
    cmdline: str | None = "/proc/cmdline"
    basedir: str = ""
    release: str | None = None
    modprobe_dirs: tuple[str, ...] | None = None
    depmod_dirs: tuple[str, ...] | None = None
    modules_load_dirs: tuple[str, ...] | None = None

    @classmethod
    def running(cls) -> System:
        """The machine this process runs on, as kmod's tools see it."""
        return cls()

    @classmethod
    def under(cls, root: str, release: str | None = None) -> System:
        """Every place of :meth:`running` below ``root`` (``release``: default ``uname -r``)."""
        from lkm.config import DEFAULT_CONFIG_DIRS
        from lkm.depmod.config import CONFIG_DIRS as DEPMOD_CONFIG_DIRS

        root = root.rstrip("/")
        return cls(
            procfs=f"{root}/proc",
            sysfs=f"{root}/sys",
            cmdline=f"{root}/proc/cmdline",
            basedir=root,
            release=release,
            modprobe_dirs=tuple(root + d for d in DEFAULT_CONFIG_DIRS),
            depmod_dirs=tuple(root + d for d in DEPMOD_CONFIG_DIRS),
            modules_load_dirs=tuple(root + d for d in MODULES_LOAD_DIRS),
        )

    def kernel_release(self) -> str:
        """``release``, or the running kernel's."""
        return self.release if self.release is not None else os.uname().release

    def module_dir(self) -> str:
        """The running release's module directory as libkmod takes it (``/lib/modules/R``)."""
        return f"{self.basedir}/lib/modules/{self.kernel_release()}"

    def module_directory(
        self, basedir: str | None = None, release: str | None = None
    ) -> ModuleDirectory:
        """The module directory a tool's ``-b``/``-d`` and ``-S`` options name (each None:
        this system's), found as :meth:`ModuleDirectory.for_release` finds one; indexes
        that cannot be read count as missing, as kmod's tools take them."""
        from lkm.moddir import ModuleDirectory

        return ModuleDirectory.for_release(
            basedir if basedir is not None else self.basedir or None,
            release if release is not None else self.kernel_release(),
            strict=False,
        )

    def modules_load_directories(self) -> tuple[str, ...]:
        """``modules_load_dirs``, or systemd's when None."""
        dirs = self.modules_load_dirs
        return MODULES_LOAD_DIRS if dirs is None else dirs


__all__ = ["MODULES_LOAD_DIRS", "System"]
