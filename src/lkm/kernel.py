"""The kernel's module system calls, and how kmod 34 drives them to load a file.

This is the only module that makes system calls: ``finit_module``, ``init_module`` and
``delete_module`` through ctypes, numbered per architecture (glibc has no wrappers for them).
Everything else talks to a ``Kernel`` (a Protocol), so the loading logic is tested against a fake
and only ``SyscallKernel`` needs a real kernel.

How a file is loaded, as kmod 34 does it (seen with strace on kmod 34):

- first six bytes are read, which tell the compression (xz's magic is the longest); a file that
  ends sooner (empty, 1 to 5 bytes, ``/dev/null``, a magic cut short) is refused with EINVAL
  before any system call, and one that cannot be read with that read's errno (EISDIR for a
  directory, ESPIPE for a FIFO); what is not a regular file then goes to the kernel like one
  (``/dev/zero``: the kernel answers EINVAL);
- uncompressed, or compressed with the method the kernel names in ``/sys/module/compression``:
  ``finit_module(fd, params, flags)``, with ``MODULE_INIT_COMPRESSED_FILE`` for a compressed one;
- compressed otherwise: decompressed here, then ``init_module(image, params)``;
- with ``force``, the flags also ask the kernel to ignore vermagic and modversions;
- when ``finit_module`` does not exist (ENOSYS), the file is read (and decompressed) here and
  given to ``init_module`` (uncompressed: as many bytes as ``fstat`` gives, EINVAL for none);
  with ``force`` the image is stripped first (the ``vermagic=`` string blanked, ``__versions``
  no longer allocated, so the kernel does not look at it).
"""

from __future__ import annotations

import errno
import os
import struct
import sys

from lkm.enum_lite import IntFlag
from lkm.errors import LkmError
from lkm.typing_lite import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import MappingProxyType

    from lkm.compress import Compression
else:
    # types.MappingProxyType, without importing types for it
    MappingProxyType = type(type.__dict__)


class Syscalls(NamedTuple):
    init_module: int
    delete_module: int
    finit_module: int


# The system call ABI of this process (not of the kernel: a 32-bit program on a 64-bit kernel,
# such as an armhf userland on an arm64 kernel, calls through the 32-bit table) to the numbers of
# the three calls, as the kernel's UAPI headers (asm/unistd*.h) give them.
SYSCALLS = MappingProxyType(
    {
        "x86_64": Syscalls(175, 176, 313),
        "x32": Syscalls(0x40000000 + 175, 0x40000000 + 176, 0x40000000 + 313),
        "i386": Syscalls(128, 129, 350),
        # asm-generic's table, used by the newer architectures
        "generic": Syscalls(105, 106, 273),
        "arm": Syscalls(128, 129, 379),  # EABI
        "s390": Syscalls(128, 129, 344),
        "powerpc": Syscalls(128, 129, 353),
        "mips-o32": Syscalls(4000 + 128, 4000 + 129, 4000 + 348),
        "mips-n64": Syscalls(5000 + 168, 5000 + 169, 5000 + 307),
        "mips-n32": Syscalls(6000 + 168, 6000 + 169, 6000 + 312),
        "hppa": Syscalls(128, 129, 333),
        "m68k": Syscalls(128, 129, 348),
        "sh": Syscalls(128, 129, 368),
        "sparc": Syscalls(190, 222, 342),
        "alpha": Syscalls(307, 308, 507),
    }
)
_SAME_NAME = ("s390", "hppa", "m68k", "sparc", "alpha")


def syscall_abi(cpu: str, variant: str = "", pointer_size: int = 8) -> str | None:
    """The key of ``SYSCALLS`` for a process, or None if unknown.

    ``cpu`` and ``variant`` are the first and last parts of the process's multiarch triplet
    (``mips64el``, ``gnuabi64``), or ``uname -m`` and ``""`` when the triplet is unknown; then
    ``pointer_size`` tells a 32-bit process on a 64-bit kernel.
    """
    wide = pointer_size == 8
    if cpu == "x86_64":
        return "x32" if variant.endswith("x32") else "x86_64" if wide else "i386"
    if len(cpu) == 4 and cpu[0] == "i" and cpu[1] in "3456" and cpu[2:] == "86":
        return "i386"
    if cpu.startswith(("aarch64", "arm64")):
        return "generic" if wide else "arm"
    if cpu.startswith(("riscv", "loongarch")):
        return "generic"
    if cpu.startswith("arm"):
        return "arm"
    if cpu.startswith(("ppc", "powerpc")):
        return "powerpc"
    if cpu.startswith("mips"):
        if "n32" in variant:
            return "mips-n32"
        if "64" in variant or (not variant and cpu.startswith("mips64") and wide):
            return "mips-n64"
        return "mips-o32"
    if cpu.startswith("parisc"):
        return "hppa"
    if cpu.startswith("sh"):
        return "sh"
    return next((name for name in _SAME_NAME if cpu.startswith(name)), None)


def process_abi() -> tuple[str | None, str]:
    """This process's key of ``SYSCALLS`` (None if unknown), and what it was told from."""
    triplet = getattr(sys.implementation, "_multiarch", "") or ""
    if triplet:
        parts = triplet.split("-")
        return syscall_abi(parts[0], parts[-1] if len(parts) > 2 else ""), triplet
    machine = os.uname().machine
    return syscall_abi(machine, "", struct.calcsize("P")), machine


class InitFlag(IntFlag):
    """``finit_module`` flags (linux/module.h)."""

    IGNORE_MODVERSIONS = 1
    IGNORE_VERMAGIC = 2
    COMPRESSED_FILE = 4


class DeleteFlag(IntFlag):
    """``delete_module`` flags: kmod always passes NONBLOCK, and TRUNC for a forced removal."""

    NONBLOCK = os.O_NONBLOCK
    TRUNC = os.O_TRUNC


FORCE = InitFlag.IGNORE_MODVERSIONS | InitFlag.IGNORE_VERMAGIC


class KernelCallError(LkmError):
    """A module system call failed; ``errno`` is the kernel's answer."""

    def __init__(self, call: str, target: str, code: int) -> None:
        self.call = call
        self.target = target
        self.errno = code
        super().__init__(f"{call} of {target} failed: {os.strerror(code)}")


class LoadError(LkmError):
    """A module file could not be given to the kernel; ``errno`` is kmod's code for it.

    ``opened`` is False when the file itself could not be found (kmod says "could not load"
    rather than "could not insert"); ``notes`` are the lines kmod logs first, such as the
    decompressor's complaint.
    """

    def __init__(
        self, path: str, code: int, *, opened: bool = True, notes: tuple[str, ...] = ()
    ) -> None:
        self.path = path
        self.errno = code
        self.opened = opened
        self.notes = notes
        super().__init__(f"could not load {path}: {os.strerror(code)}")


class Kernel(Protocol):
    """The three module system calls; each raises KernelCallError with the kernel's errno."""

    def finit_module(self, fd: int, params: str, flags: int) -> None: ...

    def init_module(self, image: bytes, params: str) -> None: ...

    def delete_module(self, name: str, flags: int) -> None: ...


class SyscallKernel:
    """The running kernel, through ``syscall(2)``; ``abi`` (a key of ``SYSCALLS``, by default
    this process's) picks the syscall numbers."""

    def __init__(self, abi: str | None = None) -> None:
        import ctypes

        told = abi
        if abi is None:
            abi, told = process_abi()
        numbers = SYSCALLS.get(abi or "")
        if numbers is None:
            raise LkmError(f"no module system call numbers known for '{told}'")
        self.numbers = numbers
        self._ctypes = ctypes
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self._syscall.restype = ctypes.c_long

    def _call(self, what: str, target: str, *args: object) -> None:
        ctypes = self._ctypes
        ctypes.set_errno(0)
        if self._syscall(*args) != 0:
            raise KernelCallError(what, target, ctypes.get_errno())

    def finit_module(self, fd: int, params: str, flags: int) -> None:
        c = self._ctypes
        self._call(
            "finit_module",
            f"fd {fd}",
            c.c_long(self.numbers.finit_module),
            c.c_int(fd),
            c.c_char_p(os.fsencode(params)),
            c.c_int(flags),
        )

    def init_module(self, image: bytes, params: str) -> None:
        c = self._ctypes
        self._call(
            "init_module",
            f"{len(image)}-byte image",
            c.c_long(self.numbers.init_module),
            c.c_char_p(image),
            c.c_ulong(len(image)),
            c.c_char_p(os.fsencode(params)),
        )

    def delete_module(self, name: str, flags: int) -> None:
        c = self._ctypes
        self._call(
            "delete_module",
            name,
            c.c_long(self.numbers.delete_module),
            c.c_char_p(os.fsencode(name)),
            c.c_uint(flags),
        )


KERNEL_COMPRESSIONS = ("gzip", "xz", "zstd")


def read_compression(sysfs: str = "/sys") -> str | None:
    """What the kernel decompresses itself (``/sys/module/compression``: xz, zstd, gzip).

    None when the kernel decompresses nothing (no such file); raises UnknownCompression for
    a file naming something else, which kmod reports and then treats as "none". As kmod, only
    the file's first 15 bytes up to a NUL count, and they must be a name and one newline, as
    the kernel writes it ("xz\n"; "xz", " xz\n" or "xz\n\n" are unknown).
    """
    try:
        with open(f"{sysfs}/module/compression", "rb") as file:
            data = file.read(_COMPRESSION_READ)
    except OSError:
        return None
    raw = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    name, newline, rest = raw.partition("\n")
    if name not in KERNEL_COMPRESSIONS or not newline or rest:
        raise UnknownCompression(raw)
    return name


_COMPRESSION_READ = 15  # kmod's buffer for the file, less its NUL


class UnknownCompression(LkmError):
    """``/sys/module/compression`` names a method kmod does not know."""

    def __init__(self, raw: str) -> None:
        self.raw = raw  # the file's contents, newline included: kmod prints them as they are
        super().__init__(f"unknown kernel compression {raw.strip()!r}")


def _kernel_name(method: Compression) -> str:
    return "gzip" if method.value == "gzip" else method.value


def load_file(
    kernel: Kernel,
    path: str,
    params: str = "",
    *,
    force: bool | InitFlag = False,
    kernel_compression: str | None = None,
    decompress_note: Callable[[str], None] | None = None,
) -> None:
    """Load the module file ``path`` as kmod 34 does (see the module docstring).

    Raises LoadError for a file that cannot be read, KernelCallError when the kernel refuses.
    """
    from lkm.compress import Compression, detect

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise LoadError(path, err.errno or errno.EIO, opened=False) from err
    try:
        method = detect(_magic(fd, path))
        # True forces both checks; an InitFlag value picks (modprobe --force-vermagic alone).
        forced = FORCE if force is True else InitFlag(force or 0) & FORCE
        flags = forced
        in_kernel = method is Compression.NONE or _kernel_name(method) == kernel_compression
        if in_kernel:
            if method is not Compression.NONE:
                flags |= InitFlag.COMPRESSED_FILE
            try:
                kernel.finit_module(fd, params, flags)
                return
            except KernelCallError as err:
                if err.errno != errno.ENOSYS:
                    raise
        data = _read_all(fd, path) if method is not Compression.NONE else _read_sized(fd, path)
    finally:
        os.close(fd)
    image = _decompressed(data, path, decompress_note)
    if forced:
        image = strip_for_force(
            image,
            path=path,
            vermagic=bool(forced & InitFlag.IGNORE_VERMAGIC),
            modversions=bool(forced & InitFlag.IGNORE_MODVERSIONS),
        )
    kernel.init_module(image, params)


def _magic(fd: int, path: str) -> bytes:
    """The file's first ``MAGIC_SIZE`` bytes, read as kmod reads them before any system call.

    A file that ends sooner (empty, 1 to 5 bytes, ``/dev/null``) is refused with EINVAL, a
    read that fails with its errno (EISDIR for a directory, ESPIPE for a FIFO).
    """
    from lkm.compress import MAGIC_SIZE

    head = b""
    try:
        while len(head) < MAGIC_SIZE:
            chunk = os.pread(fd, MAGIC_SIZE - len(head), len(head))
            if not chunk:
                raise LoadError(path, errno.EINVAL)
            head += chunk
    except OSError as err:
        raise LoadError(path, err.errno or errno.EIO) from err
    return head


def _read_sized(fd: int, path: str) -> bytes:
    """An uncompressed file for ``init_module``: as many bytes as ``fstat`` gives, as kmod maps
    it; a size of 0 (a device such as ``/dev/zero``) is EINVAL, as kmod's mmap of it fails."""
    try:
        size = os.fstat(fd).st_size
    except OSError as err:
        raise LoadError(path, err.errno or errno.EIO) from err
    if size <= 0:
        raise LoadError(path, errno.EINVAL)
    chunks = []
    offset = 0
    try:
        while offset < size and (chunk := os.pread(fd, min(size - offset, 1 << 20), offset)):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError as err:
        raise LoadError(path, err.errno or errno.EIO) from err
    return b"".join(chunks)


def _read_all(fd: int, path: str) -> bytes:
    chunks = []
    offset = 0
    try:
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError as err:
        raise LoadError(path, err.errno or errno.EIO) from err
    return b"".join(chunks)


def _decompressed(data: bytes, path: str, note: Callable[[str], None] | None) -> bytes:
    from lkm.compress import decompress
    from lkm.errors import DecompressionError

    try:
        return decompress(data, path=path)
    except DecompressionError as err:
        if note is not None and err.reason:
            note(f"{err.method}: {err.reason}")
        raise LoadError(path, errno.EINVAL) from err


def strip_for_force(
    image: bytes, *, path: str | None = None, vermagic: bool = True, modversions: bool = True
) -> bytes:
    """The module image with its ``vermagic=`` blanked and ``__versions`` hidden, as kmod does.

    The kernel finds ``__versions`` only among allocated sections, so clearing SHF_ALLOC in its
    header hides it; the vermagic string is overwritten with NULs, which the kernel skips.
    Raises LoadError with kmod's errno (ENOEXEC: not ELF; EINVAL: broken ELF).
    """
    from lkm.elf import ElfFile
    from lkm.errors import NotElfError

    out = bytearray(image)
    try:
        elf = ElfFile(image, path=path)
        modinfo = elf.section(".modinfo") if vermagic else None
        versions = elf.section("__versions") if modversions else None
        if modinfo is not None:
            raw = bytes(elf.section_data(modinfo))
            start = 0
            for entry in raw.split(b"\0"):
                if entry.startswith(b"vermagic="):
                    at = modinfo.offset + start
                    out[at : at + len(entry)] = bytes(len(entry))
                start += len(entry) + 1
        if versions is not None:
            order = "<" if elf.byteorder == "little" else ">"
            fmt = order + ("Q" if elf.is64 else "I")
            at = elf.header.shoff + versions.number * elf.header.shentsize + 8
            struct.pack_into(fmt, out, at, versions.flags & ~_SHF_ALLOC)
    except NotElfError as err:
        raise LoadError(path or "", errno.ENOEXEC) from err
    except LkmError as err:
        raise LoadError(path or "", errno.EINVAL) from err
    return bytes(out)


_SHF_ALLOC = 2


def remove_module(kernel: Kernel, name: str, *, force: bool = False) -> None:
    """``delete_module`` as kmod calls it: never waiting, truncating the refcount if forced."""
    flags = DeleteFlag.NONBLOCK | (DeleteFlag.TRUNC if force else 0)
    kernel.delete_module(name, int(flags))
