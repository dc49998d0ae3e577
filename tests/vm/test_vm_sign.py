"""Modules signed by ``lkm sign`` on a kernel that enforces signatures, booted in QEMU.

The zstd kernel of zstdkernel.py checks module signatures and trusts one test key built into
it; booted with ``module.sig_enforce=1`` it must load a module lkm signed with that key (plain
and zstd-compressed, with SHA-256 and SHA-512) and refuse the same module unsigned, signed with
another key, or with one byte changed after signing. Each load runs with lkm's insmod and with
kmod 34's, in one boot; both must say the same. ``lkm verify`` against the image's own keys
predicts each outcome.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

PARAMS = "cat /sys/module/lkm_params/parameters/count"
STEPS = (
    ("enforced", "cat /sys/module/module/parameters/sig_enforce"),
    ("unsigned", "{tool} insmod {files}/unsigned.ko"),
    ("other-key", "{tool} insmod {files}/other-key.ko"),
    ("changed", "{tool} insmod {files}/changed.ko"),
    ("refused-state", "grep -c lkm_params /proc/modules || true"),
    ("signed", "{tool} insmod {files}/signed.ko count=3"),
    ("signed-params", PARAMS),
    ("signed-taint", "cat /sys/module/lkm_params/taint"),
    ("rmmod-signed", "{tool} rmmod lkm_params"),
    ("signed-zstd", "{tool} insmod {files}/signed.ko.zst count=4"),
    ("signed-zstd-params", PARAMS),
    ("rmmod-signed-zstd", "{tool} rmmod lkm_params"),
    ("signed-sha512", "{tool} insmod {files}/signed-sha512.ko count=5"),
    ("signed-sha512-params", PARAMS),
    ("rmmod-signed-sha512", "{tool} rmmod lkm_params"),
    ("end-state", "grep -c lkm_params /proc/modules || true"),
)
REFUSED = ("unsigned", "other-key", "changed")
LOADED = ("signed", "signed-zstd", "signed-sha512")
# Each loading step's file, and what lkm verify says of it.
FILES = {
    "unsigned": ("unsigned.ko", "unsigned"),
    "other-key": ("other-key.ko", "unknown-key"),
    "changed": ("changed.ko", "invalid"),
    "signed": ("signed.ko", "valid"),
    "signed-zstd": ("signed.ko.zst", "valid"),
    "signed-sha512": ("signed-sha512.ko", "valid"),
}


def other_key() -> bytes:
    """A key and certificate the kernel does not trust, as one PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lkm untrusted key")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(42)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem + cert.public_bytes(serialization.Encoding.PEM)


def signed_modules(testmods: Path, trusted: Path, target: Path) -> None:
    """lkm_params signed with the trusted key (plain, zstd, SHA-512), with another key, changed
    by one byte after signing, and unsigned."""
    from lkm.sign import sign_module

    target.mkdir(parents=True, exist_ok=True)
    plain = (testmods / "lkm_params.ko").read_bytes()
    key = trusted.read_bytes()
    signed = sign_module(plain, key, key, "sha256")
    (target / "unsigned.ko").write_bytes(plain)
    (target / "signed.ko").write_bytes(signed)
    zstd = sign_module((testmods / "lkm_params.ko.zst").read_bytes(), key, key, "sha256")
    (target / "signed.ko.zst").write_bytes(zstd)
    (target / "signed-sha512.ko").write_bytes(sign_module(plain, key, key, "sha512"))
    other = other_key()
    (target / "other-key.ko").write_bytes(sign_module(plain, other, other, "sha256"))
    # One byte of the module's description, inside the signed part.
    at = signed.index(b"lkm test module: parameters")
    changed = signed[:at] + b"L" + signed[at + 1 :]
    (target / "changed.ko").write_bytes(changed)


@pytest.fixture(scope="module")
def sign_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import zstdkernel

    kernel = zstdkernel.build()
    guest = harness.Guest("zstd", kernel.vmlinuz, kernel.moddir, kernel.kver)
    files = kernel.root / "signed"
    signed_modules(kernel.testmods, kernel.signing_key, files)
    # After the steps: the keys the running kernel lists, as lkm keys reads /proc/keys.
    after = "dmesg; $LKM keys --json > /tmp/keys.json 2> /tmp/keys.err"
    text = harness.compare_script(STEPS, {"files": str(files)}, after=after)
    out = tmp_path_factory.mktemp("sign-vm")
    run = harness.boot(guest, text, out, timeout=1800, append="module.sig_enforce=1")
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


@pytest.mark.parametrize("label", [label for label, _ in STEPS])
def test_step_matches_kmod(sign_run: Path, label: str) -> None:
    import harness

    lkm = harness.read_step(sign_run, label, "lkm")
    kmod = harness.read_step(sign_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"


def test_the_kernel_loads_what_lkm_signed_and_refuses_the_rest(sign_run: Path) -> None:
    import harness

    def step(label: str) -> tuple[str, str, str]:
        return harness.read_step(sign_run, label, "lkm")

    assert step("enforced")[0] == "Y\n"
    for label in REFUSED:
        _out, err, status = step(label)
        assert status == "1", (label, err)
        assert err.endswith(": Key was rejected by service\n"), (label, err)
    assert step("refused-state")[0] == "0\n"
    for label, count in zip(LOADED, ("3", "4", "5"), strict=True):
        assert step(label)[2] == "0", (label, step(label))
        assert step(f"{label}-params")[0] == f"{count}\n"
        assert step(f"rmmod-{label}")[2] == "0"
    # A good signature leaves no "unsigned module" taint (E); O says the module is out of tree.
    assert step("signed-taint")[0] == "O\n"
    assert step("end-state")[0] == "0\n"


def test_lkm_verify_predicts_each_outcome(sign_run: Path) -> None:
    """Against the certificates built into the kernel image: valid exactly where it loaded."""
    import harness
    import zstdkernel

    from lkm.verify import trusted_certificates, verify

    kernel = zstdkernel.build()
    trusted = trusted_certificates(kernel=str(kernel.vmlinuz))
    files = [str(kernel.root / "signed" / name) for name, _ in FILES.values()]
    verdicts = [record.verdict.value for record in verify(files, trusted, jobs=1)]
    assert verdicts == [verdict for _, verdict in FILES.values()]
    loaded = [harness.read_step(sign_run, label, "lkm")[2] == "0" for label in FILES]
    assert loaded == [verdict == "valid" for verdict in verdicts]


def test_lkm_keys_lists_the_running_kernels_key_as_its_image_holds_it(sign_run: Path) -> None:
    """/proc/keys in the guest names the trusted test key by the key id that ``lkm keys
    --kernel`` reads from the image booted; the built-in keyring is there."""
    import zstdkernel

    from lkm.keys import kernel_certificates
    from support.schemas import validate_output

    assert (sign_run / "keys.err").read_text() == ""
    records = validate_output("keys", (sign_run / "keys.json").read_bytes())["records"]
    listed = {r["key_id"] for r in records if r["type"] == "asymmetric"}
    image = kernel_certificates(str(zstdkernel.build().vmlinuz))
    assert {cert.key_id for cert in image.certificates} == listed
    names = {r["name"] for r in records if r["type"] == "asymmetric"}
    assert names == {cert.subject.removeprefix("CN=") for cert in image.certificates}
    assert any(r["description"].startswith(".builtin_trusted_keys:") for r in records)
