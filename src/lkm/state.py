"""What the running kernel says about its modules: ``/proc/modules`` and ``/sys/module``.

Both roots are parameters (``procfs``, ``sysfs``), so tests read fake trees made on disk. The
readers keep kmod 34's edge behaviour because lsmod and rmmod print it: a value that cannot be
read becomes a negative errno in lsmod's columns, and integers are parsed as C's ``strtol``
does, followed by the check kmod makes (a number must be followed by white space).
"""

from __future__ import annotations

import errno
import os

from lkm.enum_lite import Enum
from lkm.errors import LkmError
from lkm.text import decode as _text
from lkm.typing_lite import NamedTuple

_LONG_MAX = (1 << 63) - 1
_LONG_MIN = -(1 << 63)
_SPACE = b" \t\n\v\f\r"


class ModuleState(Enum):
    """A module's state, as libkmod reports it.

    BUILTIN is libkmod's answer for a module that modules.builtin lists (``/sys`` does not
    say it: :meth:`SysModule.initstate` never returns it). A ``/sys/module/NAME`` directory
    whose ``initstate`` cannot be opened is COMING to libkmod, although a kernel shows one for
    a module built into it that has parameters: kmod's modprobe loads over it (only LIVE, or
    modules.builtin, counts as there for loading), and removal takes it as loaded.
    """

    LIVE = "live"
    COMING = "coming"
    GOING = "going"
    BUILTIN = "builtin"


class StateError(LkmError):
    """A ``/proc`` or ``/sys`` file could not be read or parsed.

    ``errno`` is kmod's code for the failure (ENOENT for a missing file, EINVAL for garbage);
    the message is kmod's line for it, or just the path and error when kmod prints nothing.
    """

    def __init__(self, message: str, *, path: str, code: int, quiet: bool = False) -> None:
        self.path = path
        self.errno = code
        # kmod reports some failures only through the value it returns (lsmod's -2 columns).
        self.quiet = quiet
        super().__init__(message)

    @property
    def strerror_text(self) -> str:
        return os.strerror(self.errno)


class ProcModule(NamedTuple):
    """One line of ``/proc/modules``: ``name size refcount users, state address (taint)``.

    Fields a short or odd line lacks are empty or zero; ``name`` is split off at the first space
    as kmod does, so a line without one keeps its newline in the name.
    """

    name: str
    size: int
    refcount: int
    users: tuple[str, ...]
    state: str
    address: int | None
    taint: str


def parse_c_long(text: bytes) -> tuple[int, int] | None:
    """C's ``strtol(text, &end, 10)``: ``(value, end)``, or None when no digit was found.

    The value saturates at the limits of a 64-bit long, as strtol does.
    """
    i = 0
    while i < len(text) and text[i] in _SPACE:
        i += 1
    sign = 1
    if i < len(text) and text[i] in b"+-":
        sign = -1 if text[i] == ord("-") else 1
        i += 1
    start = i
    while i < len(text) and 48 <= text[i] <= 57:
        i += 1
    if i == start:
        return None
    value = sign * int(text[start:i])
    return max(_LONG_MIN, min(_LONG_MAX, value)), i


def parse_sysfs_long(text: bytes) -> int | None:
    """A sysfs number as kmod accepts it: digits then white space (the newline), else None."""
    parsed = parse_c_long(text)
    if parsed is None:
        return None
    value, end = parsed
    if end >= len(text) or text[end] not in _SPACE:
        return None
    return value


def to_c_int(value: int) -> int:
    """A C ``long`` stored into an ``int``: the low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _hex(field: bytes) -> int | None:
    try:
        return int(field, 16)
    except ValueError:
        return None


def parse_proc_modules(data: bytes) -> tuple[ProcModule, ...]:
    """Parse ``/proc/modules`` (bytes) into records, in the kernel's order."""
    modules = []
    for line in data.splitlines(keepends=True):
        # Like kmod, the name ends at the first space only, not at the newline.
        name, _, rest = line.partition(b" ")
        fields = rest.rstrip(b"\n").split(b" ")
        size = parse_c_long(fields[0]) if fields else None
        count = parse_c_long(fields[1]) if len(fields) > 1 else None
        users = fields[2] if len(fields) > 2 else b"-"
        address = _hex(fields[4]) if len(fields) > 4 else None
        modules.append(
            ProcModule(
                name=_text(name),
                size=size[0] if size else 0,
                refcount=count[0] if count else 0,
                users=tuple(_text(u) for u in users.split(b",") if u and users != b"-"),
                state=_text(fields[3]) if len(fields) > 3 else "",
                address=address,
                taint=_text(fields[5]).strip("()") if len(fields) > 5 else "",
            )
        )
    return tuple(modules)


def read_proc_modules(procfs: str = "/proc") -> tuple[ProcModule, ...]:
    """The loaded modules; StateError (kmod's wording) when ``/proc/modules`` is missing."""
    path = f"{procfs}/modules"
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        code = err.errno or errno.EIO
        raise StateError(
            f"could not open {path}: {os.strerror(code)}", path=path, code=code
        ) from err
    return parse_proc_modules(data)


class SysModule:
    """``/sys/module/NAME`` of one module, read the way kmod 34 reads it."""

    def __init__(self, name: str, sysfs: str = "/sys") -> None:
        self.name = name
        self.path = f"{sysfs}/module/{name}"

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def _read(self, leaf: str) -> bytes:
        path = f"{self.path}/{leaf}"
        try:
            with open(path, "rb") as file:
                return file.read()
        except OSError as err:
            code = err.errno or errno.EIO
            raise StateError(
                f"could not open '{path}': {os.strerror(code)}", path=path, code=code, quiet=True
            ) from err

    def _open_read(self, leaf: str) -> tuple[bytes | None, OSError | None]:
        """The file's bytes, or (None, error): the error of open when it is not None, else
        read's. kmod opens and reads separately, and says different things for each (a
        directory opens fine and fails to read, with EISDIR)."""
        try:
            fd = os.open(f"{self.path}/{leaf}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            return None, err
        try:
            return os.read(fd, 4096), None
        except OSError as err:
            return b"", err
        finally:
            os.close(fd)

    def initstate(self) -> ModuleState | None:
        """The module's state; None when the kernel has no such module.

        As kmod 34 judges it: when ``initstate`` cannot be opened (for any reason), a
        directory ``/sys/module/NAME`` (symbolic links followed) is COMING, anything else
        None. A read that fails, or a value other than ``live``, ``coming`` or ``going`` and
        its newline, is a loud StateError (kmod prints it and takes the module as absent).
        """
        path = f"{self.path}/initstate"
        raw, err = self._open_read("initstate")
        if raw is None:
            return ModuleState.COMING if os.path.isdir(self.path) else None
        if err is not None:
            code = err.errno or errno.EIO
            raise StateError(
                f"could not read from '{path}': {os.strerror(code)}", path=path, code=code
            ) from err
        text = _text(raw)
        for state in (ModuleState.LIVE, ModuleState.COMING, ModuleState.GOING):
            if text == state.value + "\n":
                return state
        raise StateError(f"unknown {path}: '{text}'", path=path, code=errno.EINVAL)

    def refcount(self) -> int:
        """``refcnt`` as a C int.

        StateError: quiet when the file cannot be opened (kmod is silent; ENOENT: the
        kernel cannot unload modules), loud when it cannot be read or holds no number.
        """
        path = f"{self.path}/refcnt"
        raw, err = self._open_read("refcnt")
        if raw is None:
            assert err is not None
            code = err.errno or errno.EIO
            raise StateError(
                f"could not open '{path}': {os.strerror(code)}", path=path, code=code, quiet=True
            ) from err
        value = None if err is not None else parse_sysfs_long(raw)
        if value is None:
            code = errno.EINVAL if err is None else err.errno or errno.EIO
            raise StateError(
                f"could not read integer from '{path}': '{os.strerror(code)}'",
                path=path,
                code=code,
            )
        return to_c_int(value)

    def coresize(self) -> int | None:
        """``coresize``; None when the directory has no such file (then /proc/modules has it).

        StateError, quiet, when the module has no directory; loud for garbage.
        """
        try:
            raw = self._read("coresize")
        except StateError as err:
            if err.errno == errno.ENOENT and self.exists():
                return None
            raise
        value = parse_sysfs_long(raw)
        if value is None:
            raise StateError(
                f"failed to read coresize from {self.path}",
                path=f"{self.path}/coresize",
                code=errno.EINVAL,
            )
        return value

    def holders(self) -> list[str]:
        """The modules using this one, in directory order (kmod does not sort them)."""
        path = f"{self.path}/holders"
        try:
            return os.listdir(path)
        except OSError as err:
            code = err.errno or errno.EIO
            raise StateError(
                f"could not open '{path}': {os.strerror(code)}", path=path, code=code
            ) from err

    def taint(self) -> str:
        """The taint letters of the module (``OE``), empty when clean or unknown."""
        try:
            return _text(self._read("taint")).strip()
        except StateError:
            return ""

    def parameters(self) -> dict[str, str]:
        """Readable parameters and their values, sorted by name."""
        base = f"{self.path}/parameters"
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return {}
        values = {}
        for name in names:
            try:
                values[name] = _text(self._read(f"parameters/{name}")).removesuffix("\n")
            except StateError:
                continue
        return values


class Listed(NamedTuple):
    """A row of lsmod: values, or kmod's negative errno where one could not be read."""

    name: str
    size: int
    refcount: int
    holders: tuple[str, ...]


def listed(
    module: ProcModule, sysfs: str = "/sys", errors: list[StateError] | None = None
) -> Listed:
    """What lsmod shows for ``module``; loud read failures are appended to ``errors``."""
    sys_module = SysModule(module.name, sysfs)
    problems: list[StateError] = []
    # kmod reads (and complains about) the refcount before the size.
    try:
        refcount = sys_module.refcount()
    except StateError as err:
        problems.append(err)
        refcount = -err.errno
    try:
        coresize = sys_module.coresize()
        size = module.size if coresize is None else coresize
    except StateError as err:
        problems.append(err)
        size = 0 if err.errno == errno.EINVAL else -err.errno
    try:
        holders = tuple(sys_module.holders())
    except StateError as err:
        problems.append(err)
        holders = ()
    if errors is not None:
        errors.extend(p for p in problems if not p.quiet)
    return Listed(module.name, size, refcount, holders)
