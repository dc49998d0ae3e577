"""Module signatures checked as the kernel checks them before it loads a module.

    >>> from lkm.keys import kernel_certificates
    >>> from lkm.verify import verify
    >>> keys = kernel_certificates("/boot/vmlinuz-6.12.117+deb13-amd64").certificates
    >>> [(r.name, r.verdict.value) for r in verify(["vfat.ko.xz"], keys)]
    [('vfat', 'valid')]

The kernel (6.12) takes a module's appended signature (``mod_verify_sig``) as a detached
PKCS#7 SignedData over the module's bytes before it, and refuses it unless:

- the struct before the magic has id type PKCS#7 and every other field zero but the length,
  and the signature fits in the file;
- the SignedData parses, its encapsulated content type is data and the content itself is
  absent (supplied detached), and the signer has no authenticatedAttributes (the kernel
  refuses them in module signatures; lkm still checks them, as CMS defines, to say whether
  the signature itself is good);
- the digest is SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 or SHA3-256/384/512 and the
  signature rsaEncryption (PKCS#1 v1.5) or ecdsa-with-* (SHA-1 was removed from the kernel's
  PKCS#7 parser in 6.7 and restored in 6.9, so 6.12 takes it; module signing itself offers
  only SHA-2 and SHA-3 from 6.7 on);
- a trusted key is found by the signer's issuer and serial number or its subject key
  identifier, and the signature checks out with it.

Decompression comes first: a compressed module is verified as the kernel sees it. Digests and
public-key operations are ``cryptography``'s; the PKCS#7 is read by :mod:`lkm.signature`.
Many modules are checked by a pool of processes (each decompresses its own files).
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from lkm.errors import LkmError

if TYPE_CHECKING:
    from lkm.certificates import Certificate
    from lkm.moddir import ModuleDirectory
    from lkm.signature import Pkcs7
    from lkm.system import System


class Verdict(enum.Enum):
    """What the kernel would make of a module's signature, best first."""

    VALID = "valid"  # signed by a trusted key, and the signature checks out
    UNSIGNED = "unsigned"  # no signature appended
    UNKNOWN_KEY = "unknown-key"  # well formed, but no given certificate is the signer's
    UNSUPPORTED = "unsupported"  # an algorithm or signature type the kernel does not take
    INVALID = "invalid"  # a signature the kernel refuses: malformed, or it does not match
    ERROR = "error"  # the module could not be found or read


# The exit status of ``lkm verify`` for each verdict; the worst one counts.
EXIT_STATUS = {
    Verdict.VALID: 0,
    Verdict.UNSIGNED: 1,
    Verdict.UNKNOWN_KEY: 1,
    Verdict.UNSUPPORTED: 2,
    Verdict.INVALID: 2,
    Verdict.ERROR: 3,
}


class Verification(NamedTuple):
    """One module's signature and the verdict on it."""

    query: str  # the operand: a file, a module name or an alias
    name: str | None  # the module's name (None: the query found none)
    filename: str | None
    verdict: Verdict
    reason: str | None  # why it is not valid (None when valid or unsigned)
    signer: str | None  # the signer's name as modinfo shows it
    key_id: str | None  # subjectKeyIdentifier (the signer's, or the matching certificate's)
    serial: str | None  # the signer's certificate serial number, lowercase hex
    hash: str | None  # the digest algorithm, e.g. "sha256"
    algorithm: str | None  # the signature algorithm, e.g. "rsaEncryption", "ecdsa-with-SHA384"
    certificate: str | None  # the subject of the trusted certificate that matched
    error: str | None = None  # verdict error: the message, in kmod's words where kmod has one

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]


class VerifyError(LkmError):
    """Certificates or a kernel image that cannot be read to verify against."""


def worst_exit_status(records: Sequence[Verification]) -> int:
    """The exit status the worst verdict among ``records`` gives (0 for none)."""
    return max((record.exit_status for record in records), default=0)


def default_kernel_image(system: System) -> str:
    """The kernel image whose keys are trusted when none is given: ``/boot/vmlinuz-RELEASE``
    under the system's root."""
    root = (system.basedir or "").rstrip("/")
    return f"{root}/boot/vmlinuz-{system.release}"


def trusted_certificates(
    cert_files: Sequence[str] = (), kernel: str | None = None
) -> tuple[Certificate, ...]:
    """The certificates in ``cert_files`` (PEM or DER) and built into ``kernel``; VerifyError
    naming the file when one cannot be read."""
    from lkm.certificates import CertificateError, load_file

    found: list[Certificate] = []
    for path in cert_files:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as err:
            raise VerifyError(f"could not read '{path}': {os.strerror(err.errno or 5)}") from err
        try:
            found.extend(load_file(data))
        except CertificateError as err:
            raise VerifyError(_not_certificates(path, data, err)) from err
    if kernel is not None:
        from lkm.keys import KeysError, kernel_certificates

        try:
            image = kernel_certificates(kernel)
        except KeysError as err:
            raise VerifyError(str(err)) from err
        if not image.certificates:
            raise VerifyError(f"{kernel}: no certificates in this kernel image")
        found.extend(image.certificates)
    return tuple(found)


def _not_certificates(path: str, data: bytes, err: Exception) -> str:
    """One line saying what a --cert file holds instead of certificates."""
    import re

    armour = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)
    if armour is None:
        return f"{path}: expected X.509 certificates in PEM or DER, found neither"
    if armour.group(1) != b"CERTIFICATE":
        kind = armour.group(1).decode("ascii")
        return f"{path}: expected X.509 certificates in PEM or DER, found a PEM {kind}"
    return f"{path}: {err}"  # a PEM certificate that is damaged: cryptography says how


def verify(
    queries: Sequence[str],
    certificates: Sequence[Certificate],
    moddir: ModuleDirectory | None = None,
    *,
    jobs: int | None = None,
) -> list[Verification]:
    """One record per module each query names (a file, or a name or alias looked up in
    ``moddir`` as modinfo does), in order, checked against ``certificates`` by ``jobs``
    processes (default: every core; one: all in this process)."""
    targets: list[tuple[str, str | None, str] | Verification] = []
    for query in queries:
        targets.extend(_targets(query, moddir))
    work = [t for t in targets if not isinstance(t, Verification)]
    ders = tuple(cert.der for cert in certificates)
    results = iter(verify_files([(q, n, p) for q, n, p in work], ders, jobs=jobs))
    return [t if isinstance(t, Verification) else next(results) for t in targets]


def verify_files(
    files: Sequence[tuple[str, str | None, str]],
    certificates: Sequence[bytes],
    *,
    jobs: int | None = None,
    chunk: int = 16,
) -> list[Verification]:
    """Each ``(query, name, path)`` checked against the DER ``certificates``, in order."""
    ders = tuple(certificates)
    workers = min(jobs or os.cpu_count() or 1, max(1, len(files) // chunk))
    if workers <= 1:
        keyring = _Keyring(ders)
        return [_verify_path(keyring, *item) for item in files]
    from concurrent.futures import ProcessPoolExecutor

    chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(ders,)) as pool:
        return [record for part in pool.map(_verify_chunk, chunks) for record in part]


def verify_data(data: bytes, certificates: Sequence[bytes], *, name: str = "") -> Verification:
    """The verdict on one module's (decompressed) bytes."""
    return _judge(_Keyring(tuple(certificates)), name, name or None, None, data)


# --- finding the modules ------------------------------------------------------------------------


def _targets(
    query: str, moddir: ModuleDirectory | None
) -> list[tuple[str, str | None, str] | Verification]:
    from lkm.moddir import absolute, is_module_filename

    if "/" in query or moddir is None or (is_module_filename(query) and os.path.isfile(query)):
        return [(query, None, absolute(query) if os.path.exists(query) else query)]
    from lkm.modinfo import NotFound, find

    found: list[tuple[str, str | None, str] | Verification] = []
    for record in find(query, moddir, read=False):
        if isinstance(record, NotFound):
            found.append(_error(query, None, None, record.message))
        elif record.filename is None:
            message = f"Module {record.name} is built in: it has no file to verify."
            found.append(_error(query, record.name, None, message))
        else:
            found.append((query, record.name, record.filename))
    return found


def _error(query: str, name: str | None, filename: str | None, message: str) -> Verification:
    return Verification(query, name, filename, Verdict.ERROR, None, None, None, None, None, None,
                        None, message)  # fmt: skip


# --- the worker side ----------------------------------------------------------------------------

# The keyring of a pool's worker process, loaded once when it starts.
_WORKER: dict[str, _Keyring] = {}


def _start_worker(ders: tuple[bytes, ...]) -> None:
    _WORKER["keyring"] = _Keyring(ders)


def _verify_chunk(files: Sequence[tuple[str, str | None, str]]) -> list[Verification]:
    keyring = _WORKER["keyring"]
    return [_verify_path(keyring, *item) for item in files]


def _verify_path(keyring: _Keyring, query: str, name: str | None, path: str) -> Verification:
    from lkm.compress import decompress

    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        return _error(query, name, path, f"could not read '{path}': {reason}")
    try:
        data = decompress(data, path=path)
    except LkmError as err:
        return _error(query, name, path, str(err))
    return _judge(keyring, query, name or _module_name(path), path, data)


def _module_name(path: str) -> str:
    from lkm.names import module_name_from_path

    return module_name_from_path(path)


class _Key(NamedTuple):
    issuer: bytes  # DER of the issuer Name, as the certificate encodes it
    serial: int
    key_id: bytes | None
    public_key: Any  # cryptography's public key object
    subject: str
    key_id_hex: str | None


class _Keyring:
    """The trusted certificates' keys, loaded once per process."""

    def __init__(self, ders: tuple[bytes, ...]) -> None:
        self.keys = [_load_key(der) for der in ders]

    def find(self, pkcs7: Pkcs7) -> _Key | None:
        signer = pkcs7.signer
        for key in self.keys:
            if signer.subject_key_id is not None:
                if key.key_id == signer.subject_key_id:
                    return key
            elif key.serial == signer.serial and key.issuer == signer.issuer:
                return key
        return None


def _load_key(der: bytes) -> _Key:
    from cryptography import x509

    from lkm.certificates import load_der
    from lkm.der import DerReader

    record = load_der(der)
    cert = x509.load_der_x509_certificate(der)
    reader = DerReader(cert.tbs_certificate_bytes)
    fields = reader.children(reader.read(0, len(cert.tbs_certificate_bytes)))
    if fields[0].is_context(0):  # the optional [0] version
        fields = fields[1:]
    issuer = reader.data[fields[2].start : fields[2].end]
    key_id = bytes.fromhex(record.key_id) if record.key_id is not None else None
    try:
        public = cert.public_key()
    except Exception:  # a key type cryptography cannot use: it can check nothing
        public = None
    return _Key(issuer, cert.serial_number, key_id, public, record.subject, record.key_id)


# The digests the kernel's PKCS#7 parser and its RSA and ECDSA checks accept, by OID.
_DIGESTS = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.8": "sha3-256",
    "2.16.840.1.101.3.4.2.9": "sha3-384",
    "2.16.840.1.101.3.4.2.10": "sha3-512",
}
# Signature algorithms the kernel takes in a PKCS#7 signer info: RSA only as rsaEncryption.
_RSA = "1.2.840.113549.1.1.1"
_ECDSA = frozenset(
    {
        "1.2.840.10045.4.1",
        "1.2.840.10045.4.3.1",
        "1.2.840.10045.4.3.2",
        "1.2.840.10045.4.3.3",
        "1.2.840.10045.4.3.4",
        "2.16.840.1.101.3.4.3.10",
        "2.16.840.1.101.3.4.3.11",
        "2.16.840.1.101.3.4.3.12",
    }
)
_OID_DATA = "1.2.840.113549.1.7.1"
_MAGIC = b"~Module signature appended~\n"
_STRUCT = struct.Struct(">BBBBB3sI")


_REFUSED_ATTRIBUTES = (
    "the signer has authenticatedAttributes, which the kernel refuses in a module signature "
    "(the signature itself is good)"
)


class _Refused(Exception):
    """A verdict reached before the end of the checks."""

    def __init__(self, verdict: Verdict, reason: str) -> None:
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason


def _judge(
    keyring: _Keyring, query: str, name: str | None, path: str | None, data: bytes
) -> Verification:
    record = Verification(query, name, path, Verdict.VALID, None, None, None, None, None, None,
                          None)  # fmt: skip
    try:
        content, pkcs7 = _split(data, path)
        if pkcs7 is None:
            return record._replace(verdict=Verdict.UNSIGNED)
        shown = pkcs7.signature
        signer = pkcs7.signer
        record = record._replace(
            signer=shown.signer or None,
            key_id=signer.subject_key_id.hex() if signer.subject_key_id is not None else None,
            serial=format(signer.serial, "x") if signer.serial is not None else None,
            hash=shown.hash_algo,
            algorithm=shown.signature_algo,
        )
        key = _check(keyring, content, pkcs7)
        record = record._replace(key_id=key.key_id_hex or record.key_id, certificate=key.subject)
        if signer.authenticated_attributes is not None:
            raise _Refused(Verdict.INVALID, _REFUSED_ATTRIBUTES)
    except _Refused as refused:
        return record._replace(verdict=refused.verdict, reason=refused.reason)
    return record


def _split(data: bytes, path: str | None) -> tuple[memoryview, Pkcs7 | None]:
    """The signed content and the PKCS#7 after it, as ``mod_verify_sig`` cuts them."""
    from lkm.errors import SignatureError
    from lkm.signature import read_pkcs7

    view = memoryview(data)
    if not data.endswith(_MAGIC):
        return view, None
    size = len(data) - len(_MAGIC)
    if size <= _STRUCT.size:
        raise _Refused(Verdict.INVALID, "the file is too short for the signature struct")
    algo, hash_, id_type, signer_len, key_id_len, pad, sig_len = _STRUCT.unpack_from(
        data, size - _STRUCT.size
    )
    if sig_len >= size - _STRUCT.size:
        raise _Refused(
            Verdict.INVALID,
            f"the signature length {sig_len} is more than the {size - _STRUCT.size} bytes "
            "before the signature struct",
        )
    if id_type != 2:
        kind = {0: "PGP", 1: "X509"}.get(id_type, str(id_type))
        raise _Refused(Verdict.UNSUPPORTED, f"signature id type {kind}: the kernel checks "
                       "PKCS#7 signatures only")  # fmt: skip
    if algo or hash_ or signer_len or key_id_len or any(pad):
        raise _Refused(Verdict.INVALID, "the PKCS#7 signature struct has non-zero fields "
                       "other than the length")  # fmt: skip
    start = size - _STRUCT.size - sig_len
    try:
        pkcs7 = read_pkcs7(data[start : size - _STRUCT.size], path=path, offset=start)
    except SignatureError as err:
        raise _Refused(Verdict.INVALID, f"unreadable PKCS#7: {err.detail} (at byte "
                       f"{err.offset:#x})") from err  # fmt: skip
    return view[:start], pkcs7


def _check(keyring: _Keyring, content: memoryview, pkcs7: Pkcs7) -> _Key:
    """The trusted key the signature checks out with; _Refused says why there is none."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    from lkm.certificates import hash_algorithm

    signer = pkcs7.signer
    shown = pkcs7.signature
    digest_name = _DIGESTS.get(signer.digest_oid)
    if digest_name is None:
        raise _Refused(Verdict.UNSUPPORTED, f"digest {shown.hash_algo} is not one the kernel "
                       "takes")  # fmt: skip
    if signer.signature_oid != _RSA and signer.signature_oid not in _ECDSA:
        raise _Refused(Verdict.UNSUPPORTED, f"signature algorithm {shown.signature_algo} is "
                       "not one the kernel takes")  # fmt: skip
    if pkcs7.content_type != _OID_DATA:
        raise _Refused(Verdict.INVALID, f"the signed content's type is {pkcs7.content_type}, "
                       "not data")  # fmt: skip
    if pkcs7.has_content:
        raise _Refused(Verdict.INVALID, "the PKCS#7 carries content of its own: a module "
                       "signature must be detached")  # fmt: skip
    algorithm = hash_algorithm(digest_name)
    hasher = hashes.Hash(algorithm)
    hasher.update(content)
    digest = hasher.finalize()
    signed = digest
    if signer.authenticated_attributes is not None:
        if signer.message_digest is None:
            raise _Refused(Verdict.INVALID, "the authenticatedAttributes have no messageDigest")
        if signer.message_digest != digest:
            raise _Refused(Verdict.INVALID, "digest mismatch: the messageDigest attribute is "
                           "not the module content's digest")  # fmt: skip
        # What is signed then is the attributes, encoded as the SET OF they are.
        hasher = hashes.Hash(algorithm)
        hasher.update(b"\x31" + signer.authenticated_attributes[1:])
        signed = hasher.finalize()
    key = keyring.find(pkcs7)
    if key is None:
        if signer.subject_key_id is not None:
            wanted = f"key id {signer.subject_key_id.hex()}"
        else:
            wanted = f"issuer '{shown.signer}' and serial {signer.serial or 0:x}"
        raise _Refused(Verdict.UNKNOWN_KEY, f"no trusted certificate has {wanted}")
    public = key.public_key
    if public is None:
        raise _Refused(Verdict.UNSUPPORTED, f"the key of {key.subject} is of a type lkm cannot use")
    prehashed = utils.Prehashed(algorithm)
    try:
        if signer.signature_oid == _RSA:
            if not isinstance(public, rsa.RSAPublicKey):
                raise _Refused(Verdict.INVALID, "an RSA signature, but the key is not RSA")
            try:
                public.verify(signer.signature, signed, padding.PKCS1v15(), prehashed)
            except InvalidSignature:
                reason = _rsa_failure(public, signer.signature, signed)
                raise _Refused(Verdict.INVALID, reason) from None
        else:
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise _Refused(Verdict.INVALID, "an ECDSA signature, but the key is not ECDSA")
            public.verify(signer.signature, signed, ec.ECDSA(prehashed))
    except InvalidSignature:
        raise _Refused(Verdict.INVALID, "bad signature: the content or the signature was "
                       "changed, or another key signed it") from None  # fmt: skip
    except ValueError as err:  # a signature value the key cannot even take
        raise _Refused(Verdict.INVALID, f"bad signature: {err}") from err
    return key


def _rsa_failure(public: Any, signature: bytes, digest: bytes) -> str:
    """Why an RSA PKCS#1 v1.5 signature failed: the key opens it to another digest (the
    content changed), or it does not open at all (the signature changed, or another key)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        recovered = public.recover_data_from_signature(signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return "bad signature: the key does not open it (the signature was changed, or "\
            "another key made it)"  # fmt: skip
    if not recovered.endswith(digest):
        return "digest mismatch: the signature is over other content than the module's"
    return "bad signature: the digest info does not match its algorithm"


__all__ = [
    "EXIT_STATUS",
    "Verdict",
    "Verification",
    "VerifyError",
    "default_kernel_image",
    "trusted_certificates",
    "verify",
    "verify_data",
    "verify_files",
    "worst_exit_status",
]
