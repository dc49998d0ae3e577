"""``lkm depmod`` on small made-up module directories prints and writes exactly what kmod 34
does."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import depmod_cases
from support.depmod_cases import CASES, load_recorded, materialise, outcome
from support.modinfo_cases import fill

RECORDED = load_recorded()


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    where = tmp_path / "case"
    materialise(case, where)
    actual = outcome(case, depmod_cases.run_lkm_inprocess(fill(case.args, str(where))), where)
    expected = RECORDED[name]
    assert actual.output.stderr.decode("latin-1") == expected.output.stderr.decode("latin-1")
    assert actual.output.stdout.decode("latin-1") == expected.output.stdout.decode("latin-1")
    assert actual.output.status == expected.output.status
    assert sorted(actual.files) == sorted(expected.files)
    for file, data in expected.files.items():
        assert actual.files[file] == data, file


def test_every_case_is_recorded() -> None:
    assert set(RECORDED) == set(CASES)


@pytest.mark.slow
def test_recorded_outputs_are_kmods() -> None:
    """The recorded expectations are what kmod 34 prints and writes today."""
    assert depmod_cases.record_with_kmod() == RECORDED
