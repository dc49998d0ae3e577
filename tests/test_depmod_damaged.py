"""``lkm depmod`` against kmod 34's on trees of real modules, some of them damaged (see
support/depmod_damage.py): stdout, stderr, exit status and every output file, byte for byte.

Trees of every kind of the test world (64 and 32-bit, both byte orders, uncompressed, xz and
zstd), plain, ``-a`` and ``-a -e -F System.map``, with a fixed seed so that a failure can be
replayed with ``python tests/support/depmod_damage.py ROUNDS SEED``.
"""

from __future__ import annotations

import pytest

from support import depmod_damage
from support.differential import COMPARED

pytestmark = pytest.mark.slow

ROUNDS = 150
SEED = 20261202


def test_trees_with_damaged_modules_read_as_kmod_reads_them() -> None:
    differences, compared, aborts = depmod_damage.run(ROUNDS, SEED)
    # kmod aborting on a damaged header (lkm reports the module and goes on) is the known
    # difference: those modules are put back whole and not counted.
    COMPARED[f"depmod of damaged modules ({aborts} kmod aborts left out)"] += compared
    # Every kind of damage must have been met, or the comparison proves little.
    assert compared >= ROUNDS * depmod_damage.DAMAGED * 9 // 10
    assert not differences, f"{len(differences)} of {ROUNDS} trees differ:\n\n" + "\n\n".join(
        str(d) for d in differences
    )
