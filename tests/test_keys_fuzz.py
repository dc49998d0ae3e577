"""Kernel images, certificates and /proc/keys lines, generated and damaged: what lkm builds is
read back exactly, and what it damages is read or refused with lkm's own error, never more."""

from __future__ import annotations

import contextlib
import gzip
import random

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkm.certificates import CertificateError, load_der, load_file
from lkm.errors import LkmError
from lkm.kernelimage import vmlinux
from lkm.keys import parse_proc_keys
from support.kernel_images import EC_CERT, RSA_CERT, bzimage, fake_vmlinux

SETTINGS = settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(st.binary(max_size=2000), st.sampled_from(["gzip", "zstd"]))
def test_a_kernel_packed_in_a_bzimage_is_read_back(body: bytes, method: str) -> None:
    kernel = b"\x7fELF" + body
    packed = gzip.compress(kernel) if method == "gzip" else zstandard.compress(kernel)
    assert vmlinux(bzimage(packed)) == (kernel, method)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_damaged_kernel_images_raise_only_lkms_error(seed: int, flips: int) -> None:
    rng = random.Random(seed)
    image = bytearray(bzimage(zstandard.compress(fake_vmlinux(RSA_CERT))))
    for _ in range(flips):
        image[rng.randrange(len(image))] = rng.randrange(256)
    if rng.random() < 0.3:
        del image[rng.randrange(len(image)) :]
    with contextlib.suppress(LkmError):
        vmlinux(bytes(image))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_damaged_certificates_are_read_or_refused_with_one_error(seed: int, flips: int) -> None:
    rng = random.Random(seed)
    der = bytearray(rng.choice([RSA_CERT, EC_CERT]))
    for _ in range(flips):
        der[rng.randrange(len(der))] = rng.randrange(256)
    for reader in (load_der, load_file):
        try:
            reader(bytes(der))
        except CertificateError as err:
            assert "\n" not in str(err)


_FIELD = st.text("0123456789abcdef", min_size=8, max_size=8)
# The kernel's descriptions never start with a blank; they may hold any printable character.
_DESCRIPTION = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60)


@SETTINGS
@given(
    st.lists(
        st.tuples(_FIELD, st.integers(0, 65535), st.integers(0, 65535),
                  st.sampled_from(["keyring", "asymmetri", "user", "logon"]),
                  _DESCRIPTION),
        max_size=10,
    )
)  # fmt: skip
def test_proc_keys_lines_are_read_back(lines: list[tuple[str, int, int, str, str]]) -> None:
    text = "".join(
        f"{serial} I------     1 perm 1f030000 {uid:5d} {gid:5d} {kind:<9} {description}\n"
        for serial, uid, gid, kind, description in lines
    )
    keys = parse_proc_keys(text.encode())
    assert [(k.serial, k.uid, k.gid, k.type) for k in keys] == [
        (serial, uid, gid, "asymmetric" if kind == "asymmetri" else kind)
        for serial, uid, gid, kind, _ in lines
    ]
    assert [k.description for k in keys] == [d for *_, d in lines]
