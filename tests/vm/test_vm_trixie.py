"""lkm and kmod 34 against a real Linux 6.12 (Debian trixie) kernel booted in QEMU.

One boot runs every step twice, first with lkm, then with kmod 34 (from the trixie chroot), so
both see the same kernel in the same state; each step's stdout, stderr and exit status are
compared. Module paths differ only by the chroot prefix, removed before comparing.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# (label, command); {tool} is the tool's runner, {mods} the trixie module tree's kernel/ dir,
# {zst} the zstd copy's, {root} the tree's base (for modprobe -d). One sequence, so that later
# steps see what earlier ones left loaded.
STEPS = (
    ("lsmod-start", "{tool} lsmod"),
    ("list-start", "{tool} kmod list"),
    ("insmod-vfat-without-fat", "{tool} insmod {mods}/fs/fat/vfat.ko.xz"),
    ("insmod-fat", "{tool} insmod {mods}/fs/fat/fat.ko.xz"),
    ("insmod-fat-again", "{tool} insmod {mods}/fs/fat/fat.ko.xz"),
    ("insmod-vfat", "{tool} insmod {mods}/fs/fat/vfat.ko.xz"),
    ("lsmod-loaded", "{tool} lsmod"),
    ("rmmod-fat-held", "{tool} rmmod fat"),
    ("rmmod-vfat", "{tool} rmmod vfat"),
    ("rmmod-fat", "{tool} rmmod fat"),
    ("rmmod-fat-gone", "{tool} rmmod fat"),
    ("insmod-param", "{tool} insmod {mods}/drivers/block/loop.ko.xz max_loop=3 'max_part=1'"),
    ("param-value", "cat /sys/module/loop/parameters/max_loop"),
    ("rmmod-loop", "{tool} rmmod -v loop"),
    ("insmod-bad-param", "{tool} insmod {mods}/drivers/block/loop.ko.xz max_loop=abc"),
    ("insmod-zstd-userspace", "{tool} insmod {zst}/fs/fat/fat.ko.zst"),
    ("rmmod-fat-path", "{tool} rmmod {zst}/fs/fat/fat.ko.zst"),
    (
        "hide-compression",
        "mount --bind /tmp/none /sys/module/compression; "
        "mount --bind /tmp/none {chroot}/sys/module/compression",
    ),
    ("insmod-fat-userspace", "{tool} insmod {mods}/fs/fat/fat.ko.xz"),
    ("rmmod-fat-2", "{tool} rmmod fat"),
    ("unhide-compression", "umount /sys/module/compression {chroot}/sys/module/compression"),
    ("insmod-not-module", "{tool} insmod {scratch}/text.ko"),
    ("insmod-truncated", "{tool} insmod {scratch}/trunc.ko.xz"),
    ("insmod-missing", "{tool} insmod /tmp/nothere.ko"),
    ("rmmod-builtin-dir", "{tool} rmmod printk"),
    # Root without CAP_SYS_MODULE (as in a container): the kernel answers EPERM.
    ("insmod-no-capability", "{nocap} {tool} insmod {mods}/fs/fat/fat.ko.xz"),
    ("modprobe-no-capability", "{nocap} {tool} modprobe -d {root} vfat"),
    ("modprobe-vfat", "{tool} modprobe -d {root} vfat"),
    ("rmmod-no-capability", "{nocap} {tool} rmmod vfat"),
    ("modprobe-r-no-capability", "{nocap} {tool} modprobe -r -d {root} vfat"),
    ("modprobe-r-vfat", "{tool} modprobe -r -d {root} vfat"),
    ("lsmod-end", "{tool} lsmod"),
)


NO_CAPABILITY = "setpriv --bounding-set=-sys_module"


def script(chroot: str, trixie_mods: str, zstd_mods: str, root: str) -> str:
    lines = [": > /tmp/none"]
    scratch = f"{chroot}/scratch-kernel/vm"
    for variant, tool in (("lkm", "$LKM"), ("kmod", "$KMOD")):
        for label, command in STEPS:
            text = command.format(
                tool=tool,
                mods=trixie_mods,
                zst=zstd_mods,
                chroot=chroot,
                scratch=scratch,
                root=root,
                nocap=NO_CAPABILITY,
            )
            if variant == "kmod":
                # kmod runs in the chroot: its paths are the chroot's.
                text = text.replace(chroot + "/trees", "/trees").replace(
                    scratch, "/scratch-kernel/vm"
                )
            out = f"/tmp/{label}.{variant}"
            lines.append(f"{text} > {out}.out 2> {out}.err; echo $? > {out}.rc")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def trixie_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness

    from support import world

    guest = harness.guest("trixie-amd64")
    zstd = world.tree("trixie-amd64-zstd")
    chroot = str(world.CHROOT)
    # Files both tools see at the same place relative to their root (host and chroot).
    scratch = world.CHROOT / "scratch-kernel/vm"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "text.ko").write_bytes(b"not a module\n" * 10)
    fat = guest.moddir / "kernel/fs/fat/fat.ko.xz"
    (scratch / "trunc.ko.xz").write_bytes(fat.read_bytes()[:3000])
    root = str(world.tree("trixie-amd64").root)
    text = script(chroot, str(guest.moddir / "kernel"), str(zstd.moddir / "kernel"), root)
    out = tmp_path_factory.mktemp("trixie-vm")
    run = harness.boot(guest, text, out, timeout=1800)  # ~4 min on a quiet machine
    assert run.status == 0, run.console[-2000:]
    return out


@pytest.mark.parametrize("label", [label for label, _ in STEPS])
def test_step_matches_kmod(trixie_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = harness.read_step(trixie_run, label, "lkm")
    kmod = harness.read_step(trixie_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    if harness.runs_a_tool(dict(STEPS)[label]):
        COMPARED["real 6.12 kernel steps running a tool (QEMU)"] += 1


def test_every_step_ran_both_tools(trixie_run: Path) -> None:
    import harness

    harness.check_steps_ran(trixie_run, STEPS, minimum=29)


def test_script_quotes() -> None:
    """The steps survive the shell: one argument with a quote stays one argument."""
    assert shlex.split("insmod x 'max_part=1'") == ["insmod", "x", "max_part=1"]
