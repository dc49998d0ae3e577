"""``lkm keys``: the certificates built into a kernel image, or the running kernel's keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option

if TYPE_CHECKING:
    from lkm.cli.output import Printer
    from lkm.keys import KernelCertificates, ProcKey
    from lkm.system import System

VERB = "keys"

OPTIONS = (
    Option(None, "kernel", has_arg=True, kind="file"),
    Option(None, "pem"),
    Option(None, "der", has_arg=True, kind="directory"),
)

USAGE = """\
Usage: {prog} [--kernel VMLINUZ] [--pem | --der DIR] [--json]

With --kernel: the X.509 certificates built into a kernel image (a bzImage compressed in any
of the kernel's formats, or an ELF vmlinux): subject, issuer, serial, key id, algorithm and
validity. Without it: the keys and keyrings the running kernel shows in /proc/keys (names and
key ids only: the kernel does not give the certificates back).

Options:
      --kernel=VMLINUZ   read the certificates built into this kernel image
      --pem              write the certificates as PEM to standard output
      --der=DIR          write each certificate to DIR/KEYID.der
"""


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm keys`` on ``system`` (default: the running one)."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse, print_json
    from lkm.keys import KeysError, kernel_certificates, proc_keys
    from lkm.system import System

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, tree=False, printer=printer)
        if isinstance(parsed, int):
            return parsed
        options = dict(parsed.options)
        if parsed.operands:
            printer.error("too many arguments provided.")
            return 1
        image = options.get("kernel")
        if image is None and ("pem" in options or "der" in options):
            printer.error("--pem and --der need --kernel: the running kernel does not give "
                          "its certificates back")  # fmt: skip
            return 1
        try:
            if image is None:
                keys = proc_keys((system or System.running()).procfs)
                if parsed.json:
                    print_json(printer, VERB, [{"kind": "proc-key", **k._asdict()} for k in keys])
                else:
                    _print_proc_keys(printer, keys)
                return 0
            found = kernel_certificates(image)
        except KeysError as err:
            printer.error(str(err))
            return 1
        if "pem" in options:
            printer.out("".join(cert.pem() for cert in found.certificates))
        elif "der" in options:
            return _write_der(printer, found, options["der"] or ".")
        elif parsed.json:
            print_json(printer, VERB, [_with_image(found)])
        else:
            _print_certificates(printer, found)
        if not found.certificates:
            printer.error(f"{image}: no certificates in this kernel image")
            return 1
        return 0
    finally:
        printer.stdout.flush()


def _with_image(found: KernelCertificates) -> dict[str, object]:
    from lkm.jsonable import to_jsonable

    return {"kind": "kernel-image", **to_jsonable(found)}


def _print_certificates(printer: Printer, found: KernelCertificates) -> None:
    stored = "uncompressed" if found.compression == "none" else found.compression
    printer.out(
        f"{found.image}: {len(found.certificates)} certificate(s), kernel stored {stored}\n"
    )
    for cert in found.certificates:
        printer.out(
            f"\nsubject:    {cert.subject}\n"
            f"issuer:     {cert.issuer}\n"
            f"serial:     {cert.serial}\n"
            f"key id:     {cert.key_id or '-'}\n"
            f"algorithm:  {cert.algorithm}"
            f"{f' (signed with {cert.signature_hash})' if cert.signature_hash else ''}\n"
            f"valid:      {cert.not_before} to {cert.not_after}\n"
            f"sha256:     {cert.sha256}\n"
        )


def _print_proc_keys(printer: Printer, keys: Sequence[ProcKey]) -> None:
    for key in keys:
        printer.out(f"{key.serial} {key.type:<10} {key.description}\n")


def _write_der(printer: Printer, found: KernelCertificates, directory: str) -> int:
    import os
    import tempfile

    for number, cert in enumerate(found.certificates):
        name = f"{cert.key_id or f'certificate-{number}'}.der"
        target = os.path.join(directory, name)
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(cert.der)
                os.replace(temporary, target)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as err:
            printer.error(f"could not write {target}: {err.strerror}")
            return 1
        printer.out(f"{target}\n")
    return 0 if found.certificates else 1
