"""``lkm modinfo`` against kmod 34's on damaged copies of real modules (see
support/module_damage.py).

Every kind of damage, on every tree of the test world (64 and 32-bit, both byte orders,
uncompressed, xz and zstd), with a fixed seed so a failure can be replayed with
``python tests/support/module_damage.py COUNT SEED``.
"""

from __future__ import annotations

import pytest

from support import module_damage
from support.differential import COMPARED

pytestmark = pytest.mark.slow

COUNT = 4000
SEED = 20261202


def test_damaged_modules_read_as_kmod_reads_them() -> None:
    differences, crashes = module_damage.run(COUNT, SEED)
    # kmod aborting (a signal, where lkm prints its one-line error) is the known difference.
    COMPARED[f"modinfo of damaged modules ({crashes} kmod aborts, lkm errors kept)"] += COUNT
    assert not differences, f"{len(differences)} of {COUNT} differ:\n\n" + "\n\n".join(
        str(d) for d in differences
    )
