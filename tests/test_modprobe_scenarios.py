"""Configuration scenarios run through every modprobe query option, lkm against kmod 34.

Each scenario writes configuration files under the chroot's ``scratch-resolve/<name>/``, picks a
kernel command line and a loaded-module state (see modprobe_world), and every query in QUERIES
is asked of both tools for each of the scenario's names.
"""

from __future__ import annotations

import pytest

from support import world
from support.differential import COMPARED, assert_same
from support.modprobe_cases import QUERIES, SCENARIOS, Scenario
from support.modprobe_world import (
    SCRATCH,
    make_state,
    run_kmod,
    run_lkm,
    scratch,
    tree_args,
    write_files,
)

pytestmark = pytest.mark.slow


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
