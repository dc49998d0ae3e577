"""``lkm show``: everything about a module in one typed record.

:func:`show` answers a name, an alias or a module file path as modinfo finds them
(:func:`lkm.modinfo.find`, kmod 34's lookup rules) with one :class:`ModuleInfo` per module found,
or one :class:`Failure` when there is none or its file cannot be read::

    from lkm.show import show
    from lkm.system import System

    system = System.running()
    with system.module_directory() as moddir:
        for record in show("ext4", moddir, system):
            print(record.name, record.depends, record.signature, record.loaded)

A record holds every ``.modinfo`` field (``modules.builtin.modinfo`` for a built-in module),
typed: the ones below by name, every other one in ``other`` in file order, so nothing modinfo
prints is lost. The rules, each as the kernel or kmod reads the field:

- ``license``, ``description``, ``version``, ``srcversion``, ``vermagic`` and ``name``: the first
  value; a repeated field's later values stay in ``other`` (real modules repeat ``license`` and
  ``description`` when they are linked from several objects).
- ``author``, ``alias``, ``firmware``, ``import_ns``, ``weakdep``: every value, in file order.
- ``depends``: the names of every ``depends`` field, split at commas, empty ones dropped.
- ``softdep``: each value read as modprobe reads it from modules.softdep (where depmod copies
  it): words split at white space, ``pre:`` and ``post:`` choosing the list, words before either
  belonging to none.
- ``intree``, ``retpoline``, ``staging``: true when the field is there, whatever its value, as
  the kernel judges them when it loads a module; a value other than ``Y`` stays in ``other``.
- ``parm`` and ``parmtype``: merged per parameter as modinfo merges them (the last description
  and type win; newest parameter first); a string without ``:`` names no parameter and stays in
  ``other``.

The file's compression is told from its first bytes, ``file_size`` is its length on disk, the
signature and the GNU build-id are read from the decompressed module. ``loaded`` is read from the
``System``'s sysfs (and procfs, for a size sysfs does not give): None when the kernel does not
have the module, ``state="builtin"`` for a built-in one. Without a ``System`` nothing of a
kernel is read. Parts that cannot be read (a broken build-id note, an unreadable sysfs file)
leave their field empty and say why in ``problems``.
"""

from __future__ import annotations

from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.moddir import ModuleDirectory
    from lkm.module import ModuleFile
    from lkm.signature import ModuleSignature
    from lkm.system import System

__all__ = [
    "Failure",
    "Field",
    "Loaded",
    "ModuleInfo",
    "Parameter",
    "Record",
    "Signature",
    "SoftDeps",
    "show",
]


class Parameter(NamedTuple):
    """A module parameter: its ``parmtype`` and its ``parm`` description (None: not given)."""

    name: str
    type: str | None
    description: str | None


class SoftDeps(NamedTuple):
    """Modules to load before (``pre``) and after (``post``) this one, as named."""

    pre: tuple[str, ...]
    post: tuple[str, ...]


class Field(NamedTuple):
    """A ``.modinfo`` field that has no place of its own in :class:`ModuleInfo`."""

    key: str
    value: str


class Signature(NamedTuple):
    """The signature appended to a module file (nothing here verifies it)."""

    id_type: str  # "PKCS#7", "X509" or "PGP"
    signer: str  # the signer's name ("" when PKCS#7 names the key by subject key id)
    key_id: str  # lowercase hex: the certificate's serial, or the key id
    hash_algorithm: str  # e.g. "sha256", as modinfo's sig_hashalgo
    signature_algorithm: str  # e.g. "ecdsa-with-SHA256", "sha256WithRSAEncryption"
    signature: str  # the signature's bytes, lowercase hex


class Loaded(NamedTuple):
    """What the kernel says about a module it has (``/sys/module/NAME``)."""

    state: str  # "live", "coming", "going" (initstate), or "builtin"
    size: int | None  # bytes in memory (coresize; /proc/modules without it); None: unknown
    refcnt: int | None  # use count; None: unknown (a built-in module has none)
    holders: tuple[str, ...]  # modules using this one, sorted
    taint: str  # the module's taint letters, e.g. "OE"; "" when none
    parameters: dict[str, str]  # current values of the readable parameters, by name


class ModuleInfo(NamedTuple):
    """One module found for ``query``; see the module docstring for how each field is read."""

    query: str
    name: str  # the ``name`` field, else the name it was found by (or its file's)
    builtin: bool  # compiled into the kernel: no file, fields from modules.builtin.modinfo
    filename: str | None
    compression: str | None  # "none", "xz", "zstd" or "gzip"; None for a built-in module
    file_size: int | None  # bytes on disk
    license: str | None
    description: str | None
    authors: tuple[str, ...]
    version: str | None
    srcversion: str | None
    vermagic: str | None
    intree: bool
    retpoline: bool
    staging: bool
    parameters: tuple[Parameter, ...]
    aliases: tuple[str, ...]
    depends: tuple[str, ...]
    softdeps: SoftDeps
    weakdeps: tuple[str, ...]
    firmware: tuple[str, ...]
    import_ns: tuple[str, ...]
    other: tuple[Field, ...]  # every other field, in file order
    signature: Signature | None  # None: unsigned (or a signature kmod cannot read)
    build_id: str | None  # lowercase hex
    loaded: Loaded | None  # None: not in the kernel, or no System was given
    problems: tuple[str, ...]  # what could not be read, one message each


class Failure(NamedTuple):
    """A query that found no module, or a module whose file cannot be read: ``error`` is
    kmod's message (``Module foo not found.``)."""

    query: str
    error: str


Record = ModuleInfo | Failure


def show(query: str, moddir: ModuleDirectory, system: System | None = None) -> list[Record]:
    """Every module ``query`` names in ``moddir`` (a name, an alias, or a module file's path),
    each with its state in ``system``'s kernel (None: none is read)."""
    from lkm.modinfo import NotFound, find

    records: list[Record] = []
    for found in find(query, moddir, read=False):
        if isinstance(found, NotFound):
            records.append(Failure(query, found.message))
            continue
        problems = []
        if found.missing_dependency is not None:
            import os

            missing = found.missing_dependency
            problems.append(f"dependency {missing.path}: {os.strerror(missing.errno)}")
        if found.filename is None:
            info = _typed(query, found.name, found.fields)._replace(builtin=True)
        else:
            read = _read_file(query, found.name, found.filename, problems)
            if isinstance(read, Failure):
                records.append(read)
                continue
            info = read
        if system is not None:
            loaded = _loaded(info.name, info.builtin, system, problems)
            info = info._replace(loaded=loaded)
        records.append(info._replace(problems=tuple(problems)))
    return records


def _read_file(query: str, name: str, path: str, problems: list[str]) -> ModuleInfo | Failure:
    import errno

    from lkm.errors import LkmError
    from lkm.modinfo import Unreadable
    from lkm.module import ModuleFile, kmod_errno

    try:
        module = ModuleFile.from_path(path)
        if not module.has_modinfo:
            return Failure(query, Unreadable(query, name, path, errno.ENODATA, None).message)
        fields = module.modinfo
        signature = module.signature
    except LkmError as err:
        return Failure(query, Unreadable(query, name, path, kmod_errno(err), err).message)
    info = _typed(query, name, fields)
    return info._replace(
        filename=path,
        compression=module.compression.value,
        file_size=len(module.data),
        signature=_signature(signature),
        build_id=_build_id(module, problems),
    )


def _build_id(module: ModuleFile, problems: list[str]) -> str | None:
    from lkm.errors import LkmError

    try:
        build_id = module.build_id
    except LkmError as err:
        problems.append(f"build-id: {err}")
        return None
    return None if build_id is None else build_id.hex()


def _signature(signature: ModuleSignature | None) -> Signature | None:
    if signature is None:
        return None
    id_type = {0: "PGP", 1: "X509", 2: "PKCS#7"}.get(signature.id_type, str(signature.id_type))
    return Signature(
        id_type,
        signature.signer,
        signature.key_id.hex(),
        signature.hash_algo,
        signature.signature_algo,
        signature.signature.hex(),
    )


# Fields that take their first value; later ones stay in ``other``.
_SINGLE = ("license", "description", "version", "srcversion", "vermagic", "name")
# Fields that are lists of their values in file order, and the record's name for each.
_LISTS = {
    "author": "authors",
    "alias": "aliases",
    "firmware": "firmware",
    "import_ns": "import_ns",
    "weakdep": "weakdeps",
}
# Fields the kernel only looks for; their usual value.
_FLAGS = ("intree", "retpoline", "staging")


def _typed(query: str, name: str, fields: tuple[tuple[str, str], ...]) -> ModuleInfo:
    """The record of a module's ``.modinfo`` fields (no file, signature or kernel yet)."""
    from lkm.modinfo import collect_params

    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {key: [] for key in _LISTS.values()}
    flags: set[str] = set()
    depends: list[str] = []
    pre: list[str] = []
    post: list[str] = []
    other: list[Field] = []
    for key, value in fields:
        if key in _SINGLE and key not in single:
            single[key] = value
        elif key in _LISTS:
            lists[_LISTS[key]].append(value)
        elif key in _FLAGS:
            flags.add(key)
            if value != "Y":
                other.append(Field(key, value))
        elif key == "depends":
            depends.extend(d for d in value.split(",") if d)
        elif key == "softdep":
            more_pre, more_post = _softdep(value)
            pre.extend(more_pre)
            post.extend(more_post)
        elif key in ("parm", "parmtype") and ":" in value:
            pass  # merged below
        else:
            other.append(Field(key, value))
    params, _problems = collect_params(fields)
    return ModuleInfo(
        query=query,
        name=single.get("name", name),
        builtin=False,
        filename=None,
        compression=None,
        file_size=None,
        license=single.get("license"),
        description=single.get("description"),
        authors=tuple(lists["authors"]),
        version=single.get("version"),
        srcversion=single.get("srcversion"),
        vermagic=single.get("vermagic"),
        intree="intree" in flags,
        retpoline="retpoline" in flags,
        staging="staging" in flags,
        parameters=tuple(Parameter(p.name, p.type, p.description) for p in params),
        aliases=tuple(lists["aliases"]),
        depends=tuple(depends),
        softdeps=SoftDeps(tuple(pre), tuple(post)),
        weakdeps=tuple(lists["weakdeps"]),
        firmware=tuple(lists["firmware"]),
        import_ns=tuple(lists["import_ns"]),
        other=tuple(other),
        signature=None,
        build_id=None,
        loaded=None,
        problems=(),
    )


def _softdep(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A ``softdep`` value as modprobe reads it from the line depmod writes for it in
    modules.softdep (``softdep NAME VALUE``)."""
    from lkm.config import parse_config

    softdeps = parse_config(f"softdep m {value}\n", "modules.softdep").softdeps
    pre: list[str] = []
    post: list[str] = []
    for softdep in softdeps:
        pre.extend(softdep.pre)
        post.extend(softdep.post)
    return tuple(pre), tuple(post)


def _loaded(name: str, builtin: bool, system: System, problems: list[str]) -> Loaded | None:
    """``name`` as the kernel of ``system`` has it, read as libkmod reads it."""
    import os

    from lkm.moddir import normalize_name

    directory = f"{system.sysfs}/module/{normalize_name(name)}"
    if not builtin and not os.path.isdir(directory):
        return None  # what libkmod concludes too, without reading any more
    from lkm.state import StateError, SysModule

    sys_module = SysModule(normalize_name(name), system.sysfs)
    if builtin:
        return Loaded("builtin", None, None, (), "", sys_module.parameters())
    try:
        state = sys_module.initstate()
    except StateError as err:
        problems.append(str(err))
        return None
    if state is None:
        return None
    refcnt = size = None
    holders: tuple[str, ...] = ()
    try:
        refcnt = sys_module.refcount()
    except StateError as err:
        if not err.quiet:
            problems.append(str(err))
    try:
        size = sys_module.coresize()
        if size is None:  # no coresize in sysfs (older kernels): /proc/modules has it
            size = _proc_size(sys_module.name, system, problems)
    except StateError as err:
        problems.append(str(err))
    try:
        holders = tuple(sorted(sys_module.holders()))
    except StateError as err:
        problems.append(str(err))
    return Loaded(state.value, size, refcnt, holders, sys_module.taint(), sys_module.parameters())


def _proc_size(name: str, system: System, problems: list[str]) -> int | None:
    from lkm.state import StateError, read_proc_modules

    try:
        modules = read_proc_modules(system.procfs)
    except StateError as err:
        problems.append(str(err))
        return None
    return next((m.size for m in modules if m.name == name), None)
