"""What kmod 34's modinfo finds for a name, an alias or a file, as typed records.

:func:`find` answers one query with a list of records: a :class:`ModuleRecord` per module found
(its fields in file order, its merged parameters, its signature; builtin modules too), or one
:class:`NotFound`, or an :class:`Unreadable` for a module whose file cannot be read. Nothing is
printed here; ``lkm.cli.modinfo`` renders the records as kmod does.

How kmod classifies a query (black-box, kmod 34):

- Without ``-m``, a query that ends in a module extension (``.ko``, ``.ko.xz``, ...) and names a
  regular file is that file. Anything else is looked up as modprobe would without configuration:
  a module name, a ``symbol:``, an alias of modules.alias.bin, a builtin module or alias. A query
  that is no valid alias pattern (a ``[`` never closed, a ``]`` outside brackets, after ``-``
  became ``_``) is not looked up at all: kmod says "Module alias X not found.", where a lookup
  that finds nothing says "Module X not found.".
- With ``-m``: the query up to its first dot (``dummy.ko`` is dummy), looked up in
  modules.dep.bin (normalised), then as a builtin module, then as a builtin alias; nothing else
  ("Module name X not found.", with the query whole).
"""

from __future__ import annotations

import errno
import os
import stat

from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Literal, TypeAlias

    from lkm.errors import LkmError
    from lkm.moddir import ModuleDirectory
    from lkm.resolve import MissingDependency
    from lkm.signature import ModuleSignature


class Param(NamedTuple):
    """A parameter, its ``parm`` (description) and ``parmtype`` strings merged."""

    name: str
    description: str | None
    type: str | None


class ModuleRecord(NamedTuple):
    """A module modinfo shows: a file's (``filename`` set) or a builtin one's (None)."""

    query: str
    name: str
    filename: str | None
    fields: tuple[tuple[str, str], ...]  # .modinfo (or modules.builtin.modinfo), file order
    signature: ModuleSignature | None
    params: tuple[Param, ...]  # in kmod's order: newest first
    # Messages (after ``ERROR: ``) for parm/parmtype strings without a ``:``, in file order.
    param_problems: tuple[str, ...] = ()
    # The first file of the module's modules.dep line that is missing (kmod reports it).
    missing_dependency: MissingDependency | None = None

    @property
    def builtin(self) -> bool:
        return self.filename is None

    def signature_fields(self) -> tuple[tuple[str, str], ...]:
        """The signature as modinfo prints it (``sig_id`` ... ``signature``); may be empty."""
        return self.signature.modinfo_fields() if self.signature is not None else ()


# What a query that found nothing was taken for: a name or alias looked up ("module"), no valid
# alias pattern and so not looked up ("alias"), a module name only with -m ("name").
if TYPE_CHECKING:
    LookupKind: TypeAlias = Literal["module", "alias", "name"]
_KIND_WORDS = {"module": "Module", "alias": "Module alias", "name": "Module name"}


class NotFound(NamedTuple):
    query: str
    kind: LookupKind

    @property
    def message(self) -> str:
        return f"{_KIND_WORDS[self.kind]} {self.query} not found."


class Unreadable(NamedTuple):
    """A module whose file was found but cannot be read (kmod gives up on it)."""

    query: str
    name: str
    filename: str
    errno: int
    error: LkmError | None  # None: a module without a .modinfo section (ENODATA)
    missing_dependency: MissingDependency | None = None

    @property
    def message(self) -> str:
        return f"could not get modinfo from '{self.name}': {os.strerror(self.errno)}"


Record = ModuleRecord | NotFound | Unreadable


def find(
    query: str, moddir: ModuleDirectory, *, by_name: bool = False, read: bool = True
) -> list[Record]:
    """Everything modinfo shows for ``query`` in ``moddir``, one record per module found.

    ``by_name`` is ``-m``. Without ``read`` module files are not opened (their records have no
    fields): kmod shows a ``filename`` without reading the file.
    """
    from lkm.moddir import absolute, is_module_filename

    if not by_name and is_module_filename(query) and _is_regular_file(query):
        return [read_module(absolute(query), query=query, read=read)]
    if by_name:
        targets = _lookup_by_name(moddir, query)
    else:
        from lkm.config import normalize

        if normalize(query) is None:
            return [NotFound(query, "alias")]
        targets = _lookup(moddir, query)
    if not targets:
        return [NotFound(query, "name" if by_name else "module")]
    records: list[Record] = []
    for name, path in targets:
        if path is None:
            modinfo = moddir.builtin(name).modinfo
            records.append(_record(query, name, None, modinfo, None))
        else:
            record = read_module(path, name, query=query, read=read)
            records.append(record._replace(missing_dependency=_missing(moddir, name)))
    return records


def _missing(moddir: ModuleDirectory, name: str) -> MissingDependency | None:
    """What kmod reports of ``name``'s modules.dep line: its first file that is missing."""
    from lkm.resolve import Resolver

    found: list[MissingDependency] = []
    Resolver(moddir, on_missing=found.append).dependencies(name)
    return found[0] if found else None


def read_module(
    path: str, name: str | None = None, *, query: str | None = None, read: bool = True
) -> ModuleRecord | Unreadable:
    """The record of the module file ``path`` (``name``: the name it was found by)."""
    from lkm.errors import LkmError
    from lkm.module import ModuleFile, kmod_errno

    if query is None:
        query = path
    if not read:
        return ModuleRecord(query, name or _name_of(path), path, (), None, ())
    try:
        module = ModuleFile.from_path(path)
        if module.has_modinfo:
            return _record(query, name or _name_of(path), path, module.modinfo, module.signature)
        return Unreadable(query, name or _name_of(path), path, errno.ENODATA, None)
    except LkmError as err:
        return Unreadable(query, name or _name_of(path), path, kmod_errno(err), err)


def collect_params(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[Param, ...], tuple[str, ...]]:
    """Merge ``parm`` and ``parmtype`` strings per parameter, in kmod's order, and the messages
    for strings without a ``:``.

    The last description and type of a parameter win; parameters come out newest first (in
    reverse order of first appearance), as kmod lists them.
    """
    order: list[str] = []
    found: dict[str, list[str | None]] = {}
    problems = []
    for key, value in pairs:
        if key not in ("parm", "parmtype"):
            continue
        name, colon, text = value.partition(":")
        if not colon:
            problems.append(f"Found invalid \"{key}={value}\": missing ':'")
            continue
        if name not in found:
            found[name] = [None, None]
            order.append(name)
        found[name][0 if key == "parm" else 1] = text
    params = tuple(Param(name, found[name][0], found[name][1]) for name in reversed(order))
    return params, tuple(problems)


def _record(
    query: str,
    name: str,
    path: str | None,
    modinfo: tuple[tuple[str, str], ...],
    signature: ModuleSignature | None,
) -> ModuleRecord:
    params, problems = collect_params(modinfo)
    return ModuleRecord(query, name, path, modinfo, signature, params, problems)


def _name_of(path: str) -> str:
    from lkm.moddir import module_name_from_path

    return module_name_from_path(path)


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _lookup(moddir: ModuleDirectory, query: str) -> list[tuple[str, str | None]]:
    """modprobe's lookup without any configuration (modinfo reads none): each module with its
    file, or None for one without a file, shown as kmod shows a module it knows no file for:
    like a builtin one."""
    from lkm.resolve import Resolver

    return [
        (match.name, moddir.module_path(match.name))
        for match in Resolver(moddir).lookup(query, paths=False)
    ]


def _lookup_by_name(moddir: ModuleDirectory, query: str) -> list[tuple[str, str | None]]:
    from lkm.moddir import normalize_name

    # kmod takes the name up to its first dot (``dummy.ko``, ``ecb.x`` are dummy and ecb).
    name = query.split(".", 1)[0]
    path = moddir.module_path(name)
    if path is not None:
        return [(normalize_name(name), path)]
    if moddir.is_builtin(name):
        return [(normalize_name(name), None)]
    return [(owner, None) for owner in moddir.builtin_alias_owners(name)]
