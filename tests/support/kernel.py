"""The one fake kernel of the tests: the module system calls, recorded, doing what a test says.

lkm talks to the kernel through ``lkm.kernel.Kernel`` (finit_module, init_module,
delete_module), so a test hands modprobe, insmod, rmmod or the libkmod layer this instead of
the running kernel.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from lkm.kernel import KernelCallError


class Call(NamedTuple):
    """One system call: ``module`` is the file's module name for finit_module (its base name
    up to ``.ko``), the name for delete_module, empty for init_module (the image is in
    ``FakeKernel.images``)."""

    call: str
    module: str
    params: str
    flags: int = 0


class FakeKernel:
    """Every call recorded in ``calls``; by default each succeeds and changes nothing.

    ``every``: the errno all calls fail with (ENOSYS: a kernel without module support).
    ``fail``: an errno for a module, by name; ``fail_calls``: an errno for a call, by name.
    ``sysfs``: a fake ``/sys/module`` kept as the kernel keeps it (initstate, refcnt, holders;
    a module takes a reference on each module ``uses`` names for it), so a second load is
    EEXIST, removing a missing module ENOENT and one in use EWOULDBLOCK.
    """

    def __init__(
        self,
        *,
        every: int | None = None,
        fail: Mapping[str, int] | None = None,
        fail_calls: Mapping[str, int] | None = None,
        sysfs: Path | None = None,
        uses: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.calls: list[Call] = []
        self.images: list[bytes] = []
        self.every = every
        self.fail = dict(fail or {})
        self.fail_calls = dict(fail_calls or {})
        self.sysfs = sysfs
        self.uses = uses or {}

    def _check(self, call: str, module: str) -> None:
        code = self.fail_calls.get(call, self.fail.get(module, self.every))
        if code is not None:
            raise KernelCallError(call, module, code)

    def finit_module(self, fd: int, params: str, flags: int) -> None:
        os.fstat(fd)  # a real descriptor, as the kernel demands
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).partition(".ko")[0]
        self.calls.append(Call("finit_module", name, params, flags))
        self._check("finit_module", name)
        if self.sysfs is not None:
            self._load(name)

    def init_module(self, image: bytes, params: str) -> None:
        self.images.append(image)
        self.calls.append(Call("init_module", "", params))
        self._check("init_module", "")

    def delete_module(self, name: str, flags: int) -> None:
        self.calls.append(Call("delete_module", name, str(flags), flags))
        self._check("delete_module", name)
        if self.sysfs is not None:
            self._unload(name)

    def _load(self, name: str) -> None:
        assert self.sysfs is not None
        if (self.sysfs / name).exists():
            raise KernelCallError("finit_module", name, errno.EEXIST)
        (self.sysfs / name / "holders").mkdir(parents=True)
        (self.sysfs / name / "initstate").write_text("live\n")
        (self.sysfs / name / "refcnt").write_text("0\n")
        for used in self.uses.get(name, ()):
            (self.sysfs / used / "holders" / name).mkdir()
            self.add_ref(used, 1)

    def _unload(self, name: str) -> None:
        assert self.sysfs is not None
        if not (self.sysfs / name).exists():
            raise KernelCallError("delete_module", name, errno.ENOENT)
        if int((self.sysfs / name / "refcnt").read_text()):
            raise KernelCallError("delete_module", name, errno.EWOULDBLOCK)
        shutil.rmtree(self.sysfs / name)
        for used in self.uses.get(name, ()):
            (self.sysfs / used / "holders" / name).rmdir()
            self.add_ref(used, -1)

    def add_ref(self, name: str, count: int) -> None:
        """Someone else takes (or drops) references on a loaded module."""
        assert self.sysfs is not None
        refcnt = self.sysfs / name / "refcnt"
        refcnt.write_text(f"{int(refcnt.read_text()) + count}\n")
