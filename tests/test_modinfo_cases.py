"""``lkm modinfo`` on hand-made and hand-broken inputs prints exactly what kmod 34 prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import modinfo_cases
from support.modinfo_cases import CASES, Output, fill, load_recorded, materialise, placeholder

RECORDED = load_recorded()


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    where = tmp_path / "case"
    materialise(case, where)
    actual = placeholder(modinfo_cases.run_lkm_inprocess(fill(case.args, str(where))), str(where))
    expected = RECORDED[name]
    assert actual.stderr.decode("latin-1") == expected.stderr.decode("latin-1")
    assert actual.stdout.decode("latin-1") == expected.stdout.decode("latin-1")
    assert actual.status == expected.status


def test_every_case_is_recorded() -> None:
    assert set(RECORDED) == set(CASES)


def test_zstd_without_content_size_is_read(tmp_path: Path) -> None:
    """kmod 34 refuses zstd frames that do not state their size; lkm reads them."""
    import zstandard

    packer = zstandard.ZstdCompressor(write_content_size=False)
    path = tmp_path / "nosize.ko.zst"
    path.write_bytes(packer.compress(modinfo_cases.GOOD))
    out = modinfo_cases.run_lkm_inprocess(["-F", "license", str(path)])
    assert out == Output(b"GPL\n", b"", 0)


def test_gzip_module_is_read(tmp_path: Path) -> None:
    """Debian's kmod 34 has no zlib and says 'not found'; lkm reads gzip like kmod with zlib."""
    import gzip

    path = tmp_path / "g.ko.gz"
    path.write_bytes(gzip.compress(modinfo_cases.GOOD))
    out = modinfo_cases.run_lkm_inprocess(["-F", "description", str(path)])
    assert out == Output(b"test module\n", b"", 0)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a user without read permission (kmod seen as user nobody): EACCES after filename."""
    import errno

    path = tmp_path / "locked.ko"
    path.write_bytes(modinfo_cases.GOOD)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    out = placeholder(modinfo_cases.run_lkm_inprocess([str(path)]), str(tmp_path))
    assert out == Output(
        b"filename:       {dir}/locked.ko\n",
        b"modinfo: ERROR: could not get modinfo from 'locked': Permission denied\n",
        1,
    )


@pytest.mark.slow
def test_recorded_outputs_are_kmods() -> None:
    """The recorded expectations are what kmod 34 prints today."""
    assert modinfo_cases.record_with_kmod() == RECORDED


# Headers on which kmod 34 aborts (SIGABRT after a failed assertion, nothing else printed): no
# extended section numbering, a name table index of 0 or out of range. lkm keeps its one-line
# error instead.
KMOD_ABORTS = {
    "shnum-zero": (60, 0, "No data available"),  # e_shnum 0: section 0's size, here 0
    "shstrndx-zero": (62, 0, "Invalid argument"),  # section 0 as name table: empty
    "shstrndx-beyond": (62, 3, "Invalid argument"),
    "shstrndx-xindex": (62, 0xFFFF, "Invalid argument"),
}


@pytest.mark.parametrize("case", sorted(KMOD_ABORTS))
def test_where_kmod_aborts_lkm_reports(case: str, tmp_path: Path) -> None:
    import struct

    at, value, reason = KMOD_ABORTS[case]
    data = bytearray(modinfo_cases.GOOD)
    struct.pack_into("<H", data, at, value)
    path = tmp_path / "m.ko"
    path.write_bytes(bytes(data))
    out = placeholder(modinfo_cases.run_lkm_inprocess([str(path)]), str(tmp_path))
    assert out == Output(
        b"filename:       {dir}/m.ko\n",
        f"modinfo: ERROR: could not get modinfo from 'm': {reason}\n".encode(),
        1,
    )
