"""A module directory, configuration and fake kernel for running ``lkm modprobe`` for real.

The fake kernel keeps the fake ``/sys/module`` up to date (initstate, refcnt, holders), so the
checks modprobe makes between its steps see what the calls did.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lkm.cli import modprobe
from lkm.index import write_index
from support.kernel import FakeKernel

# name: (path, dependencies) as in modules.dep
DEP = {
    "provider": ("extra/provider.ko", ()),
    "consumer": ("extra/consumer.ko", ("extra/provider.ko",)),
    "params": ("extra/params.ko", ()),
    "top": ("extra/top.ko", ("extra/consumer.ko", "extra/provider.ko")),
}
CONFIG = """\
options params count=3
alias ptest params
alias prov provider
blacklist provider
install busy echo installing $MODPROBE_MODULE $CMDLINE_OPTS
remove busy echo removing $MODPROBE_MODULE
install failing false
softdep top pre: params
"""


class System:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.moddir = root / "lib/modules/1.0"
        self.sysfs = root / "sys"
        uses = {name: [Path(dep).stem for dep in deps] for name, (_, deps) in DEP.items()}
        self.kernel = FakeKernel(sysfs=self.sysfs / "module", uses=uses)

    def run(self, *args: str, capfdbinary: pytest.CaptureFixture[bytes]) -> tuple[str, str, int]:
        base = ["-d", str(self.root), "-S", "1.0", "-C", str(self.root / "t.conf")]
        status = modprobe.main([*base, *args], kernel=self.kernel, sysfs=str(self.sysfs))
        out, err = capfdbinary.readouterr()
        return out.decode(), err.decode(), status

    def loaded(self) -> list[str]:
        return sorted(p.name for p in (self.sysfs / "module").iterdir())

    def path(self, name: str) -> str:
        return f"{self.moddir}/extra/{name}.ko"


def make_system(root: Path) -> System:
    """The module directory, configuration, fake /sys and fake kernel, under ``root``."""
    s = System(root)
    (s.moddir / "extra").mkdir(parents=True)
    for name in DEP:
        (s.moddir / f"extra/{name}.ko").write_bytes(b"\x7fELF not really")
    lines = [
        (n, f"{p}: {' '.join(d)}".rstrip(" ") if d else f"{p}:", i)
        for i, (n, (p, d)) in enumerate(DEP.items())
    ]
    (s.moddir / "modules.dep.bin").write_bytes(write_index(lines))
    for index in ("alias", "symbols", "builtin"):
        (s.moddir / f"modules.{index}.bin").write_bytes(write_index([]))
    (s.root / "t.conf").write_text(CONFIG)
    (s.sysfs / "module").mkdir(parents=True)
    return s
