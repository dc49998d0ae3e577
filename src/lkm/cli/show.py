"""``lkm show``: a module's fields, file, signature, build-id and kernel state (:mod:`lkm.show`)."""

from __future__ import annotations

from lkm.cli.getopt import Option
from lkm.cli.output import Printer
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lkm.show import Loaded, ModuleInfo, Record, Signature
    from lkm.system import System

VERB = "show"
OPTIONS: tuple[Option, ...] = ()

USAGE = """\
Usage: {prog} [options] MODULE|ALIAS|FILE...
Everything about each module found as modinfo finds it: its modinfo fields typed (parameters,
aliases, dependencies, soft and weak dependencies, firmware...), its file and compression, its
signature and GNU build-id, and its state in the kernel when it is loaded or built in.
With -b, the kernel's state is read from DIR/sys and DIR/proc.

Options:
"""

_WIDTH = 14  # "description: " and the values after it line up


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm show`` on ``system`` (default: the running one)."""
    from lkm.cli.verb import parse, print_json
    from lkm.show import Failure, show

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
        if isinstance(parsed, int):
            return parsed
        if not parsed.operands:
            printer.error("missing module, alias or file name.")
            printer.raw_error(f"Try '{printer.prog} --help' for more information.")
            return 1
        system = parsed.system(system)
        if parsed.basedir is not None:
            # A tree under another root is not the running kernel's: its state is that root's.
            root = parsed.basedir.rstrip("/")
            system = system._replace(procfs=f"{root}/proc", sysfs=f"{root}/sys")
        records: list[Record] = []
        with parsed.module_directory(system) as moddir:
            for operand in parsed.operands:
                records.extend(show(operand, moddir, system))
        if parsed.json:
            print_json(printer, VERB, records)
        else:
            _text(printer, records)
        return 1 if any(isinstance(r, Failure) for r in records) else 0
    finally:
        printer.stdout.flush()


def _text(printer: Printer, records: Sequence[Record]) -> None:
    from lkm.show import Failure

    first = True
    for record in records:
        if isinstance(record, Failure):
            printer.error(record.error)
            continue
        for problem in record.problems:
            printer.message("WARNING", f"{record.name}: {problem}")
        if not first:
            printer.out("\n")
        first = False
        printer.out("".join(_lines(record)))


def _row(label: str, value: object) -> str:
    text = str(value)
    return f"{label:<{_WIDTH}}{text}\n" if text else f"{label}\n"


def _line(key: str, value: object, indent: str = "") -> str:
    return _row(f"{indent}{key}:", value)


def _many(key: str, values: Sequence[str]) -> list[str]:
    """One value a line, the first after the key and the rest under it."""
    return [_row(f"{key}:" if i == 0 else "", value) for i, value in enumerate(values)]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _lines(info: ModuleInfo) -> list[str]:
    out = [_line("name", info.name)]
    if info.builtin:
        out.append(_line("builtin", "yes"))
    else:
        out += [
            _line("filename", info.filename),
            _line("compression", info.compression),
            _line("file size", info.file_size),
            _line("builtin", "no"),
        ]
    for key, value in (
        ("license", info.license),
        ("description", info.description),
        ("version", info.version),
        ("srcversion", info.srcversion),
        ("vermagic", info.vermagic),
    ):
        if value is not None:
            out.append(_line(key, value))
    out += _many("author", info.authors)
    out += [_line("intree", _yes(info.intree)), _line("retpoline", _yes(info.retpoline))]
    if info.staging:
        out.append(_line("staging", "yes"))
    out.append(_line("depends", " ".join(info.depends)))
    if info.softdeps.pre or info.softdeps.post:
        words = []
        if info.softdeps.pre:
            words += ["pre:", *info.softdeps.pre]
        if info.softdeps.post:
            words += ["post:", *info.softdeps.post]
        out.append(_line("softdeps", " ".join(words)))
    out += _many("weakdeps", info.weakdeps)
    out += _many("alias", info.aliases)
    out += _many("firmware", info.firmware)
    out += _many("import_ns", info.import_ns)
    out += [_line(field.key, field.value) for field in info.other]
    if info.signature is not None:
        out += _signature_lines(info.signature)
    elif not info.builtin:
        out.append(_line("signature", "none"))
    if info.build_id is not None:
        out.append(_line("build-id", info.build_id))
    if info.parameters:
        out.append("parameters:\n")
        for param in info.parameters:
            kind = f" ({param.type})" if param.type is not None else ""
            text = f": {param.description}" if param.description is not None else ""
            out.append(f"  {param.name}{kind}{text}\n")
    out += _loaded_lines(info.loaded)
    return out


def _signature_lines(signature: Signature) -> list[str]:
    return [
        _line("signature", signature.id_type),
        _line("signer", signature.signer, "  "),
        _line("key id", signature.key_id, "  "),
        _line("hash", signature.hash_algorithm, "  "),
        _line("algorithm", signature.signature_algorithm, "  "),
    ]


def _loaded_lines(loaded: Loaded | None) -> list[str]:
    if loaded is None:
        return [_line("loaded", "no")]
    out = [_line("loaded", loaded.state)]
    for key, value in (("size", loaded.size), ("refcnt", loaded.refcnt)):
        if value is not None:
            out.append(_line(key, value, "  "))
    if loaded.state != "builtin":
        out.append(_line("holders", " ".join(loaded.holders), "  "))
        out.append(_line("taint", loaded.taint, "  "))
    if loaded.parameters:
        out.append("  parameters:\n")
        out += [f"    {name} = {value}\n" for name, value in loaded.parameters.items()]
    return out
