"""``lkm audit`` in a Debian 12 guest (Linux 6.1) with modules that taint it, in one boot.

kmod 34's insmod loads, from the test modules (testmods.py): ``lkm_provider`` (unsigned, out of
tree: taints O and E; blacklisted by the configuration given to the audit), ``lkm_vermagic``
forced past its vermagic (``lkm_params`` with taint F), ``lkm_proprietary`` (taint P), and
``lkm_busy``, whose installed file is then replaced by another build of it. The module tree
the audit reads is the guest kernel's own tree (linked) with the test modules in ``extra/``,
indexed on the host; signatures are verified against the certificates built into the guest's
kernel image. Every expected finding must be there, and none about the modules the guest loaded
itself (the 9p and virtio ones, signed by Debian, in the tree as loaded) but their valid
signatures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lkm.module import ModuleFile

pytestmark = [pytest.mark.vm, pytest.mark.slow]

TEST_MODULES = ("lkm_provider", "lkm_params", "lkm_proprietary", "lkm_busy")

SCRIPT = """\
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
$KMOD insmod {mods}/lkm_provider.ko; echo $? > /tmp/provider.rc
$KMOD insmod -f {mods}/lkm_vermagic.ko; echo $? > /tmp/forced.rc
$KMOD insmod {other}/lkm_proprietary.ko; echo $? > /tmp/proprietary.rc
$KMOD insmod {mods}/lkm_busy.ko; echo $? > /tmp/busy.rc
cp {other_host}/lkm_busy.ko /tmp/tree/lib/modules/{kver}/extra/lkm_busy.ko
cat /proc/sys/kernel/tainted > /tmp/tainted
for f in /sys/module/*/taint; do echo "$f $(cat $f)"; done > /tmp/taints
A="-b /tmp/tree -C /tmp/tree/audit.conf --kernel {vmlinuz}"
$LKM audit --json $A > /tmp/audit.json 2> /tmp/audit.err
echo $? > /tmp/audit.rc
$LKM audit $A > /tmp/audit.txt 2>&1
true
"""


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import testmods

    from lkm.cli import depmod
    from support import world

    guest = harness.guest("bookworm-amd64")
    mods = testmods.build(guest.kver)
    other = testmods.build_other(guest.kver)
    out = tmp_path_factory.mktemp("audit-vm")
    # The guest's /tmp is ``out``: the tree is /tmp/tree there.
    moddir = out / "tree/lib/modules" / guest.kver
    (moddir / "extra").mkdir(parents=True)
    (moddir / "kernel").symlink_to(guest.moddir / "kernel")
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        shutil.copy(guest.moddir / name, moddir / name)
    for name in TEST_MODULES:
        source = other if name == "lkm_proprietary" else mods
        shutil.copy(source / f"{name}.ko", moddir / "extra")
    assert depmod.main(["-b", str(out / "tree"), guest.kver]) == 0
    (out / "tree/audit.conf").write_text("blacklist lkm_provider\nblacklist nosuch\n")
    inside = "/" + str(mods.relative_to(world.CHROOT))
    script = SCRIPT.format(
        mods=inside,
        other="/" + str(other.relative_to(world.CHROOT)),
        other_host=other,
        kver=guest.kver,
        vmlinuz=guest.vmlinuz,
    )
    run = harness.boot(guest, script, out, timeout=1200)
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


def test_setup_loaded_every_module(audit_run: Path) -> None:
    for step in ("provider", "forced", "proprietary", "busy"):
        assert (audit_run / f"{step}.rc").read_text() == "0\n", step
    taints = (audit_run / "taints").read_text()
    assert "/sys/module/lkm_params/taint FOE\n" in taints  # forced: F
    assert "/sys/module/lkm_proprietary/taint POE\n" in taints


def findings(audit_run: Path) -> list[dict[str, object]]:
    from support.schemas import validate_output

    records: list[dict[str, object]] = validate_output(
        "audit", (audit_run / "audit.json").read_text()
    )["records"]
    return records


def test_kernel_taint_decoded(audit_run: Path) -> None:
    tainted = int((audit_run / "tainted").read_text())
    kernel = [r for r in findings(audit_run) if r["kind"] == "kernel-taint"]
    letters = {r["details"]["letter"] for r in kernel}  # type: ignore[index]
    assert {"P", "O", "E", "F"} <= letters
    assert sum(1 << r["details"]["bit"] for r in kernel) == tainted  # type: ignore[index, misc]
    assert all(r["details"]["value"] == tainted for r in kernel)  # type: ignore[index]
    messages = {r["message"] for r in kernel}
    assert "kernel tainted P: proprietary module was loaded" in messages
    assert "kernel tainted F: module was force loaded" in messages


def test_each_test_module_found_as_loaded(audit_run: Path) -> None:
    found = {
        (r["kind"], r["module"], r["details"].get("letter"))  # type: ignore[attr-defined]
        for r in findings(audit_run)
        if str(r["module"]).startswith("lkm_")
    }
    expected = {("module-taint", m, letter) for m in TEST_MODULES for letter in "OE"}
    expected |= {("unsigned", m, None) for m in TEST_MODULES}
    expected |= {
        ("module-taint", "lkm_proprietary", "P"),
        ("forced-load", "lkm_params", "F"),
        ("blacklisted", "lkm_provider", None),
        ("build-id-mismatch", "lkm_busy", None),
    }
    assert found == expected


def test_replaced_file_by_build_id(audit_run: Path) -> None:
    import harness
    import testmods

    kver = harness.guest("bookworm-amd64").kver
    loaded = ModuleFile.from_path(testmods.build(kver) / "lkm_busy.ko").build_id
    installed = ModuleFile.from_path(testmods.build_other(kver) / "lkm_busy.ko").build_id
    assert loaded is not None and installed is not None and loaded != installed
    (mismatch,) = [r for r in findings(audit_run) if r["kind"] == "build-id-mismatch"]
    assert mismatch["severity"] == "problem"
    assert mismatch["details"] == {
        "file": f"/tmp/tree/lib/modules/{kver}/extra/lkm_busy.ko",
        "loaded_build_id": loaded.hex(),
        "file_build_id": installed.hex(),
    }


def test_nothing_about_untouched_modules(audit_run: Path) -> None:
    records = findings(audit_run)
    others = [r for r in records if r["module"] is not None and r["module"] not in TEST_MODULES]
    assert others  # the guest's own modules (9p, virtio), each named with its signer
    assert {(r["severity"], r["kind"]) for r in others} == {("info", "signed")}
    # Verified against the certificate built into the guest's kernel image.
    assert {r["details"]["verdict"] for r in others} == {"valid"}  # type: ignore[index]
    assert not [r for r in records if r["kind"] in ("hidden-module", "missing-file", "unreadable")]


def test_state_and_exit_status(audit_run: Path) -> None:
    state = {r["kind"]: r for r in findings(audit_run) if r["severity"] == "info"}
    assert state["modules-disabled"]["details"] == {"value": 0}
    assert state["sig-enforce"]["details"] == {"value": False}
    assert state["lockdown"]["details"] == {"mode": "none"}
    assert (audit_run / "audit.rc").read_text() == "2\n"  # problems: a forced load, a build-id
    assert (audit_run / "audit.err").read_text() == ""
    text = (audit_run / "audit.txt").read_text()
    assert "problem  lkm_params: loaded with its version checks forced (taint F)\n" in text
    assert json.loads((audit_run / "audit.json").read_text())["schema"] == "lkm/audit/1"
