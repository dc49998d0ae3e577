"""``lkm verify`` on the real Debian trees against their kernel images' own keys: every module
valid, one flipped byte anywhere in the signed part refused, and openssl cms agreeing."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from lkm.compress import decompress
from lkm.keys import kernel_certificates
from lkm.verify import Verdict, verify, verify_data
from support import world
from support.differential import COMPARED
from support.schemas import validate_output

pytestmark = pytest.mark.slow

TREES = ("trixie-amd64", "bookworm-amd64")
SAMPLE = 12  # modules per tree for the byte flips and openssl
MAGIC = b"~Module signature appended~\n"


def _certificates(name: str) -> list[bytes]:
    return [c.der for c in kernel_certificates(str(world.kernel_image(name))).certificates]


@pytest.mark.parametrize("name", TREES)
def test_every_module_verifies_against_its_kernel_image(name: str) -> None:
    tree = world.tree(name)
    image = kernel_certificates(str(world.kernel_image(name)))
    modules = [str(path) for path in tree.modules()]
    records = verify(modules, image.certificates)
    assert len(records) == len(modules) > 1000
    wrong = [(r.filename, r.verdict, r.reason) for r in records if r.verdict is not Verdict.VALID]
    assert wrong == []
    subject = image.certificates[0].subject
    assert {(r.certificate, r.hash) for r in records} == {(subject, "sha256")}
    COMPARED[f"lkm verify: {name} modules valid against the kernel image's key"] += len(records)


def _split(data: bytes) -> tuple[bytes, bytes]:
    """The unsigned module and its PKCS#7, as the kernel cuts them."""
    assert data.endswith(MAGIC)
    sig_len = int.from_bytes(data[-len(MAGIC) - 4 : -len(MAGIC)], "big")
    end = len(data) - len(MAGIC) - 12
    return data[: end - sig_len], data[end - sig_len : end]


def _openssl_accepts(content: bytes, blob: bytes, cert: Path, tmp: Path) -> bool:
    (tmp / "content").write_bytes(content)
    (tmp / "sig").write_bytes(blob)
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify", "-in",
         str(tmp / "sig"), "-content", str(tmp / "content"), "-certfile", str(cert),
         "-out", "/dev/null"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@pytest.mark.parametrize("name", TREES)
def test_flipped_bytes_fail_and_openssl_agrees(name: str, tmp_path: Path) -> None:
    tree = world.tree(name)
    ders = _certificates(name)
    cert = tmp_path / "kernel.der"
    cert.write_bytes(ders[0])
    pem = tmp_path / "kernel.pem"
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(cert), "-out", str(pem)],
                   check=True)  # fmt: skip
    chance = random.Random(f"verify {name}")
    for path in chance.sample(tree.modules(), SAMPLE):
        data = decompress(path.read_bytes())
        content, blob = _split(data)
        assert verify_data(data, ders).verdict is Verdict.VALID
        assert _openssl_accepts(content, blob, pem, tmp_path)
        for _ in range(3):
            at = chance.randrange(len(content))
            changed = bytearray(data)
            changed[at] ^= 1 << chance.randrange(8)
            record = verify_data(bytes(changed), ders)
            assert record.verdict is Verdict.INVALID, (path, at)
            assert record.reason is not None
            assert record.reason.startswith(("bad signature", "digest mismatch")), record.reason
            assert not _openssl_accepts(bytes(changed[: len(content)]), blob, pem, tmp_path)
        # A flip inside the PKCS#7: refused one way or another, never valid.
        at = len(content) + chance.randrange(len(blob))
        changed = bytearray(data)
        changed[at] ^= 0x10
        record = verify_data(bytes(changed), ders)
        assert record.verdict is not Verdict.VALID, (path, at)
        accepted = _openssl_accepts(content, bytes(changed[len(content) : len(data) - 40]), pem,
                                    tmp_path)  # fmt: skip
        if record.reason is not None and record.reason.startswith("the signed content's type"):
            # openssl does not look at a detached signature's content type; the kernel wants data.
            assert accepted, (path, at)
        else:
            assert not accepted, (path, at)
        COMPARED[f"lkm verify: {name} flipped bytes refused as openssl refuses them"] += 1


def test_names_and_bad_names_on_the_command_line(tmp_path: Path) -> None:
    tree = world.tree("trixie-amd64")
    image = str(world.kernel_image("trixie-amd64"))
    command = [sys.executable, "-m", "lkm", "verify", "-b", str(tree.root), "-k", tree.kver]
    done = subprocess.run([*command, "--kernel", image, "--json", "vfat", "nosuchmodule"],
                          capture_output=True, check=False)  # fmt: skip
    records = validate_output("verify", done.stdout)["records"]
    assert done.returncode == 3
    assert [(r["name"], r["verdict"], r["error"]) for r in records] == [
        ("vfat", "valid", None),
        (None, "error", "Module nosuchmodule not found."),
    ]
    assert records[0]["filename"].endswith("/kernel/fs/fat/vfat.ko.xz")
    done = subprocess.run([*command, "--kernel", image, "vfat"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.startswith(f"{records[0]['filename']}: valid\n")
    # No --cert nor --kernel: the image under -b is the default.
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / f"vmlinuz-{tree.kver}").symlink_to(image)
    module = tree.moddir / "kernel/fs/fat/vfat.ko.xz"
    done = subprocess.run([*command[:4], "-b", str(tmp_path), "-k", tree.kver, str(module)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert (done.returncode, done.stdout.split("\n")[0]) == (0, f"{module}: valid")
