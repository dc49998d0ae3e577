"""Hand-made module signatures: a small DER writer for PKCS#7 blobs and the appended trailer."""

from __future__ import annotations

import struct
from pathlib import Path

from lkm.signature import MAGIC

DATA = Path(__file__).parent.parent / "data" / "signatures"
UNSIGNED = (DATA / "unsigned.ko").read_bytes()


# --- a small DER writer for hand-made PKCS#7 blobs --------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(items))


def oid(dotted: str) -> bytes:
    arcs = [int(v) for v in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return tlv(6, bytes(out))


def integer(value: int) -> bytes:
    return tlv(2, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


CN, ORG = "2.5.4.3", "2.5.4.10"
SHA256 = "2.16.840.1.101.3.4.2.1"
RSA = "1.2.840.113549.1.1.1"
SIGNED_DATA = "1.2.840.113549.1.7.2"


def name(*attrs: tuple[str, int, bytes]) -> bytes:
    return seq(*(set_(seq(oid(o), tlv(tag, value))) for o, tag, value in attrs))


def signer_info(
    *,
    issuer: bytes | None = None,
    serial: bytes | None = None,
    sid: bytes | None = None,
    digest: str = SHA256,
    signature: bytes | None = None,
) -> bytes:
    if sid is None:
        sid = seq(
            issuer if issuer is not None else name((CN, 0x0C, b"crafted")),
            serial if serial is not None else integer(0x42),
        )
    sig = signature if signature is not None else tlv(4, b"\x11" * 8)
    return seq(integer(1), sid, seq(oid(digest)), seq(oid(RSA), b"\x05\x00"), sig)


def signed_data(digest: str = SHA256, signers: list[bytes] | None = None) -> bytes:
    return seq(
        integer(1),
        set_(seq(oid(digest))),
        seq(oid("1.2.840.113549.1.7.1")),
        set_(*(signers if signers is not None else [signer_info(digest=digest)])),
    )


def cms(
    *,
    signers: list[bytes] | None = None,
    content_type: str = SIGNED_DATA,
    digest: str = SHA256,
    **signer: bytes,
) -> bytes:
    """A SignedData; keyword arguments other than these go to the one signer_info."""
    if signers is None:
        signers = [signer_info(digest=digest, **signer)]
    return seq(oid(content_type), tlv(0xA0, signed_data(digest, signers)))


def appended(
    blob: bytes,
    *,
    algo: int = 0,
    hash_: int = 0,
    id_type: int = 2,
    signer_len: int = 0,
    key_id_len: int = 0,
    sig_len: int | None = None,
    body: bytes = UNSIGNED,
) -> bytes:
    size = len(blob) if sig_len is None else sig_len
    trailer = struct.pack(">BBBBB3xI", algo, hash_, id_type, signer_len, key_id_len, size)
    return body + blob + trailer + MAGIC


# Digest algorithm identifiers and the names kmod 34 prints for them.
DIGESTS = {
    "1.2.840.113549.2.4": "md4",
    "1.2.840.113549.2.5": "md5",
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.5": "sha512-224",
    "2.16.840.1.101.3.4.2.8": "sha3-256",
    "2.16.840.1.101.3.4.2.12": "shake256",
    "1.3.36.3.2.1": "ripemd160",
    "1.2.156.10197.1.401": "sm3",
    "1.2.643.7.1.1.2.2": "GOST R 34.11-2012 with 256 bit hash",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.3.4.5": "1.2.3.4.5",
    "2.999.1": "2.999.1",
}
