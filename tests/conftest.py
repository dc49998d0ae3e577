"""Shared fixtures: the real module trees and kmod 34 (see support/world.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from support import world

# Property tests check what a reader returns, not how fast: on a loaded two-core machine (CI runs
# QEMU guests and kernel builds beside them) Hypothesis' per-example deadline only adds flakes.
settings.register_profile("lkm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lkm")

# depmod's module cache stays off in the tests that compare lkm's runs with kmod's (a cache file
# would sit among the outputs they list); tests/test_depmod_cache.py turns it on and holds a
# run with it to a full run's bytes.
os.environ.setdefault("LKM_DEPMOD_CACHE", "0")


def _prepared(name: str) -> world.Tree:
    try:
        return world.tree(name)
    except Exception as err:
        world.unavailable(f"cannot prepare test tree {name}: {err}")


@pytest.fixture(scope="session")
def trees() -> dict[str, world.Tree]:
    """Every real tree, prepared."""
    return {name: _prepared(name) for name in world.ALL_TREES}


@pytest.fixture(scope="session", params=list(world.SPECS))
def real_tree(request: pytest.FixtureRequest) -> world.Tree:
    """Each real Debian tree in turn (not the recompressed copies)."""
    return _prepared(request.param)


@pytest.fixture(scope="session")
def trixie() -> world.Tree:
    return _prepared("trixie-amd64")


@pytest.fixture(scope="session")
def bookworm() -> world.Tree:
    return _prepared("bookworm-amd64")


def pytest_report_header() -> str:
    from support.differential import HASH_SEED

    return f"lkm runs with PYTHONHASHSEED={HASH_SEED} (LKM_TEST_HASHSEED={HASH_SEED} repeats it)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from support.differential import COMPARED, HASH_SEED

    if COMPARED:
        terminalreporter.section("compared against kmod 34")
        for what, count in sorted(COMPARED.items()):
            terminalreporter.write_line(f"{count:7d}  {what}")
        terminalreporter.write_line(f"{sum(COMPARED.values()):7d}  in all")
        terminalreporter.write_line(f"lkm ran with PYTHONHASHSEED={HASH_SEED}")
