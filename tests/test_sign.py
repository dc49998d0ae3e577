"""``lkm sign``: signatures in the kernel's format with hand-made keys (read back by lkm's parser
and checked with ``cryptography``), compressed modules, the bad input and its exact lines, and
files that are replaced whole or left alone."""

from __future__ import annotations

import gzip
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from lkm.compress import Compression, compress, decompress, detect
from lkm.errors import ElfError, SignatureError
from lkm.sign import HASHES, SignError, load_signer, sign_file, sign_module
from lkm.signature import MAGIC, find_signature
from support.kernel_images import make_certificate
from support.schemas import validate_output
from support.signatures import UNSIGNED, integer, name, oid, seq, set_, tlv

_DIGESTS = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "sha3-256": hashes.SHA3_256(),
    "sha3-384": hashes.SHA3_384(),
    "sha3-512": hashes.SHA3_512(),
}


def pem_key(key: object, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def pem_certificate(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


RSA_KEY = rsa.generate_private_key(65537, 2048)
RSA_CERT = make_certificate("lkm rsa signer", RSA_KEY, 0x1234ABCD)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
EC_CERT = make_certificate("lkm ec signer", EC_KEY, 0x80)  # a serial needing a leading zero


def content_and_blob(signed: bytes) -> tuple[bytes, bytes]:
    length, signature = find_signature(signed, strict=True)
    assert signature is not None
    sig_len = int.from_bytes(signed[-len(MAGIC) - 4 : -len(MAGIC)], "big")
    return signed[:length], signed[length : length + sig_len]


@pytest.mark.parametrize("hash_", list(HASHES))
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_the_signature_reads_back_and_verifies(kind: str, hash_: str) -> None:
    key, cert = (RSA_KEY, RSA_CERT) if kind == "rsa" else (EC_KEY, EC_CERT)
    signed = sign_module(UNSIGNED, pem_key(key), cert, hash_)
    # The kernel's struct: PKCS#7 id type, every other field 0, the blob's length.
    assert signed[-len(MAGIC) - 12 : -len(MAGIC) - 4] == b"\0\0\x02\0\0\0\0\0"
    assert signed.endswith(MAGIC)
    content, _blob = content_and_blob(signed)
    assert content == UNSIGNED
    _, signature = find_signature(signed, strict=True)
    assert signature is not None
    assert signature.modinfo_fields()[:4] == (
        ("sig_id", "PKCS#7"),
        ("signer", f"lkm {kind} signer"),
        ("sig_key", "12:34:AB:CD" if kind == "rsa" else "80"),
        ("sig_hashalgo", hash_),
    )
    public = x509.load_der_x509_certificate(cert).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature.signature, UNSIGNED, padding.PKCS1v15(), _DIGESTS[hash_])
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature.signature, UNSIGNED, ec.ECDSA(_DIGESTS[hash_]))


def test_the_pkcs7_is_the_structure_sign_file_writes() -> None:
    """Written independently here: OpenSSL's CMS without certificates or signed attributes,
    digest algorithms without parameters, RSA named rsaEncryption with a NULL parameter."""
    signed = sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT, "sha512")
    _content, blob = content_and_blob(signed)
    sha512 = seq(oid("2.16.840.1.101.3.4.2.3"))
    value = RSA_KEY.sign(UNSIGNED, padding.PKCS1v15(), hashes.SHA512())
    issuer = name(("2.5.4.3", 0x0C, b"lkm rsa signer"))
    signer_info = seq(
        integer(1),
        seq(issuer, integer(0x1234ABCD)),
        sha512,
        seq(oid("1.2.840.113549.1.1.1"), b"\x05\x00"),
        tlv(0x04, value),
    )
    signed_data = seq(integer(1), set_(sha512), seq(oid("1.2.840.113549.1.7.1")), set_(signer_info))
    assert blob == seq(oid("1.2.840.113549.1.7.2"), tlv(0xA0, signed_data))
    assert sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT, "sha512") == signed


def test_key_and_certificate_in_one_pem_and_a_pem_certificate() -> None:
    both = pem_key(RSA_KEY) + pem_certificate(RSA_CERT)
    assert sign_module(UNSIGNED, both, both) == sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT)


def test_an_encrypted_key_takes_its_password() -> None:
    locked = pem_key(RSA_KEY, b"secret")
    expected = sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT)
    assert sign_module(UNSIGNED, locked, RSA_CERT, password=b"secret") == expected


@pytest.mark.parametrize("method", [Compression.XZ, Compression.ZSTD, Compression.GZIP])
def test_a_compressed_module_is_signed_inside_and_compressed_the_same_way(
    method: Compression,
) -> None:
    packed = compress(UNSIGNED, method)
    assert detect(packed) is method
    signed = sign_module(packed, pem_key(RSA_KEY), RSA_CERT)
    assert detect(signed) is method
    assert decompress(signed) == sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT)
    if method is Compression.XZ:
        # Stream flags: CRC32, as the kernel's build checks modules (xz --check=crc32).
        assert signed[6:8] == b"\0\x01"
        assert lzma.decompress(signed) == decompress(signed)
    elif method is Compression.ZSTD:
        assert zstandard.ZstdDecompressor().decompress(signed) == decompress(signed)
    else:
        assert gzip.decompress(signed) == decompress(signed)


def test_replace_gives_what_signing_the_unsigned_module_gives() -> None:
    first = sign_module(UNSIGNED, pem_key(EC_KEY), EC_CERT, "sha384")
    again = sign_module(first, pem_key(RSA_KEY), RSA_CERT, "sha256", replace=True)
    assert again == sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT, "sha256")
    packed = compress(first, Compression.ZSTD)
    replaced = sign_module(packed, pem_key(RSA_KEY), RSA_CERT, replace=True)
    assert decompress(replaced) == again


def _bad_inputs() -> list[tuple[bytes, bytes, str]]:
    return [
        (b"hello", RSA_CERT, "key: no PEM private key in this file"),
        (pem_key(RSA_KEY, b"pw"), RSA_CERT,
         "key: the private key is encrypted (KBUILD_SIGN_PIN gives its password)"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", RSA_CERT,
         "key: unreadable PEM private key"),
        (pem_key(ed25519.Ed25519PrivateKey.generate()), RSA_CERT,
         "key: the kernel checks RSA and ECDSA module signatures only"),
        (pem_key(EC_KEY), RSA_CERT,
         "key: the private key does not match the certificate certificate"),
    ]  # fmt: skip


@pytest.mark.parametrize(("key", "cert", "message"), _bad_inputs())
def test_bad_keys_are_refused_in_one_line(key: bytes, cert: bytes, message: str) -> None:
    with pytest.raises(SignError) as err:
        load_signer(key, cert)
    assert str(err.value) == message


def test_bad_certificates_are_refused_in_one_line() -> None:
    with pytest.raises(SignError) as err:
        load_signer(pem_key(RSA_KEY), b"\x30\x03\x02\x01\x01", certificate_name="c.der")
    assert str(err.value).startswith("c.der: not an X.509 certificate in PEM or DER (")
    with pytest.raises(SignError) as err:
        load_signer(pem_key(RSA_KEY), b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----")
    assert str(err.value).startswith("certificate: not an X.509 certificate in PEM or DER (")


def test_bad_modules_are_refused_with_the_reason() -> None:
    signer = load_signer(pem_key(RSA_KEY), RSA_CERT)
    signed = signer.sign_module(UNSIGNED)
    with pytest.raises(SignError) as err:
        signer.sign_module(signed, path="m.ko")
    assert str(err.value) == "m.ko: already signed (--replace replaces the signature)"
    with pytest.raises(ElfError) as elf:
        signer.sign_module(UNSIGNED[:200], path="m.ko")
    assert str(elf.value) == (
        "m.ko: section header table of 6 entries at 136 ends at 520, beyond the end of the file "
        "(200 bytes) (at byte 0x28)"
    )
    with pytest.raises(ElfError) as elf:
        signer.sign_module(b"not a module at all", path="m.ko")
    assert (
        str(elf.value)
        == "m.ko: not an ELF file: expected magic 7f454c46, found 6e6f7420 (at byte 0x0)"
    )
    # A signature whose length reaches before the start of the file.
    broken = signed[: -len(MAGIC) - 4] + (10**6).to_bytes(4, "big") + MAGIC
    with pytest.raises(SignatureError) as sig:
        signer.sign_module(broken, path="m.ko", replace=True)
    assert str(sig.value).startswith("m.ko: expected at most ")
    with pytest.raises(SignError) as err:
        signer.sign_module(UNSIGNED, "md5")
    assert str(err.value) == (
        "unknown hash algorithm 'md5' (expected one of sha224, sha256, sha384, sha512, "
        "sha3-256, sha3-384, sha3-512)"
    )


def test_sign_file_replaces_the_file_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    module = tmp_path / "m.ko.xz"
    module.write_bytes(compress(UNSIGNED, Compression.XZ))
    module.chmod(0o640)
    link = tmp_path / "link.ko.xz"
    link.symlink_to(module.name)
    signer = load_signer(pem_key(EC_KEY), EC_CERT)
    record = sign_file(str(link), signer, "sha3-256")
    assert link.is_symlink()
    assert (module.stat().st_mode & 0o7777) == 0o640
    assert record._replace(key_id=None) == (
        str(link), "xz", "sha3-256", "lkm ec signer", "80", None, False)  # fmt: skip
    assert (
        record.key_id
        == x509.load_der_x509_certificate(EC_CERT)
        .extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        .value.digest.hex()
    )
    before = module.read_bytes()
    with pytest.raises(SignError):
        sign_file(str(module), signer)
    assert module.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.ko.xz", "m.ko.xz"]
    assert sign_file(str(module), signer, replace=True).replaced


def test_a_failed_write_leaves_the_module_and_no_temporary_file(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """A file size limit makes the write fail half way (for root too, unlike permissions)."""
    import resource

    module = files["a.ko"]
    limit = len(UNSIGNED) + 100

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "lkm", "sign", "--key", str(files["rsa.pem"]), "--cert",
         str(files["rsa.der"]), str(module)],
        capture_output=True, preexec_fn=small_files, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr.decode()) == (
        1, f"lkm sign: ERROR: {module}: File too large\n")  # fmt: skip
    assert module.read_bytes() == UNSIGNED
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def lkm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "lkm", "sign", *args],
        check=False,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "rsa.pem": pem_key(RSA_KEY),
        "rsa.der": RSA_CERT,
        "ec.pem": pem_key(EC_KEY) + pem_certificate(EC_CERT),
        "locked.pem": pem_key(RSA_KEY, b"1234"),
        "a.ko": UNSIGNED,
        "b.ko.zst": compress(UNSIGNED, Compression.ZSTD),
        "cut.ko": UNSIGNED[:100],
    }
    for file_name, data in made.items():
        (tmp_path / file_name).write_bytes(data)
    return {file_name: tmp_path / file_name for file_name in made}


def test_command_line_text_and_json(files: dict[str, Path]) -> None:
    a, b = str(files["a.ko"]), str(files["b.ko.zst"])
    key_id = (
        x509.load_der_x509_certificate(RSA_CERT)
        .extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        .value.digest.hex()
    )
    done = lkm("--key", str(files["rsa.pem"]), "--cert", str(files["rsa.der"]), a, b)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == (
        f"{a}: signed (sha256) by lkm rsa signer, key id {key_id}\n"
        f"{b}: signed (sha256, zstd) by lkm rsa signer, key id {key_id}\n"
    )
    assert files["a.ko"].read_bytes() == sign_module(UNSIGNED, pem_key(RSA_KEY), RSA_CERT)
    ec_pem = str(files["ec.pem"])
    again = lkm("--key", ec_pem, "--cert", ec_pem, "--hash", "sha384", "--json", a, b)
    assert again.returncode == 1
    document = validate_output("sign", again.stdout)
    assert document["records"] == [
        {"file": a, "error": f"{a}: already signed (--replace replaces the signature)"},
        {"file": b, "error": f"{b}: already signed (--replace replaces the signature)"},
    ]
    replaced = lkm("--key", ec_pem, "--cert", ec_pem, "--hash", "sha384", "--replace", "--json", b)
    record = validate_output("sign", replaced.stdout)["records"][0]
    assert (replaced.returncode, record["signer"], record["serial"], record["replaced"]) == (
        0, "lkm ec signer", "80", True)  # fmt: skip


def test_command_line_bad_input_in_one_line(files: dict[str, Path]) -> None:
    rsa_pem, rsa_der, ec_pem = str(files["rsa.pem"]), str(files["rsa.der"]), str(files["ec.pem"])
    a, cut = str(files["a.ko"]), str(files["cut.ko"])

    def error(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        done = lkm(*args, env=env)
        assert done.stdout == b""
        return done.returncode, done.stderr.decode()

    assert error("--key", ec_pem, "--cert", rsa_der, a) == (
        1, f"lkm sign: ERROR: {ec_pem}: the private key does not match the certificate "
        f"{rsa_der}\n")  # fmt: skip
    assert files["a.ko"].read_bytes() == UNSIGNED  # refused before anything is written
    assert error("--key", rsa_der, "--cert", rsa_der, a) == (
        1, f"lkm sign: ERROR: {rsa_der}: no PEM private key in this file\n")  # fmt: skip
    status, line = error("--key", rsa_pem, "--cert", rsa_pem, a)
    assert status == 1
    assert line.startswith(f"lkm sign: ERROR: {rsa_pem}: not an X.509 certificate in PEM or DER (")
    assert line.count("\n") == 1
    locked = str(files["locked.pem"])
    assert error("--key", locked, "--cert", rsa_der, a) == (
        1, f"lkm sign: ERROR: {locked}: the private key is encrypted (KBUILD_SIGN_PIN gives its "
        "password)\n")  # fmt: skip
    assert error("--key", locked, "--cert", rsa_der, a, env={"KBUILD_SIGN_PIN": "0000"}) == (
        1, f"lkm sign: ERROR: {locked}: wrong password for the private key\n")  # fmt: skip
    assert error("--key", rsa_pem, "--cert", rsa_der, "--hash", "sha1", a) == (
        1, "lkm sign: ERROR: unknown hash algorithm 'sha1' (expected one of sha224, sha256, "
        "sha384, sha512, sha3-256, sha3-384, sha3-512)\n")  # fmt: skip
    assert error("--key", rsa_pem, a) == (1, "lkm sign: ERROR: --key and --cert are both needed\n")
    assert error("--key", rsa_pem, "--cert", rsa_der) == (
        1, "lkm sign: ERROR: no module file given\n")  # fmt: skip
    missing = str(files["a.ko"].parent / "missing.pem")
    assert error("--key", missing, "--cert", rsa_der, a) == (
        1, f"lkm sign: ERROR: {missing}: No such file or directory\n")  # fmt: skip
    assert error("--key", rsa_pem, "--cert", rsa_der, cut) == (
        1, f"lkm sign: ERROR: {cut}: section header table of 6 entries at 136 ends at 520, "
        "beyond the end of the file (100 bytes) (at byte 0x28)\n")  # fmt: skip
    assert files["cut.ko"].read_bytes() == UNSIGNED[:100]
    assert sorted(p.name for p in files["a.ko"].parent.iterdir()) == sorted(files)
    # Locked key with the right pin signs as the plain key does.
    ok = lkm("--key", locked, "--cert", rsa_der, a, env={"KBUILD_SIGN_PIN": "1234"})
    assert ok.returncode == 0, ok.stderr
