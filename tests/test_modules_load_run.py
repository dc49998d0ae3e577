"""``lkm modules-load`` against the fake kernel: what is loaded, in which order, how often, in
parallel, and what is reported, in systemd-modules-load 257's words (seen black-box in the
trixie guest; tests/vm/test_vm_modules_load.py compares the three loaders there)."""

from __future__ import annotations

import errno
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lkm.boot_load import Outcome, exit_status
from lkm.cli import modules_load as cli
from lkm.index import write_index
from lkm.kernel import KernelCallError
from lkm.system import System
from support.kernel import FakeKernel
from support.schemas import validate_output

# name: dependencies (modules.dep's order: the one loaded last first)
DEP = {
    "base": (),
    "left": ("base",),
    "right": ("base",),
    "top": ("left", "right", "base"),
    "solo": (),
    "bad": (),
    "needsbad": ("bad",),
    "soft": (),
    "softpre": (),
    "other": (),
    "crcgen": (),
    "crcfast": (),
    "viacmd": (),
    "failcmd": (),
    "blocked": (),
}
ALIASES = [("crypto-crc", "crcfast"), ("crypto-crc", "crcgen"), ("fs-blocked", "blocked")]
BUILTIN = ("inkernel",)
MODPROBE_CONF = """\
blacklist blocked
softdep soft pre: softpre bad
options solo level=3
install viacmd true
install failcmd exit 3
"""


class TimedKernel(FakeKernel):
    """The fake kernel, safe to call from several threads, each load taking ``delay`` seconds;
    ``spans`` has each load's (module, start, end) and ``most`` the most loads at once."""

    def __init__(self, sysfs: Path, delay: float = 0.0, **kwargs: object) -> None:
        uses = {name: list(deps) for name, deps in DEP.items()}
        super().__init__(sysfs=sysfs, uses=uses, **kwargs)  # type: ignore[arg-type]
        self.delay = delay
        self.guard = threading.Lock()
        self.spans: list[tuple[str, float, float]] = []
        self.running = 0
        self.most = 0

    def finit_module(self, fd: int, params: str, flags: int) -> None:
        import os

        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).partition(".ko")[0]
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        start = time.perf_counter()
        try:
            time.sleep(self.delay)
            with self.guard:
                super().finit_module(fd, params, flags)
        finally:
            with self.guard:
                self.running -= 1
                self.spans.append((name, start, time.perf_counter()))


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        moddir = root / "lib/modules/1.0"
        (moddir / "extra").mkdir(parents=True)
        lines = []
        for order, (name, deps) in enumerate(DEP.items()):
            (moddir / f"extra/{name}.ko").write_bytes(b"\x7fELF not really")
            line = f"extra/{name}.ko:" + "".join(f" extra/{d}.ko" for d in deps)
            lines.append((name, line, order))
        (moddir / "modules.dep.bin").write_bytes(write_index(lines))
        (moddir / "modules.alias.bin").write_bytes(
            write_index([(a.replace("-", "_"), m, i) for i, (a, m) in enumerate(ALIASES)])
        )
        (moddir / "modules.symbols.bin").write_bytes(write_index([]))
        (moddir / "modules.builtin.bin").write_bytes(write_index([(n, "", 0) for n in BUILTIN]))
        (moddir / "modules.builtin").write_text("".join(f"kernel/{n}.ko\n" for n in BUILTIN))
        (root / "modprobe.d").mkdir()
        (root / "modprobe.d/t.conf").write_text(MODPROBE_CONF)
        (root / "sys/module").mkdir(parents=True)
        for directory in ("etc", "run", "usr/lib"):
            (root / directory / "modules-load.d").mkdir(parents=True)
        (root / "cmdline").write_text("quiet modules_load=other\n")
        self.system = System(
            procfs=str(root / "proc"),
            sysfs=str(root / "sys"),
            cmdline=str(root / "cmdline"),
            basedir=str(root),
            release="1.0",
            modprobe_dirs=(str(root / "modprobe.d"),),
            modules_load_dirs=tuple(
                str(root / d / "modules-load.d") for d in ("etc", "run", "usr/lib")
            ),
        )

    def kernel(self, delay: float = 0.0, **kwargs: object) -> TimedKernel:
        return TimedKernel(self.root / "sys/module", delay, **kwargs)

    def conf(self, text: str, name: str = "a.conf", directory: str = "etc") -> str:
        path = self.root / directory / "modules-load.d" / name
        path.write_text(text)
        return str(path)

    def run(
        self, kernel: TimedKernel, *args: str, capfdbinary: pytest.CaptureFixture[bytes]
    ) -> tuple[str, str, int]:
        status = cli.main(list(args), system=self.system, kernel=kernel)
        out, err = capfdbinary.readouterr()
        return out.decode(), err.decode(), status

    def loaded(self) -> list[str]:
        return sorted(p.name for p in (self.root / "sys/module").iterdir())


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def loads(kernel: TimedKernel) -> Counter[str]:
    return Counter(call.module for call in kernel.calls if call.call == "finit_module")


def test_dependencies_first_each_module_once_and_in_parallel(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("top\nleft\nright\nsolo\nsoftpre\nother\nbase\ncrcgen\ncrcfast\n")
    kernel = world.kernel(delay=0.05)
    out, err, status = world.run(kernel, "-j", "4", capfdbinary=capfdbinary)
    assert (out, status) == ("", 0)
    # The kernel command line's names come first; a module loaded for an earlier name is
    # already loaded for a later one, and systemd says nothing of it.
    assert err.splitlines() == [
        "Inserted module 'other'",
        "Inserted module 'top'",
        "Inserted module 'solo'",
        "Inserted module 'softpre'",
        "Inserted module 'crcgen'",
        "Inserted module 'crcfast'",
    ]
    assert set(loads(kernel).values()) == {1}
    assert sorted(loads(kernel)) == world.loaded()
    ended = {name: end for name, _, end in kernel.spans}
    for name, start, _ in kernel.spans:
        for dep in DEP[name]:
            assert ended[dep] <= start, f"{name} started before its dependency {dep} ended"
    assert kernel.most >= 2


def test_one_job_loads_one_module_at_a_time(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("top\nsolo\nsoftpre\ncrcgen\n")
    kernel = world.kernel(delay=0.01)
    assert world.run(kernel, "--jobs=1", capfdbinary=capfdbinary)[2] == 0
    assert kernel.most == 1
    assert [s[0] for s in kernel.spans] == [
        "other", "base", "left", "right", "top", "solo", "softpre", "crcgen",
    ]  # fmt: skip


def test_shared_dependency_is_loaded_once_whatever_the_threads(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("left\nright\n")
    for _ in range(20):
        for path in (world.root / "sys/module").iterdir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        kernel = world.kernel()
        assert world.run(kernel, "-j", "8", capfdbinary=capfdbinary)[2] == 0
        assert loads(kernel) == Counter({"other": 1, "base": 1, "left": 1, "right": 1})
        ended = {name: end for name, _, end in kernel.spans}
        starts = {name: start for name, start, _ in kernel.spans}
        assert ended["base"] <= min(starts["left"], starts["right"])


def test_failures_are_reported_per_module_and_make_the_status(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("needsbad\nnosuch\nsolo\nbad\nfailcmd\nviacmd\n")
    kernel = world.kernel(fail={"bad": errno.EINVAL})
    _out, err, status = world.run(kernel, capfdbinary=capfdbinary)
    assert err.splitlines() == [
        "Inserted module 'other'",
        # A dependency's failure is the name's, with the dependency's errno.
        "Failed to insert module 'needsbad': Invalid argument",
        "Failed to find module 'nosuch'",
        "Inserted module 'solo'",
        "Failed to insert module 'bad': Invalid argument",
        "Error running install command 'exit 3' for module failcmd: retcode 3",
        "Failed to insert module 'failcmd': Invalid argument",
        "Inserted module 'viacmd'",
    ]
    assert status == 1
    assert "needsbad" not in loads(kernel)
    assert loads(kernel)["bad"] == 1  # tried once for both names


def test_a_name_finding_nothing_is_not_a_failure(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("nosuch\n")
    assert world.run(world.kernel(), capfdbinary=capfdbinary) == (
        "",
        "Inserted module 'other'\nFailed to find module 'nosuch'\n",
        0,
    )


def test_built_in_blacklisted_and_loaded_modules(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # The blacklist applies to names as well as aliases; what the kernel has is checked first.
    world.conf("inkernel\nblocked\nfs-blocked\nsolo\nsolo\ncrypto-crc\n")
    kernel = world.kernel()
    _out, err, status = world.run(kernel, capfdbinary=capfdbinary)
    assert (err.splitlines(), status) == (
        [
            "Inserted module 'other'",
            "Module 'inkernel' is built in",
            "Module 'blocked' is deny-listed (by kmod)",
            "Module 'blocked' is deny-listed (by kmod)",
            "Inserted module 'solo'",
            "Inserted module 'crcfast'",
            "Inserted module 'crcgen'",
        ],
        0,
    )
    # modprobe.d's options, and the space modprobe writes before the (empty) command line's
    assert [c.params for c in kernel.calls if c.module == "solo"] == ["level=3 "]
    kernel = world.kernel()
    assert world.run(kernel, capfdbinary=capfdbinary)[1:] == (
        "Module 'inkernel' is built in\n"
        "Module 'blocked' is deny-listed (by kmod)\n"
        "Module 'blocked' is deny-listed (by kmod)\n",
        0,
    )
    assert kernel.calls == []


def test_softdep_failure_stops_nothing_and_is_not_logged(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("soft\n")
    kernel = world.kernel(fail={"bad": errno.EINVAL})
    assert world.run(kernel, capfdbinary=capfdbinary)[1:] == (
        "Inserted module 'other'\nInserted module 'soft'\n",
        0,
    )
    spans = {name: (start, end) for name, start, end in kernel.spans}
    assert spans["softpre"][1] <= spans["soft"][0]


def test_a_module_another_loader_inserted_meanwhile_counts_as_inserted(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("solo\n")
    kernel = world.kernel(fail_calls={"finit_module": errno.EEXIST})
    assert world.run(kernel, capfdbinary=capfdbinary)[1:] == (
        "Inserted module 'other'\nInserted module 'solo'\n",
        0,
    )


def test_files_given_are_read_alone_and_looked_for_in_the_directories(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    world.conf("solo\n", "given.conf", "usr/lib")
    world.conf("base\n", "unused.conf")
    absolute = world.conf("right\n", "abs.conf", "run")
    (world.root / "adir").mkdir()
    kernel = world.kernel()
    args = ["given.conf", "./given.conf", "missing.conf", absolute, str(world.root / "adir")]
    _out, err, status = world.run(kernel, *args, capfdbinary=capfdbinary)
    assert (err.splitlines(), status) == (
        [
            "Inserted module 'solo'",
            "Failed to open missing.conf: No such file or directory",
            "Inserted module 'right'",
            f"Failed to read file '{world.root}/adir': Is a directory",
        ],
        1,
    )
    assert "other" not in loads(kernel)  # the kernel command line is not read then


def test_initrd_reads_rd_modules_load(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    (world.root / "cmdline").write_text("rd.modules_load=solo modules-load=base,,other\n")
    assert world.run(world.kernel(), capfdbinary=capfdbinary)[1].splitlines() == [
        "Inserted module 'base'",
        "Inserted module 'other'",
    ]
    (world.root / "etc/initrd-release").write_text("")
    assert world.run(world.kernel(), capfdbinary=capfdbinary)[1] == "Inserted module 'solo'\n"


def test_json_records(world: World, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    world.conf("needsbad\nnosuch\nsolo\n")
    kernel = world.kernel(fail={"bad": errno.ENOEXEC})
    out, err, status = world.run(kernel, "--json", "-j2", capfdbinary=capfdbinary)
    assert (err, status) == ("", 1)
    records = validate_output("modules-load", out)["records"]
    path = str(world.root / "etc/modules-load.d/a.conf")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in records] == [
        {
            "name": "other", "source": str(world.root / "cmdline"), "line": None,
            "module": "other", "outcome": "inserted", "message": "Inserted module 'other'",
            "error": None, "notes": [],
        },
        {
            "name": "needsbad", "source": path, "line": 1, "module": "needsbad",
            "outcome": "failed",
            "message": "Failed to insert module 'needsbad': Exec format error",
            "error": "Failed to insert module 'needsbad': Exec format error", "notes": [],
        },
        {
            "name": "nosuch", "source": path, "line": 2, "module": None,
            "outcome": "not-found", "message": "Failed to find module 'nosuch'",
            "error": "Failed to find module 'nosuch'", "notes": [],
        },
        {
            "name": "solo", "source": path, "line": 3, "module": "solo",
            "outcome": "inserted", "message": "Inserted module 'solo'", "error": None,
            "notes": [],
        },
    ]  # fmt: skip
    assert records[3]["seconds"] > 0 and records[2]["seconds"] == 0
    assert json.loads(out)["schema"] == "lkm/modules-load/1"


def test_exit_status_rule() -> None:
    assert exit_status(()) == 0
    assert Outcome("unreadable") is Outcome.UNREADABLE


@pytest.mark.parametrize("value", ["0", "x", "-1", ""])
def test_bad_jobs(value: str, world: World, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert world.run(world.kernel(), "-j", value, capfdbinary=capfdbinary) == (
        "",
        f"lkm modules-load: ERROR: --jobs takes a number of threads (1 or more), not '{value}'.\n",
        1,
    )


def test_no_module_directory(world: World, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    out, err, status = world.run(world.kernel(), "-k", "9.9", capfdbinary=capfdbinary)
    assert (out, status) == ("", 1)
    assert err.startswith("lkm modules-load: ERROR: ") and "9.9" in err


def test_kernel_without_modules(world: World, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    world.conf("left\n")
    kernel = world.kernel(every=errno.ENOSYS)
    _, err, status = world.run(kernel, capfdbinary=capfdbinary)
    # No finit_module: lkm reads the file and tries init_module, which fails the same way.
    assert (err, status) == (
        "Failed to insert module 'other': Function not implemented\n"
        "Failed to insert module 'left': Function not implemented\n",
        1,
    )
    assert isinstance(KernelCallError("x", "y", 1), Exception)


def test_nothing_named_needs_no_module_directory(
    world: World, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    (world.root / "cmdline").write_text("quiet\n")
    world.system = world.system._replace(release="none")
    kernel = world.kernel()
    assert world.run(kernel, capfdbinary=capfdbinary) == ("", "", 0)
    assert world.run(kernel, "--json", capfdbinary=capfdbinary)[1:] == ("", 0)
    world.conf("solo\n")
    assert world.run(kernel, capfdbinary=capfdbinary) == (
        "",
        f"lkm modules-load: ERROR: module directory {world.root}/lib/modules/none: "
        "No such file or directory\n",
        1,
    )
