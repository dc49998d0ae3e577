"""modprobe on small made-up module directories, and what kmod 34 prints for each.

The configuration scenarios (also run against the real trixie tree by
test_modprobe_scenarios.py) meet a made-up module directory holding modules of the same names,
so they run without the real trees; a few more cases cover names nothing knows, bad options,
builtin modules and real loading (which fails: the kernel has no module support, ENOSYS).
Every case is files, a kernel command line, a loaded-module state and a command line; ``{dir}``
stands for the case's directory. ``data/modprobe-cases.json`` holds kmod 34's outputs, recorded
by ``python tests/support/modprobe_cases.py record`` (the slow test_recorded_outputs_are_kmods
checks them against kmod again).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

# Run as a script (``python tests/support/modprobe_cases.py record``): the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import recording
from support.depmod_trees import module_elf
from support.modinfo_cases import Output, fill, placeholder
from support.modprobe_world import Loaded

RECORDED = Path(__file__).parent.parent / "data" / "modprobe-cases.json"
RELEASE = "1.0-t"

# Every query mode, as extra arguments before the names. (--first-time with -n is left out:
# kmod 34's output then depends on stdout buffering, see the report in resolve.py's tests.)
QUERIES = (
    ("-R",),
    ("-D",),
    ("-D", "-b"),
    ("-D", "-i"),
    ("-n", "-v"),
    ("-n", "-v", "-b"),
    ("-n", "-v", "-i"),
    ("-n",),
    ("-r", "-n", "-v"),
    ("-r", "-n", "-v", "-i"),
    ("-r", "-n", "-v", "--remove-holders"),
    ("-r", "-n", "-v", "--first-time"),
    ("-r", "-D"),
    ("-c",),
    ("-q", "-D"),
    ("-a", "-D"),
    ("-a", "-R"),
    ("-a", "-n", "-v"),
)

LOADED = (
    Loaded("ext4"),
    Loaded("jbd2", refcount=1, holders=("ext4",)),
    Loaded("mbcache", refcount=1, holders=("ext4",)),
    Loaded("crc16", refcount=1, holders=("ext4",)),
    Loaded("crc32c_generic"),
    Loaded("e1000e", refcount=2),
    Loaded("ecb", state=None),
)


class Scenario(NamedTuple):
    name: str
    files: dict[str, bytes]
    names: tuple[str, ...]
    config: tuple[str, ...] = ("-C", "conf")  # relative to the scenario's directory
    cmdline: str = ""
    loaded: tuple[Loaded, ...] | None = LOADED
    extra: tuple[str, ...] = ()  # options after the name (without -a)


SCENARIOS = [
    Scenario(
        "options-continuations-tabs",
        {
            "conf/a.conf": b"options ext4 a=1 \\\n\tb=2\noptions jbd2\tx=1\t y=2\n"
            b"options ext-4 c=3\noptions mbcache  m=\\\n  2\n"
        },
        ("ext4", "jbd2", "mbcache", "fs-ext4"),
        extra=("z=9", "w"),
    ),
    Scenario(
        "aliases-of-aliases",
        {
            "conf/a.conf": b"alias my-fs fs-ext4\nalias fs-ext4 jbd2\nalias my* mbcache\n"
            b"alias deep my-fs\noptions my-fs o=1\noptions my* p=2\noptions fs-ext4 q=3\n"
            b"alias ghost nothing-here\n"
        },
        ("my-fs", "fs-ext4", "myx", "deep", "ghost", "ext4"),
    ),
    Scenario(
        "blacklist-by-alias-and-name",
        {
            "conf/a.conf": b"blacklist e1000e\nblacklist jbd2\nblacklist crc32c-intel\n"
            b"alias myjbd jbd2\nblacklist zbud\n"
        },
        (
            "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00",
            "e1000e",
            "myjbd",
            "jbd2",
            "ext4",
            "crc32c",
            "symbol:jbd2_journal_start",
            "zbud",
        ),
    ),
    Scenario(
        "softdeps-pre-post",
        {
            "conf/a.conf": b"softdep mbcache pre: crc16 post: jbd2 ext4\n"
            b"softdep ext4 post: crc-itu-t zbud pre: ecb\nsoftdep crc_itu_t post: crc32c_generic\n"
            b"softdep crc16 pre: nosuchmod\n"
        },
        ("ext4", "mbcache", "crc16", "crc_itu_t", "ecb"),
    ),
    Scenario(
        "weakdeps",
        {"conf/a.conf": b"weakdep ext4 crc-itu-t e1000e\nweakdep e1000e ptp\n"},
        ("ext4", "e1000e"),
    ),
    Scenario(
        "install-and-remove",
        {
            "conf/a.conf": b"install jbd2 echo J $CMDLINE_OPTS\ninstall crc16 echo C\n"
            b"remove mbcache echo RM $CMDLINE_OPTS;\nremove e1000e echo RE\n"
            b"install inst /bin/true\nremove rem /bin/false\ninstall zbud echo zb\n"
            b"options crc16 c=1\ninstall crc16 second\nsoftdep mbcache post: zbud\n"
            b"install mbcache echo M\n"
        },
        ("ext4", "jbd2", "crc16", "inst", "rem", "zbud", "mbcache", "e1000e"),
        extra=("x=1",),
    ),
    Scenario(
        "kernel-command-line",
        {"conf/a.conf": b"options ext4 cfg=1\n"},
        ("ext4", "e1000e", "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00", "jbd2"),
        cmdline='quiet ext4.k=1 jbd2.j="a b" modprobe.blacklist=e1000e,crc32c_generic '
        "mbcache.m ext-4.dash=2\n",
    ),
    Scenario(
        "shadowing-files",
        {
            "h1/same.conf": b"options ext4 from=h1\nalias shadow jbd2\n",
            "h2/same.conf": b"options ext4 from=h2\nalias shadow mbcache\n",
            "h2/other.conf": b"options ext4 other=h2\n",
            "one.conf": b"options ext4 file=1\n",
        },
        ("ext4", "shadow"),
        config=("-C", "h1", "-C", "h2", "-C", "one.conf"),
    ),
    Scenario(
        "config-file-and-directory",
        {"dir/b.conf": b"alias dd jbd2\n", "file": b"alias ff mbcache\noptions jbd2 f=1\n"},
        ("dd", "ff", "jbd2"),
        config=("--config=file", "-C", "dir"),
    ),
    Scenario(
        "bad-lines",
        {
            "conf/a.conf": b"bogus line\noptions\nalias x\ninclude /etc/x\n  # not a comment\n"
            b"options ext4 ok=1\nalias a[b jbd2\n"
        },
        ("ext4", "x"),
    ),
    Scenario(
        "nothing-loaded",
        {"conf/a.conf": b"softdep ext4 post: crc-itu-t\n"},
        ("ext4", "jbd2", "zbud", "nosuch", "symbol:nosuch", "a/b", "../x", "/nope.ko"),
        loaded=None,
    ),
    Scenario(
        "paths",
        {"conf/a.conf": b"options crc16 p=1\n"},
        (
            "/trees/trixie-amd64/lib/modules/{kver}/kernel/lib/crc16.ko.xz",
            "/trees/trixie-amd64/lib/modules/{kver}/kernel/fs/ext4/ext4.ko.xz",
            "/nonexistdir",
        ),
    ),
]


# -- a made-up module directory with the modules the scenarios name ----------------------------

# name: (path below the module directory, what it needs, in modules.dep's order)
MODULES = {
    "ext4": ("kernel/fs/ext4/ext4.ko", ("jbd2", "mbcache", "crc16")),
    "jbd2": ("kernel/fs/jbd2/jbd2.ko", ()),
    "mbcache": ("kernel/fs/mbcache.ko", ()),
    "crc16": ("kernel/lib/crc16.ko", ()),
    "crc_itu_t": ("kernel/lib/crc-itu-t.ko", ()),
    "crc32c_generic": ("kernel/crypto/crc32c_generic.ko", ()),
    "crc32c_intel": ("kernel/arch/x86/crypto/crc32c-intel.ko", ()),
    "e1000e": ("kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko", ("ptp", "pps_core")),
    "ptp": ("kernel/drivers/ptp/ptp.ko", ("pps_core",)),
    "pps_core": ("kernel/drivers/pps/pps_core.ko", ()),
    "ecb": ("kernel/crypto/ecb.ko", ()),
    "zbud": ("kernel/mm/zbud.ko", ()),
}
# Alias keys as depmod stores them (dashes made underscores outside brackets), in file order.
ALIASES = (
    ("fs_ext4", "ext4"),
    ("ext3", "ext4"),
    ("pci:v00008086d000010D3sv*sd*bc*sc*i*", "e1000e"),
    ("crypto_crc32c", "crc32c_intel"),
    ("crc32c", "crc32c_intel"),
    ("crypto_crc32c", "crc32c_generic"),
    ("crc32c", "crc32c_generic"),
    ("zpool_zbud", "zbud"),
)
SYMBOLS = (("symbol:jbd2_journal_start", "jbd2"), ("symbol:crc16", "crc16"))


def module_tree() -> dict[str, bytes]:
    """The module directory's files, relative to the case's directory."""
    from lkm.index import write_index

    moddir = f"root/lib/modules/{RELEASE}"
    files = {}
    dep = []
    for order, (name, (path, needs)) in enumerate(MODULES.items()):
        files[f"{moddir}/{path}"] = module_elf(modinfo=[f"name={name}", "license=GPL"])
        dep.append((name, " ".join([f"{path}:", *(MODULES[n][0] for n in needs)]), order))
    files[f"{moddir}/modules.dep.bin"] = write_index(dep)
    files[f"{moddir}/modules.alias.bin"] = write_index(
        (key, value, order) for order, (key, value) in enumerate(ALIASES)
    )
    files[f"{moddir}/modules.symbols.bin"] = write_index(
        (key, value, order) for order, (key, value) in enumerate(SYMBOLS)
    )
    files[f"{moddir}/modules.builtin.bin"] = write_index([("unix", "", 0), ("sha256", "", 1)])
    files[f"{moddir}/modules.builtin.alias.bin"] = write_index(
        [("net_pf_1", "unix", 0), ("crypto_sha256", "sha256", 1)]
    )
    files[f"{moddir}/modules.softdep"] = b"# Soft dependencies\nsoftdep zbud pre: crc16\n"
    return files


# -- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    cmdline: str = ""
    loaded: tuple[Loaded, ...] | None = None


# The queries each scenario name is asked through (all of QUERIES for every name would be a
# thousand runs; the slow scenario test does that on the real tree).
PER_modprobe_cases = (("-R",), ("-D",), ("-n", "-v"), ("-r", "-n", "-v"), ("-n", "-v", "-i"))
ALL_modprobe_casesS = (("-a", "-D"), ("-a", "-R"), ("-a", "-n", "-v"), ("-q", "-a", "-R"))


def _config_args(scenario: Scenario) -> list[str]:
    out = []
    for arg in scenario.config:
        if arg == "-C":
            out.append(arg)
        elif arg.startswith("--config="):
            out.append(f"--config={{dir}}/{arg.removeprefix('--config=')}")
        else:
            out.append(f"{{dir}}/{arg}")
    return out


def _scenario_cases(scenario: Scenario) -> list[Case]:
    files = {**module_tree(), **scenario.files}
    start = ["-d", "{dir}/root", "-S", RELEASE, *_config_args(scenario)]
    commands = [[*start, "-c"]]
    commands += [[*start, *query, *scenario.names] for query in ALL_modprobe_casesS]
    for name in scenario.names:
        for query in PER_modprobe_cases:
            extra = list(scenario.extra) if "-r" not in query else []
            commands.append([*start, *query, name, *extra])
    return [
        Case(f"{scenario.name}-{number:02d}", args, files, scenario.cmdline, scenario.loaded)
        for number, args in enumerate(commands)
    ]


def _other_cases() -> list[Case]:
    tree = module_tree()
    start = ["-d", "{dir}/root", "-S", RELEASE, "-C", "{dir}/conf"]
    conf = {"conf/a.conf": b"install jbd2 echo J $CMDLINE_OPTS\nremove mbcache echo RM\n"
            b"options crc16 c=1\nblacklist ecb\n"}  # fmt: skip
    files = {**tree, **conf}
    crc16 = f"{{dir}}/root/lib/modules/{RELEASE}/{MODULES['crc16'][0]}"
    loaded = (Loaded("mbcache"), Loaded("ext4", refcount=1), Loaded("crc16"))
    listing = [
        ("no-names", [*start]),
        ("no-names-show-depends", [*start, "-D"]),
        ("not-found", [*start, "-R", "nosuch"]),
        ("not-found-load", [*start, "-n", "-v", "nosuch"]),
        ("not-found-quiet", [*start, "-q", "nosuch"]),
        ("not-found-among-all", [*start, "-a", "-n", "-v", "crc16", "nosuch", "zbud"]),
        ("not-found-among-all-quiet", [*start, "-q", "-a", "-D", "crc16", "nosuch", "zbud"]),
        ("remove-not-loaded", [*start, "-r", "zbud"]),
        ("remove-not-found", [*start, "-r", "nosuch"]),
        ("bad-option", [*start, "--bogus", "crc16"]),
        ("bad-short-option", [*start, "-X", "crc16"]),
        ("missing-value", [*start, "-S"]),
        ("release-missing", ["-d", "{dir}/root", "-S", "9.9", "-C", "{dir}/conf", "-D", "ext4"]),
        ("builtin", [*start, "-n", "-v", "unix"]),
        ("builtin-alias", [*start, "-R", "net-pf-1"]),
        ("builtin-show-depends", [*start, "-D", "-a", "unix", "crypto-sha256"]),
        ("builtin-remove", [*start, "-r", "-n", "-v", "unix"]),
        ("module-path", [*start, "-n", "-v", crc16]),
        ("module-path-show-depends", [*start, "-D", crc16, "x=1"]),
        ("blacklisted-alias-vs-name", [*start, "-n", "-v", "-b", "ecb"]),
        ("depmod-softdep", [*start, "-D", "zbud"]),
        ("show-config-with-moddir", [*start, "-c"]),
        ("load-no-kernel-support", [*start, "crc16"]),
        ("load-with-deps", [*start, "-v", "ext4"]),
        ("load-install-command", [*start, "jbd2", "a=1"]),
        ("load-all", [*start, "-a", "jbd2", "zbud", "nosuch"]),
        ("load-already-loaded", [*start, "-v", "crc16"]),
        ("load-first-time", [*start, "--first-time", "crc16"]),
        ("remove-loaded", [*start, "-r", "-v", "crc16"]),
        ("remove-command", [*start, "-r", "mbcache"]),
        ("remove-in-use", [*start, "-r", "ext4"]),
    ]
    cases = [Case(name, args, files, "", loaded) for name, args in listing]
    cmdline = 'quiet crc16.k=2 modprobe.blacklist=zbud,crypto-sha256 crc-itu-t.x="a b"\n'
    for name, args in {"cmdline-options": ["-n", "-v", "crc16", "z=1"], "cmdline-all": ["-c"],
                       "cmdline-blacklist": ["-a", "-n", "-v", "-b", "zbud", "zpool-zbud"],
                       "cmdline-quoted": ["-D", "crc_itu_t"]}.items():  # fmt: skip
        cases.append(Case(name, [*start, *args], files, cmdline, None))
    return cases


def _cases() -> list[Case]:
    cases = [c for s in SCENARIOS if s.name != "paths" for c in _scenario_cases(s)]
    return cases + _other_cases()


CASES = {case.name: case for case in _cases()}


def materialise(case: Case, where: Path) -> Path:
    """The case's files under ``where``; returns its state directory (cmdline, module/)."""
    from support.modprobe_world import make_state, write_files

    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    write_files(where, case.files)
    return make_state(where, case.cmdline, case.loaded)


# -- running ---------------------------------------------------------------------------------


def run_lkm_inprocess(args: list[str], state: Path) -> Output:
    """``lkm modprobe`` in this process, with the state's kernel command line and /sys, and a
    kernel without module support (as kmod runs under strace injecting ENOSYS)."""
    from unittest import mock

    from lkm.cli import modprobe
    from lkm.system import System
    from support.kernel import FakeKernel
    from support.recorded import run_captured

    environ = {k: v for k, v in os.environ.items() if k != "MODPROBE_OPTIONS"}
    system = System(sysfs=str(state), cmdline=str(state / "cmdline"))
    main = partial(modprobe.main, kernel=FakeKernel(every=errno.ENOSYS), system=system)
    with mock.patch.dict(os.environ, environ, clear=True):
        return run_captured(main, args)


def record_with_kmod() -> dict[str, Output]:
    from support import world
    from support.modprobe_world import REAL, run_kmod

    results = {}
    for case in CASES.values():
        where = world.CHROOT / "scratch-modprobe-cases" / case.name
        state = materialise(case, where)
        inside = "/" + str(where.relative_to(world.CHROOT))
        done = run_kmod(fill(case.args, inside), state, REAL)
        results[case.name] = placeholder(Output(done.stdout, done.stderr, done.status), inside)
        shutil.rmtree(where)
    return results


def load_recorded() -> dict[str, Output]:
    return recording.load(RECORDED, Output.from_json)


def main(argv: list[str]) -> int:
    return recording.record_main(argv, "modprobe_cases.py", record_with_kmod, RECORDED)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
