"""``lkm verify`` on small modules signed here with hand-made RSA and ECDSA keys: every digest
the kernel takes, signers by issuer and serial or by key id, each kind of damage with its exact
verdict, and agreement with ``openssl cms -verify`` on the same bytes."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lkm.signature import MAGIC
from lkm.verify import Verdict, verify
from support import signatures as der
from support.elfbuild import elf64, modinfo_section
from support.kernel_images import make_certificate
from support.schemas import validate_output

MODULE = elf64(
    {
        ".modinfo": modinfo_section(b"name=tiny", b"license=GPL", b"vermagic=6.12.0 SMP"),
        ".text": bytes(range(256)) * 8,
    }
)
# The struct sign-file appends: algo, hash, id_type PKCS#7, signer and key id lengths 0.
TRAILER = struct.Struct(">BBBBB3xI")


class Signer(NamedTuple):
    key: Path
    cert: Path  # PEM
    der: Path  # the same certificate as DER
    subject: str


def _signer(directory: Path, name: str, key: object, serial: int) -> Signer:
    cert = x509.load_der_x509_certificate(make_certificate(name, key, serial, days=3650))
    stem = directory / name.replace(" ", "-")
    key_path, pem, der = (stem.with_suffix(s) for s in (".key", ".pem", ".der"))
    key_path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return Signer(key_path, pem, der, f"CN={name}")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signer]:
    directory = tmp_path_factory.mktemp("keys")
    return {
        "rsa": _signer(directory, "Test RSA key", rsa.generate_private_key(65537, 2048), 0x5A17),
        "p256": _signer(directory, "Test P-256 key", ec.generate_private_key(ec.SECP256R1()), 7),
        "p384": _signer(
            directory, "Test P-384 key", ec.generate_private_key(ec.SECP384R1()), 0x00C0FFEE
        ),
        "other": _signer(directory, "Other key", rsa.generate_private_key(65537, 2048), 0x5A17),
    }


def pkcs7(signer: Signer, content: bytes, md: str, *, keyid: bool = False,
          attributes: bool = False) -> bytes:  # fmt: skip
    """A detached CMS signature of ``content`` as sign-file makes it (openssl cms)."""
    command = ["openssl", "cms", "-sign", "-binary", "-outform", "DER", "-nocerts", "-md", md,
               "-signer", str(signer.cert), "-inkey", str(signer.key)]  # fmt: skip
    command += ["-keyid"] if keyid else []
    command += ["-nosmimecap"] if attributes else ["-noattr"]
    return subprocess.run(command, input=content, capture_output=True, check=True).stdout


def handmade(signer: Signer, content: bytes, digest: str, signature_oid: str) -> bytes:
    """A detached SignedData built here and signed with cryptography: for the combinations
    OpenSSL 3.0's cms cannot make (ECDSA with SHA-3) or that the kernel refuses."""
    key = serialization.load_pem_private_key(signer.key.read_bytes(), None)
    cert = x509.load_der_x509_certificate(signer.der.read_bytes())
    algorithm = {"sha3-384": (hashes.SHA3_384(), "2.16.840.1.101.3.4.2.9"),
                 "sha3-256": (hashes.SHA3_256(), "2.16.840.1.101.3.4.2.8"),
                 "sha256": (hashes.SHA256(), der.SHA256)}[digest]  # fmt: skip
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.sign(content, ec.ECDSA(algorithm[0]))
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        value = key.sign(content, padding.PKCS1v15(), algorithm[0])  # type: ignore[union-attr]
    sid = der.seq(cert.issuer.public_bytes(), der.integer(cert.serial_number))
    info = der.seq(der.integer(1), sid, der.seq(der.oid(algorithm[1])),
                   der.seq(der.oid(signature_oid)), der.tlv(4, value))  # fmt: skip
    body = der.seq(der.integer(1), der.set_(der.seq(der.oid(algorithm[1]))),
                   der.seq(der.oid("1.2.840.113549.1.7.1")), der.set_(info))  # fmt: skip
    return der.seq(der.oid(der.SIGNED_DATA), der.tlv(0xA0, body))


def signed(blob: bytes, content: bytes = MODULE) -> bytes:
    return content + blob + TRAILER.pack(0, 0, 2, 0, 0, len(blob)) + MAGIC


def openssl_accepts(content: bytes, blob: bytes, cert: Path, tmp: Path) -> bool:
    (tmp / "content").write_bytes(content)
    (tmp / "sig").write_bytes(blob)
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify", "-in",
         str(tmp / "sig"), "-content", str(tmp / "content"), "-certfile", str(cert),
         "-out", "/dev/null"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lkm", "verify", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def check(tmp: Path, data: bytes, *certs: Signer, name: str = "m.ko") -> tuple[int, str, dict]:
    """lkm verify of ``data`` (in this process, as the command line does): exit status, the
    text it prints, the record as JSON (validated against the schema)."""
    from lkm.certificates import load_file
    from lkm.cli.output import Printer
    from lkm.cli.verify import _text
    from lkm.jsonable import dumps
    from lkm.verify import worst_exit_status

    module = tmp / name
    module.write_bytes(data)
    trusted = [c for signer in certs for c in load_file(signer.cert.read_bytes())]
    records = verify([str(module)], trusted, jobs=1)
    out, err = io.BytesIO(), io.BytesIO()
    _text(Printer("lkm verify", stdout=out, stderr=err), records)  # type: ignore[arg-type]
    document = validate_output("verify", dumps("verify", records))
    assert len(document["records"]) == 1
    text = (out.getvalue() + err.getvalue()).decode()
    return worst_exit_status(records), text, document["records"][0]


# (key, openssl digest, name lkm reports, signature algorithm lkm reports)
CASES = [
    ("rsa", "sha256", "sha256", "rsaEncryption"),
    ("rsa", "sha384", "sha384", "rsaEncryption"),
    ("rsa", "sha512", "sha512", "rsaEncryption"),
    ("rsa", "sha3-256", "sha3-256", "rsaEncryption"),
    ("rsa", "sha3-512", "sha3-512", "rsaEncryption"),
    ("rsa", "sha1", "sha1", "rsaEncryption"),
    ("rsa", "sha224", "sha224", "rsaEncryption"),
    ("p256", "sha256", "sha256", "ecdsa-with-SHA256"),
    ("p384", "sha384", "sha384", "ecdsa-with-SHA384"),
    ("p384", "sha512", "sha512", "ecdsa-with-SHA512"),
    ("rsa", "sha3-384", "sha3-384", "rsaEncryption"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_signatures_the_kernel_takes_are_valid_and_openssl_agrees(
    keys: dict[str, Signer], case: tuple[str, str, str, str], tmp_path: Path
) -> None:
    key, md, hash_name, algorithm = case
    signer = keys[key]
    blob = pkcs7(signer, MODULE, md)
    status, text, record = check(tmp_path, signed(blob), signer)
    assert (status, record["verdict"], record["reason"]) == (0, "valid", None)
    assert (record["hash"], record["algorithm"]) == (hash_name, algorithm)
    assert record["signer"] == signer.subject.removeprefix("CN=")
    assert record["certificate"] == signer.subject
    cert = x509.load_der_x509_certificate(signer.der.read_bytes())
    assert record["serial"] == format(cert.serial_number, "x")
    skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert record["key_id"] == skid.hex()
    assert text.startswith(f"{tmp_path / 'm.ko'}: valid\n  signer:      {record['signer']}\n")
    assert openssl_accepts(MODULE, blob, signer.cert, tmp_path)


def test_signer_named_by_key_id_is_found_by_it(keys: dict[str, Signer], tmp_path: Path) -> None:
    signer = keys["p256"]
    blob = pkcs7(signer, MODULE, "sha256", keyid=True)
    status, _text, record = check(tmp_path, signed(blob), keys["other"], signer)
    assert (status, record["verdict"], record["serial"], record["signer"]) == (0, "valid", None,
                                                                               None)  # fmt: skip
    cert = x509.load_der_x509_certificate(signer.der.read_bytes())
    skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert record["key_id"] == skid.hex()
    status, _text, record = check(tmp_path, signed(blob), keys["other"])
    assert (status, record["verdict"]) == (1, "unknown-key")
    assert record["reason"] == f"no trusted certificate has key id {skid.hex()}"
    assert not openssl_accepts(MODULE, blob, keys["other"].cert, tmp_path)


def test_flipped_bytes_in_the_content_and_the_signature(
    keys: dict[str, Signer], tmp_path: Path
) -> None:
    for key, reason in (
        ("rsa", "digest mismatch: the signature is over other content than the module's"),
        ("p384", "bad signature: the content or the signature was changed, or another key "
                 "signed it"),
    ):  # fmt: skip
        signer = keys[key]
        blob = pkcs7(signer, MODULE, "sha256")
        changed = bytearray(MODULE)
        changed[len(MODULE) // 2] ^= 0x01
        status, text, record = check(tmp_path, signed(blob, bytes(changed)), signer)
        assert (status, record["verdict"], record["reason"]) == (2, "invalid", reason)
        assert text.startswith(f"{tmp_path / 'm.ko'}: invalid: {reason}\n")
        assert not openssl_accepts(bytes(changed), blob, signer.cert, tmp_path)
    # The RSA signature value is the last thing in the PKCS#7.
    blob = bytearray(pkcs7(keys["rsa"], MODULE, "sha256"))
    blob[-3] ^= 0x40
    status, _text, record = check(tmp_path, signed(bytes(blob)), keys["rsa"])
    assert (status, record["verdict"], record["reason"]) == (
        2, "invalid", "bad signature: the key does not open it (the signature was changed, or "
        "another key made it)")  # fmt: skip
    assert not openssl_accepts(MODULE, bytes(blob), keys["rsa"].cert, tmp_path)


def test_another_key_with_the_same_issuer_and_serial_is_a_bad_signature(
    keys: dict[str, Signer], tmp_path: Path
) -> None:
    # "Other key" has its own name: found by neither issuer nor key id, it is unknown.
    blob = pkcs7(keys["rsa"], MODULE, "sha256")
    status, text, record = check(tmp_path, signed(blob), keys["other"])
    assert (status, record["verdict"], record["reason"]) == (
        1,
        "unknown-key",
        "no trusted certificate has issuer 'Test RSA key' and serial 5a17",
    )
    assert text == (f"{tmp_path / 'm.ko'}: unknown-key: no trusted certificate has issuer "
                    "'Test RSA key' and serial 5a17\n  signer:      Test RSA key\n"
                    "  serial:      5a17\n  hash:        sha256\n"
                    "  algorithm:   rsaEncryption\n")  # fmt: skip
    assert not openssl_accepts(MODULE, blob, keys["other"].cert, tmp_path)


def test_trailer_damage(keys: dict[str, Signer], tmp_path: Path) -> None:
    blob = pkcs7(keys["rsa"], MODULE, "sha256")
    good = signed(blob)
    struct_at = len(good) - len(MAGIC) - TRAILER.size
    expected = [
        (2, 1, "unsupported", "signature id type X509: the kernel checks PKCS#7 signatures only"),
        (2, 0, "unsupported", "signature id type PGP: the kernel checks PKCS#7 signatures only"),
        (0, 1, "invalid", "the PKCS#7 signature struct has non-zero fields other than the length"),
        (3, 9, "invalid", "the PKCS#7 signature struct has non-zero fields other than the length"),
        (6, 1, "invalid", "the PKCS#7 signature struct has non-zero fields other than the length"),
    ]
    for field, value, verdict, reason in expected:
        data = bytearray(good)
        data[struct_at + field] = value
        status, _text, record = check(tmp_path, bytes(data), keys["rsa"])
        assert (status, record["verdict"], record["reason"]) == (2, verdict, reason)
    data = bytearray(good)
    struct.pack_into(">I", data, struct_at + 8, len(good))
    status, _text, record = check(tmp_path, bytes(data), keys["rsa"])
    assert (record["verdict"], record["reason"]) == ("invalid", (
        f"the signature length {len(good)} is more than the {struct_at} bytes before the "
        "signature struct"))  # fmt: skip
    # One byte of the magic changed: no signature at all, as the kernel sees it.
    status, text, record = check(tmp_path, good[:-2] + b"X\n", keys["rsa"])
    assert (status, record["verdict"], record["reason"]) == (1, "unsigned", None)
    assert text == f"{tmp_path / 'm.ko'}: unsigned\n"


def test_unsigned_garbled_and_truncated(keys: dict[str, Signer], tmp_path: Path) -> None:
    status, text, record = check(tmp_path, MODULE, keys["rsa"])
    assert (status, text, record["verdict"]) == (1, f"{tmp_path / 'm.ko'}: unsigned\n",
                                                 "unsigned")  # fmt: skip
    blob = pkcs7(keys["rsa"], MODULE, "sha256")
    garbled = bytearray(blob)
    garbled[0] = 0x31  # a SET where the ContentInfo SEQUENCE is
    status, text, record = check(tmp_path, signed(bytes(garbled)), keys["rsa"])
    offset = len(MODULE)
    reason = (f"unreadable PKCS#7: expected a ContentInfo SEQUENCE (universal tag 16), found "
              f"class 0x0 tag 17 (at byte {offset:#x})")  # fmt: skip
    assert (status, record["verdict"], record["reason"]) == (2, "invalid", reason)
    assert not openssl_accepts(MODULE, bytes(garbled), keys["rsa"].cert, tmp_path)
    # Cut inside the signature: the trailer is gone, so the kernel sees an unsigned module.
    whole = signed(blob)
    status, text, record = check(tmp_path, whole[: len(MODULE) + 100], keys["rsa"])
    assert (status, record["verdict"]) == (1, "unsigned")
    # Bytes lost inside the signature with the trailer kept: the PKCS#7 starts too early.
    cut = whole[: len(MODULE) + 40] + whole[len(MODULE) + 50 :]
    status, text, record = check(tmp_path, cut, keys["rsa"])
    assert (status, record["verdict"]) == (2, "invalid")
    assert record["reason"].startswith("unreadable PKCS#7: expected a ContentInfo SEQUENCE")


def test_authenticated_attributes_are_checked_and_refused(
    keys: dict[str, Signer], tmp_path: Path
) -> None:
    signer = keys["p256"]
    blob = pkcs7(signer, MODULE, "sha256", attributes=True)
    status, _text, record = check(tmp_path, signed(blob), signer)
    assert (status, record["verdict"], record["reason"]) == (2, "invalid", (
        "the signer has authenticatedAttributes, which the kernel refuses in a module "
        "signature (the signature itself is good)"))  # fmt: skip
    assert openssl_accepts(MODULE, blob, signer.cert, tmp_path)  # CMS itself allows them
    changed = MODULE[:-1] + bytes([MODULE[-1] ^ 1])
    status, _text, record = check(tmp_path, signed(blob, changed), signer)
    assert (status, record["verdict"], record["reason"]) == (
        2,
        "invalid",
        ("digest mismatch: the messageDigest attribute is not the module content's digest"),
    )
    assert not openssl_accepts(changed, blob, signer.cert, tmp_path)


def test_digests_the_kernel_does_not_take_are_unsupported(
    keys: dict[str, Signer], tmp_path: Path
) -> None:
    blob = pkcs7(keys["rsa"], MODULE, "md5")
    status, _text, record = check(tmp_path, signed(blob), keys["rsa"])
    assert (status, record["verdict"], record["reason"]) == (
        2,
        "unsupported",
        "digest md5 is not one the kernel takes",
    )


@pytest.mark.parametrize(("key", "digest"), [("p384", "sha3-384"), ("p256", "sha3-256")])
def test_ecdsa_with_sha3(keys: dict[str, Signer], key: str, digest: str, tmp_path: Path) -> None:
    oid = {"sha3-256": "2.16.840.1.101.3.4.3.10", "sha3-384": "2.16.840.1.101.3.4.3.11"}[digest]
    blob = handmade(keys[key], MODULE, digest, oid)
    status, _text, record = check(tmp_path, signed(blob), keys[key])
    assert (status, record["verdict"], record["hash"], record["algorithm"]) == (
        0,
        "valid",
        digest,
        oid,
    )
    changed = bytes([MODULE[0] ^ 0x80]) + MODULE[1:]
    status, _text, record = check(tmp_path, signed(blob, changed), keys[key])
    assert (status, record["verdict"]) == (2, "invalid")


def test_rsa_named_with_its_digest_is_unsupported(keys: dict[str, Signer], tmp_path: Path) -> None:
    # The kernel takes RSA in a signer info only as rsaEncryption, as sign-file writes it.
    blob = handmade(keys["rsa"], MODULE, "sha256", "1.2.840.113549.1.1.11")
    status, _text, record = check(tmp_path, signed(blob), keys["rsa"])
    assert (status, record["verdict"], record["reason"]) == (
        2,
        "unsupported",
        ("signature algorithm sha256WithRSAEncryption is not one the kernel takes"),
    )
    assert openssl_accepts(MODULE, blob, keys["rsa"].cert, tmp_path)  # where openssl differs
    blob = handmade(keys["rsa"], MODULE, "sha256", "1.2.840.113549.1.1.1")
    assert check(tmp_path, signed(blob), keys["rsa"])[2]["verdict"] == "valid"
    assert openssl_accepts(MODULE, blob, keys["rsa"].cert, tmp_path)


@pytest.mark.parametrize("method", ["xz", "gzip", "zstd"])
def test_compressed_modules_are_verified_decompressed(
    keys: dict[str, Signer], method: str, tmp_path: Path
) -> None:
    data = signed(pkcs7(keys["p384"], MODULE, "sha384"))
    compress = {"xz": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ), "gzip": gzip.compress,
                "zstd": zstandard.ZstdCompressor().compress}[method]  # fmt: skip
    name = f"m.ko.{ {'gzip': 'gz', 'zstd': 'zst'}.get(method, method) }"
    status, _text, record = check(tmp_path, compress(data), keys["p384"], name=name)
    assert (status, record["verdict"], record["name"]) == (0, "valid", "m")
    status, text, record = check(tmp_path, compress(data)[:-20], keys["p384"], name=name)
    assert (status, record["verdict"], record["filename"]) == (3, "error", str(tmp_path / name))
    assert text == f"lkm verify: ERROR: {record['error']}\n"
    assert record["error"].startswith(f"{tmp_path / name}: ")


def test_bad_certificates_and_missing_files(keys: dict[str, Signer], tmp_path: Path) -> None:
    module = tmp_path / "m.ko"
    module.write_bytes(signed(pkcs7(keys["rsa"], MODULE, "sha256")))
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(keys["rsa"].key.read_bytes())  # a private key, not a certificate
    done = run(f"--cert={wrong}", str(module))
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (f"lkm verify: ERROR: {wrong}: expected X.509 certificates in PEM or "
                           "DER, found a PEM PRIVATE KEY\n")  # fmt: skip
    wrong.write_bytes(b"\x30\x03\x02\x01\x05")  # DER, but an INTEGER in a SEQUENCE
    done = run(f"--cert={wrong}", str(module))
    assert (done.returncode, done.stderr) == (
        3,
        f"lkm verify: ERROR: {wrong}: expected X.509 certificates in PEM or DER, found neither\n",
    )
    done = run(f"--cert={tmp_path / 'none.pem'}", str(module))
    assert (done.returncode, done.stderr) == (
        3, f"lkm verify: ERROR: could not read '{tmp_path / 'none.pem'}': No such file or "
        "directory\n")  # fmt: skip
    done = run(f"--cert={keys['rsa'].der}", str(module), str(tmp_path / "gone.ko"))
    assert done.returncode == 3
    assert done.stdout.startswith(f"{module}: valid\n")
    assert done.stderr == (f"lkm verify: ERROR: could not read '{tmp_path / 'gone.ko'}': No "
                           "such file or directory\n")  # fmt: skip
    done = run("-b", str(tmp_path), "-k", "6.0.0-test", str(module))
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (f"lkm verify: ERROR: cannot read {tmp_path}/boot/vmlinuz-6.0.0-test: "
                           "give the certificates to trust with --cert or --kernel\n")  # fmt: skip
    done = run(f"--kernel={keys['rsa'].der}", str(module))
    assert done.returncode == 3
    assert done.stderr.startswith(f"lkm verify: ERROR: {keys['rsa'].der}: ")


def test_library_call_keeps_order_and_runs_in_a_pool(
    keys: dict[str, Signer], tmp_path: Path
) -> None:
    from lkm.certificates import load_file

    certs = load_file(keys["rsa"].cert.read_bytes())
    good = signed(pkcs7(keys["rsa"], MODULE, "sha256"))
    paths = []
    for number in range(40):
        path = tmp_path / f"m{number}.ko"
        path.write_bytes(good if number % 3 else MODULE)
        paths.append(str(path))
    pooled = verify(paths, certs, jobs=2)
    alone = verify(paths, certs, jobs=1)
    assert pooled == alone
    assert [r.verdict for r in pooled] == [
        Verdict.UNSIGNED if n % 3 == 0 else Verdict.VALID for n in range(40)
    ]
    assert json.loads(json.dumps([r.verdict.value for r in pooled]))[:2] == ["unsigned", "valid"]


@pytest.mark.parametrize("key", ["rsa", "p384"])
def test_modules_lkm_sign_makes_verify(keys: dict[str, Signer], key: str, tmp_path: Path) -> None:
    from lkm.sign import sign_module

    signer = keys[key]
    for digest in ("sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"):
        data = sign_module(MODULE, signer.key.read_bytes(), signer.der.read_bytes(), digest)
        status, _text, record = check(tmp_path, data, signer)
        assert (status, record["verdict"], record["hash"]) == (0, "valid", digest)
        status, _text, record = check(tmp_path, data, keys["other"])
        assert (status, record["verdict"]) == (1, "unknown-key")
