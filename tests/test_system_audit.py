"""Every tool looks only at the system it is given: run under an audit hook against a fake root,
none opens a file outside it.

The root holds a small module tree, ``/proc`` (modules, cmdline), ``/sys/module``, and
``modprobe.d`` and ``depmod.d`` directories; the tools get ``System.under(root)`` and a fake
kernel for their system calls. The hook (support/system_audit_child.py, in a process of its
own since a hook cannot be removed) sees Python's ``open`` events (``open()``, ``os.open``)
and those of ``os.listdir``, ``os.scandir``, ``os.mkdir``, ``os.rename`` and the like; a
``stat`` raises none, so what is only looked at (``os.path.isdir``) is not seen. Allowed
outside the root: Python's own prefixes and site-packages and lkm's source (imports happen
lazily, while the tools run), and /dev/null.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lkm.index import write_index
from support.elfbuild import elf64, modinfo_section

HERE = Path(__file__).parent


def _certificate() -> bytes:
    """A self-signed certificate for lkm verify to trust."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
    builder = builder.public_key(key.public_key()).serial_number(1).not_valid_before(start)
    cert = builder.not_valid_after(start + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def make_root(root: Path) -> None:
    moddir = root / "lib/modules/1.0"
    (moddir / "kernel").mkdir(parents=True)
    for name in ("a", "b"):
        info = modinfo_section(b"license=GPL", f"name={name}".encode(), b"vermagic=1.0 SMP ")
        (moddir / f"kernel/{name}.ko").write_bytes(elf64({".modinfo": info}))
    deps = [("a", "kernel/a.ko: kernel/b.ko", 0), ("b", "kernel/b.ko:", 1)]
    (moddir / "modules.dep.bin").write_bytes(write_index(deps))
    (moddir / "modules.dep").write_text("kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n")
    (moddir / "modules.order").write_text("kernel/a.ko\nkernel/b.ko\n")
    (moddir / "modules.alias.bin").write_bytes(write_index([("pci:v1*", "a", 0)]))
    (moddir / "modules.symbols.bin").write_bytes(write_index([]))
    (moddir / "modules.builtin.bin").write_bytes(write_index([("bi", "", 0)]))
    (moddir / "modules.builtin.alias.bin").write_bytes(write_index([]))
    (moddir / "modules.builtin").write_text("kernel/bi.ko\n")
    (moddir / "modules.builtin.modinfo").write_bytes(b"bi.license=GPL\0")
    (moddir / "modules.devname").write_text("a a c10:200\n")
    (moddir / "modules.softdep").write_text("")
    (root / "proc").mkdir()
    (root / "proc/modules").write_text("b 16384 1 a, Live 0x0\na 8192 0 - Live 0x0\n")
    (root / "proc/cmdline").write_text("a.x=1 quiet\n")
    for name, refcount, holders in (("a", 0, ()), ("b", 1, ("a",))):
        module = root / "sys/module" / name
        (module / "holders").mkdir(parents=True)
        for holder in holders:
            (module / "holders" / holder).mkdir()
        (module / "initstate").write_text("live\n")
        (module / "refcnt").write_text(f"{refcount}\n")
        (module / "coresize").write_text("16384\n")
    (root / "sys/module/builtin_with_params/parameters").mkdir(parents=True)
    for where in (
        "etc/modprobe.d",
        "run/modprobe.d",
        "usr/lib/modprobe.d",
        "etc/depmod.d",
        "etc/modules-load.d",
        "usr/lib/modules-load.d",
    ):
        (root / where).mkdir(parents=True)
    (root / "etc/keys").mkdir()
    (root / "etc/keys/signing.der").write_bytes(_certificate())
    (root / "etc/modprobe.d/t.conf").write_text("options a y=2\nalias foo a\nsoftdep a pre: bi\n")
    (root / "usr/lib/modprobe.d/u.conf").write_text("blacklist b\n")
    (root / "etc/depmod.d/d.conf").write_text("search updates built-in\n")
    (root / "etc/modules-load.d/m.conf").write_text("foo\n")
    (root / "usr/lib/modules-load.d/m.conf").write_text("b\n")
    device = root / "sys/devices/pci0000:00/0000:00:01.0"
    device.mkdir(parents=True)
    (device / "modalias").write_text("pci:v1234d0001\n")
    (device / "driver").symlink_to("../../../bus/pci/drivers/a")
    (root / "sys/bus/pci/drivers/a").mkdir(parents=True)
    (root / "sys/bus/pci/drivers/a/module").symlink_to("../../../../module/a")
    (root / "sys/bus/pci/devices").mkdir()
    (root / "sys/bus/pci/devices/0000:00:01.0").symlink_to(
        "../../../devices/pci0000:00/0000:00:01.0"
    )


def test_every_tool_stays_in_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_root(root)
    report = tmp_path / "report"
    report.write_text("")
    env = {**os.environ, "PYTHONPATH": str(HERE)}  # the support package, from the root
    done = subprocess.run(
        [sys.executable, "-m", "support.system_audit_child", str(root), str(report)],
        # In the root: a relative path opened there is in the root. (An ``open`` event does not
        # carry the directory descriptor of an ``openat``, whose directory was opened, and seen,
        # before.)
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = report.read_text().splitlines()
    ran = [line for line in lines if line.startswith("= ")]
    assert len(ran) == 30, lines  # every tool ran to its end
    assert "= lkm status 0" in ran
    assert "= python-kmod and Resolver.open 0" in ran
    assert "= lkm closure 0" in ran
    assert "= lkm drivers 0" in ran
    assert "= lkm show 0" in ran
    assert "= lkm modules-load 0" in ran  # foo stands for a, which is live
    assert "= lkm audit 3" in ran  # the root has no /proc/sys/kernel/tainted
    assert "= lkm verify 3" in ran  # a and a.ko unsigned, bi built in: no file to verify
    outside = [line for line in lines if not line.startswith(("# ", "= "))]
    assert not outside, "\n".join(lines)
    # The tools did read the root: depmod wrote there, and its files are what it read.
    assert (root / "out/lib/modules/1.0/modules.dep").read_text() == (
        "kernel/a.ko:\nkernel/b.ko:\n"
    )
