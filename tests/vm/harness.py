"""Boot the Debian kernels of the test world in QEMU and compare lkm with kmod 34 there.

The virtual machine is ``lkm.sandbox`` (the library behind ``lkm sandbox``): a busybox
initramfs, the host's root read-only over 9p, a writable results directory as the guest's
``/tmp``. Here it also mounts proc, sysfs, devtmpfs and a tmpfs in the trixie chroot holding
kmod 34, so that both tools run in the same boot, and the scripts get ``$LKM`` and ``$KMOD``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lkm.sandbox import Boot, lkm_runner
from lkm.sandbox import boot as sandbox_boot
from lkm.sandbox_kernel import GuestKernel
from support import world

VM_CACHE = world.CACHE / "vm"


@dataclass(frozen=True)
class Guest:
    """A kernel to boot: its image and the module tree it belongs to."""

    name: str
    vmlinuz: Path
    moddir: Path  # host path of lib/modules/<kver>
    kver: str


def guest(name: str) -> Guest:
    """A Debian kernel package's image, unpacked once beside its module tree
    (see support/world.py)."""
    tree = world.tree(name)
    return Guest(name, world.kernel_image(name), tree.moddir, tree.kver)


def boot(
    guest: Guest,
    script: str,
    out: Path,
    *,
    timeout: float = 300,
    append: str = "",
    qemu_args: tuple[str, ...] = (),
) -> Boot:
    """Boot ``guest``, run ``script`` (sh, in the host's root) and collect ``out``.

    Inside the script ``/tmp`` is ``out``; ``$KMOD`` runs a kmod 34 tool in the chroot, ``$LKM``
    runs lkm from this source tree with the host's Python. ``append``: more kernel command line;
    ``qemu_args``: more QEMU options (the devices the guest sees).
    """
    # The guest's /tmp is ``out``: what lives under the host's /tmp cannot be seen there.
    for needed in (world.CHROOT, Path(sys.executable), Path(__file__)):
        if needed.absolute().is_relative_to("/tmp"):
            raise RuntimeError(f"{needed} is under /tmp, which the guest cannot see; move it")
    prelude = f"export KMOD='chroot {world.CHROOT}'\nexport LKM='{lkm_runner()}'\n"
    kernel = GuestKernel(guest.vmlinuz, guest.moddir)
    roots = (str(world.CHROOT),)
    return sandbox_boot(
        kernel,
        prelude + script,
        out,
        roots=roots,
        timeout=timeout,
        append=append,
        qemu_args=qemu_args,
    )


# The module system calls of one command, as strace shows them (flags with their names), with
# what differs between two correct runs made alike: the process id, the fd number and the
# image's address. seccomp-bpf stops the tool only at those calls: stopping it at each of
# Python's thousands of calls made a step take half a minute under TCG.
TRACE = (
    "strace -f --seccomp-bpf -qq -e signal=none -X verbose -y -e trace=finit_module,init_module "
    "-o /tmp/trace {command}; rc=$?; sed -E 's/^[0-9]+ +//; "
    "s/^finit_module\\([0-9]+</finit_module(FD</; "
    "s/^init_module\\(0x[0-9a-f]+/init_module(ADDR/' "
    "/tmp/trace; exit $rc"
)
# Hiding /sys/module/compression from both tools: $KMOD is "chroot <the chroot>".
HIDE = (
    "mount --bind /tmp/none /sys/module/compression && "
    'mount --bind /tmp/none "${{KMOD#chroot }}/sys/module/compression"'
)
UNHIDE = 'umount /sys/module/compression "${{KMOD#chroot }}/sys/module/compression"'


def traced(command: str) -> str:
    """``command`` under strace: its module system calls on stdout, its status kept."""
    return TRACE.format(command=command)


VARIANTS = (("lkm", "$LKM"), ("kmod", "$KMOD"))


def compare_script(
    steps: tuple[tuple[str, str], ...], fields: dict[str, str], *, setup: str = "", after: str = ""
) -> str:
    """A guest script running every step with lkm, then every step with kmod 34.

    ``{tool}`` in a step is the tool runner; other ``{names}`` come from ``fields`` (host paths:
    for kmod, which runs in the chroot, the chroot prefix is removed). Each step leaves
    ``LABEL.VARIANT.out/.err/.rc`` in the guest's /tmp; ``setup`` runs once before, ``after``
    once after (its output in ``after.out``).
    """
    chroot = str(world.CHROOT)
    lines = [setup]
    for variant, tool in VARIANTS:
        for label, command in steps:
            text = command.format(tool=tool, **fields)
            if variant == "kmod":
                text = text.replace(chroot + "/", "/")
            out = f"/tmp/{label}.{variant}"
            # A subshell: a step's redirections cover all of it, and its cd stays inside.
            lines.append(f"( {text} ) > {out}.out 2> {out}.err; echo $? > {out}.rc")
    lines.append(f"( {after} ) > /tmp/after.out 2>&1" if after else "")
    return "\n".join(lines) + "\n"


def read_step(out: Path, label: str, variant: str) -> tuple[str, str, str]:
    """One step's (stdout, stderr, status), with the chroot prefix removed from paths.

    Bytes that are not UTF-8 become lone surrogates, one for each byte (surrogateescape), so two
    steps' texts are equal exactly when their bytes are.
    """
    chroot = os.fsencode(str(world.CHROOT))

    def text(suffix: str) -> str:
        raw = (out / f"{label}.{variant}.{suffix}").read_bytes()
        return raw.replace(chroot + b"/", b"/").decode("utf-8", "surrogateescape")

    return text("out"), text("err"), text("rc").strip()


def runs_a_tool(command: str) -> bool:
    """Whether a step runs lkm or kmod (``{tool}``), rather than only reading the kernel's state
    or preparing the next step."""
    return "{tool}" in command


def check_steps_ran(out: Path, steps: tuple[tuple[str, str], ...], minimum: int) -> None:
    """The boot ran at least ``minimum`` steps that run a tool, each with lkm and with kmod 34
    (a shell that found no tool exits 126 or 127), and every other step with both."""
    tool_steps = [label for label, command in steps if runs_a_tool(command)]
    assert len(tool_steps) >= minimum, f"{len(tool_steps)} steps run a tool, expected {minimum}"
    for label, command in steps:
        for variant, _ in VARIANTS:
            status = (out / f"{label}.{variant}.rc").read_text().strip()
            assert status.isdigit(), f"{label} ({variant}) did not finish: {status!r}"
            if runs_a_tool(command):
                assert status not in ("126", "127"), f"{label} ({variant}) ran no tool"


def devname_setup(guest: Guest) -> str:
    """Shell lines giving the host's root and the chroot the guest's module directory.

    ``static-nodes`` reads ``/lib/modules/$(uname -r)``; neither root has the guest's release,
    so a tmpfs over ``lib/modules`` in each holds a bind mount of the tree.
    """
    lines = []
    for root in ("", str(world.CHROOT)):
        target = f"{root}/lib/modules/{guest.kver}"
        lines.append(
            f"mount -t tmpfs modules {root}/lib/modules && mkdir {target} && "
            f"mount --bind {guest.moddir} {target}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    # Quick manual check: python tests/vm/harness.py trixie-amd64 'lsmod; $LKM lsmod'
    run = boot(guest(sys.argv[1]), sys.argv[2], Path(tempfile.mkdtemp(prefix="lkm-vm-")))
    print(run.console[-3000:])
    print("status", run.status, "out", run.out)
    log = run.out / "console.log"
    if log.exists():
        print(log.read_text())
    sys.exit(0)
