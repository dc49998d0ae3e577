"""``lkm keys``: certificates found in kernel images of every payload format, /proc/keys, and the
bad input (no kernel image, a payload cut short or corrupt, a format lkm cannot read)."""

from __future__ import annotations

import bz2
import datetime
import gzip
import json
import lzma
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from lkm.certificates import load_der
from lkm.kernelimage import KernelImageError, vmlinux
from lkm.keys import KeysError, kernel_certificates, parse_proc_keys
from support.schemas import validate_output


def make_certificate(common_name: str, key: object, serial: int = 0x1234ABCD) -> bytes:
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
        .not_valid_after(start + datetime.timedelta(days=36500))
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


COMPRESSORS = {
    "gzip": gzip.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "bzip2": bz2.compress,
}


@pytest.mark.parametrize("method", sorted(COMPRESSORS))
def test_certificates_are_found_in_every_payload_format(method: str, tmp_path: Path) -> None:
    kernel = fake_vmlinux(RSA_CERT, EC_CERT)
    image = tmp_path / "vmlinuz"
    image.write_bytes(bzimage(COMPRESSORS[method](kernel)))
    assert vmlinux(image.read_bytes()) == (kernel, method)
    found = kernel_certificates(str(image))
    assert found.compression == method
    assert [c.der for c in found.certificates] == [RSA_CERT, EC_CERT]
    assert [c.algorithm for c in found.certificates] == ["RSA-2048", "ECDSA-P384"]


def test_a_plain_vmlinux_is_read_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "vmlinux").write_bytes(fake_vmlinux(EC_CERT))
    found = kernel_certificates(str(tmp_path / "vmlinux"))
    assert found.compression == "none"
    cert = found.certificates[0]
    assert (cert.subject, cert.issuer, cert.serial) == ("CN=Test EC key", "CN=Test EC key", "7")
    assert cert.signature_hash == "sha256"
    assert cert.not_before == "2026-01-01T00:00:00+00:00"
    expected = x509.load_der_x509_certificate(EC_CERT).extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    )
    assert cert.key_id == expected.value.digest.hex()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a kernel image (no ELF header and no bzImage boot header)"),
        (b"hello" * 200, "not a kernel image (no ELF header and no bzImage boot header)"),
        (
            bzimage(gzip.compress(b"x"), protocol=0x207),
            "bzImage boot protocol 2.07 is older than 2.08: it does not say where its kernel is",
        ),
        (bzimage(b"\x02\x21\x4c\x18" + bytes(20)),
         "bzImage payload compressed with lz4, which lkm cannot read"),
        (bzimage(b"\x89LZO" + bytes(20)),
         "bzImage payload compressed with lzo, which lkm cannot read"),
        (bzimage(b"JUNKJUNK"), "bzImage payload in an unknown format (starts 4a554e4b4a55)"),
        (bzimage(gzip.compress(b"not an ELF kernel")),
         "the gzip payload of the bzImage is not an ELF kernel"),
    ],
)  # fmt: skip
def test_what_is_no_kernel_image_is_said_in_one_line(data: bytes, message: str) -> None:
    with pytest.raises(KernelImageError) as caught:
        vmlinux(data)
    assert str(caught.value) == message


def test_a_payload_beyond_the_end_or_corrupt_is_refused() -> None:
    image = bzimage(zstandard.ZstdCompressor().compress(fake_vmlinux()))
    with pytest.raises(KernelImageError, match=r"^bzImage payload \(\d+ bytes at 2560\) is beyond"):
        vmlinux(image[:2580])
    damaged = bytearray(bzimage(lzma.compress(fake_vmlinux(RSA_CERT))))
    damaged[2560 + 40 : 2560 + 60] = bytes(20)
    with pytest.raises(KernelImageError, match=r"^bzImage payload: xz data is corrupt \("):
        vmlinux(bytes(damaged))


def test_certificate_shapes_that_are_no_certificates_are_passed_over(tmp_path: Path) -> None:
    fake = b"\x30\x82\x00\x20\x30\x82\x00\x1a\xa0\x03\x02\x01\x02" + bytes(23)
    (tmp_path / "vmlinux").write_bytes(fake_vmlinux(fake, RSA_CERT))
    assert [c.der for c in kernel_certificates(str(tmp_path / "vmlinux")).certificates] == [
        RSA_CERT
    ]


def test_unreadable_image(tmp_path: Path) -> None:
    with pytest.raises(KeysError) as caught:
        kernel_certificates(str(tmp_path / "missing"))
    assert str(caught.value) == f"{tmp_path}/missing: No such file or directory"


PROC_KEYS = b"""\
0b8bfc88 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
1c2d3e4f I------     1 perm 1f010000     0     0 asymmetri Build time autogenerated kernel key: 4789b66b7495bab1b6e248519cf1798f5b57e64d: X509.ecdsa 5b57e64d []
3768051d I--Q---     2 perm 1f3f0000     0 65534 keyring   _uid.0: empty
garbage line
"""  # noqa: E501


def test_proc_keys_are_listed_with_x509_names_and_key_ids() -> None:
    keys = parse_proc_keys(PROC_KEYS)
    assert [(k.serial, k.type, k.name, k.key_id) for k in keys] == [
        ("0b8bfc88", "keyring", None, None),
        ("1c2d3e4f", "asymmetric", "Build time autogenerated kernel key",
         "4789b66b7495bab1b6e248519cf1798f5b57e64d"),
        ("3768051d", "keyring", None, None),
    ]  # fmt: skip
    assert keys[2].gid == 65534


def lkm(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "lkm", "keys", *args], check=False, capture_output=True
    )


def test_command_line_text_json_pem_der(tmp_path: Path) -> None:
    image = tmp_path / "vmlinuz"
    image.write_bytes(bzimage(gzip.compress(fake_vmlinux(RSA_CERT, EC_CERT))))
    text = lkm("--kernel", str(image))
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"{image}: 2 certificate(s), kernel stored gzip\n".encode())
    assert b"\nsubject:    CN=Test EC key\n" in text.stdout
    document = validate_output("keys", lkm("--kernel", str(image), "--json").stdout)
    assert [c["subject"] for c in document["records"][0]["certificates"]] == [
        "CN=Test RSA key", "CN=Test EC key"]  # fmt: skip
    pem = lkm("--kernel", str(image), "--pem").stdout
    assert [c.public_bytes(serialization.Encoding.DER)
            for c in x509.load_pem_x509_certificates(pem)] == [RSA_CERT, EC_CERT]  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    der = lkm("--kernel", str(image), "--der", str(out))
    assert der.returncode == 0
    written = sorted(out.iterdir())
    assert sorted(p.read_bytes() for p in written) == sorted([RSA_CERT, EC_CERT])
    assert all(load_der(p.read_bytes()).key_id == p.stem for p in written)


def test_command_line_bad_input(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"hello")
    assert (
        lkm("--kernel", str(tmp_path / "text")).stderr
        == (
            f"lkm keys: ERROR: {tmp_path}/text: not a kernel image (no ELF header and no bzImage "
            "boot header)\n"
        ).encode()
    )
    (tmp_path / "empty").write_bytes(fake_vmlinux())
    none = lkm("--kernel", str(tmp_path / "empty"))
    message = f"lkm keys: ERROR: {tmp_path}/empty: no certificates in this kernel image\n"
    assert (none.returncode, none.stderr) == (1, message.encode())
    assert lkm("--pem").stderr == (
        b"lkm keys: ERROR: --pem and --der need --kernel: the running kernel does not give its "
        b"certificates back\n"
    )
    assert lkm("stray").returncode == 1


def _keys_on(procfs: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``lkm keys ARGS`` on a system whose /proc is ``procfs``, in a process of its own."""
    code = (
        "import sys; from lkm.cli.keys import main; from lkm.system import System; "
        f"sys.exit(main({list(args)!r}, system=System(procfs={str(procfs)!r})))"
    )
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)


def test_running_kernel_listing_reads_the_given_proc(tmp_path: Path) -> None:
    (tmp_path / "keys").write_bytes(PROC_KEYS)
    captured = _keys_on(tmp_path, "--json")
    document = validate_output("keys", captured.stdout)
    assert [r["kind"] for r in document["records"]] == ["proc-key"] * 3
    assert json.loads(captured.stdout)["schema"] == "lkm/keys/1"
    text = _keys_on(tmp_path).stdout.decode()
    assert text.splitlines()[1] == (
        "1c2d3e4f asymmetric Build time autogenerated kernel key: "
        "4789b66b7495bab1b6e248519cf1798f5b57e64d: X509.ecdsa 5b57e64d []"
    )
    missing = _keys_on(tmp_path / "none")
    assert missing.returncode == 1
    assert missing.stderr.decode() == (
        f"lkm keys: ERROR: could not read {tmp_path}/none/keys: No such file or directory\n"
    )
