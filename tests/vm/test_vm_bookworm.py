"""lkm and kmod 34 against a real Linux 6.1 (Debian bookworm) kernel, with test modules from source.

The modules of ``tests/data/testmods`` are built against the kernel's headers (testmods.py). One
boot runs every step first with lkm, then with kmod 34, so both meet the kernel in the same state
(steps that only read the kernel's own files run in both passes too and must agree: the state is
the same). 6.1 decompresses nothing itself, so the xz step exercises user-space decompression.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

PARAMS = "count=7 big=123456789012 flag=1 word=hello level=-5 list=1,2,3"
# (label, command): {tool} runs lkm or kmod, {mods} is the built test modules' directory.
STEPS = (
    ("lsmod-start", "{tool} lsmod"),
    ("insmod-params", "{tool} insmod {mods}/lkm_params.ko " + PARAMS),
    ("params-sysfs", "cd /sys/module/lkm_params/parameters && grep -r . | sort"),
    ("params-taint", "cat /sys/module/lkm_params/taint; grep -o '^lkm_params .*' /proc/modules"),
    ("lsmod-params", "{tool} lsmod"),
    ("list-params", "{tool} kmod list"),
    ("insmod-params-again", "{tool} insmod {mods}/lkm_params.ko"),
    ("rmmod-params", "{tool} rmmod lkm_params"),
    ("rmmod-params-gone", "{tool} rmmod lkm_params"),
    ("insmod-unknown-param", "{tool} insmod {mods}/lkm_params.ko nosuch=1"),
    ("rmmod-unknown-param", "{tool} rmmod lkm_params"),
    ("insmod-bad-value", "{tool} insmod {mods}/lkm_params.ko count=abc"),
    ("insmod-spaces", "{tool} insmod {mods}/lkm_params.ko 'word=two words' list=4"),
    ("param-spaces", "cat /sys/module/lkm_params/parameters/word"),
    ("rmmod-spaces", "{tool} rmmod -v lkm_params"),
    ("insmod-consumer-alone", "{tool} insmod {mods}/lkm_consumer.ko"),
    ("insmod-provider", "{tool} insmod {mods}/lkm_provider.ko"),
    ("insmod-consumer", "{tool} insmod {mods}/lkm_consumer.ko"),
    ("holders", "ls /sys/module/lkm_provider/holders; cat /sys/module/lkm_provider/refcnt"),
    ("lsmod-deps", "{tool} lsmod"),
    # lkm's own view of the same state, in both passes (compared with kmod's lsmod below).
    ("loaded-deps", "$LKM loaded --json"),
    ("rmmod-provider-held", "{tool} rmmod lkm_provider"),
    ("rmmod-both-wrong-order", "{tool} rmmod lkm_provider lkm_consumer"),
    ("rmmod-provider", "{tool} rmmod lkm_provider"),
    ("rmmod-provider-gone", "{tool} rmmod {mods}/lkm_provider.ko"),
    ("insmod-busy", "{tool} insmod {mods}/lkm_busy.ko"),
    ("hold", "echo 1 > /sys/module/lkm_busy/parameters/hold; cat /sys/module/lkm_busy/refcnt"),
    ("lsmod-busy", "{tool} lsmod"),
    ("rmmod-busy-held", "{tool} rmmod lkm_busy"),
    ("rmmod-busy-held-verbose", "{tool} rmmod -v lkm_busy"),
    ("release", "echo 0 > /sys/module/lkm_busy/parameters/hold"),
    ("rmmod-busy", "{tool} rmmod lkm_busy"),
    ("insmod-initfail", "{tool} insmod {mods}/lkm_initfail.ko"),
    ("initfail-gone", "ls /sys/module | grep -c lkm_ || true"),
    ("insmod-vermagic", "{tool} insmod {mods}/lkm_vermagic.ko"),
    ("insmod-vermagic-force", "{tool} insmod -f {mods}/lkm_vermagic.ko"),
    ("vermagic-forced-taint", "cat /sys/module/lkm_params/taint"),
    ("rmmod-vermagic", "{tool} rmmod lkm_params"),
    ("insmod-xz-userspace", "{tool} insmod {mods}/lkm_params.ko.xz word=xz"),
    ("param-xz", "cat /sys/module/lkm_params/parameters/word"),
    ("rmmod-xz-by-path", "{tool} rmmod {mods}/lkm_params.ko.xz"),
    ("rmmod-builtin", "{tool} rmmod unix"),
    ("static-nodes", "{tool} kmod static-nodes"),
    ("static-nodes-tmpfiles", "{tool} kmod static-nodes --format=tmpfiles"),
    ("static-nodes-devname", "{tool} kmod static-nodes -f devname"),
    ("lsmod-end", "{tool} lsmod"),
)


@pytest.fixture(scope="module")
def bookworm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import testmods

    guest = harness.guest("bookworm-amd64")
    mods = testmods.build(guest.kver)
    text = harness.compare_script(
        STEPS, {"mods": str(mods)}, setup=harness.devname_setup(guest), after="dmesg"
    )
    out = tmp_path_factory.mktemp("bookworm-vm")
    run = harness.boot(guest, text, out, timeout=2400)  # ~6 min quiet; Python is slow under TCG
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


@pytest.mark.parametrize("label", [label for label, _ in STEPS])
def test_step_matches_kmod(bookworm_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = harness.read_step(bookworm_run, label, "lkm")
    kmod = harness.read_step(bookworm_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    if harness.runs_a_tool(dict(STEPS)[label]):
        COMPARED["real 6.1 kernel steps with test modules running a tool (QEMU)"] += 1


def test_every_step_ran_both_tools(bookworm_run: Path) -> None:
    import harness

    harness.check_steps_ran(bookworm_run, STEPS, minimum=36)


def test_unsigned_module_taints(bookworm_run: Path) -> None:
    """The test modules are unsigned and out of tree: O and E, in /sys and in /proc/modules."""
    import harness

    for variant in ("lkm", "kmod"):
        out, _err, status = harness.read_step(bookworm_run, "params-taint", variant)
        assert status == "0"
        taint, proc = out.splitlines()
        assert taint == "OE"
        assert proc.endswith(" (OE)")


def test_scenarios_did_what_they_say(bookworm_run: Path) -> None:
    """Spot checks that the kernel really was in the state each scenario is about."""
    import harness

    def step(label: str) -> tuple[str, str, str]:
        return harness.read_step(bookworm_run, label, "lkm")

    assert "count:7\n" in step("params-sysfs")[0]
    assert "list:1,2,3\n" in step("params-sysfs")[0]
    assert step("param-spaces")[0] == "two words\n"
    assert step("holders")[0] == "lkm_consumer\n1\n"
    assert step("hold")[0] == "1\n"
    assert step("rmmod-busy-held")[2] != "0"
    assert step("insmod-initfail")[2] != "0"
    assert step("initfail-gone")[0] == "0\n"
    assert step("insmod-vermagic")[2] != "0"
    assert step("insmod-vermagic-force")[2] == "0"
    assert "F" in step("vermagic-forced-taint")[0]
    assert step("param-xz")[0] == "xz\n"
    assert step("static-nodes-devname")[0].startswith("autofs4 autofs c10:235\n")


def test_loaded_agrees_with_lsmod(bookworm_run: Path) -> None:
    """``lkm loaded --json`` right after kmod 34's lsmod, with lkm_consumer using
    lkm_provider: the same modules, sizes, use counts and holders, and what each holds."""
    import harness

    from support.schemas import validate_output

    out, err, status = harness.read_step(bookworm_run, "loaded-deps", "kmod")
    assert (err, status) == ("", "0")
    records = validate_output("loaded", out)["records"]
    lsmod, _, _ = harness.read_step(bookworm_run, "lsmod-deps", "kmod")
    rows = {}
    for line in lsmod.splitlines()[1:]:
        name, size, count, *holders = line.split()
        rows[name] = (
            int(size),
            int(count),
            sorted(",".join(holders).split(",")) if holders else [],
        )
    assert {r["name"]: (r["size"], r["refcount"], r["holders"]) for r in records} == rows
    by_name = {r["name"]: r for r in records}
    assert by_name["lkm_provider"]["holders"] == ["lkm_consumer"]
    assert by_name["lkm_consumer"]["holds"] == ["lkm_provider"]
    assert all(r["state"] == "live" and not r["problems"] for r in records)
