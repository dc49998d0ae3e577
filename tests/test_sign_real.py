"""``lkm sign`` against the kernel's own ``sign-file`` (Debian's linux-kbuild for the trixie
kernel, run in the kmod 34 chroot) on real trixie modules, with keys made as the kernel's build
makes them: RSA output byte for byte sign-file's, ECDSA output verified by OpenSSL and sign-file's
verified by lkm, and kmod 34's modinfo showing the same signature fields for both."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lkm.compress import decompress
from lkm.signature import find_signature
from support import signfile, world
from support.schemas import validate_output

pytestmark = pytest.mark.slow

# Small, middling and large modules of the trixie tree (each signed by Debian, xz-compressed).
MODULES = (
    "kernel/drivers/net/dummy.ko.xz",
    "kernel/fs/fat/vfat.ko.xz",
    "kernel/fs/ext4/ext4.ko.xz",
)
SIGNATURE_FIELDS = ("sig_id", "signer", "sig_key", "sig_hashalgo", "signature")

# The kernel build's certs/default_x509.genkey, with the name changed.
GENKEY = """\
[ req ]
default_bits = 4096
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
CN = lkm sign-file interop key

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


class World:
    """The scratch directory in the chroot, its keys and the unsigned modules."""

    def __init__(self, host: Path, inside: str, tool: str, modules: dict[str, bytes]) -> None:
        self.host, self.inside, self.tool, self.modules = host, inside, tool, modules

    def sign_file(self, hash_: str, key: str, cert: str, module: bytes, out: str) -> bytes:
        (self.host / out).write_bytes(module)
        signfile.chroot(
            self.tool,
            hash_,
            f"{self.inside}/{key}",
            f"{self.inside}/{cert}",
            f"{self.inside}/{out}",
        )
        return (self.host / out).read_bytes()

    def lkm_sign(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "lkm", "sign", *args], capture_output=True, check=False
        )

    def modinfo_fields(self, name: str) -> dict[str, bytes]:
        return {
            field: signfile.chroot("modinfo", "-F", field, f"{self.inside}/{name}").stdout
            for field in SIGNATURE_FIELDS
        }


@pytest.fixture(scope="module")
def interop(trixie: world.Tree) -> Iterator[World]:
    world.check_kmod_version()
    tool = signfile.sign_file()
    with signfile.scratch() as (host, inside):
        (host / "x509.genkey").write_text(GENKEY)
        req = ["openssl", "req", "-new", "-nodes", "-utf8", "-batch", "-x509", "-days", "36500",
               "-config", f"{inside}/x509.genkey", "-outform", "PEM"]  # fmt: skip
        signfile.chroot(
            *req, "-sha512", "-out", f"{inside}/rsa.pem", "-keyout", f"{inside}/rsa.pem"
        )
        signfile.chroot(*req, "-sha384", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:secp384r1", "-out", f"{inside}/ec.pem",
                        "-keyout", f"{inside}/ec.pem")  # fmt: skip
        for name in ("rsa", "ec"):
            signfile.chroot("openssl", "x509", "-in", f"{inside}/{name}.pem", "-outform", "DER",
                            "-out", f"{inside}/{name}.x509")  # fmt: skip
        modules = {}
        for path in MODULES:
            data = decompress((trixie.moddir / path).read_bytes())
            length, signature = find_signature(data, strict=True)
            assert signature is not None  # Debian signs its modules: lkm must strip that first
            modules[path] = data[:length]
        yield World(host, inside, tool, modules)


@pytest.mark.parametrize("hash_", ["sha256", "sha512", "sha384", "sha3-256"])
def test_rsa_output_is_sign_files_byte_for_byte(interop: World, hash_: str) -> None:
    for path, unsigned in interop.modules.items():
        expected = interop.sign_file(hash_, "rsa.pem", "rsa.x509", unsigned, "sign-file.ko")
        # lkm on the same unsigned module, with the key and certificate in one PEM.
        (interop.host / "lkm.ko").write_bytes(unsigned)
        pem = str(interop.host / "rsa.pem")
        done = interop.lkm_sign(
            "--key", pem, "--cert", pem, "--hash", hash_, str(interop.host / "lkm.ko")
        )
        assert done.returncode == 0, done.stderr
        assert (interop.host / "lkm.ko").read_bytes() == expected, path
        # lkm replacing Debian's own signature of the xz module gives the same module inside.
        packed = interop.host / "lkm.ko.xz"
        packed.write_bytes((world.tree("trixie-amd64").moddir / path).read_bytes())
        done = interop.lkm_sign("--key", pem, "--cert", str(interop.host / "rsa.x509"),
                                "--hash", hash_, "--replace", "--json", str(packed))  # fmt: skip
        assert done.returncode == 0, done.stderr
        record = validate_output("sign", done.stdout)["records"][0]
        assert (record["compression"], record["replaced"]) == ("xz", True)
        assert decompress(packed.read_bytes()) == expected, path
        theirs, ours = interop.modinfo_fields("sign-file.ko"), interop.modinfo_fields("lkm.ko.xz")
        assert ours == theirs
        assert theirs["sig_hashalgo"] == f"{hash_}\n".encode()
        assert record["signer"] == theirs["signer"].decode().rstrip("\n")
        sig_key = theirs["sig_key"].decode().replace("\n\t\t", "").strip()
        assert record["serial"] == sig_key.replace(":", "").lower()


def test_ecdsa_outputs_verify_on_the_other_side(interop: World) -> None:
    cert = x509.load_der_x509_certificate((interop.host / "ec.x509").read_bytes())
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    digests = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha3-512": hashes.SHA3_512()}
    for hash_, digest in digests.items():
        for path, unsigned in interop.modules.items():
            # sign-file's signature read by lkm (the fields modinfo shows) and verified.
            theirs = interop.sign_file(hash_, "ec.pem", "ec.x509", unsigned, "sign-file.ko")
            length, signature = find_signature(theirs, strict=True)
            assert signature is not None and length == len(unsigned)
            shown = interop.modinfo_fields("sign-file.ko")
            assert {k: f"{v}\n".encode() for k, v in signature.modinfo_fields()} == shown
            public.verify(signature.signature, unsigned, ec.ECDSA(digest))
            # lkm's signature verified by OpenSSL's CMS, and refused once one byte changes.
            (interop.host / "lkm.ko").write_bytes(unsigned)
            pem = str(interop.host / "ec.pem")
            done = interop.lkm_sign("--key", pem, "--cert", str(interop.host / "ec.x509"),
                                    "--hash", hash_, str(interop.host / "lkm.ko"))  # fmt: skip
            assert done.returncode == 0, done.stderr
            ours = (interop.host / "lkm.ko").read_bytes()
            length, mine = find_signature(ours, strict=True)
            assert mine is not None and ours[:length] == unsigned
            blob = ours[length : len(ours) - 40]
            (interop.host / "lkm.p7s").write_bytes(blob)
            (interop.host / "content").write_bytes(unsigned)
            verify = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                      f"{interop.inside}/lkm.p7s", "-content", f"{interop.inside}/content",
                      "-certfile", f"{interop.inside}/ec.x509", "-nointern", "-noverify",
                      "-out", "/dev/null"]  # fmt: skip
            good = signfile.chroot(*verify, check=False)
            assert (good.returncode, good.stderr) == (0, b"CMS Verification successful\n"), path
            changed = bytearray(unsigned)
            changed[len(changed) // 2] ^= 1
            (interop.host / "content").write_bytes(changed)
            assert signfile.chroot(*verify, check=False).returncode == 4
            # modinfo shows the same fields for both, but the signature value (ECDSA is random).
            ours_shown = interop.modinfo_fields("lkm.ko")
            assert {k: v for k, v in ours_shown.items() if k != "signature"} == {
                k: v for k, v in shown.items() if k != "signature"
            }
