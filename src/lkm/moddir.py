"""One kernel release's module directory and the lookups kmod makes in it.

The directory is ``<basedir>/lib/modules/<release>`` as kmod builds it (plain concatenation, so
``-b dir/`` gives ``dir//lib/...`` exactly as kmod prints it); a tree that only has the merged-/usr
layout ``<basedir>/usr/lib/modules/<release>`` is found too. Lookups read kmod's binary indexes
(``modules.*.bin``), opened lazily and kept open for the life of the object.
"""

from __future__ import annotations

import os

from lkm.errors import IndexFormatError
from lkm.names import module_name_from_path
from lkm.typing_lite import TYPE_CHECKING, NamedTuple, cached_property

if TYPE_CHECKING:
    from lkm.fileset import Opened
    from lkm.index import Index

MODULE_ROOTS = ("lib/modules", "usr/lib/modules")
# What kmod 34 takes for a module file name, plus gzip, which kmod reads when built with zlib.
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
# The indexes lookups read, opened together as one set of depmod's files.
INDEXES = (
    "modules.dep.bin",
    "modules.alias.bin",
    "modules.symbols.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.bin",
)


def running_release() -> str:
    return os.uname().release


def releases(basedir: str | None = None) -> list[str]:
    """The kernel releases with a module directory under ``basedir`` (default: /), sorted."""
    base = absolute(basedir) if basedir else ""
    found: set[str] = set()
    for root in MODULE_ROOTS:
        try:
            entries = os.scandir(f"{base}/{root}")
        except OSError:
            continue
        with entries:
            found.update(entry.name for entry in entries if entry.is_dir())
    return sorted(found)


def absolute(path: str) -> str:
    """``path`` made absolute the way kmod does it: the working directory glued in front."""
    if path.startswith("/"):
        return path
    return os.getcwd() + "/" + path


# What makes an alias a pattern (fnmatch's special characters) rather than a name.
_PATTERN = frozenset("*?[")


def normalize_name(name: str) -> str:
    """A module name as the kernel knows it: '-' is '_'."""
    return name.replace("-", "_")


def normalize_alias(alias: str) -> str:
    """An alias with '-' as '_' outside bracket expressions, where '-' means a range."""
    if "-" not in alias:
        return alias
    out = []
    in_bracket = False
    for char in alias:
        if char == "[":
            in_bracket = True
        elif char == "]":
            in_bracket = False
        out.append("_" if char == "-" and not in_bracket else char)
    return "".join(out)


def is_module_filename(path: str) -> bool:
    return path.endswith(MODULE_SUFFIXES)


class BuiltinModule(NamedTuple):
    """A module compiled into the kernel image: its name and its modules.builtin.modinfo."""

    name: str
    modinfo: tuple[tuple[str, str], ...]


class ModuleDirectory:
    """Lookups in ``<basedir>/lib/modules/<release>``; see the module docstring.

    A corrupt index raises IndexFormatError, unless ``strict`` is false: then, as kmod's tools
    do, it counts as an index without the key asked for.
    """

    def __init__(self, path: str, *, strict: bool = True) -> None:
        self.path = path
        self.strict = strict
        self._indexes: dict[str, Index | None] = {}
        # INDEXES as opened together, each taken from here when first asked for.
        self._pending: dict[str, Opened[Index]] | None = None
        # Indexes that could not be read (not strict), by name: kmod reports some of these.
        self.failures: dict[str, IndexFormatError] = {}

    @classmethod
    def for_release(
        cls, basedir: str | None = None, release: str | None = None, *, strict: bool = True
    ) -> ModuleDirectory:
        """The module directory of ``release`` (default: the running one) under ``basedir``."""
        base = absolute(basedir) if basedir else ""
        # An empty release is used as it is (kmod 34: "-S \"\"" looks in lib/modules/).
        release = running_release() if release is None else release
        candidates = [f"{base}/{root}/{release}" for root in MODULE_ROOTS]
        for candidate in candidates:
            if os.path.isdir(candidate):
                return cls(candidate, strict=strict)
        return cls(candidates[0], strict=strict)

    def close(self) -> None:
        for index in self._indexes.values():
            if index is not None:
                index.close()
        self._indexes.clear()
        for opened in (self._pending or {}).values():
            if opened.value is not None:
                opened.value.close()
        self._pending = None

    def __enter__(self) -> ModuleDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self, name: str) -> Index | None:
        """The index ``name`` (e.g. ``modules.dep.bin``), or None when it cannot be opened.

        The first one asked for opens all of ``INDEXES`` at once, as one set (``lkm.fileset``):
        a depmod committing meanwhile cannot make two lookups read different runs' files."""
        if name not in self._indexes:
            from lkm.index import Index  # paths given to modinfo need no index at all

            if self._pending is None and name in INDEXES:
                from lkm.fileset import open_set

                self._pending = open_set(self.path, INDEXES, Index.from_fd, Index.close)
            opened = (self._pending or {}).pop(name, None)
            try:
                if opened is None:
                    self._indexes[name] = Index.open(f"{self.path}/{name}")
                elif opened.error is not None:
                    raise opened.error
                else:
                    self._indexes[name] = opened.value
            except OSError:
                self._indexes[name] = None
            except IndexFormatError as err:
                if self.strict:
                    raise
                self.failures[name] = err
                self._indexes[name] = None
        return self._indexes[name]

    def _query(self, index_name: str, key: str, *, wildcard: bool = False) -> list[str]:
        index = self.index(index_name)
        if index is None:
            return []
        try:
            found = index.search_wildcard(key) if wildcard else index.lookup(key)
        except IndexFormatError:
            # Nodes are read lazily, so corruption can show up only now.
            if self.strict:
                raise
            return []
        return [value.value for value in found]

    def _lookup(self, index_name: str, key: str) -> list[str]:
        return self._query(index_name, key)

    # -- lookups -------------------------------------------------------------------------

    def module_path(self, name: str) -> str | None:
        """Absolute path of the module ``name`` from modules.dep.bin, or None."""
        entry = self.dependency_line(name)
        if entry is None:
            return None
        return self.absolute_module_path(entry[0])

    def dependency_line(self, name: str) -> tuple[str, list[str]] | None:
        """(module path, dependency paths) as modules.dep.bin stores them, or None."""
        values = self._lookup("modules.dep.bin", normalize_name(name))
        if not values:
            return None
        path, _, deps = values[0].partition(":")
        return path, deps.split()

    def absolute_module_path(self, relative: str) -> str:
        return relative if relative.startswith("/") else f"{self.path}/{relative}"

    def symbol_owners(self, symbol: str) -> list[str]:
        """Modules exporting ``symbol`` (key ``symbol:NAME`` of modules.symbols.bin)."""
        return self._lookup("modules.symbols.bin", symbol)

    def alias_owners(self, alias: str) -> list[str]:
        """Module names whose aliases (patterns of modules.alias.bin) match ``alias``."""
        return self._query("modules.alias.bin", normalize_alias(alias), wildcard=True)

    def is_builtin(self, name: str) -> bool:
        return bool(self._lookup("modules.builtin.bin", normalize_name(name)))

    def builtin_alias_owners(self, alias: str) -> list[str]:
        return self._lookup("modules.builtin.alias.bin", normalize_alias(alias))

    def builtin(self, name: str) -> BuiltinModule:
        name = normalize_name(name)
        return BuiltinModule(name, self._builtin_modinfo.get(name, ()))

    def module_names(self, prefix: str = "") -> list[str]:
        """Names of the tree's modules, files and built-ins, that start with ``prefix`` (as
        the kernel spells them, or with every '_' a '-' when ``prefix`` holds one: modprobe
        takes either), sorted; from modules.dep.bin and modules.builtin.bin."""
        dashed = "-" in prefix
        key = normalize_name(prefix)
        names: set[str] = set()
        for index_name in ("modules.dep.bin", "modules.builtin.bin"):
            index = self.index(index_name)
            if index is None:
                continue
            try:
                names.update(index.keys(key))
            except IndexFormatError:
                if self.strict:
                    raise
        return sorted(name.replace("_", "-") if dashed else name for name in names)

    def alias_names(self, prefix: str) -> list[str]:
        """The aliases of modules.alias.bin and modules.builtin.alias.bin that start with
        ``prefix`` and are names a user types (``fs-ext4``, ``platform:foo``), not patterns (a
        device's ``pci:v*d*...``, with a wildcard), spelled as :meth:`module_names` spells them;
        sorted. A prefix lookup in each index: an empty prefix gives none (thousands of names
        nobody types from scratch)."""
        if not prefix:
            return []
        dashed = "-" in prefix
        key = normalize_alias(prefix)
        names: set[str] = set()
        for index_name in ("modules.alias.bin", "modules.builtin.alias.bin"):
            index = self.index(index_name)
            if index is None:
                continue
            try:
                names.update(name for name in index.keys(key) if not _PATTERN.intersection(name))
            except IndexFormatError:
                if self.strict:
                    raise
        return sorted(name.replace("_", "-") if dashed else name for name in names)

    @cached_property
    def _builtin_modinfo(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """modules.builtin.modinfo: NUL-separated ``module.key=value`` strings."""
        try:
            with open(f"{self.path}/modules.builtin.modinfo", "rb") as stream:
                data = stream.read()
        except OSError:
            return {}
        from lkm.text import decode as _text

        found: dict[str, list[tuple[str, str]]] = {}
        for item in data.split(b"\0"):
            module, dot, rest = item.partition(b".")
            if not dot:
                continue
            key, _, value = rest.partition(b"=")
            found.setdefault(_text(module), []).append((_text(key), _text(value)))
        return {name: tuple(pairs) for name, pairs in found.items()}


__all__ = [
    "MODULE_SUFFIXES",
    "BuiltinModule",
    "IndexFormatError",
    "ModuleDirectory",
    "absolute",
    "is_module_filename",
    "module_name_from_path",
    "normalize_alias",
    "normalize_name",
    "releases",
    "running_release",
]
