"""Fake /proc, /sys and module directories, and what kmod 34 does on each.

A case is a small world (``proc/modules``, files under ``sys/module``, a ``modules.devname``
and a builtin list for the running release, module files) and a command line; ``{dir}`` in the
arguments stands for the directory holding the case's files. The kernel is this machine's: it has
no module support, so every module system call fails with ENOSYS unless the case injects another
errno for one call.

Recording (``python tests/support/kernel_cases.py record``, root): kmod 34 runs in the trixie
chroot in a private mount namespace with the case's ``proc``, ``sys`` and module directory bound
over ``/proc``, ``/sys`` and ``/lib/modules/$(uname -r)``, under strace, which logs the module
system calls and makes each fail (ENOSYS, or the case's errno), so that none reaches the
machine's kernel even where it has module support. lkm runs in-process with the same roots and a
fake kernel that fails the same way and logs its calls in strace's notation; both outputs and
both call logs are compared (``data/kernel-cases.json``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script (``python tests/support/kernel_cases.py record``): the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import elfbuild
from support.kernel import FakeKernel

RECORDED = Path(__file__).parent.parent / "data" / "kernel-cases.json"
RELEASE_MARK = "{release}"


@dataclass(frozen=True)
class Case:
    tool: str  # lsmod, insmod, rmmod, kmod
    args: list[str]
    proc: bytes | None = None  # proc/modules; None: no such file (no module support)
    sys: dict[str, bytes] = field(default_factory=dict)  # files under sys/module
    dirs: tuple[str, ...] = ()  # empty directories under sys/module
    devname: bytes | None = None
    builtin: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    inject: str | None = None  # e.g. "delete_module:EBUSY"
    links: dict[str, str] = field(default_factory=dict)  # symbolic links: name -> target


def module_state(
    name: str, *, refcnt: str = "0", size: str = "16384", state: str = "live"
) -> dict[str, bytes]:
    return {
        f"{name}/initstate": f"{state}\n".encode(),
        f"{name}/refcnt": f"{refcnt}\n".encode(),
        f"{name}/coresize": f"{size}\n".encode(),
    }


PROC = (
    b"nfsd 1234567 5 lockd,auth_rpcgss, Live 0xffffffffc0a00000\n"
    b"lockd 131072 2 nfsd, Live 0x0000000000000000\n"
    b"verylongmodulenamexyz123 4096 0 - Live 0xffffffffc0100000 (OE)\n"
    b"gone 4096 0 - Unloading 0xffffffffc0200000\n"
    b"free 100 0 - Live 0x0\n"
)
SYS = {
    **module_state("nfsd", refcnt="7", size="99999"),
    **module_state("lockd", refcnt="2", size="131072"),
    "verylongmodulenamexyz123/initstate": b"live\n",
    **module_state("free", size="100"),
    **module_state("inuse", refcnt="3"),
    "nostate/refcnt": b"0\n",
    "builtinstate/initstate": b"builtin\n",
    "builtinstate/refcnt": b"0\n",
    "going/initstate": b"going\n",
    "going/refcnt": b"0\n",
}
DIRS = (
    "nfsd/holders/alpha",
    "lockd/holders/nfsd",
    "verylongmodulenamexyz123/holders",
    "free/holders",
    "inuse/holders",
    "nostate/holders",
    "builtinstate/holders",
    "going/holders",
    "onlysys/parameters",
)
WORLD = {"proc": PROC, "sys": SYS, "dirs": DIRS, "builtin": ("unix", "sha256_generic")}

# States that cannot be read, or read oddly: a directory where a file should be, garbage, a
# built-in module's directory (parameters only), or one that modules.builtin also lists.
ODD_SYS = {
    "initdir/refcnt": b"0\n",
    "refdir/initstate": b"live\n",
    "badref/initstate": b"live\n",
    "badref/refcnt": b"abc\n",
    "emptystate/initstate": b"",
    "emptystate/refcnt": b"0\n",
    "paramsonly/parameters/max_loop": b"8\n",
    "unix/parameters/x": b"1\n",
}
ODD_DIRS = ("initdir/initstate", "initdir/holders", "refdir/refcnt", "refdir/holders",
            "badref/holders", "emptystate/holders")  # fmt: skip
ODD_PROC = b"".join(
    f"{name} 4096 0 - Live 0x0\n".encode() for name in ("initdir", "refdir", "badref", "paramsonly")
)


def _integers() -> tuple[bytes, dict[str, bytes], tuple[str, ...]]:
    values = ["12abc", "", " 5", "-3", "99999999999999999999", "0x10", "7 ", "+4", "010",
              "4294967296", "2147483648", "-2147483649"]  # fmt: skip
    proc = b""
    sys_files: dict[str, bytes] = {}
    dirs = []
    for i, value in enumerate(values):
        name = f"m{i}"
        proc += f"{name} 1 0 - Live 0x0\n".encode()
        sys_files[f"{name}/refcnt"] = value.encode() + b"\n"
        sys_files[f"{name}/coresize"] = value.encode() + b"\n"
        dirs.append(f"{name}/holders")
    sys_files["nonl/refcnt"] = b"5"
    sys_files["nonl/coresize"] = b"5"
    dirs.append("nonl/holders")
    proc += b"nonl 1 0 - Live 0x0\nshort 7\n\nx\ny z w\n"
    return proc, sys_files, tuple(dirs)


INT_PROC, INT_SYS, INT_DIRS = _integers()

DEVkernel_cases = (
    b"# Device nodes to trigger on-demand module loading.\n"
    b"autofs4 autofs c10:235\nsnd snd/a/b/timer c116:33\n\nblk blkdev b8:0\nbad1 x\n"
    b"bad2 y z10:1\nbad3 y cq:1\nbad4 y c10\nbad5 y c10:5x\nbad6 y c-1:5\n  sp  a  c1:2\n"
    b"tab\tt\tc3:4\nlast q c5:6"
)
GOOD_DEVkernel_cases = (
    b"# comment\nfuse fuse c10:229\ntun net/tun c10:200\nloop loop-control b7:0\n"
)

MODULE = elfbuild.elf64(
    {
        ".modinfo": elfbuild.modinfo_section(b"license=GPL", b"name=m", b"vermagic=6.1 SMP "),
        "__versions": b"\0" * 64,
    }
)


def _xz(data: bytes) -> bytes:
    import lzma

    return lzma.compress(data, check=lzma.CHECK_CRC32)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


XZ_MODULE = _xz(MODULE)
ZSTD_MODULE = _zstd(MODULE)

CASES: dict[str, Case] = {}


def _add(name: str, case: Case) -> None:
    name = re.sub(r"[^\w.=-]", "_", name)
    assert name not in CASES, name
    CASES[name] = case


def _build() -> None:
    w = WORLD
    for tool in ("lsmod", "kmod list", "lsmod x", "lsmod -x", "lsmod -h", "kmod list -h"):
        cmd = tool.split()
        _add(f"nosupport-{'-'.join(cmd)}", Case(cmd[0], cmd[1:]))
        _add(f"world-{'-'.join(cmd)}", Case(cmd[0], cmd[1:], w["proc"], w["sys"], w["dirs"]))
    _add("integers", Case("lsmod", [], INT_PROC, INT_SYS, INT_DIRS))
    _add("empty-proc", Case("lsmod", [], b""))
    for arg in ("nfsd", "lockd", "verylongmodulenamexyz123", "gone", "free", "inuse", "nostate",
                "builtinstate", "going", "onlysys", "unix", "sha256-generic", "/x/y/free.ko",
                "free.ko.xz", "free-x", "nothere"):  # fmt: skip
        _add(f"rmmod-{arg}", Case("rmmod", [arg], **w))  # type: ignore[arg-type]
    for opts in (["-f", "inuse"], ["-f", "nfsd"], ["-f", "nothere"], ["-f", "unix"],
                 ["free", "inuse", "nothere"], ["-s", "inuse"], ["-v", "inuse"], [], ["-h"],
                 ["-x"], ["{dir}/free.ko"], ["{dir}/mod-x.ko"]):  # fmt: skip
        _add(
            f"rmmod{'_'.join(opts)}",
            Case("rmmod", opts, files={"free.ko": b"x", "mod-x.ko": b"y"}, **w),
        )  # type: ignore[arg-type]
    odd = {"proc": ODD_PROC, "sys": ODD_SYS, "dirs": ODD_DIRS, "builtin": ("unix",)}
    for arg in ("initdir", "refdir", "badref", "emptystate", "paramsonly", "unix"):
        _add(f"rmmod-odd-{arg}", Case("rmmod", [arg], **odd))  # type: ignore[arg-type]
    _add("lsmod-odd", Case("lsmod", [], **odd))  # type: ignore[arg-type]
    for code in ("EBUSY", "EPERM", "ENOENT", "EAGAIN", "EINVAL"):
        _add(f"rmmod-free-{code}", Case("rmmod", ["free"], inject=f"delete_module:{code}", **w))  # type: ignore[arg-type]
    _add("rmmod-force-EBUSY", Case("rmmod", ["-f", "free"], inject="delete_module:EBUSY", **w))  # type: ignore[arg-type]
    files = {"m.ko": MODULE, "m.ko.xz": XZ_MODULE, "m.ko.zst": ZSTD_MODULE,
             "trunc.ko.xz": XZ_MODULE[:-30], "trunc.ko.zst": ZSTD_MODULE[:-10],
             "text.ko": b"hello\n", "short.ko": MODULE[:40]}  # fmt: skip
    insmods = {
        "plain": ["{dir}/m.ko"],
        "params": ["{dir}/m.ko", "a=1", "b=x y", 'c="q r"', 'w=a"b c"', "flag", "s=t u v"],
        "xz": ["{dir}/m.ko.xz", "p=1"],
        "zstd": ["{dir}/m.ko.zst"],
        "force": ["-f", "{dir}/m.ko"],
        "force-xz": ["-f", "{dir}/m.ko.xz"],
        "force-text": ["-f", "{dir}/text.ko"],
        "force-short": ["-f", "{dir}/short.ko"],
        "text": ["{dir}/text.ko"],
        "trunc-xz": ["{dir}/trunc.ko.xz"],
        "trunc-zstd": ["{dir}/trunc.ko.zst"],
        "missing": ["{dir}/nothere.ko"],
        "dir": ["{dir}"],
        "stdin": ["-"],
        "none": [],
        "bad-option": ["-x"],
        "help": ["-h"],
        "option-after": ["{dir}/m.ko", "-f"],
        "quiet-syslog": ["-s", "{dir}/nothere.ko"],
    }
    for name, args in insmods.items():
        _add(f"insmod-{name}", Case("insmod", args, files=files))
    for code in ("EEXIST", "ENOENT", "ESRCH", "EINVAL", "ENOEXEC", "EPERM", "EKEYREJECTED",
                 "EBUSY", "ENOKEY"):  # fmt: skip
        _add(f"insmod-{code}", Case("insmod", ["{dir}/m.ko"], files=files,
                                    inject=f"finit_module:{code}"))  # fmt: skip
    _add("insmod-xz-EEXIST", Case("insmod", ["{dir}/m.ko.xz"], files=files,
                                  inject="init_module:EEXIST"))  # fmt: skip
    for method in ("xz", "zstd"):
        for target in ("m.ko.xz", "m.ko.zst", "m.ko"):
            _add(f"insmod-kernel-{method}-{target}", Case(
                "insmod", ["{dir}/" + target], files=files, sys={"compression": method.encode()
                                                                 + b"\n"}))  # fmt: skip
    _add("insmod-kernel-xz-force", Case("insmod", ["-f", "{dir}/m.ko.xz"], files=files,
                                        sys={"compression": b"xz\n"}))  # fmt: skip
    for args in ([], ["-f", "tmpfiles"], ["-f", "devname"], ["--format=human"], ["-f", "bogus"],
                 ["-f"], ["-h"], ["x"]):  # fmt: skip
        name = "static-nodes" + "".join(args)
        _add(name, Case("kmod", ["static-nodes", *args], devname=DEVkernel_cases))
        _add("good-" + name, Case("kmod", ["static-nodes", *args], devname=GOOD_DEVkernel_cases))
    _add("static-nodes-missing", Case("kmod", ["static-nodes"]))
    _add("static-nodes-output", Case("kmod", ["static-nodes", "-o", "{dir}/nodir/x"],
                                     devname=GOOD_DEVkernel_cases))  # fmt: skip
    _odd_files()
    bogus = {**w["sys"], "compression": b"bogus\n"}  # type: ignore[dict-item]
    unknown = (("lsmod", []), ("rmmod", ["free"]), ("rmmod", []), ("insmod", ["{dir}/m.ko.xz"]),
               ("insmod", []), ("kmod", ["list"]))  # fmt: skip
    for tool, args in unknown:
        _add(
            f"compression-unknown-{tool}-{len(args)}",
            Case(
                tool,
                args,
                w["proc"],
                bogus,  # type: ignore[arg-type]
                w["dirs"],
                files=files,
            ),
        )  # type: ignore[arg-type]
    for raw in (b"xz", b" xz\n", b"xz \n", b"xz\n\n", b"xz\0\n", b"xz\n\0junk", b"zstd\t\n",
                b"zstdzstdzstdzstdzstd\n", b"zstd\n\n\n"):  # fmt: skip
        _add(f"compression-{raw!r}", Case("insmod", ["{dir}/m.ko.xz"], files=files,
                                           sys={"compression": raw}))  # fmt: skip
    empty = {**w["sys"], "compression": b""}  # type: ignore[dict-item]
    _add("compression-empty-rmmod", Case("rmmod", ["free"], w["proc"], empty, w["dirs"]))  # type: ignore[arg-type]
    for args in ([], ["help"], ["help", "x"], ["-h"], ["bogus"], ["lsmod"], ["-x"], ["--bogus"]):
        _add("kmod" + "_".join(args), Case("kmod", args))


# Tiny and odd files: kmod reads six bytes before it chooses a system call (see lkm.kernel).
_XZ_MAGIC, _ZSTD_MAGIC = bytes.fromhex("fd377a585a00"), bytes.fromhex("28b52ffd")
ODD_FILES = {
    "empty": b"",
    **{f"text{n}": b"abcdef"[:n] for n in (1, 3, 5, 6)},
    "zero5": bytes(5),
    "elf4": b"\x7fELF",
    **{f"xz{n}": _XZ_MAGIC[:n] for n in (1, 5)},
    "xz": _XZ_MAGIC,
    "xz-junk": _XZ_MAGIC + b"junk" * 8,
    "xz-almost": _XZ_MAGIC[:5] + b"\x01junk",
    "zstd3": _ZSTD_MAGIC[:3],
    "zstd": _ZSTD_MAGIC,
    "zstd5": _ZSTD_MAGIC + b"\x20",
    "zstd-header": _ZSTD_MAGIC + b"\x08\x00junk",
    "zstd-cut": _ZSTD_MAGIC + b"\xe0\x10",
    "zstd-junk": _ZSTD_MAGIC + b"\x20\x10junkjunk",
    "zstd-unsized": _ZSTD_MAGIC + b"\x00\x00junkjunkjunk",
    "gzip1": b"\x1f",
    "gzip": b"\x1f\x8b",
    "gzip5": b"\x1f\x8bjjj",
}
ODD_LINKS = {"link-text3": "text3", "link-dir": "lm", "link-null": "/dev/null",
             "link-zero": "/dev/zero", "link-none": "nothere"}  # fmt: skip


def _odd_files() -> None:
    def add(name: str, args: list[str], **more: object) -> None:
        case = Case("insmod", args, files=ODD_FILES, links=ODD_LINKS, **more)  # type: ignore[arg-type]
        _add(f"insmod-odd-{name}", case)

    for name in [*ODD_FILES, *ODD_LINKS]:
        add(name, ["{dir}/" + name])
    for device in ("/dev/null", "/dev/zero"):
        add(device, [device])
        add(f"force-{device}", ["-f", device])
    add("zero-EINVAL", ["/dev/zero"], inject="finit_module:EINVAL")  # as Linux answers
    add("text6-ENOEXEC", ["{dir}/text6"], inject="finit_module:ENOEXEC")
    for name in ("empty", "text3", "text6", "xz", "zstd-header"):
        add(f"force-{name}", ["-f", "{dir}/" + name])
    for method, names in (("xz", ("xz5", "xz", "xz-junk", "zstd-junk")),
                          ("zstd", ("zstd", "zstd5", "zstd-header", "zstd-junk", "xz")),
                          ("gzip", ("gzip", "gzip5"))):  # fmt: skip
        compression = {"compression": method.encode() + b"\n"}
        for name in names:
            add(f"kernel-{method}-{name}", ["{dir}/" + name], sys=compression)
    add("kernel-xz-junk-EINVAL", ["{dir}/xz-junk"], sys={"compression": b"xz\n"},
        inject="finit_module:EINVAL")  # fmt: skip


_build()


# ------------------------------------------------------------------------------ materialise


def materialise(case: Case, where: Path) -> None:
    if where.exists():
        shutil.rmtree(where)
    (where / "sys/module").mkdir(parents=True)
    (where / "proc").mkdir()
    (where / "lm").mkdir()
    if case.proc is not None:
        (where / "proc/modules").write_bytes(case.proc)
    for rel in case.dirs:
        (where / "sys/module" / rel).mkdir(parents=True, exist_ok=True)
    for rel, data in case.sys.items():
        path = where / "sys/module" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if case.devname is not None:
        (where / "lm/modules.devname").write_bytes(case.devname)
    if case.builtin:
        from lkm.index import write_index

        (where / "lm/modules.builtin.bin").write_bytes(
            write_index((name, "", 0) for name in case.builtin)
        )
    for rel, data in case.files.items():
        (where / rel).write_bytes(data)
    for rel, target in case.links.items():
        (where / rel).symlink_to(target)


def fill(args: list[str], where: str) -> list[str]:
    return [a.replace("{dir}", where) for a in args]


# ------------------------------------------------------------------------------ lkm side

_INIT_FLAGS = {1: "MODULE_INIT_IGNORE_MODVERSIONS", 2: "MODULE_INIT_IGNORE_VERMAGIC",
               4: "MODULE_INIT_COMPRESSED_FILE"}  # fmt: skip


def strace_string(text: str) -> str:
    out = ['"']
    for byte in os.fsencode(text):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append({"\n": "\\n", "\t": "\\t"}.get(char, f"\\{byte:o}"))
    out.append('"')
    return "".join(out)


def _flag_names(flags: int, names: dict[int, str]) -> str:
    found = [name for bit, name in names.items() if flags & bit]
    return "|".join(found) if found else "0"


def _kernel(inject: str | None) -> FakeKernel:
    """This machine's kernel: no module support (ENOSYS), except the errno a case injects."""
    calls = {}
    if inject:
        call, name = inject.split(":")
        calls[call] = getattr(errno, name)
    return FakeKernel(every=errno.ENOSYS, fail_calls=calls)


def strace_lines(kernel: FakeKernel) -> list[str]:
    """The fake kernel's calls as strace shows kmod's."""
    images = iter(kernel.images)
    names = {os.O_NONBLOCK: "O_NONBLOCK", os.O_TRUNC: "O_TRUNC"}
    lines = []
    for call in kernel.calls:
        params = strace_string(call.params)
        if call.call == "finit_module":
            lines.append(f"finit_module(FD, {params}, {_flag_names(call.flags, _INIT_FLAGS)})")
        elif call.call == "init_module":
            lines.append(f"init_module(PTR, {len(next(images))}, {params})")
        else:
            flags = _flag_names(call.flags, names)
            lines.append(f"delete_module({strace_string(call.module)}, {flags})")
    return lines


@dataclass(frozen=True)
class Outcome:
    stdout: str
    stderr: str
    status: int
    calls: list[str]


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    out, err = io.BytesIO(), io.BytesIO()
    wrapped_out = io.TextIOWrapper(out, write_through=True)
    wrapped_err = io.TextIOWrapper(err, write_through=True)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = wrapped_out, wrapped_err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved


def run_lkm(case: Case, where: Path) -> Outcome:
    from lkm.cli import insmod, kmodcmd, lsmod, rmmod

    kernel = _kernel(case.inject)
    root = str(where)
    procfs, sysfs, moddir = f"{root}/proc", f"{root}/sys", f"{root}/lm"
    args = fill(case.args, root)
    with _captured() as (out, err):
        if case.tool == "lsmod":
            status = lsmod.main(args, procfs=procfs, sysfs=sysfs)
        elif case.tool == "insmod":
            status = insmod.main(args, kernel=kernel, sysfs=sysfs)
        elif case.tool == "rmmod":
            status = rmmod.main(args, kernel=kernel, sysfs=sysfs, moddir=moddir)
        else:
            status = kmodcmd.main(args, roots=kmodcmd.Roots(procfs, sysfs, moddir))
        stdout, stderr = out.getvalue(), err.getvalue()
    release = os.uname().release

    def normal(data: bytes) -> str:
        text = data.decode("utf-8", "surrogateescape")
        text = text.replace(procfs, "/proc").replace(sysfs, "/sys")
        text = text.replace(moddir, f"/lib/modules/{RELEASE_MARK}")
        return text.replace(root, "{dir}").replace(release, RELEASE_MARK)

    return Outcome(normal(stdout), normal(stderr), status, strace_lines(kernel))


# ------------------------------------------------------------------------------ kmod side

_SCRATCH = "scratch-kernel"
MODULE_CALLS = ("finit_module", "init_module", "delete_module")


def run_kmod(case: Case, name: str) -> Outcome:
    from support import world

    chroot = world.CHROOT
    where = chroot / _SCRATCH / "cases" / name
    materialise(case, where)
    inside = f"/{_SCRATCH}/cases/{name}"
    release = os.uname().release
    target = chroot / "lib/modules" / release
    trace = where.parent / f"{name}.trace"
    binds = (
        f"mount --bind {where}/proc {chroot}/proc && mount --bind {where}/sys {chroot}/sys && "
        f"mount --bind {where}/lm {target}"
    )
    command = [case.tool, *fill(case.args, inside)]
    strace = ["strace", "-f", "-s", "4096", "-o", str(trace),
              "-e", f"trace={','.join(MODULE_CALLS)}"]  # fmt: skip
    # Every module call fails by injection, so recording never loads or removes a module on
    # the machine: with ENOSYS (a kernel without module support), or the case's errno.
    injected = dict.fromkeys(MODULE_CALLS, "ENOSYS")
    if case.inject:
        call, code = case.inject.split(":")
        injected[call] = code
    for call, code in injected.items():
        strace += ["-e", f"inject={call}:error={code}"]
    script = f'{binds} && exec chroot {chroot} "$@"'
    target.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [*strace, "unshare", "--mount", "sh", "-c", script, "sh", *command],
            capture_output=True,
            check=False,
        )
    finally:
        target.rmdir()
    calls = []
    for line in trace.read_text().splitlines():
        match = re.match(r"\d+\s+((?:f?init|delete)_module\(.*\))\s+= ", line)
        if match:
            assert line.endswith("(INJECTED)"), f"{name}: a module call reached the kernel: {line}"
            call = match.group(1)
            call = re.sub(r"^finit_module\(\d+,", "finit_module(FD,", call)
            call = re.sub(r"^init_module\(0x[0-9a-f]+,", "init_module(PTR,", call)
            calls.append(call)

    def normal(data: bytes) -> str:
        text = data.decode("utf-8", "surrogateescape")
        return text.replace(inside, "{dir}").replace(release, RELEASE_MARK)

    return Outcome(normal(done.stdout), normal(done.stderr), done.returncode, calls)


def record_with_kmod() -> dict[str, Outcome]:
    return {name: run_kmod(case, name) for name, case in sorted(CASES.items())}


def load_recorded() -> dict[str, Outcome]:
    raw = json.loads(RECORDED.read_text())
    return {name: Outcome(**value) for name, value in raw.items()}


def main(argv: list[str]) -> int:
    if argv[:1] != ["record"]:
        print("usage: support/kernel_cases.py record", file=sys.stderr)
        return 2
    recorded = record_with_kmod()
    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(
        json.dumps({k: v.__dict__ for k, v in recorded.items()}, indent=1, sort_keys=True) + "\n"
    )
    print(f"recorded {len(recorded)} cases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
