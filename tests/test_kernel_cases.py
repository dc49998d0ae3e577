"""lsmod, insmod, rmmod and kmod on fake /proc, /sys and module directories do what kmod 34 does.

Outputs, exit status and the module system calls made (in strace's notation) are compared with
kmod 34's, recorded on the same fake worlds (see support/kernel_cases.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import kernel_cases
from support.kernel_cases import CASES, load_recorded, materialise

RECORDED = load_recorded()


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    where = tmp_path / "case"
    materialise(case, where)
    actual = kernel_cases.run_lkm(case, where)
    expected = RECORDED[name]
    assert actual.stderr == expected.stderr
    assert actual.stdout == expected.stdout
    assert actual.status == expected.status
    assert actual.calls == expected.calls


def test_every_case_is_recorded() -> None:
    assert set(RECORDED) == set(CASES)


@pytest.mark.slow
def test_recorded_outputs_are_kmods() -> None:
    """The recorded expectations are what kmod 34 does today (needs root, strace, the chroot)."""
    from support.differential import COMPARED

    assert kernel_cases.record_with_kmod() == RECORDED
    COMPARED["kernel-interface cases (fake /proc, /sys)"] += len(RECORDED)
