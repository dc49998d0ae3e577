"""Hand-made kernel images and certificates: a bzImage's shape around any payload, a vmlinux with
certificates where the kernel keeps them, and self-signed test certificates."""

from __future__ import annotations

import datetime
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def make_certificate(
    common_name: str, key: object, serial: int = 0x1234ABCD, days: int = 36500
) -> bytes:
    """A self-signed X.509 v3 certificate with a subjectKeyIdentifier, DER-encoded."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    public = key.public_key()  # type: ignore[attr-defined]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.DER)


RSA_CERT = make_certificate("Test RSA key", rsa.generate_private_key(65537, 2048))
EC_CERT = make_certificate("Test EC key", ec.generate_private_key(ec.SECP384R1()), 7)


def fake_vmlinux(*certificates: bytes) -> bytes:
    """An ELF-headed blob with the certificates back to back among other bytes, as the
    kernel's system_certificate_list sits in its image."""
    return b"\x7fELF" + bytes(4000) + b"".join(certificates) + b"\x30\x82\x00\x10" + bytes(4000)


def bzimage(payload: bytes, *, protocol: int = 0x20F, setup_sectors: int = 3) -> bytes:
    """A bzImage's shape: boot header, setup sectors, then the payload and its size after."""
    setup = bytearray((setup_sectors + 1) * 512)
    setup[0x1F1] = setup_sectors
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, protocol)
    offset = 0x200
    struct.pack_into("<II", setup, 0x248, offset, len(payload))
    return bytes(setup) + bytes(offset) + payload + struct.pack("<I", 123456) + bytes(100)
