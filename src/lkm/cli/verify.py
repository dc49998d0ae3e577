"""``lkm verify``: each module's signature checked as the kernel checks it (:mod:`lkm.verify`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.system import System
    from lkm.verify import Verification

VERB = "verify"

OPTIONS = (
    Option(None, "cert", has_arg=True, kind="file"),
    Option(None, "kernel", has_arg=True, kind="file"),
)

USAGE = """\
Usage: {prog} [options] [--cert FILE]... [--kernel VMLINUZ] FILE|MODULE...
Check each module's appended signature as the kernel does before it loads the module (the
module decompressed; a detached PKCS#7 over the bytes before the signature; SHA-1, SHA-2 or
SHA-3 with RSA or ECDSA; the signer found by issuer and serial number or by key id) against
the given certificates, or those built into the kernel image (by default
/boot/vmlinuz-RELEASE under -b). Verdicts: valid, unsigned, unknown-key, unsupported,
invalid, error.
Exit status: 0 all valid; 1 some unsigned or signed by an unknown key; 2 some invalid or
unsupported; 3 an error (a module not found or unreadable, a certificate or kernel image that
cannot be read, a usage error). The worst verdict decides.

Options:
      --cert=FILE        trust the certificates in FILE, PEM or DER (may be repeated)
      --kernel=VMLINUZ   trust the certificates built into this kernel image
"""


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm verify`` on ``system`` (default: the running one)."""
    from lkm.cli.verb import parse, print_json
    from lkm.verify import VerifyError, default_kernel_image, trusted_certificates, verify

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
        if isinstance(parsed, int):
            return 3 if parsed else 0
        if not parsed.operands:
            printer.error("missing module, alias or file name.")
            printer.raw_error(f"Try '{printer.prog} --help' for more information.")
            return 3
        certs = [value or "" for key, value in parsed.options if key == "cert"]
        kernels = [value or "" for key, value in parsed.options if key == "kernel"]
        system = parsed.system(system)
        kernel = kernels[-1] if kernels else None
        try:
            if kernel is None and not certs:
                kernel = default_kernel_image(system)
                import os

                if not os.access(kernel, os.R_OK):
                    printer.error(f"cannot read {kernel}: give the certificates to trust "
                                  "with --cert or --kernel")  # fmt: skip
                    return 3
            trusted = trusted_certificates(certs, kernel)
        except VerifyError as err:
            printer.error(str(err))
            return 3
        with parsed.module_directory(system) as moddir:
            records = verify(parsed.operands, trusted, moddir)
        if parsed.json:
            print_json(printer, VERB, records)
        else:
            _text(printer, records)
        from lkm.verify import worst_exit_status

        return worst_exit_status(records)
    finally:
        printer.stdout.flush()


def _text(printer: Printer, records: Sequence[Verification]) -> None:
    for record in records:
        if record.error is not None:
            printer.error(record.error)
            continue
        line = f"{record.filename or record.query}: {record.verdict.value}"
        if record.reason:
            line += f": {record.reason}"
        printer.out(line + "\n")
        if record.signer is not None or record.serial is not None or record.key_id is not None:
            printer.out("".join(_details(record)))


def _details(record: Verification) -> list[str]:
    rows = (
        ("signer", record.signer),
        ("key id", record.key_id),
        ("serial", record.serial),
        ("hash", record.hash),
        ("algorithm", record.algorithm),
        ("certificate", record.certificate),
    )
    return [f"  {label + ':':<13}{value}\n" for label, value in rows if value is not None]
