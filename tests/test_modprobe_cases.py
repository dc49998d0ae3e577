"""``lkm modprobe`` on small made-up module directories prints exactly what kmod 34 prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import modprobe_cases
from support.modinfo_cases import fill, placeholder
from support.modprobe_cases import CASES, load_recorded, materialise

RECORDED = load_recorded()


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    where = tmp_path / "case"
    state = materialise(case, where)
    ran = modprobe_cases.run_lkm_inprocess(fill(case.args, str(where)), state)
    actual = placeholder(ran, str(where))
    expected = RECORDED[name]
    assert actual.stderr.decode("latin-1") == expected.stderr.decode("latin-1")
    assert actual.stdout.decode("latin-1") == expected.stdout.decode("latin-1")
    assert actual.status == expected.status


def test_every_case_is_recorded() -> None:
    assert set(RECORDED) == set(CASES)


@pytest.mark.slow
def test_recorded_outputs_are_kmods() -> None:
    """The recorded expectations are what kmod 34 prints today."""
    assert modprobe_cases.record_with_kmod() == RECORDED
