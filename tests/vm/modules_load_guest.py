"""One trixie guest loading the same modules three ways: ``lkm modules-load``, a loop of kmod 34's
``modprobe`` and trixie's own ``systemd-modules-load`` (systemd 257), unloading between them.

systemd-modules-load runs where its shared libraries are: chrooted in the image builders'
trixie system (tests/support/image_builders.py), which has systemd 257 (libsystemd-shared,
libkmod loaded by dlopen) and the same kernel package's modules under
``/usr/lib/modules/RELEASE``, indexed by trixie's depmod. The guest mounts proc, sysfs, dev and
a tmpfs /tmp in that root as in the kmod chroot. kmod 34's modprobe runs in the kmod chroot on
the trixie tree (``-d``), lkm on the host's root with ``-b`` on the same tree.

Used by tests/vm/test_vm_modules_load.py (one round, compared) and benchmarks/modules_load.py
(rounds, timed).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import harness

from support import image_builders, world

# 40 names of the trixie tree that load in the guest, many sharing dependencies: filesystems
# (fat, cdrom, jbd2, lz4), ciphers (cast_common), network devices (stp/llc, udp tunnels,
# conntrack) and block devices.
MODULES = (
    "ext4", "xfs", "vfat", "msdos", "isofs", "udf", "jfs", "minix", "hfs", "hfsplus",
    "exfat", "f2fs",
    "nls_utf8", "nls_cp437", "nls_cp850", "nls_ascii",
    "twofish_generic", "serpent_generic", "camellia_generic", "cast5_generic", "cast6_generic",
    "blowfish_generic", "des_generic", "md4", "lrw", "gcm",
    "dummy", "nlmon", "veth", "bridge", "8021q", "macvlan", "ipvlan", "vxlan", "geneve", "tun",
    "nf_conntrack_ftp",
    "loop", "zram", "brd",
)  # fmt: skip

# Names for the outcomes other than "inserted", in one file: none found, one the kernel refuses
# under TCG (no VMX: EOPNOTSUPP, after its dependency kvm loaded), one built in, one blacklisted
# by trixie's modprobe.d (fbdev-blacklist.conf), aliases, a name twice.
OUTCOMES = (
    "nosuchmod", "kvm_intel", "fuse", "arkfb", "nls_utf8", "nls-utf8", "fs-vfat",
    "crypto-crc32c", "  # comment", "msdos",
)  # fmt: skip

METHODS = ("lkm", "systemd", "kmod")


class Paths(NamedTuple):
    chroot: str  # kmod 34's
    builders: str  # systemd 257's
    tree_root: str  # the trixie tree's root, seen from the host (lkm -b)
    tree_chroot_root: str  # the same, seen in the kmod chroot (modprobe -d)


def paths() -> Paths:
    tree = world.tree("trixie-amd64")
    builders, release = image_builders.ensure()
    if release != tree.kver:
        raise RuntimeError(f"image builders have {release}, the trixie tree {tree.kver}")
    return Paths(str(world.CHROOT), str(builders), str(tree.root), str(tree.chroot_root))


SCRIPT = """\
CH={chroot}; IB={builders}
printf '%s\\n' {modules} > /tmp/list.conf; cp /tmp/list.conf $IB/tmp/list.conf
printf '%s\\n' {outcomes} > /tmp/outcomes.conf; cp /tmp/outcomes.conf $IB/tmp/outcomes.conf
now() {{ date +%s%N; }}
snapshot() {{ cut -d' ' -f1 /proc/modules | sort; }}
# Everything not in /tmp/baseline goes, users before what they use (rmmod refuses the others
# until their users are gone).
unload() {{
  for pass in 1 2 3 4 5 6 7 8 9 10; do
    left=$(snapshot | grep -vxF -f /tmp/baseline)
    [ -z "$left" ] && return 0
    for m in $left; do chroot $CH rmmod $m 2>/dev/null; done
  done
  echo "could not unload: $left" >> /tmp/problems
}}
method() {{
  case $1 in
    lkm) $LKM modules-load -b {tree_root} {lkm_options} /tmp/$2.conf;;
    systemd) chroot $IB /usr/lib/systemd/systemd-modules-load /tmp/$2.conf;;
    kmod) rc=0; for m in $(cat /tmp/$2.conf); do
            chroot $CH modprobe -d {tree_chroot_root} $m || rc=1; done; return $rc;;
  esac
}}
snapshot > /tmp/baseline
# Once, untimed: what stays loaded after a round joins the baseline, and the files are cached.
method lkm list > /dev/null 2>&1; unload
snapshot > /tmp/baseline
[ -e /tmp/problems ] && mv /tmp/problems /tmp/kept-after-first-round
for round in $(seq {rounds}); do
  for how in {methods}; do
    start=$(now)
    method $how list > /tmp/$how.list.out 2> /tmp/$how.list.err
    echo $? > /tmp/$how.list.rc
    echo "$how $(( $(now) - start ))" >> /tmp/times
    snapshot > /tmp/$how.list.modules
    unload
  done
done
{outcome_runs}
"""

OUTCOME_RUN = """\
method {how} outcomes > /tmp/{how}.outcomes.out 2> /tmp/{how}.outcomes.err
echo $? > /tmp/{how}.outcomes.rc
snapshot > /tmp/{how}.outcomes.modules
unload
"""


def script(where: Paths, rounds: int, *, outcomes: bool) -> str:
    """The guest's script: ``rounds`` of the 40 modules by each method (timed in
    ``/tmp/times``), then (``outcomes``) the outcome names by lkm and systemd-modules-load."""
    runs = "".join(OUTCOME_RUN.format(how=how) for how in ("lkm", "systemd")) if outcomes else ""
    return SCRIPT.format(
        chroot=where.chroot,
        builders=where.builders,
        tree_root=where.tree_root,
        tree_chroot_root=where.tree_chroot_root,
        # lkm reads the builders' modprobe.d, as systemd-modules-load does there.
        lkm_options=f"-C {where.builders}/usr/lib/modprobe.d",
        modules=" ".join(MODULES),
        outcomes=" ".join(f"'{name}'" for name in OUTCOMES),
        rounds=rounds,
        methods=" ".join(METHODS),
        outcome_runs=runs,
    )


def boot(where: Paths, script_text: str, out: Path, timeout: float = 1800) -> harness.Boot:
    """Boot the trixie guest with both chroots prepared and run ``script_text``."""
    from lkm.sandbox import boot as sandbox_boot
    from lkm.sandbox import lkm_runner
    from lkm.sandbox_kernel import GuestKernel

    guest = harness.guest("trixie-amd64")
    prelude = f"export LKM='{lkm_runner()}'\n"
    return sandbox_boot(
        GuestKernel(guest.vmlinuz, guest.moddir),
        prelude + script_text,
        out,
        roots=(where.chroot, where.builders),
        timeout=timeout,
    )


def times(out: Path) -> dict[str, list[float]]:
    """Each method's seconds per round, in order."""
    found: dict[str, list[float]] = {}
    for line in (out / "times").read_text().splitlines():
        how, nanoseconds = line.split()
        found.setdefault(how, []).append(int(nanoseconds) / 1e9)
    return found
