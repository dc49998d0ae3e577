"""The signature appended to a module file, and the PKCS#7 (CMS SignedData) inside it.

A signed module ends with ``<blob><12-byte struct>~Module signature appended~\\n``. The struct is
``u8 algo, u8 hash, u8 id_type, u8 signer_len, u8 key_id_len, 3 pad, be32 sig_len``. For the PGP
and X509 id types the blob is ``signer | key id | signature`` with the lengths from the struct;
for PKCS#7 it is a CMS SignedData whose first signer info names the signer.

kmod 34's modinfo prints no signature field at all when any part of this is unreadable, and
:func:`find_signature` follows it by default; ``strict=True`` raises :class:`SignatureError` with
the path and byte offset instead. Nothing here verifies a signature.
"""

from __future__ import annotations

import struct

from lkm.der import (
    CLASS_UNIVERSAL,
    TAG_BIT_STRING,
    TAG_BOOLEAN,
    TAG_EOC,
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    TAG_SET,
    DerReader,
    Tlv,
)
from lkm.enum_lite import Enum, IntEnum
from lkm.errors import SignatureError
from lkm.typing_lite import NamedTuple

MAGIC = b"~Module signature appended~\n"
_TRAILER = struct.Struct(">BBBBB3xI")
TRAILER_SIZE = _TRAILER.size + len(MAGIC)

# kmod accepts algo bytes 0 and 1 only and hash bytes 0..8; these hash names are what it prints
# (it prints no algorithm: these are the kernel's names of its enum pkey_algo).
_RAW_ALGO_NAMES = ("dsa", "rsa")
_ALGO_COUNT = len(_RAW_ALGO_NAMES)
_RAW_HASH_NAMES = ("md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3")

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_COMMON_NAME = "2.5.4.3"

# kmod names the PKCS#7 digest algorithm by its OpenSSL long name and falls back to the dotted
# OID. This table holds the digest and signature OIDs worth expecting there; each entry was
# checked against kmod 34's output.
_OID_LONG_NAMES = {
    "1.2.840.113549.2.2": "md2",
    "1.2.840.113549.2.4": "md4",
    "1.2.840.113549.2.5": "md5",
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.5": "sha512-224",
    "2.16.840.1.101.3.4.2.6": "sha512-256",
    "2.16.840.1.101.3.4.2.7": "sha3-224",
    "2.16.840.1.101.3.4.2.8": "sha3-256",
    "2.16.840.1.101.3.4.2.9": "sha3-384",
    "2.16.840.1.101.3.4.2.10": "sha3-512",
    "2.16.840.1.101.3.4.2.11": "shake128",
    "2.16.840.1.101.3.4.2.12": "shake256",
    "1.3.36.3.2.1": "ripemd160",
    "1.0.10118.3.0.55": "whirlpool",
    "1.2.156.10197.1.401": "sm3",
    "2.5.8.3.101": "mdc2",
    "1.3.6.1.4.1.1722.12.2.1.16": "blake2b512",
    "1.3.6.1.4.1.1722.12.2.2.8": "blake2s256",
    "1.2.643.2.2.9": "GOST R 34.11-94",
    "1.2.643.7.1.1.2.2": "GOST R 34.11-2012 with 256 bit hash",
    "1.2.643.7.1.1.2.3": "GOST R 34.11-2012 with 512 bit hash",
    "1.2.840.113549.1.1.1": "rsaEncryption",
    "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.3": "md4WithRSAEncryption",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10045.2.1": "id-ecPublicKey",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.1": "dsaEncryption",
    "1.2.840.10040.4.3": "dsaWithSHA1",
    "2.16.840.1.101.3.4.3.1": "dsa_with_SHA224",
    "2.16.840.1.101.3.4.3.2": "dsa_with_SHA256",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
    "1.2.156.10197.1.301": "sm2",
    "1.2.156.10197.1.501": "SM2-with-SM3",
}

# Attribute value tags kmod's decoder accepts in a name (others make the whole PKCS#7 unreadable):
# the usual strings plus a few "unknown" universal types whose content it takes verbatim.
_NAME_VALUE_TAGS = frozenset({3, 7, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20, 22, 28, 29, 30, 16})
_TAG_UNIVERSAL_STRING = 28
_TAG_BMP_STRING = 30


class SignatureIdType(IntEnum):
    PGP = 0
    X509 = 1
    PKCS7 = 2


class KeyIdKind(Enum):
    """Where ``ModuleSignature.key_id`` came from."""

    RAW = "raw"  # the key id bytes of a PGP or X509 trailer
    ISSUER_SERIAL = "issuer-serial"  # the serial number of the signer's certificate
    SUBJECT_KEY_ID = "subject-key-id"  # a CMS subjectKeyIdentifier (kmod shows no fields then)


class ModuleSignature(NamedTuple):
    algo: int  # raw struct byte
    hash: int  # raw struct byte
    id_type: int  # raw struct byte (SignatureIdType when known)
    signer: str  # raw bytes up to the first NUL, decoded as UTF-8 with surrogateescape
    key_id: bytes
    hash_algo: str  # e.g. "sha256", as kmod's modinfo prints it (sig_hashalgo)
    signature: bytes
    key_id_kind: KeyIdKind = KeyIdKind.ISSUER_SERIAL
    # The signature algorithm: PKCS#7's signatureAlgorithm named as the digest is (OpenSSL's
    # long name, else the dotted OID); for PGP and X509 trailers the kernel's name for the
    # algo byte. kmod's modinfo does not print it.
    signature_algo: str = ""

    def modinfo_fields(self) -> tuple[tuple[str, str], ...]:
        """``(key, value)`` pairs in the order and text kmod 34's modinfo prints them.

        A PKCS#7 signer identified by subject key identifier prints nothing in kmod 34.
        """
        if self.key_id_kind is KeyIdKind.SUBJECT_KEY_ID:
            return ()
        return (
            ("sig_id", _id_type_name(self.id_type)),
            ("signer", self.signer),
            ("sig_key", format_hex(self.key_id)),
            ("sig_hashalgo", self.hash_algo),
            ("signature", format_hex(self.signature)),
        )


def format_hex(data: bytes) -> str:
    """``AA:BB:..`` with a ``:\\n\\t\\t`` break after every 20 bytes, as kmod prints key ids."""
    lines = [":".join(f"{b:02X}" for b in data[i : i + 20]) for i in range(0, len(data), 20)]
    return ":\n\t\t".join(lines)


def _id_type_name(id_type: int) -> str:
    try:
        return {0: "PGP", 1: "X509", 2: "PKCS#7"}[id_type]
    except KeyError:
        return str(id_type)


class SignatureTrailer(NamedTuple):
    """The fixed struct before the magic, with the offsets it implies."""

    algo: int
    hash: int
    id_type: int
    signer_len: int
    key_id_len: int
    sig_len: int
    blob_start: int  # offset of the signer (PGP/X509) or the PKCS#7 blob
    struct_start: int

    @property
    def content_len(self) -> int:
        """Length of the module without the appended signature."""
        return self.blob_start


def find_signature(
    data: bytes | memoryview, *, path: str | None = None, strict: bool = False
) -> tuple[int, ModuleSignature | None]:
    """Return (length of the module content without the appended signature, the signature).

    A file without the trailer gives ``(len(data), None)``. A trailer kmod cannot use gives
    ``(len(data), None)``; a usable trailer whose blob is unreadable gives ``(content length,
    None)``. With ``strict=True`` both of those raise :class:`SignatureError` instead.
    """
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    size = len(view)
    if size < len(MAGIC) or view[size - len(MAGIC) :] != MAGIC:
        return size, None
    try:
        trailer = read_trailer(view, path=path)
    except SignatureError:
        if strict:
            raise
        return size, None
    try:
        signature = _parse_blob(view, trailer, path)
    except SignatureError:
        if strict:
            raise
        return trailer.content_len, None
    return trailer.content_len, signature


def read_trailer(data: bytes | memoryview, *, path: str | None = None) -> SignatureTrailer:
    """Decode and check the struct before the magic; the data must end with the magic."""
    size = len(data)
    struct_start = size - TRAILER_SIZE
    if struct_start < 0:
        raise SignatureError(
            f"expected a {_TRAILER.size}-byte signature struct before the magic, "
            f"found only {size - len(MAGIC)} bytes",
            path=path,
            offset=0,
        )
    algo, hash_, id_type, signer_len, key_id_len, sig_len = _TRAILER.unpack_from(data, struct_start)

    def bad(message: str) -> SignatureError:
        return SignatureError(message, path=path, offset=struct_start)

    if id_type not in SignatureIdType.__members__.values():
        raise bad(f"expected signature id type 0, 1 or 2, found {id_type}")
    if algo >= _ALGO_COUNT:
        raise bad(f"expected signature algo 0 or 1, found {algo}")
    if hash_ >= len(_RAW_HASH_NAMES):
        raise bad(f"expected signature hash 0..{len(_RAW_HASH_NAMES) - 1}, found {hash_}")
    if sig_len == 0:
        raise bad("expected a non-empty signature, found sig_len 0")
    appended = sig_len + signer_len + key_id_len
    if appended > struct_start:
        raise bad(
            f"expected at most {struct_start} signature bytes before the struct, "
            f"found lengths adding up to {appended}"
        )
    blob_start = struct_start - sig_len
    if id_type != SignatureIdType.PKCS7:
        blob_start -= signer_len + key_id_len
    return SignatureTrailer(
        algo, hash_, id_type, signer_len, key_id_len, sig_len, blob_start, struct_start
    )


def _parse_blob(view: memoryview, trailer: SignatureTrailer, path: str | None) -> ModuleSignature:
    if trailer.id_type == SignatureIdType.PKCS7:
        return parse_pkcs7(
            bytes(view[trailer.blob_start : trailer.struct_start]),
            path=path,
            offset=trailer.blob_start,
            algo=trailer.algo,
            hash=trailer.hash,
        )
    start = trailer.blob_start
    key_start = start + trailer.signer_len
    sig_start = key_start + trailer.key_id_len
    return ModuleSignature(
        algo=trailer.algo,
        hash=trailer.hash,
        id_type=trailer.id_type,
        signer=_c_string(bytes(view[start:key_start])),
        key_id=bytes(view[key_start:sig_start]),
        hash_algo=_RAW_HASH_NAMES[trailer.hash],
        signature=bytes(view[sig_start : trailer.struct_start]),
        key_id_kind=KeyIdKind.RAW,
        signature_algo=_RAW_ALGO_NAMES[trailer.algo],
    )


def _c_string(raw: bytes) -> str:
    # kmod prints the signer as a C string: whatever follows a NUL is lost.
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def parse_pkcs7(
    blob: bytes,
    *,
    path: str | None = None,
    offset: int = 0,
    algo: int = 0,
    hash: int = 0,
) -> ModuleSignature:
    """Read the first signer of a CMS SignedData ``blob`` (which starts at file ``offset``).

    Bytes after the outer value are ignored, like kmod does.
    """
    return read_pkcs7(blob, path=path, offset=offset, algo=algo, hash=hash).signature


class SignerDetails(NamedTuple):
    """What checking a PKCS#7 signer needs beyond what modinfo shows (see :mod:`lkm.verify`)."""

    issuer: bytes | None  # the DER of the signer's issuer Name (None: named by key id)
    serial: int | None
    subject_key_id: bytes | None
    digest_oid: str
    signature_oid: str
    # The [0] IMPLICIT authenticatedAttributes as encoded, or None when there are none.
    authenticated_attributes: bytes | None
    message_digest: bytes | None  # the messageDigest attribute's value, when present
    signature: bytes


class Pkcs7(NamedTuple):
    """A module's CMS SignedData: the first signer as modinfo shows it and its details."""

    signature: ModuleSignature
    content_type: str  # the encapsulated content's type (data for module signatures)
    has_content: bool  # whether the content is inside (module signatures are detached)
    signer_count: int
    signer: SignerDetails


def read_pkcs7(
    blob: bytes,
    *,
    path: str | None = None,
    offset: int = 0,
    algo: int = 0,
    hash: int = 0,
) -> Pkcs7:
    """:func:`parse_pkcs7` with the details a verifier needs; the same checks, the same errors."""
    der = DerReader(blob, path, offset)
    outer = der.read(0, len(blob))
    der.expect(outer, TAG_SEQUENCE, "a ContentInfo SEQUENCE", constructed=True)
    info = der.children(outer)
    if len(info) < 2:
        raise der.error("expected a content type and [0] content, found less", outer.start)
    content_type = der.oid(info[0])
    if content_type != _OID_SIGNED_DATA:
        raise der.error(f"expected signedData content, found {content_type}", info[0].start)
    if not info[1].is_context(0) or not info[1].constructed:
        raise der.error("expected [0] EXPLICIT content", info[1].start)
    wrapped = der.children(info[1])
    if len(wrapped) != 1:
        raise der.error(f"expected one SignedData in [0], found {len(wrapped)}", info[1].start)
    signed_data = wrapped[0]
    der.expect(signed_data, TAG_SEQUENCE, "a SignedData SEQUENCE", constructed=True)
    fields = list(der.children(signed_data))
    if len(fields) < 4:
        raise der.error("expected at least 4 SignedData fields, found fewer", signed_data.start)
    der.integer(fields[0])
    # SET OF and SEQUENCE OF values are read even when marked primitive (SEQUENCEs are not).
    der.expect(fields[1], TAG_SET, "a digestAlgorithms SET")
    for item in der.members(fields[1]):
        _algorithm(der, item)
    inner_type, has_content = _content_info(der, fields[2])
    rest = fields[3:]
    for number in (0, 1):  # optional certificates [0] and crls [1]
        if rest and rest[0].is_context(number) and rest[0].constructed:
            rest = rest[1:]
    if len(rest) != 1:
        raise der.error("expected the signerInfos SET to close SignedData", signed_data.start)
    der.expect(rest[0], TAG_SET, "a signerInfos SET")
    signers = [_signer_info(der, item, algo, hash) for item in der.members(rest[0])]
    if not signers:
        raise der.error("expected at least one signer info, found none", rest[0].start)
    signature, details = signers[0]
    return Pkcs7(signature, inner_type, has_content, len(signers), details)


def _algorithm(der: DerReader, tlv: Tlv) -> str:
    der.expect(tlv, TAG_SEQUENCE, "an AlgorithmIdentifier SEQUENCE", constructed=True)
    parts = der.children(tlv)
    if not parts or len(parts) > 2:
        raise der.error(f"expected an OID and optional parameters, found {len(parts)}", tlv.start)
    oid = der.oid(parts[0])
    if len(parts) == 2:
        _any(der, parts[1])
    return oid


def _content_info(der: DerReader, tlv: Tlv) -> tuple[str, bool]:
    """The inner ContentInfo: a type and optional [0] content (absent in module signatures)."""
    der.expect(tlv, TAG_SEQUENCE, "an encapContentInfo SEQUENCE", constructed=True)
    parts = der.children(tlv)
    if not parts or len(parts) > 2:
        raise der.error(
            f"expected a content type and optional content, found {len(parts)}", tlv.start
        )
    content_type = der.oid(parts[0])
    if len(parts) == 2:
        if not parts[1].is_context(0) or not parts[1].constructed:
            raise der.error("expected [0] EXPLICIT content", parts[1].start)
        inner = der.children(parts[1])
        if len(inner) != 1:
            raise der.error(f"expected one value in [0], found {len(inner)}", parts[1].start)
        if content_type == _OID_DATA:
            der.expect(inner[0], TAG_OCTET_STRING, "data content OCTET STRING")
        _any(der, inner[0])
    return content_type, len(parts) == 2


# Universal types whose content kmod's decoder checks when they stand for ANY, and the strings
# whose length it checks (minimum or multiple).
_TAG_NULL, _TAG_ENUMERATED, _TAG_UTC_TIME, _TAG_GENERALIZED_TIME = 5, 10, 23, 24
_PRIMITIVE_ONLY = frozenset({TAG_BOOLEAN, TAG_INTEGER, _TAG_NULL, TAG_OID, _TAG_ENUMERATED})
_MIN_LENGTH = {TAG_BIT_STRING: 1, _TAG_UTC_TIME: 13, _TAG_GENERALIZED_TIME: 15}
_LENGTH_UNIT = {_TAG_BMP_STRING: 2, _TAG_UNIVERSAL_STRING: 4}


def _any(der: DerReader, tlv: Tlv) -> None:
    """Check a value of type ANY as kmod's decoder does: other classes and unknown universal
    types are taken as they are, the basic types must be well formed."""
    if tlv.cls != CLASS_UNIVERSAL or tlv.number > _TAG_BMP_STRING:
        return
    number = tlv.number
    if number == TAG_EOC:
        raise der.error("expected a value, found end-of-contents", tlv.start)
    if number in (TAG_SEQUENCE, TAG_SET):
        if not tlv.constructed:
            raise der.error("expected a constructed SEQUENCE or SET", tlv.start)
        return
    if number in _PRIMITIVE_ONLY:
        if tlv.constructed:
            raise der.error(f"expected a primitive value of tag {number}", tlv.start)
        if number in (TAG_INTEGER, _TAG_ENUMERATED):
            der.integer(tlv._replace(number=TAG_INTEGER))
        elif number == TAG_OID:
            der.oid(tlv)
        elif tlv.content_end - tlv.content_start != (1 if number == TAG_BOOLEAN else 0):
            raise der.error("expected a BOOLEAN of 1 byte or an empty NULL", tlv.start)
        return
    value = der.content(tlv)
    if len(value) < _MIN_LENGTH.get(number, 0) or len(value) % _LENGTH_UNIT.get(number, 1):
        raise der.error(f"expected a longer or whole value of tag {number}", tlv.start)
    if number == TAG_BIT_STRING and value[0] > 7:
        raise der.error(f"expected at most 7 unused bits, found {value[0]}", tlv.start)


def _signer_info(
    der: DerReader, tlv: Tlv, algo: int, hash_: int
) -> tuple[ModuleSignature, SignerDetails]:
    der.expect(tlv, TAG_SEQUENCE, "a SignerInfo SEQUENCE", constructed=True)
    fields = list(der.children(tlv))
    if len(fields) < 5:
        raise der.error(f"expected at least 5 SignerInfo fields, found {len(fields)}", tlv.start)
    der.integer(fields[0])
    sid = fields[1]
    issuer: bytes | None = None
    serial_number: int | None = None
    subject_key_id: bytes | None = None
    if sid.is_context(0):
        kind = KeyIdKind.SUBJECT_KEY_ID
        signer = ""
        key_id = subject_key_id = der.content(sid)
    else:
        der.expect(sid, TAG_SEQUENCE, "an IssuerAndSerialNumber SEQUENCE", constructed=True)
        parts = der.children(sid)
        if len(parts) != 2:
            raise der.error(f"expected issuer and serial, found {len(parts)} values", sid.start)
        kind = KeyIdKind.ISSUER_SERIAL
        signer = _signer_name(der, parts[0])
        issuer = der.data[parts[0].start : parts[0].end]
        serial_number = der.integer(parts[1])
        serial = abs(serial_number)
        key_id = serial.to_bytes((serial.bit_length() + 7) // 8, "big")
    digest = _algorithm(der, fields[2])
    rest = fields[3:]
    attributes = message_digest = None
    if rest[0].is_context(0) and rest[0].constructed:  # signed attributes
        attributes = der.data[rest[0].start : rest[0].end]
        message_digest = _message_digest(der, rest[0])
        rest = rest[1:]
    if len(rest) < 2:
        raise der.error("expected a signature algorithm and signature", tlv.start)
    signature_algo = _algorithm(der, rest[0])
    der.expect(rest[1], TAG_OCTET_STRING, "the signature OCTET STRING")
    signature = der.content(rest[1])
    rest = rest[2:]
    if rest and rest[0].is_context(1) and rest[0].constructed:  # unsigned attributes
        rest = rest[1:]
    if rest:
        raise der.error("expected the end of the SignerInfo, found more", rest[0].start)
    shown = ModuleSignature(
        algo=algo,
        hash=hash_,
        id_type=SignatureIdType.PKCS7,
        signer=signer,
        key_id=key_id,
        hash_algo=_OID_LONG_NAMES.get(digest, digest),
        signature=signature,
        key_id_kind=kind,
        signature_algo=_OID_LONG_NAMES.get(signature_algo, signature_algo),
    )
    details = SignerDetails(
        issuer, serial_number, subject_key_id, digest, signature_algo, attributes,
        message_digest, signature,
    )  # fmt: skip
    return shown, details


_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


def _message_digest(der: DerReader, attributes: Tlv) -> bytes | None:
    """The messageDigest attribute's value among signed attributes, if one is readable.

    Only a verifier looks at it, and modinfo reads whatever the attributes hold: an attribute
    that is not well formed is passed over here rather than refused.
    """
    try:
        for attribute in der.members(attributes):
            if not attribute.is_universal(TAG_SEQUENCE, constructed=True):
                continue
            parts = der.children(attribute)
            if len(parts) != 2 or not parts[0].is_universal(TAG_OID):
                continue
            if der.oid(parts[0]) != _OID_MESSAGE_DIGEST or not parts[1].constructed:
                continue
            values = der.children(parts[1])
            if len(values) == 1 and values[0].is_universal(TAG_OCTET_STRING):
                return der.content(values[0])
    except SignatureError:
        return None
    return None


def _signer_name(der: DerReader, name: Tlv) -> str:
    """The first common name of ``name``, else its last attribute of any type (kmod's choice)."""
    der.expect(name, TAG_SEQUENCE, "a Name SEQUENCE")
    values: list[tuple[str, bytes]] = []
    for rdn in der.members(name):
        der.expect(rdn, TAG_SET, "a RelativeDistinguishedName SET")
        for attribute in der.members(rdn):
            der.expect(attribute, TAG_SEQUENCE, "an AttributeTypeAndValue", constructed=True)
            parts = der.children(attribute)
            if len(parts) != 2:
                raise der.error(f"expected a type and a value, found {len(parts)}", attribute.start)
            values.append((der.oid(parts[0]), _name_value(der, parts[1])))
    for oid, value in values:
        if oid == _OID_COMMON_NAME:
            return _c_string(value)
    return _c_string(values[-1][1]) if values else ""


def _name_value(der: DerReader, tlv: Tlv) -> bytes:
    if tlv.cls != CLASS_UNIVERSAL or tlv.number not in _NAME_VALUE_TAGS:
        raise der.error(
            f"expected a string in a name, found class {tlv.cls:#x} tag {tlv.number}", tlv.start
        )
    if tlv.number == TAG_SEQUENCE:
        if not tlv.constructed:
            raise der.error("expected a constructed SEQUENCE in a name", tlv.start)
        return der.data[tlv.start : tlv.end]  # taken whole, identifier and length included
    value = der.content(tlv)
    if tlv.number == TAG_BIT_STRING:
        if not value or value[0] > 7 or (len(value) == 1 and value[0]):
            raise der.error("expected a BIT STRING with a valid unused-bits octet", tlv.start)
        unused = value[0]
        value = value[1:]
        if value and unused:
            value = value[:-1] + bytes([value[-1] & (0xFF << unused) & 0xFF])
    elif tlv.number == _TAG_BMP_STRING and len(value) % 2:
        raise der.error(f"expected an even BMPString length, found {len(value)}", tlv.start)
    elif tlv.number == _TAG_UNIVERSAL_STRING and len(value) % 4:
        raise der.error(f"expected a UniversalString length in 4s, found {len(value)}", tlv.start)
    if tlv.number in _UNICODE_STRINGS and not _valid_unicode(tlv.number, value):
        # kmod's decoder converts these names to UTF-8, which fails on invalid characters.
        raise der.error(f"expected valid characters in a string of tag {tlv.number}", tlv.start)
    return value


_TAG_UTF8_STRING = 12
_UNICODE_STRINGS = frozenset({_TAG_UTF8_STRING, _TAG_BMP_STRING, _TAG_UNIVERSAL_STRING})


def _valid_unicode(number: int, value: bytes) -> bool:
    """Whether a UTF8String (strict UTF-8), BMPString or UniversalString holds only Unicode
    scalar values (no surrogates, nothing beyond U+10FFFF)."""
    if number == _TAG_UTF8_STRING:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    width = 2 if number == _TAG_BMP_STRING else 4
    for at in range(0, len(value), width):
        code = int.from_bytes(value[at : at + width], "big")
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return False
    return True
