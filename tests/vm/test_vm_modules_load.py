"""``lkm modules-load`` against kmod 34's modprobe and trixie's systemd-modules-load, in one boot
of the trixie kernel (2 vCPUs; see modules_load_guest.py for where each runs).

The 40 modules of ``MODULES`` are loaded by each method in turn, everything unloaded between;
the modules the kernel has afterwards and the exit statuses must be the same, and lkm's log the
same as systemd-modules-load's. Then the names of ``OUTCOMES`` (not found, refused by the
kernel, built in, blacklisted, aliases, twice) by lkm and by systemd-modules-load: the same
lines, status and modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from modules_load_guest import METHODS, MODULES, boot, paths, script, times

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def read(out: Path, how: str, what: str, suffix: str) -> str:
    return (out / f"{how}.{what}.{suffix}").read_text()


def test_three_loaders_load_the_same(tmp_path: Path) -> None:
    where = paths()
    out = tmp_path / "guest"
    run = boot(where, script(where, 1, outcomes=True), out)
    assert run.status == 0, run.console[-3000:]
    assert not (out / "problems").exists(), (out / "problems").read_text()
    loaded = {how: read(out, how, "list", "modules") for how in METHODS}
    assert {how: read(out, how, "list", "rc") for how in METHODS} == dict.fromkeys(METHODS, "0\n")
    baseline = set((out / "baseline").read_text().split())
    names = set(loaded["systemd"].split())
    assert set(MODULES) <= names - baseline
    assert loaded["lkm"] == loaded["systemd"] == loaded["kmod"]
    inserted = [f"Inserted module '{m}'" for m in MODULES]
    assert read(out, "systemd", "list", "err").splitlines() == inserted
    assert read(out, "lkm", "list", "err").splitlines() == inserted
    assert read(out, "kmod", "list", "err") == ""

    systemd = [read(out, "systemd", "outcomes", s) for s in ("err", "rc", "modules")]
    lkm = [read(out, "lkm", "outcomes", s) for s in ("err", "rc", "modules")]
    assert systemd[1] == "1\n"
    assert "Failed to insert module 'kvm_intel': Operation not supported" in systemd[0]
    assert lkm == systemd
    print({how: f"{seconds[0]:.2f} s" for how, seconds in times(out).items()})
