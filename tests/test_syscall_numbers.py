"""The module system call numbers: which table a process uses, and the tables themselves.

The slow test reads the numbers from the kernel's own user-space headers (Debian's
``linux-libc-dev``, which carries ``asm/unistd*.h`` for every architecture Debian builds for) and
checks lkm's table against them, triplet by triplet.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lkm.kernel import SYSCALLS, Syscalls, syscall_abi

CALLS = ("init_module", "delete_module", "finit_module")


@pytest.mark.parametrize(
    ("cpu", "variant", "pointer_size", "abi"),
    [
        # multiarch triplets (first and last part)
        ("x86_64", "gnu", 8, "x86_64"),
        ("x86_64", "gnux32", 4, "x32"),
        ("i386", "gnu", 4, "i386"),
        ("aarch64", "gnu", 8, "generic"),
        ("arm", "gnueabihf", 4, "arm"),
        ("mips64el", "gnuabi64", 8, "mips-n64"),
        ("mips64el", "gnuabin32", 4, "mips-n32"),
        ("mipsel", "gnu", 4, "mips-o32"),
        ("powerpc64le", "gnu", 8, "powerpc"),
        ("s390x", "gnu", 8, "s390"),
        ("riscv64", "gnu", 8, "generic"),
        # ``uname -m`` alone: a 32-bit process on a 64-bit kernel uses the 32-bit table
        ("x86_64", "", 8, "x86_64"),
        ("x86_64", "", 4, "i386"),
        ("i686", "", 4, "i386"),
        ("aarch64", "", 8, "generic"),
        ("aarch64", "", 4, "arm"),
        ("armv7l", "", 4, "arm"),
        ("mips64", "", 8, "mips-n64"),
        ("mips64", "", 4, "mips-o32"),
        ("ppc64le", "", 8, "powerpc"),
        ("parisc64", "", 4, "hppa"),
        ("sh4a", "", 4, "sh"),
        ("sparc64", "", 8, "sparc"),
        ("loongarch64", "", 8, "generic"),
        ("vax", "", 4, None),
    ],
)
def test_abi_of_a_process(cpu: str, variant: str, pointer_size: int, abi: str | None) -> None:
    assert syscall_abi(cpu, variant, pointer_size) == abi


def _header_for(triplet: str, asm: Path) -> tuple[str, int]:
    """The unistd header a triplet's compiler selects by default, and the base its numbers add
    (``__NR_Linux`` on MIPS, ``__NR_SYSCALL_BASE`` on ARM, the x32 bit)."""
    cpu, *_, variant = triplet.split("-")
    top = (asm / "unistd.h").read_text()
    if cpu.startswith("mips"):
        sim = "n32" if "n32" in variant else "n64" if "64" in variant else "o32"
        block = re.search(rf"#define __NR_Linux\s+(\d+)\s*#include <asm/unistd_{sim}\.h>", top)
        assert block is not None, f"{triplet}: no __NR_Linux block for {sim}"
        return f"unistd_{sim}.h", int(block.group(1))
    if variant.endswith("x32"):
        bit = re.search(r"#define __X32_SYSCALL_BIT\s+(0x[0-9a-fA-F]+)", top)
        assert bit is not None
        return "unistd_x32.h", int(bit.group(1), 16)
    if (asm / "unistd-eabi.h").exists():
        assert re.search(r"#define __NR_SYSCALL_BASE\s+0\n", top), "EABI base is not 0"
        return "unistd-eabi.h", 0
    wide = "64" in cpu or cpu in ("s390x", "alpha")
    for name in ("unistd_64.h", "unistd_32.h") if wide else ("unistd_32.h", "unistd_64.h"):
        if (asm / name).exists():
            return name, 0
    raise AssertionError(f"{triplet}: no unistd header")


def _numbers(header: Path, base: int) -> Syscalls:
    text = header.read_text()
    found = []
    for call in CALLS:
        match = re.search(rf"#define __NR_{call}\s+\(?(?:\w+ \+ )?(\d+)\)?\n", text)
        assert match is not None, f"{header}: no __NR_{call}"
        offset = int(match.group(1))
        # A bare number is absolute; an ``(__NR_BASE + n)`` expression adds the base.
        found.append(offset + base if "+" in match.group(0) else offset)
    return Syscalls(*found)


@pytest.mark.slow
def test_tables_match_the_kernel_headers() -> None:
    from support import world

    include = world.uapi_headers()
    triplets = sorted(path.parent.parent.name for path in include.glob("*/asm/unistd.h"))
    assert len(triplets) >= 20, triplets  # every architecture Debian builds for
    for triplet in triplets:
        cpu, *_, variant = triplet.split("-")
        abi = syscall_abi(cpu, variant, 8 if "64" in cpu or cpu == "s390x" else 4)
        assert abi is not None, f"{triplet}: no table"
        header, base = _header_for(triplet, include / triplet / "asm")
        expected = _numbers(include / triplet / "asm" / header, base)
        assert SYSCALLS[abi] == expected, f"{triplet} ({header}): {SYSCALLS[abi]} != {expected}"
