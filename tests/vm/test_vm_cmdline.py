"""``lkm modprobe`` on a real Linux 6.1 kernel booted with module words on its command line.

The guest kernel's command line (``/proc/cmdline``) carries ``module.param=value`` words and a
``modprobe.blacklist=``, which modprobe reads as configuration. The same boot covers remove and
install commands that fail, and the extra ``INFO`` lines of ``-vv``/``-vvv`` (two of them hold
memory addresses, which can never match: those two are replaced on both sides before comparing,
and nothing else). As in test_vm_modprobe.py, one boot runs every step with lkm, then with kmod
34, on the test modules' depmod-indexed tree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# Options alone, options also given by modprobe.d and by modprobe's arguments, a dash in the
# module name, quotes (around a value, and around the whole word), a blacklist naming a module
# reached through an alias, words for a module that is never loaded, and words kmod ignores
# (two dots, no module name).
APPEND = (
    'lkm_params.count=7 lkm-params.flag=1 lkm_params.word="a b" "lkm_params.level=5" '
    "lkm_params.list=4,5 modprobe.blacklist=lkm_provider,lkm_nothere lkm_nothere.x=1 "
    "lkm_busy.hold=0 lkm_params.a.b=1 .nomodule=1"
)
CONFIG = """\
options lkm_params level=2 word=conf
alias lkmprov lkm_provider
alias lkmparams lkm_params
remove lkm_busy /bin/false
install lkm_initfail echo install-failing $MODPROBE_MODULE >&2; exit 3
"""
FAILING = """\
remove lkm_busy echo remove-failing $MODPROBE_MODULE >&2; echo removing; exit 3
remove lkm_consumer /bin/false
"""
LOADED = "ls /sys/module | grep lkm_ || true"
PARAMS = "cd /sys/module/lkm_params/parameters && grep -r . | sort"
# (label, command): {tool} runs lkm or kmod; {mp} is modprobe on the test tree and CONFIG,
# {mpf} the same with FAILING, {mpm} and {mps} with test_vm_modprobe.py's configuration and
# softdep one; {mods} is the built test modules' directory, {root} the tree's.
STEPS = (
    ("cmdline", "cat /proc/cmdline"),
    ("show-config", "{tool} {mp} -c"),
    ("show-config-vv", "{tool} {mp} -c -vv"),
    ("dry-run", "{tool} {mp} -n -v lkm_params"),
    ("show-depends", "{tool} {mp} -D lkm-params"),
    ("load", "{tool} {mp} -v lkm_params"),
    ("load-sysfs", PARAMS),
    ("already-vv", "{tool} {mp} -vv lkm_params"),
    ("already-first-time-vv", "{tool} {mp} -vv --first-time lkm_params"),
    ("rm-vv", "{tool} {mp} -r -vv lkm_params"),
    ("rm-gone-vv", "{tool} {mp} -r -vv lkm_params"),
    ("rm-first-time-gone-vv", "{tool} {mp} -r -vv --first-time lkm_params"),
    ("load-args", "{tool} {mp} -vv lkm-params word=args count=9"),
    ("load-args-sysfs", PARAMS),
    ("rm-vvv", "{tool} {mp} -r -vvv lkm-params"),
    ("alias", "{tool} {mp} -v lkmparams"),
    ("alias-sysfs", PARAMS),
    ("rm-alias", "{tool} {mp} -r -v lkmparams"),
    ("blacklist-alias", "{tool} {mp} -vv lkmprov"),
    ("blacklist-resolve", "{tool} {mp} -R lkmprov"),
    ("blacklist-b", "{tool} {mp} -b -vv lkm_provider"),
    ("blacklist-state", LOADED),
    ("blacklist-name", "{tool} {mp} -vvv lkm_provider"),
    ("blacklist-dependency", "{tool} {mp} -r lkm_provider && {tool} {mp} -v lkm_consumer"),
    ("blacklist-dependency-state", LOADED),
    ("rm-in-use-vv", "{tool} {mp} -r -vv lkm_provider"),
    ("rm-holders-vv", "{tool} {mp} -r -vv --remove-holders lkm_provider"),
    ("never-loaded-vv", "{tool} {mp} -vv lkm_nothere"),
    ("never-loaded-all", "{tool} {mp} -a -vv lkm_nothere lkm_params"),
    ("unknown-symbol-vv", "{tool} {mp} -vv {root}/lkm_orphan.ko"),
    ("unknown-param-vv", "{tool} {mp} -r lkm_params; {tool} {mp} -vv lkm_params nosuch=1"),
    ("bad-value-vv", "{tool} {mp} -r lkm_params; {tool} {mp} -vv lkm_params count=abc"),
    ("vermagic-vv", "{tool} {mp} -vv lkm_vermagic"),
    ("init-fails-vv", "{tool} {mp} -i -vv lkm_initfail"),
    ("syslog-vv", "{tool} {mp} -s -vv lkm_initfail"),
    ("install-fails", "{tool} {mp} lkm_initfail"),
    ("install-fails-v", "{tool} {mp} -v lkm_initfail"),
    ("install-fails-vv", "{tool} {mp} -vv lkm_initfail"),
    ("install-fails-q", "{tool} {mp} -q lkm_initfail"),
    ("busy", "{tool} {mp} -vv lkm_busy"),
    ("busy-sysfs", "cat /sys/module/lkm_busy/parameters/hold"),
    ("rm-false", "{tool} {mp} -r lkm_busy"),
    ("rm-false-v", "{tool} {mp} -r -v lkm_busy"),
    ("rm-false-vv", "{tool} {mp} -r -vv lkm_busy"),
    ("rm-exit3", "{tool} {mpf} -r lkm_busy"),
    ("rm-exit3-v", "{tool} {mpf} -r -v lkm_busy"),
    ("rm-exit3-vv", "{tool} {mpf} -r -vv lkm_busy"),
    ("rm-exit3-q", "{tool} {mpf} -r -q lkm_busy"),
    ("rm-exit3-all", "{tool} {mpf} -r -a -vv lkm_busy lkm_params lkm_busy"),
    ("rm-exit3-next", "{tool} {mpf} -r -v lkm_busy lkm_params"),
    ("rm-gone-next", "{tool} {mp} -r -v lkm_params lkm_busy"),
    ("rm-failed-state", LOADED),
    ("rm-consumer-false", "{tool} {mp} lkm_consumer && {tool} {mpf} -r -v lkm_consumer"),
    ("rm-consumer-false-state", LOADED),
    ("rm-ignore-command", "{tool} {mpf} -r -i -vv lkm_busy lkm_consumer"),
    ("rm-ignore-command-state", LOADED),
    ("rm-false-not-loaded", "{tool} {mp} -r -v lkm_busy"),
    ("rm-exit3-not-loaded", "{tool} {mpf} -r -vv lkm_busy"),
    ("install-ok-vv", "{tool} {mpm} -vv lkm_busy a=1"),
    ("held", "{tool} {mp} -i lkm_busy && echo 1 > /sys/module/lkm_busy/parameters/hold"),
    ("rm-held-vv", "{tool} {mp} -r -i -vv lkm_busy"),
    # -w retries until the module is free: released after two seconds, it goes. (Giving up is
    # not compared: under a loaded host kmod 34's retries can outlast their limit for minutes.)
    (
        "rm-held-wait-vv",
        "(sleep 2; echo 0 > /sys/module/lkm_busy/parameters/hold) & "
        "{tool} {mp} -r -i -vv -w 60000 lkm_busy; rc=$?; wait; exit $rc",
    ),
    ("rm-held-wait-state", "grep -c '^lkm_busy ' /proc/modules || true"),
    ("softdep-vv", "{tool} {mps} -vv lkm_consumer"),
    ("rm-softdep-vv", "{tool} {mps} -r -vv lkm_consumer"),
    ("force-vv", "{tool} {mp} -f -vv lkm_vermagic"),
    ("rm-force-vv", "{tool} {mp} -r -vv lkm_params"),
    ("xz-vv", "{tool} {mp} -vv {mods}/lkm_params.ko.xz"),
    ("rm-xz-vv", "{tool} {mp} -r -vv lkm_params"),
    ("insmod-vv", "{tool} insmod -vv {mods}/lkm_params.ko count=1"),
    ("insmod-again-vv", "{tool} insmod -v -v {mods}/lkm_params.ko"),
    ("rmmod-vv", "{tool} rmmod -vv lkm_params"),
    ("rmmod-gone-vv", "{tool} rmmod -vv lkm_params"),
    ("end-state", LOADED),
    (
        "cleanup",
        "for m in lkm_consumer lkm_provider lkm_params lkm_busy lkm_vermagic; do "
        "$KMOD rmmod $m 2>/dev/null; done; true",
    ),
)


def cmdline_configs(root: Path) -> Path:
    """This test's configuration files, beside the tree (made once)."""
    from support import world

    conf = root / "cmdline-conf"
    with world.locked():
        conf.mkdir(exist_ok=True)
        for name, text in (("modprobe.conf", CONFIG), ("failing.conf", FAILING)):
            path = conf / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
    return conf


@pytest.fixture(scope="module")
def cmdline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import testmods

    guest = harness.guest("bookworm-amd64")
    mods = testmods.build(guest.kver)
    root = testmods.modprobe_tree(mods, guest.kver)
    conf = cmdline_configs(root)
    fields = {
        "mods": str(mods),
        "root": str(root),
        "mp": f"modprobe -d {root} -C {conf}/modprobe.conf",
        "mpf": f"modprobe -d {root} -C {conf}/failing.conf",
        "mpm": f"modprobe -d {root} -C {root}/modprobe.conf",
        "mps": f"modprobe -d {root} -C {root}/softdep.conf",
    }
    text = harness.compare_script(STEPS, fields, after="dmesg")
    out = tmp_path_factory.mktemp("cmdline-vm")
    run = harness.boot(guest, text, out, timeout=2400, append=APPEND)
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


def step(out: Path, label: str, variant: str) -> tuple[str, str, str]:
    """A step's (stdout, stderr, status) with kmod's addresses made ``0xADDR``."""
    import harness

    from support.differential import ADDRESS_LINE

    stdout, stderr, status = harness.read_step(out, label, variant)

    def hide(text: str) -> str:
        return re.sub(ADDRESS_LINE, "0xADDR", text, flags=re.MULTILINE)

    return hide(stdout), hide(stderr), status


@pytest.mark.parametrize("label", [label for label, _ in STEPS])
def test_step_matches_kmod(cmdline_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = step(cmdline_run, label, "lkm")
    kmod = step(cmdline_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    if harness.runs_a_tool(dict(STEPS)[label]):
        COMPARED[
            "real 6.1 kernel modprobe steps with a kernel command line running a tool (QEMU)"
        ] += 1


def test_every_step_ran_both_tools(cmdline_run: Path) -> None:
    import harness

    harness.check_steps_ran(cmdline_run, STEPS, minimum=62)


def test_scenarios_did_what_they_say(cmdline_run: Path) -> None:
    """Spot checks that the kernel really was in the state each scenario is about."""

    def lkm(label: str) -> tuple[str, str, str]:
        return step(cmdline_run, label, "lkm")

    assert "lkm_params.count=7" in lkm("cmdline")[0]
    assert "options lkm_params count=7\n" in lkm("show-config")[0]
    assert "count:7\n" in lkm("load-sysfs")[0]
    assert "word:a b\n" in lkm("load-sysfs")[0]
    assert "count:9\n" in lkm("load-args-sysfs")[0]
    assert lkm("blacklist-state")[0] == ""
    assert lkm("blacklist-dependency-state")[0] == "lkm_consumer\nlkm_provider\n"
    assert "INFO: custom logging function 0xADDR registered" in lkm("rm-vv")[1]
    assert lkm("busy-sysfs")[0] == "N\n"
    assert lkm("rm-exit3")[2] != "0"
    assert "lkm_busy\n" in lkm("rm-failed-state")[0]
    assert "lkm_provider\n" in lkm("rm-consumer-false-state")[0]
    assert lkm("rm-ignore-command-state")[0] == ""
    assert lkm("rm-held-vv")[1].endswith("FATAL: Module lkm_busy is in use.\n")
    assert lkm("rm-held-wait-state")[0] == "0\n"
    assert lkm("install-ok-vv")[0].startswith("installing lkm_busy hold=0 a=1\n")  # cmdline
    assert lkm("end-state")[0] == ""
