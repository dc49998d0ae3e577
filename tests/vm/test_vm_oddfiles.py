"""Tiny and odd files given to insmod and modprobe, lkm against kmod 34 on the real trixie kernel.

kmod 34 reads six bytes (xz's magic, the longest) before it chooses a system call: a file that
ends sooner (empty, 1 to 5 bytes, ``/dev/null``, a compression magic cut short or alone when it
is shorter than six bytes) is refused with EINVAL without any call, and a read that fails gives
its errno (EISDIR for a directory, ESPIPE for a FIFO). What is read goes to the kernel, which
answers for itself: ENOEXEC for what is not ELF, EINVAL for what is not a regular file
(``/dev/zero``). One boot (Linux 6.12, which decompresses xz itself) runs every step with lkm,
then with kmod 34; each step's stdout (with the module system calls strace saw), stderr and exit
status are compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import HIDE, UNHIDE, traced

pytestmark = [pytest.mark.vm, pytest.mark.slow]

XZ = bytes.fromhex("fd377a585a00")
ZSTD = bytes.fromhex("28b52ffd")
GZIP = bytes.fromhex("1f8b")
ELF = b"\x7fELF\x02\x01"

# name: contents, each a file in {odd} (lkm and kmod see the same file).
FILES = {
    "empty": b"",
    **{f"text{n}": b"abcdef"[:n] for n in range(1, 7)},
    "zero5": bytes(5),
    "zero6": bytes(6),
    "elf4": ELF[:4],
    "elf6": ELF,
    **{f"xz{n}": XZ[:n] for n in (1, 3, 5)},
    "xz": XZ,  # the magic alone
    "xz-junk": XZ + b"junk" * 8,
    "xz-almost": XZ[:5] + b"\x01junk",  # the sixth byte differs: not xz
    "zstd3": ZSTD[:3],
    "zstd": ZSTD,
    "zstd5": ZSTD + b"\x20",
    "zstd-header": ZSTD + b"\x08\x00junk",  # a reserved bit set: no frame header
    "zstd-junk": ZSTD + b"\x20\x10junkjunk",  # a sized frame of junk
    "zstd-unsized": ZSTD + b"\x00\x00junkjunkjunk",  # a frame without its size, of junk
    "gzip1": GZIP[:1],
    "gzip": GZIP,
    "gzip5": GZIP + b"jjj",
    "gzip-junk": GZIP + b"junk" * 8,
}
LINKS = {"link-text3": "text3", "link-dir": "dir", "link-null": "/dev/null",
         "link-zero": "/dev/zero", "link-none": "nothere", "link-xz": "xz"}  # fmt: skip
ODD = "scratch-kernel/oddfiles"  # where the files are, in the chroot
RELEASE = "6.12.0-odd"
# A fake module tree for modprobe: module name -> its file (a file or link above).
TREE = {"text3": "text3", "text6": "text6", "empty": "empty", "xz": "xz", "xzjunk": "xz-junk",
        "zstdjunk": "zstd-junk", "dirm": "dir", "null": "link-null", "zero": "link-zero",
        "gone": "nothere"}  # fmt: skip

INSMOD = "{tool} insmod"
MODPROBE = f"{{tool}} modprobe -d {{odd}}/tree -S {RELEASE}"
# A FIFO in the chroot's tmpfs (the host's root is 9p): lkm and kmod open the same one. A writer
# is started outside the chroot (``$KMOD`` is "chroot <the chroot>"); without one, open blocks.
FIFO_DIR = '"${{KMOD#chroot }}/tmp/odd"'
WRITER = f"( cd {FIFO_DIR} && printf abcdefgh > fifo & ); "


def _steps() -> tuple[tuple[str, str], ...]:
    steps = [("compression", "cat /sys/module/compression")]
    for name in [*FILES, *LINKS, "dir"]:
        steps.append((f"insmod-{name}", traced(f"{INSMOD} {{odd}}/{name}")))
    for name in ("empty", "text3", "text6", "xz", "xz-junk", "zstd-header"):
        steps.append((f"insmod-force-{name}", traced(f"{INSMOD} -f {{odd}}/{name}")))
    for device in ("null", "zero"):
        steps.append((f"insmod-dev-{device}", traced(f"{INSMOD} /dev/{device}")))
        steps.append((f"insmod-force-dev-{device}", traced(f"{INSMOD} -f /dev/{device}")))
    steps += [
        ("insmod-fifo", WRITER + traced(f"{INSMOD} {{chroot}}/tmp/odd/fifo")),
        ("insmod-fifo-link", WRITER + traced(f"{INSMOD} {{chroot}}/tmp/odd/link-fifo")),
        ("insmod-fifo-no-writer", f"timeout 3 {INSMOD} {{chroot}}/tmp/odd/fifo"),
    ]
    for name in TREE:
        steps.append((f"modprobe-{name}", traced(f"{MODPROBE} {name}")))
    for option in ("-v", "-q", "-f"):
        for name in ("text3", "xz", "dirm", "zero"):
            steps.append((f"modprobe{option}-{name}", traced(f"{MODPROBE} {option} {name}")))
    # User space decompresses xz, as it does zstd and gzip on this kernel.
    steps.append(("hide-compression", HIDE))
    for name in ("xz5", "xz", "xz-junk", "link-xz"):
        steps.append((f"hidden-insmod-{name}", traced(f"{INSMOD} {{odd}}/{name}")))
    steps += [
        ("hidden-modprobe-xz", traced(f"{MODPROBE} xz")),
        ("hidden-modprobe-q-xzjunk", traced(f"{MODPROBE} -q xzjunk")),
        ("unhide-compression", UNHIDE),
    ]
    return tuple(steps)


STEPS = _steps()
# Where lkm differs on purpose: kmod 34 as Debian builds it has no zlib and refuses a gzip file
# of six bytes or more in user space with ENOSYS; lkm decompresses gzip (here: finds junk).
DIFFERENT = {"insmod-gzip-junk"}


def make_files(odd: Path) -> None:
    import shutil

    from lkm.index import write_index

    if odd.exists():
        shutil.rmtree(odd)
    (odd / "dir").mkdir(parents=True)
    for name, data in FILES.items():
        (odd / name).write_bytes(data)
    for name, target in LINKS.items():
        (odd / name).symlink_to(target)
    moddir = odd / "tree" / "lib" / "modules" / RELEASE
    (moddir / "kernel").mkdir(parents=True)
    entries = []
    for module, source in TREE.items():
        path = f"kernel/{module}.ko" + (".xz" if source.startswith("xz") else "")
        (moddir / path).symlink_to(Path("../../../..") / ".." / source)
        entries.append((module, f"{path}:", 0))
    (moddir / "modules.dep").write_text("".join(f"{value}\n" for _, value, _ in entries))
    (moddir / "modules.dep.bin").write_bytes(write_index(entries))


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import harness

    from support import world

    guest = harness.guest("trixie-amd64")
    odd = world.CHROOT / ODD
    make_files(odd)
    setup = ': > /tmp/none\nmkdir "${KMOD#chroot }/tmp/odd" && cd "${KMOD#chroot }/tmp/odd" && '
    setup += "mkfifo fifo && ln -s fifo link-fifo && cd /"
    fields = {"odd": str(odd), "chroot": str(world.CHROOT)}
    text = harness.compare_script(STEPS, fields, setup=setup)
    out = tmp_path_factory.mktemp("oddfiles-vm")
    run = harness.boot(guest, text, out, timeout=1800)
    assert run.status == 0, run.console[-2000:] + (out / "console.log").read_text()
    return out


@pytest.mark.parametrize("label", [label for label, _ in STEPS if label not in DIFFERENT])
def test_step_matches_kmod(odd_run: Path, label: str) -> None:
    import harness

    from support.differential import COMPARED

    lkm = harness.read_step(odd_run, label, "lkm")
    kmod = harness.read_step(odd_run, label, "kmod")
    assert lkm == kmod, f"{label}: lkm {lkm!r} kmod {kmod!r}"
    COMPARED["real 6.12 kernel steps with odd files (QEMU)"] += 1


def test_enough_steps() -> None:
    assert len(STEPS) - len(DIFFERENT) >= 75


def test_the_rule(odd_run: Path) -> None:
    """kmod 34's rule, seen in its own system calls: under six bytes nothing reaches the kernel
    (EINVAL), a failed first read neither; from six bytes on the kernel answers."""
    import harness

    def kmod(label: str) -> tuple[list[str], str, str]:
        out, err, status = harness.read_step(odd_run, label, "kmod")
        calls = [" ".join(line.split()) for line in out.splitlines() if "init_module(" in line]
        return calls, err.splitlines()[-1] if err else "", status

    short = [f"insmod-{name}" for name, data in FILES.items() if len(data) < 6]
    odd = ["insmod-link-null", "insmod-link-text3", "insmod-dev-null", "insmod-force-empty"]
    for label in [*short, *odd]:
        assert kmod(label)[1:] == (f"insmod: ERROR: could not insert module {_path(label)}: "
                                   "Invalid parameters", "1"), label  # fmt: skip
        assert kmod(label)[0] == [], label
    assert len(short) >= 15
    for label, error in (("insmod-dir", "Is a directory"), ("insmod-fifo", "Illegal seek")):
        calls, err, status = kmod(label)
        assert (calls, err.endswith(error), status) == ([], True, "1"), label
    assert kmod("insmod-fifo-no-writer") == ([], "", "124")  # open(2) waits for a writer

    def refused(label: str) -> str:
        calls = kmod(label)[0]
        assert len(calls) == 1, (label, calls)
        return calls[0].rpartition(" = ")[2]

    for name in ("text6", "zero6", "elf6", "xz-almost", "force-text6"):
        assert refused(f"insmod-{name}").startswith("-1 ENOEXEC"), name
    for name in ("dev-zero", "force-dev-zero", "link-zero", "xz", "xz-junk"):
        assert refused(f"insmod-{name}").startswith("-1 EINVAL"), name
    assert "MODULE_INIT_COMPRESSED_FILE" in kmod("insmod-xz")[0][0]  # this kernel decompresses xz
    assert kmod("hidden-insmod-xz")[0] == []  # and once hidden, user space does
    # gzip: kmod 34 as built by Debian refuses it in user space, lkm reads it.
    assert kmod("insmod-gzip-junk")[1].endswith("Function not implemented")
    lkm_err = harness.read_step(odd_run, "insmod-gzip-junk", "lkm")[1]
    assert lkm_err.startswith("insmod: ERROR: gzip: ")


def _path(label: str) -> str:
    """The file a step gave insmod, as kmod in the chroot names it."""
    name = label.removeprefix("insmod-").removeprefix("force-")
    if name.startswith("dev-"):
        return "/dev/" + name.removeprefix("dev-")
    return f"/{ODD}/{name}"
