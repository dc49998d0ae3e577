"""``lkm modprobe`` loading and removing on a real Linux 6.1 kernel, against kmod 34.

The test modules (testmods.py) are copied into a module tree of the guest's release under
``extra/``, kmod 34's depmod indexes it, and every step runs modprobe with ``-d`` on that tree
and ``-C`` on a configuration made here (options, aliases, blacklist, install and remove
commands; a second one with a softdep). One boot runs every step with lkm, then with kmod 34;
the state steps between them (``/sys/module``) must agree too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from testmods import modprobe_tree

pytestmark = [pytest.mark.vm, pytest.mark.slow]

LOADED = "ls /sys/module | grep lkm_ || true"
# (label, command): {tool} runs lkm or kmod; {mp} is modprobe on the test tree and testmods.CONFIG,
# {mps} the same with testmods.SOFTDEP, {mpf} with testmods.SOFTFAIL; {mods} is the built test
# modules' directory.
STEPS = (
    ("consumer-dry", "{tool} {mp} -n -v lkm_consumer"),
    ("consumer", "{tool} {mp} -v lkm_consumer"),
    ("consumer-state", "cat /sys/module/lkm_provider/refcnt; ls /sys/module/lkm_provider/holders"),
    ("consumer-dry-loaded", "{tool} {mp} -n -v lkm_consumer"),
    ("consumer-again", "{tool} {mp} -v lkm_consumer"),
    ("consumer-first-time", "{tool} {mp} --first-time lkm_consumer"),
    ("provider-first-time", "{tool} {mp} --first-time -v lkm_provider"),
    ("rm-provider-held", "{tool} {mp} -r lkm_provider"),
    ("rm-consumer-dry", "{tool} {mp} -r -n -v lkm_consumer"),
    ("rm-consumer", "{tool} {mp} -r -v lkm_consumer"),
    ("rm-consumer-state", LOADED),
    ("rm-consumer-gone", "{tool} {mp} -r lkm_consumer"),
    ("rm-first-time-gone", "{tool} {mp} -r --first-time lkm_consumer"),
    ("consumer-load2", "{tool} {mp} lkm_consumer"),
    ("rm-holders", "{tool} {mp} -r -v --remove-holders lkm_provider"),
    ("rm-holders-state", LOADED),
    ("options", "{tool} {mp} -v lkm_params level=2 'word=cmd line'"),
    ("options-sysfs", "cd /sys/module/lkm_params/parameters && grep -r . | sort"),
    ("rm-params", "{tool} {mp} -r -v lkm_params"),
    ("alias-options", "{tool} {mp} -v lkmtest"),
    ("alias-options-sysfs", "cat /sys/module/lkm_params/parameters/word"),
    ("rm-alias", "{tool} {mp} -r -v lkmtest"),
    ("blacklist-alias", "{tool} {mp} -v lkmprov"),
    ("blacklist-alias-state", LOADED),
    ("blacklist-name", "{tool} {mp} -v lkm_provider"),
    ("rm-blacklisted", "{tool} {mp} -r -v lkm_provider"),
    ("blacklist-b", "{tool} {mp} -b -v lkm_provider"),
    ("blacklist-b-state", LOADED),
    ("install-cmd", "{tool} {mp} -v lkm_busy a=1"),
    ("install-cmd-quiet", "{tool} {mp} lkm_busy"),
    ("install-cmd-state", LOADED),
    ("install-ignored", "{tool} {mp} -i -v lkm_busy"),
    ("hold", "echo 1 > /sys/module/lkm_busy/parameters/hold"),
    ("rm-busy-held", "{tool} {mp} -r -i lkm_busy"),
    ("rm-busy-wait", "{tool} {mp} -r -i -w 300 lkm_busy"),
    ("release", "echo 0 > /sys/module/lkm_busy/parameters/hold"),
    ("rm-busy-cmd", "{tool} {mp} -r -v lkm_busy"),
    ("rm-busy-cmd-state", LOADED),
    ("rm-busy", "{tool} {mp} -r -i -v lkm_busy"),
    ("install-fails", "{tool} {mp} lkm_initfail"),
    ("initfail", "{tool} {mp} -i lkm_initfail"),
    ("path-with-dependencies", "{tool} {mp} -v {mods}/lkm_consumer.ko"),
    ("unknown-symbol", "{tool} {mp} -r lkm_consumer && {tool} {mp} -v {root}/lkm_orphan.ko"),
    ("unknown-symbol-state", LOADED),
    ("unknown-param", "{tool} {mp} lkm_params nosuch=1"),
    ("unknown-param-state", LOADED),
    ("rm-unknown-param", "{tool} {mp} -r lkm_params"),
    ("bad-value", "{tool} {mp} lkm_params count=abc"),
    ("bad-value-quiet", "{tool} {mp} -q lkm_params count=abc"),
    ("bad-value-syslog", "{tool} {mp} -s lkm_params count=abc"),
    ("vermagic", "{tool} {mp} lkm_vermagic"),
    ("force-modversion", "{tool} {mp} --force-modversion -v lkm_vermagic"),
    ("vermagic-force", "{tool} {mp} -f -v lkm_vermagic"),
    ("vermagic-taint", "cat /sys/module/lkm_params/taint"),
    ("rm-vermagic-name", "{tool} {mp} -r lkm_vermagic"),
    ("rm-params2", "{tool} {mp} -r -v lkm_params"),
    ("force-vermagic", "{tool} {mp} --force-vermagic -v lkm_vermagic"),
    ("rm-params3", "{tool} {mp} -r -v lkm_params"),
    ("all", "{tool} {mp} -a -v lkm_params lkm_provider nosuch"),
    ("rm-all", "{tool} {mp} -r -a -v lkm_params lkm_provider nosuch"),
    ("softdep", "{tool} {mps} -v lkm_consumer"),
    ("softdep-sysfs", "cat /sys/module/lkm_params/parameters/word"),
    ("rm-softdep", "{tool} {mps} -r -v lkm_consumer"),
    ("rm-softdep-state", LOADED),
    ("softdep-fails", "{tool} {mpf} -v lkm_consumer"),
    ("softdep-fails-state", LOADED),
    ("rm-softdep-fails", "{tool} {mp} -r -v lkm_consumer"),
    ("not-found", "{tool} {mp} nosuch"),
    ("rm-not-found", "{tool} {mp} -r nosuch"),
    ("path", "{tool} {mp} -v {mods}/lkm_provider.ko"),
    ("rm-path", "{tool} {mp} -r -v lkm_provider"),
    ("missing-name", "{tool} {mp}"),
    ("end-state", LOADED),
    (
        "cleanup",
        "[ ! -d /sys/module/lkm_busy ] || echo 0 > /sys/module/lkm_busy/parameters/hold; "
        "for m in lkm_consumer lkm_provider lkm_params lkm_busy; do $KMOD rmmod $m 2>/dev/null; "
        "done; true",
    ),
)


@pytest.fixture(scope="module")
def modprobe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import testmods

    guest = harness.guest("bookworm-amd64")
    mods = testmods.build(guest.kver)
    root = modprobe_tree(mods, guest.kver)
    fields = {
        "mods": str(mods),
        "root": str(root),
        "mp": f"modprobe -d {root} -C {root}/modprobe.conf",
        "mps": f"modprobe -d {root} -C {root}/softdep.conf",
        "mpf": f"modprobe -d {root} -C {root}/softfail.conf",
    }
    text = harness.compare_script(STEPS, fields, after="dmesg")
    out = tmp_path_factory.mktemp("modprobe-vm")
    run = harness.boot(guest, text, out, timeout=2400)  # lkm steps take ~15 s each under TCG
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


@pytest.mark.parametrize("label", [label for label, _ in STEPS])
def test_step_matches_kmod(modprobe_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = harness.read_step(modprobe_run, label, "lkm")
    kmod = harness.read_step(modprobe_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    if harness.runs_a_tool(dict(STEPS)[label]):
        COMPARED["real 6.1 kernel modprobe steps running a tool (QEMU)"] += 1


def test_every_step_ran_both_tools(modprobe_run: Path) -> None:
    import harness

    harness.check_steps_ran(modprobe_run, STEPS, minimum=55)


def test_scenarios_did_what_they_say(modprobe_run: Path) -> None:
    """Spot checks that the kernel really was in the state each scenario is about."""
    import harness

    def step(label: str) -> tuple[str, str, str]:
        return harness.read_step(modprobe_run, label, "lkm")

    assert step("consumer-state")[0] == "1\nlkm_consumer\n"  # the provider came first
    assert step("rm-consumer-state")[0] == ""  # the unused provider went with it
    assert step("rm-holders-state")[0] == ""
    assert "word:cmd line\n" in step("options-sysfs")[0]
    assert step("alias-options-sysfs")[0] == "conf\n"
    assert step("blacklist-alias-state")[0] == ""
    assert step("install-cmd")[0].startswith("installing lkm_busy a=1\n")
    assert step("install-cmd-state")[0] == ""  # the command ran instead of the module
    assert step("rm-busy-cmd-state")[0] == "lkm_busy\n"
    assert step("rm-busy-held")[2] == "1"
    assert step("softdep-sysfs")[0] == "soft\n"
    # Failing soft dependencies stop nothing: the module and its hard dependency are in.
    assert step("softdep-fails-state")[0] == "lkm_consumer\nlkm_provider\n"
    assert step("vermagic")[2] == "1"
    assert step("vermagic-force")[2] == "0"
    assert "F" in step("vermagic-taint")[0]
    assert step("end-state")[0] == ""
