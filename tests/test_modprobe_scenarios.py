"""Configuration scenarios run through every modprobe query option, lkm against kmod 34.

Each scenario writes configuration files under the chroot's ``scratch-resolve/<name>/``, picks a
kernel command line and a loaded-module state (see modprobe_world), and every query in QUERIES
is asked of both tools for each of the scenario's names.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

import world
from differential import COMPARED, assert_same
from modprobe_world import (
    SCRATCH,
    Loaded,
    make_state,
    run_kmod,
    run_lkm,
    scratch,
    tree_args,
    write_files,
)

pytestmark = pytest.mark.slow

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


def _arguments(scenario: Scenario, query: tuple[str, ...], names: tuple[str, ...]) -> list[str]:
    config = []
    for arg in scenario.config:
        if arg == "-C":
            config.append(arg)
        elif arg.startswith("--config="):
            config.append(f"--config=/{SCRATCH}/{scenario.name}/{arg.removeprefix('--config=')}")
        else:
            config.append(f"/{SCRATCH}/{scenario.name}/{arg}")
    extra = list(scenario.extra) if "-a" not in query and "-r" not in query else []
    return [*tree_args(), *config, *query, *names, *extra]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_through_every_query(scenario: Scenario) -> None:
    tree = world.tree("trixie-amd64")
    base = scratch(scenario.name)
    write_files(base, scenario.files)
    state = make_state(base, scenario.cmdline, scenario.loaded)
    names = tuple(name.replace("{kver}", tree.kver) for name in scenario.names)
    compared = 0
    for query in QUERIES:
        groups = [names] if "-a" in query else [(name,) for name in names]
        if query == ("-c",):
            groups = [()]
        for group in groups:
            args = _arguments(scenario, query, group)
            expected = run_kmod(args, state)
            actual = run_lkm(args, state)
            try:
                assert_same(expected, actual)
            except AssertionError as err:
                raise AssertionError(f"modprobe {' '.join(args)}\n{err}") from None
            compared += 1
    COMPARED["modprobe scenario queries"] += compared
