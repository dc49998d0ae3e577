"""lkm and kmod 34 on a kernel that decompresses zstd modules itself, booted in QEMU.

No Debian kernel does that, so zstdkernel.py builds one (Linux 6.12 from Debian's sources,
``CONFIG_MODULE_COMPRESS_ZSTD`` + ``CONFIG_MODULE_DECOMPRESS``: ``/sys/module/compression`` says
``zstd``). One boot runs every step with lkm, then with kmod 34; each step's stdout, stderr and
exit status are compared. Besides the tools' output, ``strace`` shows which system call each tool
chose: ``finit_module`` with ``MODULE_INIT_COMPRESSED_FILE`` on the ``.ko.zst`` itself while the
kernel decompresses, ``init_module`` with the decompressed image once ``/sys/module/compression``
is hidden (an empty file bound over it, in the host's root and in the chroot) and for an xz
module, which this kernel cannot decompress.
"""

from __future__ import annotations

import lzma
import re
from pathlib import Path

import pytest
from harness import HIDE, UNHIDE, traced

pytestmark = [pytest.mark.vm, pytest.mark.slow]

LOADED = "ls /sys/module | grep -E '^(fat|vfat|msdos|loop|lkm_params)$' || true"
PARAMS = "cd /sys/module/lkm_params/parameters && grep -r . | sort"


# (label, command): {tool} runs lkm or kmod; {fat} is the tree's fs/fat directory, {loop} the
# loop module, {mp} modprobe on the tree, {files} the broken and recompressed modules made here,
# {testmods} the test modules built against the tree. One sequence: later steps see what
# earlier ones left loaded.
STEPS = (
    ("compression", "cat /sys/module/compression"),
    ("lsmod-start", "{tool} lsmod"),
    # The kernel decompresses.
    ("insmod-vfat-without-fat", "{tool} insmod {fat}/vfat.ko.zst"),
    ("insmod-fat", traced("{tool} insmod {fat}/fat.ko.zst")),
    ("insmod-fat-again", "{tool} insmod {fat}/fat.ko.zst"),
    ("insmod-vfat", "{tool} insmod {fat}/vfat.ko.zst"),
    ("lsmod-loaded", "{tool} lsmod"),
    ("rmmod-fat-held", "{tool} rmmod fat"),
    ("rmmod-vfat", "{tool} rmmod vfat"),
    ("rmmod-fat", "{tool} rmmod -v fat"),
    ("insmod-loop", traced("{tool} insmod {loop} max_loop=3 'max_part=1'")),
    (
        "loop-params",
        "cat /sys/module/loop/parameters/max_loop /sys/module/loop/parameters/max_part",
    ),
    ("rmmod-loop", "{tool} rmmod {loop}"),
    ("insmod-loop-bad-param", "{tool} insmod {loop} max_loop=abc"),
    ("modprobe-vfat", traced("{tool} {mp} -v vfat")),
    ("modprobe-vfat-state", LOADED),
    ("modprobe-vfat-again", "{tool} {mp} -v vfat"),
    ("modprobe-r-vfat", "{tool} {mp} -r -v vfat"),
    ("modprobe-r-state", LOADED),
    ("modprobe-loop-options", "{tool} {mp} -v loop max_loop=2"),
    ("modprobe-loop-value", "cat /sys/module/loop/parameters/max_loop"),
    ("modprobe-r-loop", "{tool} {mp} -r loop"),
    ("insmod-force", traced("{tool} insmod -f {fat}/fat.ko.zst")),
    ("force-taint", "cat /sys/module/fat/taint"),
    ("rmmod-force", "{tool} rmmod fat"),
    ("modprobe-force-vermagic", traced("{tool} {mp} --force-vermagic -v fat")),
    ("modprobe-r-fat", "{tool} {mp} -r -v fat"),
    ("testmod", traced("{tool} insmod {testmods}/lkm_params.ko.zst count=5 'word=in kernel'")),
    ("testmod-params", PARAMS),
    ("rmmod-testmod", "{tool} rmmod {testmods}/lkm_params.ko.zst"),
    ("truncated", traced("{tool} insmod {files}/truncated.ko.zst")),
    ("corrupt", traced("{tool} insmod {files}/corrupt.ko.zst")),
    ("not-zstd-inside", "{tool} insmod {files}/text.ko.zst"),
    ("unsized", traced("{tool} insmod {files}/unsized.ko.zst")),
    ("rmmod-unsized", "{tool} rmmod fat"),
    ("xz", traced("{tool} insmod {files}/fat.ko.xz")),
    ("rmmod-xz", "{tool} rmmod fat"),
    ("broken-state", LOADED),
    # User space decompresses.
    ("hide-compression", HIDE),
    ("compression-hidden", "cat /sys/module/compression"),
    ("hidden-fat", traced("{tool} insmod {fat}/fat.ko.zst")),
    ("hidden-vfat", "{tool} insmod {fat}/vfat.ko.zst"),
    ("hidden-lsmod", "{tool} lsmod"),
    ("hidden-rmmod", "{tool} rmmod vfat fat"),
    ("hidden-loop", "{tool} insmod {loop} max_loop=5"),
    ("hidden-loop-value", "cat /sys/module/loop/parameters/max_loop"),
    ("hidden-rmmod-loop", "{tool} rmmod loop"),
    ("hidden-modprobe", traced("{tool} {mp} -v vfat")),
    ("hidden-modprobe-r", "{tool} {mp} -r -v vfat"),
    ("hidden-testmod", traced("{tool} insmod {testmods}/lkm_params.ko.zst 'word=user space'")),
    ("hidden-testmod-params", PARAMS),
    ("hidden-rmmod-testmod", "{tool} rmmod lkm_params"),
    ("hidden-force", traced("{tool} insmod -f {fat}/fat.ko.zst")),
    ("hidden-rmmod-force", "{tool} rmmod fat"),
    ("hidden-truncated", traced("{tool} insmod {files}/truncated.ko.zst")),
    ("hidden-corrupt", traced("{tool} insmod {files}/corrupt.ko.zst")),
    ("hidden-not-zstd-inside", "{tool} insmod {files}/text.ko.zst"),
    ("hidden-xz", traced("{tool} insmod {files}/fat.ko.xz")),
    ("hidden-rmmod-xz", "{tool} rmmod fat"),
    # lkm loads this, kmod cannot (see DIFFERENT); removed once both agree on the output again.
    ("hidden-unsized", traced("{tool} insmod {files}/unsized.ko.zst")),
    ("unhide-compression", UNHIDE),
    ("rmmod-unsized-loaded", "[ ! -d /sys/module/fat ] || {tool} rmmod fat"),
    ("lsmod-end", "{tool} lsmod"),
)


def broken_modules(fat: Path, target: Path) -> None:
    """fat.ko.zst cut short and with a damaged block, text in zstd, fat recompressed with xz."""
    import zstandard

    from lkm.compress import decompress

    target.mkdir(parents=True, exist_ok=True)
    data = fat.read_bytes()
    (target / "truncated.ko.zst").write_bytes(data[: len(data) // 2])
    middle = len(data) // 2
    damaged = data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64])
    (target / "corrupt.ko.zst").write_bytes(damaged + data[middle + 64 :])
    # A sound zstd stream of something that is not ELF, with its size in the frame header as
    # the kernel's build writes it; and fat without that size (zstd -c from a pipe).
    (target / "text.ko.zst").write_bytes(zstandard.ZstdCompressor().compress(b"not ELF\n" * 20))
    image = decompress(data, path=str(fat))
    packer = zstandard.ZstdCompressor(write_content_size=False, write_checksum=True)
    stream = packer.compressobj()
    (target / "unsized.ko.zst").write_bytes(stream.compress(image) + stream.flush())
    xz = lzma.compress(image, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    (target / "fat.ko.xz").write_bytes(xz)


@pytest.fixture(scope="module")
def zstd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness
    import zstdkernel

    kernel = zstdkernel.build()
    guest = harness.Guest("zstd", kernel.vmlinuz, kernel.moddir, kernel.kver)
    fat = kernel.moddir / "kernel" / "fs" / "fat"
    files = kernel.root / "files"
    broken_modules(fat / "fat.ko.zst", files)
    fields = {
        "fat": str(fat),
        "loop": str(kernel.moddir / "kernel" / "drivers" / "block" / "loop.ko.zst"),
        "mp": f"modprobe -d {kernel.root}",
        "files": str(files),
        "testmods": str(kernel.testmods),
    }
    text = harness.compare_script(STEPS, fields, setup=": > /tmp/none", after="dmesg")
    out = tmp_path_factory.mktemp("zstd-vm")
    run = harness.boot(guest, text, out, timeout=2400)
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


# Where lkm differs from kmod 34 on purpose: kmod cannot decompress a zstd frame whose header
# gives no content size (it sizes its buffer from it); lkm can, as the kernel can.
DIFFERENT = {"hidden-unsized"}


@pytest.mark.parametrize("label", [label for label, _ in STEPS if label not in DIFFERENT])
def test_step_matches_kmod(zstd_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = harness.read_step(zstd_run, label, "lkm")
    kmod = harness.read_step(zstd_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    if harness.runs_a_tool(dict(STEPS)[label]):
        COMPARED["real 6.12 zstd-decompressing kernel steps running a tool (QEMU)"] += 1


def test_every_step_ran_both_tools(zstd_run: Path) -> None:
    import harness

    harness.check_steps_ran(zstd_run, STEPS, minimum=50)


def test_the_kernel_decompressed(zstd_run: Path) -> None:
    """The system calls prove who decompressed: the kernel got the .ko.zst's fd with
    MODULE_INIT_COMPRESSED_FILE; with the compression file hidden, and for xz, it got the image."""
    import harness

    def calls(label: str, variant: str = "lkm") -> list[str]:
        lines = harness.read_step(zstd_run, label, variant)[0].splitlines()
        return [" ".join(line.split()) for line in lines if "init_module(" in line]

    assert harness.read_step(zstd_run, "compression", "lkm")[0] == "zstd\n"
    assert harness.read_step(zstd_run, "compression-hidden", "lkm")[0] == ""
    flag = "0x4 /* MODULE_INIT_COMPRESSED_FILE */"
    in_kernel = re.compile(r'finit_module\(FD</.*/fs/fat/fat\.ko\.zst>, "", (.*)\) = 0')
    match = in_kernel.fullmatch(calls("insmod-fat")[0])
    assert match is not None and match.group(1) == flag, calls("insmod-fat")
    assert calls("insmod-loop")[0].endswith(f'.ko.zst>, "max_loop=3 max_part=1", {flag}) = 0')
    assert len(calls("modprobe-vfat")) == 2 and all(flag in c for c in calls("modprobe-vfat"))
    # Forcing adds kmod's ignore flags to the same call.
    assert calls("insmod-force")[0].endswith(
        ", 0x7 /* MODULE_INIT_IGNORE_MODVERSIONS|"
        "MODULE_INIT_IGNORE_VERMAGIC|MODULE_INIT_COMPRESSED_FILE */) = 0"
    )
    assert calls("modprobe-force-vermagic")[0].endswith(
        ", 0x6 /* MODULE_INIT_IGNORE_VERMAGIC|MODULE_INIT_COMPRESSED_FILE */) = 0"
    )
    assert calls("truncated")[0].endswith(f"{flag}) = -1 ENOEXEC (Exec format error)")
    assert calls("corrupt")[0].endswith(f"{flag}) = -1 EINVAL (Invalid argument)")
    assert calls("unsized")[0].endswith(f"{flag}) = 0")
    for label in ("xz", "hidden-fat", "hidden-testmod", "hidden-xz"):
        assert len(calls(label)) == 1 and calls(label)[0].startswith("init_module(ADDR, "), label
    assert calls("hidden-fat") == calls("xz") == calls("hidden-xz")  # the same image
    assert calls("hidden-truncated") == calls("hidden-corrupt") == []


def test_unsized_frame_differs_from_kmod(zstd_run: Path) -> None:
    """kmod 34 refuses a zstd frame without a content size in user space; lkm loads it."""
    import harness

    out, err, status = harness.read_step(zstd_run, "hidden-unsized", "kmod")
    assert "insmod: ERROR: zstd: Failed to determine decompression size\n" in err
    assert status == "1" and "init_module" not in out
    out, err, status = harness.read_step(zstd_run, "hidden-unsized", "lkm")
    fat = harness.read_step(zstd_run, "hidden-fat", "lkm")[0]
    assert status == "0" and out == fat  # the same init_module call as for fat.ko.zst
