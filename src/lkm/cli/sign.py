"""``lkm sign``: append a signature to module files, as the kernel's sign-file does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lkm.cli.getopt import Option
from lkm.sign import HASHES

if TYPE_CHECKING:
    from lkm.cli.output import Printer
    from lkm.sign import Signer

VERB = "sign"

OPTIONS = (
    Option(None, "key", has_arg=True, kind="file"),
    Option(None, "cert", has_arg=True, kind="file"),
    Option(None, "hash", has_arg=True, kind="choice", choices=tuple(HASHES)),
    Option(None, "replace"),
)

USAGE = """\
Usage: {prog} --key KEY --cert CERT [--hash HASH] [--replace] [--json] FILE...

Append a signature to each module FILE in the kernel's format, as the kernel's scripts/sign-file
does: a PKCS#7 (CMS) signature naming the certificate's issuer and serial number. A compressed
module (xz, zstd, gzip) is signed inside and compressed again the same way. Each file is
written to a temporary file beside it and renamed, keeping its mode. A key that does not match
its certificate is refused before any file is touched; a module already signed is refused
unless --replace.

Options:
      --key=KEY          PEM private key, RSA or ECDSA (a PEM holding the certificate too is
                         fine); an encrypted key takes its password from KBUILD_SIGN_PIN
      --cert=CERT        the key's X.509 certificate, PEM or DER
      --hash=HASH        sha256 (default), sha224, sha384, sha512, sha3-256, sha3-384, sha3-512
      --replace          replace a module's signature instead of refusing it
"""


def main(args: Sequence[str]) -> int:
    """``lkm sign``: 0 when every file was signed, 1 otherwise."""
    from lkm.cli.output import Printer
    from lkm.cli.verb import parse, print_json
    from lkm.errors import LkmError
    from lkm.sign import check_hash, sign_file

    printer = Printer(f"lkm {VERB}")
    try:
        parsed = parse(VERB, args, USAGE, OPTIONS, tree=False, printer=printer)
        if isinstance(parsed, int):
            return parsed
        options = dict(parsed.options)
        key, cert = options.get("key"), options.get("cert")
        if not key or not cert:
            printer.error("--key and --cert are both needed")
            return 1
        if not parsed.operands:
            printer.error("no module file given")
            return 1
        hash_ = options.get("hash") or "sha256"
        try:
            check_hash(hash_)
            signer = _signer(key, cert)
        except LkmError as err:
            printer.error(str(err))
            return 1
        records: list[object] = []
        failed = False
        for path in parsed.operands:
            try:
                done = sign_file(path, signer, hash_, replace="replace" in options)
            except LkmError as err:
                failed = True
                records.append({"file": path, "error": str(err)})
                if not parsed.json:
                    printer.error(str(err))
                continue
            records.append(done)
            if not parsed.json:
                _print(printer, done)
        if parsed.json:
            print_json(printer, VERB, records)
        return 1 if failed else 0
    finally:
        printer.stdout.flush()


def _signer(key: str, cert: str) -> Signer:
    import os

    from lkm.sign import SignError, load_signer

    contents = []
    for path in (key, cert):
        try:
            with open(path, "rb") as file:
                contents.append(file.read())
        except OSError as err:
            raise SignError(f"{path}: {err.strerror}") from err
    pin = os.environ.get("KBUILD_SIGN_PIN")
    return load_signer(
        contents[0],
        contents[1],
        password=pin.encode() if pin is not None else None,
        key_name=key,
        certificate_name=cert,
    )


def _print(printer: Printer, done: object) -> None:
    from lkm.sign import Signed

    assert isinstance(done, Signed)
    how = "signature replaced" if done.replaced else "signed"
    packed = "" if done.compression == "none" else f", {done.compression}"
    key_id = f", key id {done.key_id}" if done.key_id else ""
    printer.out(f"{done.file}: {how} ({done.hash}{packed}) by {done.signer}{key_id}\n")
