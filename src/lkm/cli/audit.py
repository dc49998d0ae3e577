"""``lkm audit``: what in the running kernel's module state is not as it should be
(:mod:`lkm.audit`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.cli.output import Printer

if TYPE_CHECKING:
    from lkm.audit import Finding
    from lkm.system import System

VERB = "audit"
OPTIONS = (
    Option(None, "root", has_arg=True, kind="directory"),
    Option(None, "cert", has_arg=True, kind="file"),
    Option(None, "kernel", has_arg=True, kind="file"),
    Option("v", "verbose"),
)

USAGE = """\
Usage: {prog} [options]
Audit the running kernel's modules: the kernel's taint flags and each module's, decoded;
loaded modules whose file in the module tree is missing, not the one loaded (GNU build-ids
compared), unsigned, or signed in a way the kernel refuses (checked against the certificates
built into /boot/vmlinuz-RELEASE, or those given by --cert and --kernel); modules the kernel
has (/sys/module, /proc/kallsyms) that /proc/modules hides; loaded modules modprobe.d
blacklists, and modules loaded by force; whether modules can be loaded (modules_disabled),
signatures are enforced, and the lockdown mode.
One line per finding: its severity (info, notice, warning, problem, error) and what was found.

Exit status: 0 nothing found, 1 notices or warnings, 2 problems, 3 a check could not be made
(a file it needs could not be read), 4 a wrong command line.

Options:
      --root=DIR         audit the system below DIR (its proc, sys, lib/modules, modprobe.d)
      --cert=FILE        verify signatures against the certificates in FILE, PEM or DER
                         (may be repeated)
      --kernel=VMLINUZ   verify signatures against the certificates built into this image
  -v, --verbose          also list each signed module and its signer
"""

USAGE_ERROR = 4


def main(args: Sequence[str], *, system: System | None = None) -> int:
    """``lkm audit`` on ``system`` (default: the running one)."""
    printer = Printer(f"lkm {VERB}")
    try:
        return _run(args, printer, system)
    finally:
        printer.stdout.flush()


def _run(args: Sequence[str], printer: Printer, system: System | None) -> int:
    from lkm.audit import Severity, audit, exit_status
    from lkm.cli.verb import parse, print_json
    from lkm.errors import LkmError

    parsed = parse(VERB, args, USAGE, OPTIONS, printer=printer)
    if isinstance(parsed, int):
        return USAGE_ERROR if parsed else 0
    if parsed.operands:
        printer.error(f"unexpected argument '{parsed.operands[0]}'.")
        printer.raw_error(f"Try '{printer.prog} --help' for more information.")
        return USAGE_ERROR
    verbose = False
    certs: list[str] = []
    kernel = None
    for key, value in parsed.options:
        if key == "root" and value is not None:
            from lkm.system import System

            system = System.under(value)
        elif key == "cert" and value is not None:
            certs.append(value)
        elif key == "kernel" and value is not None:
            kernel = value
        elif key == "v":
            verbose = True
    system = parsed.system(system)
    try:
        certificates = _certificates(printer, system, certs, kernel)
        with parsed.module_directory(system) as moddir:
            records = audit(system, moddir, certificates=certificates)
    except LkmError as err:
        printer.error(str(err))
        return 3
    if parsed.json:
        print_json(printer, VERB, records)
    else:
        shown = [r for r in records if verbose or r.kind != "signed"]
        printer.out("".join(_line(r) for r in shown))
        worst = max(records, key=lambda r: r.severity.rank, default=None)
        if worst is None or worst.severity is Severity.INFO:
            printer.out("nothing found\n")
    return exit_status(records)


def _certificates(
    printer: Printer, system: System, certs: list[str], kernel: str | None
) -> list[bytes] | None:
    """The DER certificates signatures are verified against: those given, else the running
    kernel's image's; None (and a warning) when that image cannot be read (it is root's alone
    on most systems)."""
    import os

    from lkm.verify import default_kernel_image, trusted_certificates

    if not certs and kernel is None:
        image = default_kernel_image(system._replace(release=system.kernel_release()))
        if not os.access(image, os.R_OK):
            printer.message(
                "WARNING",
                f"signatures not verified: cannot read {image} (give --cert or --kernel)",
            )
            return None
        kernel = image
    return [certificate.der for certificate in trusted_certificates(certs, kernel)]


def _line(finding: Finding) -> str:
    return f"{finding.severity.value:<8} {finding.message}\n"
