"""Everything an initramfs needs for some modules: their files in load order and their firmware.

::

    from lkm.closure import closure
    from lkm.config import load_config
    from lkm.moddir import ModuleDirectory

    moddir = ModuleDirectory.for_release(None, "6.12.0")
    config = load_config(module_dir=moddir.path, cmdline=None)
    for record in closure(["e1000e", "ext4"], moddir, config, softdeps=True):
        print(record)

Records come in three kinds, in this order:

- :class:`ClosureModule`, one per module, in an order that loads: every module after its
  dependencies (modprobe's order: the dependencies from the end of the modules.dep line, each
  with its pre-softdeps before it and its post-softdeps after it, then the module itself).
  ``reason`` says why it is there; a built-in module has no file and is noted as such.
- :class:`ClosureFirmware`, one per firmware name some module of the closure asks for
  (``firmware:`` fields), with the file the kernel would load, or none (missing).
- :class:`ClosureError`, one per name that means no module, and per firmware directory given
  that does not exist.

Soft dependencies (``--softdeps``) are taken as modprobe takes them: from modprobe.d's
``softdep`` lines and from ``modules.softdep`` (depmod's copy of the modules' ``softdep:``
fields), the first line matching a module counting; each name is looked up like a modprobe
argument, and one that means nothing is passed over. Weak dependencies (``--weakdeps``) come
from ``weakdep`` lines and ``modules.weakdep`` the same way. A module is listed once, so cycles
among soft dependencies end where they close.

Firmware is searched as the kernel's firmware loader searches it (``fw_path`` of
``drivers/base/firmware_loader/main.c``; its ``firmware_class.path`` parameter is not
modelled): the plain name in every directory in turn, then the name with ``.zst`` in every
directory, then with ``.xz`` (FW_LOADER_COMPRESS: "The compressed file is loaded as a fallback,
only after loading the raw file failed at first"). The default directories are the kernel's
``/lib/firmware/updates/RELEASE``, ``/lib/firmware/updates``, ``/lib/firmware/RELEASE`` and
``/lib/firmware`` under the base directory. Symbolic links are followed inside the base
directory (an absolute target starts at it, as it would in the image): each link on the way
to the file and the file finally reached are listed, so an image can hold both.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from lkm.moddir import module_name_from_path

if TYPE_CHECKING:
    from lkm.config import Config
    from lkm.moddir import ModuleDirectory
    from lkm.resolve import Resolver

# The kernel tries these in turn, each in every directory, before the next (plain first).
FIRMWARE_SUFFIXES = ("", ".zst", ".xz")
_SYMLINK_LIMIT = 40  # as the kernel's path walk (ELOOP past it)


def default_firmware_dirs(basedir: str, release: str) -> tuple[str, ...]:
    """The kernel's firmware search path for ``release``, below ``basedir``."""
    base = basedir.rstrip("/")
    return (
        f"{base}/lib/firmware/updates/{release}",
        f"{base}/lib/firmware/updates",
        f"{base}/lib/firmware/{release}",
        f"{base}/lib/firmware",
    )


class Reason(enum.Enum):
    """Why a module is in the closure."""

    REQUESTED = "requested"  # named (or found through an alias of a name) by the caller
    DEPENDENCY = "dependency"  # on a modules.dep line
    SOFTDEP_PRE = "softdep-pre"
    SOFTDEP_POST = "softdep-post"
    WEAKDEP = "weakdep"


class ClosureModule(NamedTuple):
    """One module of the closure."""

    name: str
    path: str | None  # its file (absolute); None when built in or when it has none
    builtin: bool  # compiled into the kernel: nothing to copy, but its firmware counts
    reason: Reason
    wanted_by: str | None  # the module whose dependency it is; None when requested
    firmware: tuple[str, ...]  # its firmware: fields, in file order
    error: str | None = None  # why its file (or a dependency's) could not be used
    kind: str = "module"


class ClosureFirmware(NamedTuple):
    """One firmware name and where the kernel would find it."""

    name: str  # as the firmware: field gives it, or the file a wildcard pattern matched
    modules: tuple[str, ...]  # the modules of the closure that ask for it, in closure order
    path: str | None  # the first file the kernel would try that exists; None: missing
    links: tuple[str, ...]  # symbolic links followed from ``path`` on, in order
    target: str | None  # the file finally reached (``path`` itself when it is no link)
    pattern: str | None = None  # the firmware: field, when it is a wildcard pattern
    kind: str = "firmware"

    @property
    def missing(self) -> bool:
        return self.path is None


class ClosureError(NamedTuple):
    """A name that means no module, or a firmware directory that cannot be searched."""

    name: str
    error: str
    kind: str = "error"


Record = ClosureModule | ClosureFirmware | ClosureError


def closure(
    names: Iterable[str],
    moddir: ModuleDirectory,
    config: Config | None = None,
    *,
    softdeps: bool = False,
    weakdeps: bool = False,
    firmware_dirs: Sequence[str] | None = None,
    basedir: str = "",
    release: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
    depmod_cache: bool = True,
) -> list[Record]:
    """The closure of ``names`` (module names, aliases or module paths) in ``moddir`` with
    ``config``: module records, then firmware records, then error records (see the module
    docstring). ``firmware_dirs`` replaces the kernel's default directories below ``basedir``
    (``release``: the module directory's name); symbolic links resolve inside ``basedir``.
    ``jobs``: processes reading module files (default: every core). ``cache_dir``: where
    modules' firmware fields are kept between calls (:mod:`lkm.firmware_cache`; None: no
    cache). ``depmod_cache``: take the firmware fields of the modules lkm's depmod read, and
    that have not changed since, from its cache in ``moddir`` (:mod:`lkm.depmod.cache`) when
    there is one. With neither, every module file is read; the records are the same."""
    from lkm.resolve import Resolver

    missing: dict[str, str] = {}

    def on_missing(dep: object) -> None:
        from lkm.resolve import MissingDependency

        assert isinstance(dep, MissingDependency)
        missing.setdefault(dep.module, f"dependency {dep.path}: {os.strerror(dep.errno)}")

    resolver = Resolver(moddir, config, on_missing=on_missing)
    walk = _Walk(resolver, softdeps, weakdeps)
    errors: list[ClosureError] = []
    for name in names:
        if not walk.request(name):
            errors.append(ClosureError(name, f"Module {name} not found."))
    firmware_of = _read_firmware(walk, moddir, jobs, cache_dir, depmod_cache)
    modules = [
        entry._replace(
            firmware=firmware_of.get(entry.name, ((), None))[0],
            error=firmware_of.get(entry.name, ((), None))[1] or missing.get(entry.name),
        )
        for entry in walk.listed
    ]
    if release is None:
        release = os.path.basename(moddir.path.rstrip("/"))
    if firmware_dirs is None:
        dirs: Sequence[str] = default_firmware_dirs(basedir, release)
    else:
        dirs = firmware_dirs
        for directory in dirs:
            if not os.path.isdir(directory):
                code = errno.ENOTDIR if os.path.exists(directory) else errno.ENOENT
                errors.append(
                    ClosureError(directory, f"firmware directory {directory}: {os.strerror(code)}")
                )
    wanted: dict[str, list[str]] = {}
    for module in modules:
        for firmware in module.firmware:
            by = wanted.setdefault(firmware, [])
            if module.name not in by:  # a module may name one file several times
                by.append(module.name)
    found = [
        record._replace(modules=tuple(by))
        for name, by in wanted.items()
        for record in search_firmware(name, dirs, basedir)
    ]
    return [*modules, *found, *errors]


class _Walk:
    """The modules reached from the requested names, each once, in load order."""

    def __init__(self, resolver: Resolver, softdeps: bool, weakdeps: bool) -> None:
        self.resolver = resolver
        self.softdeps = softdeps
        self.weakdeps = weakdeps
        self.listed: list[ClosureModule] = []
        self.seen: set[str] = set()

    def request(self, name: str) -> bool:
        """Add what ``name`` stands for; False when it stands for nothing."""
        from lkm.resolve import PathError

        try:
            matches = self.resolver.lookup(name)
        except PathError:
            return False
        matches = self.resolver.filter_blacklist(matches)
        if not matches:
            return False
        for match in matches:
            self.visit(match.name, match.path, Reason.REQUESTED, None)
        return True

    def visit(self, name: str, path: str | None, reason: Reason, by: str | None) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        resolver = self.resolver
        for dep in reversed(resolver.dependencies(name) or ()):
            self.visit(module_name_from_path(dep), dep, Reason.DEPENDENCY, name)
        softdep = resolver.config.softdep(name) if self.softdeps else None
        if softdep is not None:
            self._soft(softdep.pre, Reason.SOFTDEP_PRE, name)
        self.listed.append(self._module(name, path, reason, by))
        if softdep is not None:
            self._soft(softdep.post, Reason.SOFTDEP_POST, name)
        weakdep = resolver.config.weakdep(name) if self.weakdeps else None
        if weakdep is not None:
            self._soft(weakdep.names, Reason.WEAKDEP, name)

    def _soft(self, names: Sequence[str], reason: Reason, by: str) -> None:
        from lkm.resolve import PathError

        for soft in names:
            try:
                matches = self.resolver.lookup(soft)
            except PathError:
                continue  # modprobe passes over a softdep it cannot find
            for match in matches:
                self.visit(match.name, match.path, reason, by)

    def _module(self, name: str, path: str | None, reason: Reason, by: str | None) -> ClosureModule:
        moddir = self.resolver.moddir
        if path is None:
            line = moddir.dependency_line(name)
            if line is not None:
                path = moddir.absolute_module_path(line[0])
        builtin = path is None and moddir.is_builtin(name)
        return ClosureModule(name, path, builtin, reason, by, ())


def _read_firmware(
    walk: _Walk,
    moddir: ModuleDirectory,
    jobs: int | None,
    cache_dir: str | None,
    depmod_cache: bool,
) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Each listed module's firmware: fields and the error reading its file (None: read)."""
    result: dict[str, tuple[tuple[str, ...], str | None]] = {}
    unread: list[tuple[str, str]] = [(m.name, m.path) for m in walk.listed if m.path is not None]
    if depmod_cache and unread:
        unread = _from_depmod_cache(unread, moddir, result)
    cache = None
    if cache_dir is not None and unread:
        from lkm.firmware_cache import FirmwareCache

        cache = FirmwareCache(cache_dir, moddir.path)
        cached, unread = unread, []
        for name, path in cached:
            kept = cache.get(path)
            if kept is None:
                unread.append((name, path))
            else:
                result[name] = (kept, None)
    read: list[tuple[tuple[str, ...], str | None]] = []
    if unread:
        from lkm.bulk import firmware_many

        read = firmware_many([path for _, path in unread], jobs=jobs)
    for (name, path), (firmware, error) in zip(unread, read, strict=True):
        result[name] = (firmware, error)
        if cache is not None and error is None:
            cache.put(path, firmware)
    if cache is not None:
        cache.save()
    for module in walk.listed:
        if module.builtin:
            fields = moddir.builtin(module.name).modinfo
            result[module.name] = (tuple(v for k, v in fields if k == "firmware"), None)
    return result


def _from_depmod_cache(
    modules: list[tuple[str, str]],
    moddir: ModuleDirectory,
    result: dict[str, tuple[tuple[str, ...], str | None]],
) -> list[tuple[str, str]]:
    """Fill ``result`` from depmod's cache for the modules (name, path) whose file is the one
    depmod read; the others, to be read. No cache, or one that cannot be used (written by
    another lkm, damaged), serves none: depmod's next run says why."""
    path = os.path.join(moddir.path, "modules.lkm-cache.bin")  # lkm.depmod.cache.CACHE_NAME
    if not os.path.isfile(path):
        return modules  # a tree kmod's depmod indexed: lkm's depmod is not worth importing
    from lkm.depmod.cache import CacheError, file_identity, load_firmware

    try:
        table = load_firmware(path)
    except (OSError, CacheError):
        return modules
    from lkm.text import decode

    unread = []
    for name, path in modules:
        identity = file_identity(path)
        kept = table.get(identity) if identity is not None else None
        if kept is None:
            unread.append((name, path))
        else:
            result[name] = (tuple(map(decode, kept)), None)
    return unread


def search_firmware(
    name: str, dirs: Sequence[str], basedir: str = ""
) -> tuple[ClosureFirmware, ...]:
    """The files firmware ``name`` stands for: :func:`find_firmware`'s one record, or for a
    wildcard pattern (``*``, ``?``, ``[``; modules name some, such as
    ``brcm/brcmfmac*-pcie.*.bin``, for image builders: the kernel asks for exact names) one
    record for each file it matches, as glob(3) matches, in the kernel's order of directories
    and suffixes, a file matched twice listed once; a pattern matching nothing is missing."""
    if not any(c in name for c in "*?["):
        return (find_firmware(name, dirs, basedir),)
    import glob

    found: dict[str, ClosureFirmware] = {}  # by the name matched: the first one counts
    seen: set[str] = set()
    for suffix in FIRMWARE_SUFFIXES:
        for directory in dirs:
            top = directory.rstrip("/")
            for path in sorted(glob.glob(glob.escape(top) + "/" + name + suffix)):
                resolved = _resolve_in_root(basedir, path)
                matched = path[len(top) + 1 : len(path) - len(suffix)]
                if path in seen or matched in found or resolved is None:
                    continue
                if os.path.isfile(resolved[0]):
                    seen.add(path)
                    record = ClosureFirmware(matched, (), path, resolved[1], resolved[0], name)
                    found[matched] = record
    if not found:
        return (ClosureFirmware(name, (), None, (), None, name),)
    return tuple(found.values())


def find_firmware(name: str, dirs: Sequence[str], basedir: str = "") -> ClosureFirmware:
    """Where the kernel finds firmware ``name`` in ``dirs`` (see the module docstring);
    symbolic links resolve inside ``basedir``."""
    for suffix in FIRMWARE_SUFFIXES:
        for directory in dirs:
            path = f"{directory.rstrip('/')}/{name}{suffix}"
            resolved = _resolve_in_root(basedir, path)
            if resolved is None:
                continue
            target, links = resolved
            if os.path.isfile(target):
                return ClosureFirmware(name, (), path, links, target)
    return ClosureFirmware(name, (), None, (), None)


def _resolve_in_root(root: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """``path`` (below ``root``) with every symbolic link resolved as if ``root`` were ``/``:
    the host path reached and the links met at the last component on the way; None when a
    component is missing or the links loop."""
    root = root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        root = ""  # a directory given outside the base: links resolve from /
    parts = path[len(root) :].split("/")
    parts.reverse()
    resolved = ""
    links: list[str] = []
    hops = 0
    while parts:
        part = parts.pop()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved.rpartition("/")[0]
            continue
        candidate = f"{resolved}/{part}"
        host = root + candidate
        try:
            target = os.readlink(host)
        except OSError as err:
            if err.errno == errno.EINVAL:  # no link: a file or directory
                resolved = candidate
                continue
            return None
        hops += 1
        if hops > _SYMLINK_LIMIT:
            return None
        if not any(p not in ("", ".") for p in parts):
            links.append(host)  # the file itself is a link (not a directory on the way)
        if target.startswith("/"):
            resolved = ""
        parts.extend(reversed(target.split("/")))
    return root + resolved, tuple(links)


__all__ = [
    "FIRMWARE_SUFFIXES",
    "ClosureError",
    "ClosureFirmware",
    "ClosureModule",
    "Reason",
    "Record",
    "closure",
    "default_firmware_dirs",
    "find_firmware",
    "search_firmware",
]
