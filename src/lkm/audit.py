"""``lkm audit``: what in a running kernel's module state is not as it should be.

One call reads a :class:`~lkm.system.System` (its procfs, sysfs, module tree and modprobe.d)
and returns one :class:`Finding` per thing worth knowing::

    from lkm.audit import audit, exit_status
    from lkm.system import System

    records = audit(System.running())
    for finding in records:
        print(finding.severity.value, finding.kind, finding.module, finding.message)
    status = exit_status(records)

What is looked at, and the ``kind`` of each finding:

- ``kernel-taint``: ``/proc/sys/kernel/tainted`` decoded, one finding per flag set (its bit,
  letter and meaning, as the kernel documents them), or one ``info`` when the kernel is clean.
- ``module-taint`` and ``forced-load``: each loaded module's ``/sys/module/NAME/taint``
  letters, one finding per letter; ``F`` (the module was loaded with its version checks
  forced) is a ``forced-load``.
- ``missing-file``, ``build-id-mismatch``, ``unsigned``, ``signed``: each loaded module against
  its file in the module tree (found through ``modules.dep.bin``): no file, a GNU build-id in
  the file other than the one the kernel holds (``/sys/module/NAME/notes/.note.gnu.build-id``,
  an ELF note), no appended signature (the kernel taints ``E`` for it), or (``info``) who
  signed it.
- ``bad-signature``, ``unknown-key``, ``unsupported-signature``: with ``certificates``, a
  signature :mod:`lkm.verify` judges as the kernel would: invalid, made with a key none of the
  certificates holds, or of a kind the kernel cannot check.
- ``hidden-module``: a module the kernel has (a ``/sys/module/NAME`` with an ``initstate``,
  which a built-in module lacks, or symbols tagged ``[NAME]`` in ``/proc/kallsyms``) that
  ``/proc/modules`` does not list.
- ``blacklisted``: a loaded module a ``blacklist`` line of modprobe.d names, with each place.
- ``modules-disabled``, ``sig-enforce``, ``lockdown`` (``info``): whether modules can still be
  loaded, whether the kernel refuses modules without a valid signature, the lockdown mode.
- ``unreadable``: a file that could not be read or held what no kernel writes there; the check
  it feeds is skipped and the rest goes on.

Severities rank ``info`` < ``notice`` < ``warning`` < ``problem`` < ``error``; ``error`` is a
check that could not be made at all. :func:`exit_status` maps the worst to 0 (info only), 1
(notice or warning), 2 (problem) or 3 (error).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lkm.moddir import ModuleDirectory
    from lkm.system import System

__all__ = [
    "TAINTS",
    "Finding",
    "Severity",
    "Taint",
    "audit",
    "decode_taint",
    "exit_status",
    "parse_build_id_note",
]


class Severity(enum.Enum):
    """How much a finding matters, least first."""

    INFO = "info"  # the state of things, nothing wrong
    NOTICE = "notice"  # worth knowing
    WARNING = "warning"  # something an administrator would want to look at
    PROBLEM = "problem"  # the kernel is not running what it should
    ERROR = "error"  # a check could not be made

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Finding(NamedTuple):
    """One thing found. ``details`` holds the kind's facts (letters, paths, build-ids...)."""

    severity: Severity
    kind: str
    module: str | None  # the module it is about; None: the kernel as a whole
    message: str
    details: Mapping[str, object]


class Taint(NamedTuple):
    """A taint flag as the kernel documents it (Documentation/admin-guide/tainted-kernels.rst)."""

    bit: int
    letter: str
    meaning: str
    severity: Severity


TAINTS: tuple[Taint, ...] = (
    Taint(0, "P", "proprietary module was loaded", Severity.NOTICE),
    Taint(1, "F", "module was force loaded", Severity.PROBLEM),
    Taint(2, "S", "kernel running on an out of specification system", Severity.WARNING),
    Taint(3, "R", "module was force unloaded", Severity.PROBLEM),
    Taint(4, "M", "processor reported a Machine Check Exception (MCE)", Severity.PROBLEM),
    Taint(5, "B", "bad page referenced or some unexpected page flags", Severity.PROBLEM),
    Taint(6, "U", "taint requested by userspace application", Severity.NOTICE),
    Taint(7, "D", "kernel died recently, i.e. there was an OOPS or BUG", Severity.PROBLEM),
    Taint(8, "A", "an ACPI table was overridden by user", Severity.NOTICE),
    Taint(9, "W", "kernel issued warning", Severity.WARNING),
    Taint(10, "C", "staging driver was loaded", Severity.NOTICE),
    Taint(11, "I", "workaround for bug in platform firmware applied", Severity.NOTICE),
    Taint(12, "O", "externally-built (out-of-tree) module was loaded", Severity.NOTICE),
    Taint(13, "E", "unsigned module was loaded", Severity.WARNING),
    Taint(14, "L", "soft lockup occurred", Severity.WARNING),
    Taint(15, "K", "kernel has been live patched", Severity.NOTICE),
    Taint(16, "X", "auxiliary taint, defined for and used by distros", Severity.NOTICE),
    Taint(17, "T", "kernel was built with the struct randomization plugin", Severity.INFO),
    Taint(18, "N", "an in-kernel test has been run", Severity.NOTICE),
    Taint(19, "J", "userspace used a mutating debug operation in fwctl", Severity.WARNING),
)
_BY_LETTER = {taint.letter: taint for taint in TAINTS}


def decode_taint(value: int) -> list[Taint]:
    """The flags set in a ``tainted`` value, lowest bit first; a bit the kernel does not
    document is a Taint with letter ``?``."""
    flags = []
    bit = 0
    while value >> bit:
        if (value >> bit) & 1:
            known = TAINTS[bit] if bit < len(TAINTS) else None
            flags.append(known or Taint(bit, "?", f"unknown taint bit {bit}", Severity.WARNING))
        bit += 1
    return flags


def exit_status(records: Sequence[Finding]) -> int:
    """0: nothing but info; 1: notices or warnings; 2: a problem; 3: a check not made."""
    worst = max((r.severity.rank for r in records), default=0)
    return {0: 0, 1: 1, 2: 1, 3: 2, 4: 3}[worst]


_NT_GNU_BUILD_ID = 3


def parse_build_id_note(data: bytes) -> bytes | None:
    """The build-id in the ELF notes the kernel shows in ``/sys/module/NAME/notes/
    .note.gnu.build-id`` (in its own byte order, which is this machine's); None when no GNU
    build-id note is there. ValueError: notes that run past the data."""
    import struct
    import sys

    order = "<" if sys.byteorder == "little" else ">"
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from(f"{order}III", data, offset)
        name_at = offset + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if desc_at + descsz > len(data):
            raise ValueError(f"a note of {descsz} bytes runs past the {len(data)} bytes read")
        if data[name_at : name_at + namesz] == b"GNU\0" and kind == _NT_GNU_BUILD_ID:
            return data[desc_at : desc_at + descsz]
        offset = end
    if offset != len(data) and data[offset:].strip(b"\0"):
        raise ValueError(f"{len(data) - offset} bytes after the last note are no note")
    return None


class _Audit:
    """The findings of one audit, in the order the checks run."""

    def __init__(self, system: System, certificates: Sequence[bytes] | None) -> None:
        self.system = system
        self.certificates = certificates
        self.findings: list[Finding] = []

    def add(
        self,
        severity: Severity,
        kind: str,
        message: str,
        module: str | None = None,
        **details: object,
    ) -> None:
        self.findings.append(Finding(severity, kind, module, message, details))

    def unreadable(
        self,
        path: str,
        reason: str,
        severity: Severity = Severity.WARNING,
        module: str | None = None,
    ) -> None:
        self.add(severity, "unreadable", f"{path}: {reason}", module, path=path, reason=reason)

    def read(self, path: str, severity: Severity = Severity.WARNING) -> bytes | None:
        """The file's bytes; None (and a finding) when it cannot be read."""
        import os

        try:
            with open(path, "rb") as stream:
                return stream.read()
        except OSError as err:
            self.unreadable(path, os.strerror(err.errno or 0) if err.errno else str(err), severity)
            return None


def audit(
    system: System,
    moddir: ModuleDirectory | None = None,
    *,
    certificates: Sequence[bytes] | None = None,
    signers: bool = True,
) -> list[Finding]:
    """Every finding about ``system``'s kernel and its modules, checked against ``moddir``
    (None: ``system``'s own tree, ``basedir/lib/modules/RELEASE``). ``certificates``: the
    DER certificates each module's signature is verified against as the kernel verifies it
    (:mod:`lkm.verify`); None: signatures are only read, not verified. ``signers``: a
    ``signed`` info finding for each module signed (verified, with ``certificates``)."""
    run = _Audit(system, certificates)
    _kernel_taint(run)
    loaded = _proc_modules(run)
    if loaded is not None:
        _module_taints(run, loaded)
        if moddir is None:
            with system.module_directory() as own:
                _files(run, loaded, own, signers)
        else:
            _files(run, loaded, moddir, signers)
        _hidden(run, loaded)
        _blacklisted(run, loaded)
    _switches(run)
    return run.findings


def _kernel_taint(run: _Audit) -> None:
    path = f"{run.system.procfs}/sys/kernel/tainted"
    data = run.read(path, Severity.ERROR)
    if data is None:
        return
    text = data.decode("ascii", "replace").strip()
    if not text.isdigit():
        run.unreadable(path, f"not a number: {text[:40]!r}", Severity.ERROR)
        return
    value = int(text)
    if value == 0:
        run.add(Severity.INFO, "kernel-taint", "the kernel is not tainted", value=0)
    for flag in decode_taint(value):
        run.add(
            flag.severity,
            "kernel-taint",
            f"kernel tainted {flag.letter}: {flag.meaning}",
            value=value,
            bit=flag.bit,
            letter=flag.letter,
            meaning=flag.meaning,
        )


def _proc_modules(run: _Audit) -> list[str] | None:
    """The names /proc/modules lists, in its order; None when it cannot be read."""
    from lkm.state import StateError, read_proc_modules

    try:
        return [module.name for module in read_proc_modules(run.system.procfs)]
    except StateError as err:
        import os

        run.unreadable(err.path, os.strerror(err.errno), Severity.ERROR)
        return None


def _module_taints(run: _Audit, loaded: Sequence[str]) -> None:
    import os

    for name in loaded:
        path = f"{run.system.sysfs}/module/{name}/taint"
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except FileNotFoundError:
            continue  # kernels before 4.10 have no such file: /proc/modules' letters are not read
        except OSError as err:
            run.unreadable(path, os.strerror(err.errno or 0), module=name)
            continue
        text = data.decode("ascii", "replace").strip()
        for letter in text:
            flag = _BY_LETTER.get(letter)
            if flag is None:
                run.unreadable(path, f"unknown taint letter {letter!r}", module=name)
            elif letter == "F":
                run.add(
                    flag.severity,
                    "forced-load",
                    f"{name}: loaded with its version checks forced (taint F)",
                    name,
                    letter=letter,
                    meaning=flag.meaning,
                )
            else:
                run.add(
                    flag.severity,
                    "module-taint",
                    f"{name}: taint {letter}: {flag.meaning}",
                    name,
                    letter=letter,
                    meaning=flag.meaning,
                )


def _files(run: _Audit, loaded: Sequence[str], moddir: ModuleDirectory, signers: bool) -> None:
    import os

    if not os.path.isdir(moddir.path):
        run.add(
            Severity.ERROR,
            "missing-tree",
            f"no module tree at {moddir.path}: loaded modules not compared with their files",
            tree=moddir.path,
        )
        return
    denied: list[str] = []
    for name in loaded:
        path = moddir.module_path(name)
        if path is None:
            run.add(
                Severity.WARNING,
                "missing-file",
                f"{name}: no file in the module tree {moddir.path}",
                name,
                tree=moddir.path,
            )
            continue
        _file(run, name, path, signers, denied)
    if denied:
        run.add(
            Severity.NOTICE,
            "unreadable",
            f"build-ids of {len(denied)} loaded modules not compared: "
            f"{os.strerror(13)} (only root can read them)",
            path=f"{run.system.sysfs}/module/*/notes/.note.gnu.build-id",
            reason=os.strerror(13),
            modules=denied,
        )


def _file(run: _Audit, name: str, path: str, signers: bool, denied: list[str]) -> None:
    import errno
    import os

    from lkm.errors import LkmError
    from lkm.module import ModuleFile

    try:
        module = ModuleFile.from_path(path)
        file_id = module.build_id
        signature = module.signature
    except LkmError as err:
        run.unreadable(path, str(err), module=name)
        return
    if signature is None:
        run.add(
            Severity.WARNING,
            "unsigned",
            f"{name}: {path} has no signature",
            name,
            file=path,
        )
    elif run.certificates is not None:
        _verified(run, name, path, module.raw, signers)
    elif signers:
        run.add(
            Severity.INFO,
            "signed",
            f"{name}: signed by {signature.signer or 'key ' + signature.key_id.hex()} "
            "(not verified)",
            name,
            file=path,
            signer=signature.signer,
            key_id=signature.key_id.hex(),
            hash_algorithm=signature.hash_algo,
        )
    note = f"{run.system.sysfs}/module/{name}/notes/.note.gnu.build-id"
    try:
        with open(note, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return  # the kernel shows no build-id: nothing to compare
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM):
            denied.append(name)
        else:
            run.unreadable(note, os.strerror(err.errno or 0), module=name)
        return
    try:
        loaded_id = parse_build_id_note(data)
    except ValueError as err:
        run.unreadable(note, str(err), module=name)
        return
    if loaded_id is None or file_id is None:
        if (loaded_id is None) != (file_id is None):
            missing = "the kernel's module" if loaded_id is None else "the file"
            run.add(
                Severity.WARNING,
                "build-id-mismatch",
                f"{name}: {missing} has no GNU build-id, the other has one",
                name,
                file=path,
                loaded_build_id=None if loaded_id is None else loaded_id.hex(),
                file_build_id=None if file_id is None else file_id.hex(),
            )
        return
    if loaded_id != file_id:
        run.add(
            Severity.PROBLEM,
            "build-id-mismatch",
            f"{name}: {path} is not the module loaded (build-id {file_id.hex()}, "
            f"loaded {loaded_id.hex()})",
            name,
            file=path,
            loaded_build_id=loaded_id.hex(),
            file_build_id=file_id.hex(),
        )


# What a verdict of lkm.verify other than valid or unsigned is, as a finding.
_VERDICTS = {
    "invalid": (Severity.PROBLEM, "bad-signature", "a signature the kernel refuses"),
    "unknown-key": (Severity.WARNING, "unknown-key", "signed with a key not trusted"),
    "unsupported": (Severity.WARNING, "unsupported-signature", "a signature the kernel cannot "
                    "check"),
    "error": (Severity.WARNING, "unreadable", "could not be verified"),
}  # fmt: skip


def _verified(run: _Audit, name: str, path: str, raw: bytes, signers: bool) -> None:
    """The verdict on a signed module's file against the trusted certificates."""
    from lkm.verify import verify_data

    assert run.certificates is not None
    record = verify_data(raw, run.certificates, name=name)
    verdict = record.verdict.value
    signer = record.signer or f"key {record.key_id or record.serial}"
    if verdict == "valid":
        if signers:
            run.add(
                Severity.INFO,
                "signed",
                f"{name}: signed by {signer}, verified with {record.certificate}",
                name,
                file=path,
                signer=record.signer or "",
                key_id=record.key_id or record.serial or "",
                hash_algorithm=record.hash or "",
                verdict=verdict,
                certificate=record.certificate,
            )
        return
    severity, kind, what = _VERDICTS.get(verdict, _VERDICTS["error"])
    reason = record.reason or record.error or verdict
    if kind == "unreadable":
        run.unreadable(path, reason, module=name)
        return
    run.add(
        severity,
        kind,
        f"{name}: {path}: {what} ({reason})",
        name,
        file=path,
        signer=record.signer or "",
        verdict=verdict,
        reason=reason,
    )


# /proc/kallsyms tags that name no module: BPF programs, ftrace and kprobe trampolines.
_NOT_MODULES = frozenset({"bpf"})


def _hidden(run: _Audit, loaded: Sequence[str]) -> None:
    import os

    listed = set(loaded)
    seen: dict[str, list[str]] = {}
    sysfs = f"{run.system.sysfs}/module"
    try:
        names = sorted(os.listdir(sysfs))
    except OSError as err:
        run.unreadable(sysfs, os.strerror(err.errno or 0))
        names = []
    for name in names:
        # A built-in module's directory (for its parameters) has no initstate.
        if name not in listed and os.path.lexists(f"{sysfs}/{name}/initstate"):
            seen.setdefault(name, []).append("sysfs")
    path = f"{run.system.procfs}/kallsyms"
    data = run.read(path)
    if data is not None:
        for name in sorted(_kallsyms_modules(data) - listed):
            seen.setdefault(name, []).append("kallsyms")
    if not seen:
        return
    # A module loaded or removed while this ran is no hidden one: read the list again.
    again = _proc_modules(run)
    if again is not None:
        listed |= set(again)
    for name, where in sorted(seen.items()):
        if name in listed:
            continue
        run.add(
            Severity.PROBLEM,
            "hidden-module",
            f"{name}: in {' and '.join(where)} but not in /proc/modules",
            name,
            seen_in=where,
        )


def _kallsyms_modules(data: bytes) -> set[str]:
    """The module names ``[NAME]`` tags in /proc/kallsyms (at the end of a line)."""
    names = set()
    for line in data.splitlines():
        if line.endswith(b"]"):
            start = line.rfind(b"[")
            if start > 0:
                name = line[start + 1 : -1].decode("utf-8", "surrogateescape")
                if name not in _NOT_MODULES and not name.startswith("__builtin__"):
                    names.add(name)
    return names


def _blacklisted(run: _Audit, loaded: Sequence[str]) -> None:
    from lkm.config import load_config_located
    from lkm.moddir import normalize_name

    system = run.system
    # modprobe.d and modprobe.blacklist= of the kernel command line, as modprobe reads them.
    config, origins = load_config_located(
        system.modprobe_dirs, module_dir=None, cmdline=system.cmdline
    )
    places: dict[str, list[str]] = {}
    for entry, origin in zip(config.blacklist, origins.blacklist, strict=True):
        where = "kernel command line" if origin.line is None else f"{origin.path}:{origin.line}"
        places.setdefault(normalize_name(entry), []).append(where)
    for name in loaded:
        if name in places:
            run.add(
                Severity.WARNING,
                "blacklisted",
                f"{name}: loaded although blacklisted ({', '.join(places[name])})",
                name,
                sources=places[name],
            )


def _switches(run: _Audit) -> None:
    _modules_disabled(run)
    _sig_enforce(run)
    _lockdown(run)


def _value(run: _Audit, path: str) -> str | None:
    """A one-line file's text; None (and a finding, unless the file is absent) otherwise."""
    import os

    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        run.unreadable(path, os.strerror(err.errno or 0))
        return None
    return data.decode("utf-8", "replace").strip()


def _modules_disabled(run: _Audit) -> None:
    path = f"{run.system.procfs}/sys/kernel/modules_disabled"
    value = _value(run, path)
    if value is None:
        return
    if value == "1":
        run.add(Severity.INFO, "modules-disabled", "no module can be loaded or removed", value=1)
    elif value == "0":
        run.add(Severity.INFO, "modules-disabled", "modules can be loaded", value=0)
    else:
        run.unreadable(path, f"neither 0 nor 1: {value[:40]!r}")


def _sig_enforce(run: _Audit) -> None:
    path = f"{run.system.sysfs}/module/module/parameters/sig_enforce"
    value = _value(run, path)
    if value is None:
        import os

        if not os.path.lexists(path):
            run.add(
                Severity.INFO,
                "sig-enforce",
                "the kernel does not check module signatures",
                value=None,
            )
        return
    if value == "Y":
        message = "only modules with a valid signature are loaded"
    elif value == "N":
        message = "modules without a valid signature are loaded (and taint the kernel E)"
    else:
        run.unreadable(path, f"neither Y nor N: {value[:40]!r}")
        return
    run.add(Severity.INFO, "sig-enforce", message, value=value == "Y")


def _lockdown(run: _Audit) -> None:
    import re

    path = f"{run.system.sysfs}/kernel/security/lockdown"
    value = _value(run, path)
    if value is None:
        import os

        if not os.path.lexists(path):
            run.add(
                Severity.INFO,
                "lockdown",
                "lockdown state unknown: no lockdown file (securityfs not mounted, or no "
                "lockdown in the kernel)",
                mode=None,
            )
        return
    found = re.fullmatch(r"(?:[a-z]+ )*\[([a-z]+)\](?: [a-z]+)*", value)
    if found is None:
        run.unreadable(path, f"no [mode] in {value[:60]!r}")
        return
    mode = found.group(1)
    meaning = {
        "none": "the kernel is not locked down",
        "integrity": "locked down: nothing may modify the running kernel",
        "confidentiality": "locked down: nothing may modify or read the kernel's memory",
    }.get(mode, f"lockdown mode {mode}")
    run.add(Severity.INFO, "lockdown", meaning, mode=mode)
