"""Hand-made inputs for modinfo and what kmod 34 prints for each.

Every case is a few files and a command line; ``{dir}`` in the arguments and in the recorded
output stands for the directory holding the files. The expected outputs in
``data/modinfo-cases.json`` were recorded from kmod 34 by ``python tests/support/modinfo_cases.py
record`` (the slow test ``test_recorded_outputs_are_kmods`` checks them against kmod again).
"""

from __future__ import annotations

import io
import lzma
import os
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script (``python tests/support/modinfo_cases.py record``): the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import elfbuild, recording

RECORDED = Path(__file__).parent.parent / "data" / "modinfo-cases.json"


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()


def module(*strings: bytes) -> bytes:
    return elfbuild.elf64({".modinfo": elfbuild.modinfo_section(*strings)})


GOOD = module(b"license=GPL", b"description=test module", b"name=good", b"vermagic=6.1 SMP ")


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def _bad_signature(sig_len: int) -> bytes:
    # A module with the signature trailer but a length that reaches outside the file.
    trailer = struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, sig_len)
    return GOOD + b"\x30\x03\x02\x01\x00" + trailer + b"~Module signature appended~\n"


def _flip_bit(data: bytes, at: int, bit: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 1 << bit
    return bytes(out)


# Section headers of elfbuild's files: [null, *sections, .shstrtab], 64 bytes each at e_shoff.
_SH_modinfo_cases, _SH_TYPE, _SH_OFFSET, _SH_SIZE = (0, "<I"), (4, "<I"), (24, "<Q"), (32, "<Q")


def _patched(data: bytes, index: int, field: tuple[int, str], value: int) -> bytes:
    """``data`` with one field of section header ``index`` (-1: the ELF header) set."""
    out = bytearray(data)
    at, fmt = field
    base = 0 if index < 0 else struct.unpack_from("<Q", data, 40)[0] + 64 * index
    struct.pack_into(fmt, out, base + at, value)
    return bytes(out)


def _field(data: bytes, index: int, field: tuple[int, str]) -> int:
    at, fmt = field
    return int(
        struct.unpack_from(fmt, data, struct.unpack_from("<Q", data, 40)[0] + 64 * index + at)[0]
    )


# .text then .modinfo: section 1's name can be damaged while .modinfo stays readable.
TWO = elfbuild.elf64({".text": b"\xc3", ".modinfo": elfbuild.modinfo_section(b"license=GPL")})
_modinfo_casesS = _field(GOOD, 2, _SH_SIZE)  # size of GOOD's .shstrtab
_E_SHOFF = (40, "<Q")
_MODINFO_modinfo_cases = _field(TWO, 2, _SH_modinfo_cases)


def _damaged_elf() -> dict[str, bytes]:
    """Modules broken in one place each, for the rules of kmod 34's ELF reader."""
    return {
        "elf-16-bytes": GOOD[:16],  # ENOEXEC up to the identification's 16 bytes
        "elf-17-bytes": GOOD[:17],  # EINVAL after
        "shoff-zero": _patched(GOOD, -1, _E_SHOFF, 0),  # read at offset 0, no "no table"
        "names-empty": _patched(GOOD, 2, _SH_SIZE, 0),
        "names-unterminated": _patched(GOOD, 2, _SH_SIZE, _modinfo_casesS - 1),
        "names-own-name-beyond": _patched(GOOD, 2, _SH_modinfo_cases, _modinfo_casesS),
        "names-own-name-last": _patched(GOOD, 2, _SH_modinfo_cases, _modinfo_casesS - 1),
        "other-name-beyond": _patched(TWO, 1, _SH_modinfo_cases, 1000),
        "modinfo-name-beyond": _patched(GOOD, 1, _SH_modinfo_cases, 1000),
        "modinfo-beyond-file": _patched(GOOD, 1, _SH_SIZE, 1 << 20),
        "modinfo-at-end-empty": _patched(_patched(GOOD, 1, _SH_OFFSET, len(GOOD)), 1, _SH_SIZE, 0),
        "modinfo-nobits": _patched(GOOD, 1, _SH_TYPE, 8),
        "modinfo-one-byte-after-nuls": elfbuild.elf64({".modinfo": b"\0\0x"}),
        "modinfo-two-bytes-after-nuls": elfbuild.elf64({".modinfo": b"\0\0xy"}),
        "modinfo-first-copy": _patched(TWO, 1, _SH_modinfo_cases, _MODINFO_modinfo_cases),
        "modinfo-first-copy-beyond-file": _patched(
            _patched(TWO, 1, _SH_modinfo_cases, _MODINFO_modinfo_cases), 1, _SH_OFFSET, 1 << 20
        ),
    }


NO_MODINFO = elfbuild.elf64({".text": b"\xc3"})
PARAMS = module(
    b"parm=a:desc a",
    b"parmtype=b:int",
    b"license=GPL",
    b"parm=c:desc c",
    b"parmtype=a:charp",
    b"parm=b:desc b",
    b"parmtype=c:bool",
    b"parm=a:second a",
    b"noequals",
    b"x=",
    b"=y",
    b"parm=nocolon",
    b"parmtype=d",
    b"parm=e:",
    b"parmtype=e:",
    b"parm=f:only a description",
    b"parmtype=g:int",
    b"parm=:emptyname",
    b"parmtype=:x",
)
ODD_TEXT = elfbuild.elf64(
    {
        ".modinfo": elfbuild.modinfo_section(
            b"description=caf\xc3\xa9 \xff\xfe raw",
            b"a_very_long_key_name_indeed=value",
            b"sixteen_chars_k=v",
            b"fifteen_chars_=v",
            b"alias=with\ttab",
            b"license=GPL",
        )
        + b"unterminated=last"
    }
)


def _tree(*, with_module: bool = True, dep_bin: bytes | None = None) -> dict[str, bytes]:
    """A module directory for release 1.0-t: one module, its aliases, one builtin module."""
    from lkm.index import write_index

    moddir = "lib/modules/1.0-t"
    files = {
        f"{moddir}/modules.dep.bin": dep_bin
        if dep_bin is not None
        else write_index([("good_mod", "kernel/good-mod.ko:", 0)]),
        f"{moddir}/modules.alias.bin": write_index(
            [("fs_good*", "good_mod", 0), ("fs_gone", "gone", 1), ("fs_both", "good_mod", 2)]
        ),
        f"{moddir}/modules.symbols.bin": write_index([("symbol:good_fn", "good_mod", 0)]),
        f"{moddir}/modules.builtin.bin": write_index([("blt", "", 0)]),
        f"{moddir}/modules.builtin.alias.bin": write_index([("fs_blt", "blt", 0)]),
        f"{moddir}/modules.builtin.modinfo": (
            b"blt.license=GPL\0blt.parmtype=p:int\0blt.alias=fs-blt\0"
        ),
    }
    if with_module:
        files[f"{moddir}/kernel/good-mod.ko"] = GOOD
    return files


def _cases() -> list[Case]:
    xz = lzma.compress(GOOD, lzma.FORMAT_XZ)
    zst = _zstd(GOOD)
    d = "{dir}"
    tree = ["-b", d, "-k", "1.0-t"]
    return [
        Case("good", [f"{d}/good.ko"], {"good.ko": GOOD}),
        Case("not-elf", [f"{d}/text.ko"], {"text.ko": b"hello world, not a module\n"}),
        Case("empty", [f"{d}/empty.ko"], {"empty.ko": b""}),
        Case("five-bytes", [f"{d}/five.ko"], {"five.ko": b"\x7fELF\x02"}),
        Case("elf-magic-only", [f"{d}/magic.ko"], {"magic.ko": b"\x7fELF\x02\x01\x01" + b"\0" * 8}),
        Case("truncated-elf", [f"{d}/trunc.ko"], {"trunc.ko": GOOD[:100]}),
        Case("header-only", [f"{d}/hdr.ko"], {"hdr.ko": GOOD[:64]}),
        Case("bad-class", [f"{d}/class.ko"], {"class.ko": GOOD[:4] + b"\x07" + GOOD[5:]}),
        Case("no-modinfo", [f"{d}/nomodinfo.ko"], {"nomodinfo.ko": NO_MODINFO}),
        Case("corrupt-xz", [f"{d}/corrupt.ko.xz"], {"corrupt.ko.xz": _flip(xz, len(xz) // 2)}),
        Case("truncated-xz", [f"{d}/trunc.ko.xz"], {"trunc.ko.xz": xz[: len(xz) // 2]}),
        Case("xz-header-only", [f"{d}/x6.ko.xz"], {"x6.ko.xz": xz[:6]}),
        Case("corrupt-zstd", [f"{d}/corrupt.ko.zst"], {"corrupt.ko.zst": _flip(zst, len(zst) - 2)}),
        Case("truncated-zstd", [f"{d}/trunc.ko.zst"], {"trunc.ko.zst": zst[: len(zst) // 2]}),
        Case("zstd-magic-only", [f"{d}/z5.ko.zst"], {"z5.ko.zst": zst[:5]}),
        Case("xz-inside-ko", ["-F", "license", f"{d}/packed-module.ko"], {"packed-module.ko": xz}),
        *(Case(name, [f"{d}/{name}.ko"], {f"{name}.ko": data})
          for name, data in _damaged_elf().items()),
        Case("xz-of-5-bytes", [f"{d}/x5.ko.xz"], {"x5.ko.xz": lzma.compress(GOOD[:5])}),
        Case("xz-of-16-bytes", [f"{d}/x16.ko.xz"], {"x16.ko.xz": lzma.compress(GOOD[:16])}),
        Case("zstd-one-call-reason", [f"{d}/z.ko.zst"], {"z.ko.zst": _flip_bit(zst, 120, 3)}),
        Case("key-with-utf8", [f"{d}/u.ko"], {"u.ko": module(b"cl\xc3\xa9=v", b"\xc3\xa9\xff=w")}),
        Case("directory", [f"{d}/dir.ko"], dirs=("dir.ko",)),
        Case("missing", [f"{d}/missing.ko"]),
        Case("no-module-suffix", [f"{d}/good.o"], {"good.o": GOOD}),
        Case("several-one-bad", [f"{d}/a.ko", f"{d}/b.ko", f"{d}/c.ko"],
             {"a.ko": GOOD, "b.ko": b"junk", "c.ko": PARAMS}),
        Case("params", [f"{d}/params.ko"], {"params.ko": PARAMS}),
        Case("params-p", ["-p", f"{d}/params.ko"], {"params.ko": PARAMS}),
        Case("params-0", ["-0", f"{d}/params.ko"], {"params.ko": PARAMS}),
        Case("params-parmtype", ["-F", "parmtype", f"{d}/params.ko"], {"params.ko": PARAMS}),
        Case("params-other-field", ["-F", "license", f"{d}/params.ko"], {"params.ko": PARAMS}),
        Case("odd-text", [f"{d}/odd.ko"], {"odd.ko": ODD_TEXT}),
        Case("odd-text-0", ["--null", f"{d}/odd.ko"], {"odd.ko": ODD_TEXT}),
        Case("signature-too-long", [f"{d}/sig.ko"], {"sig.ko": _bad_signature(1 << 20)}),
        Case("signature-zero", [f"{d}/sig0.ko"], {"sig0.ko": _bad_signature(0)}),
        Case("filename-of-broken", ["-n", f"{d}/text.ko"], {"text.ko": b"not a module"}),
        Case("missing-basedir", ["-b", f"{d}/nowhere", "-k", "1.0", "ext4"]),
        Case("missing-basedir-m", ["-m", "-b", f"{d}/nowhere", "-k", "1.0", "ext4"]),
        Case("no-arguments", []),
        Case("bad-option", ["--bogus", "x"]),
        Case("bad-short-option", ["-X", "x"]),
        Case("missing-value", ["-F"]),
        Case("ambiguous", ["--f", "x"]),
        Case("value-on-flag", ["--author=x", "x"]),
        Case("abbreviation", ["--desc", f"{d}/good.ko"], {"good.ko": GOOD}),
        Case("help", ["--help"]),
        Case("field-then-name", [f"{d}/good.ko", "--field", "name"], {"good.ko": GOOD}),
        Case("double-dash", ["--", f"{d}/good.ko"], {"good.ko": GOOD}),
        Case("tree-lookups", [*tree, "good-mod", "good_mod", "fs-good-x", "symbol:good_fn", "blt",
             "fs-blt", "fs-gone", "nothing"], _tree()),
        Case("tree-lookups-m", ["-m", *tree, "good-mod", "fs-good-x", "blt", "fs-blt"], _tree()),
        Case("tree-typed-names", [*tree, "a[b", "]", "good-mod]", "x-[", "symbol:good-fn",
             "good-mod.ko", "[fs]-good-x"], _tree()),
        Case("tree-typed-names-m", ["-m", *tree, "good-mod.ko", "good-mod.x.y", "blt.ko",
             "fs-blt.z", "a[b", ".good-mod", "symbol:good_fn"], _tree()),
        Case("tree-builtin-0", ["-0", *tree, "blt"], _tree()),
        Case("tree-builtin-fields", ["-F", "parmtype", *tree, "blt"], _tree()),
        Case("tree-module-file-gone", [*tree, "good-mod", "fs-good-x"], _tree(with_module=False)),
        Case("tree-corrupt-dep", [*tree, "good-mod", "fs-good-x", "blt"],
             _tree(dep_bin=b"\xb0\x07\xf4\x57\x00\x02\x00\x01\x00\x00\x10\x00")),
        Case("tree-empty-dep", [*tree, "good-mod", "blt"], _tree(dep_bin=b"")),
        Case("tree-trailing-slash", ["-b", f"{d}/", "-k", "1.0-t", "-n", "good-mod"], _tree()),
    ]  # fmt: skip


CASES = {case.name: case for case in _cases()}


def materialise(case: Case, where: Path) -> None:
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name, data in case.files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    for name in case.dirs:
        (where / name).mkdir()


def fill(args: list[str], where: str) -> list[str]:
    return [arg.replace("{dir}", where) for arg in args]


@dataclass(frozen=True)
class Output:
    stdout: bytes
    stderr: bytes
    status: int

    def to_json(self) -> dict[str, object]:
        return {
            "stdout": self.stdout.decode("latin-1"),
            "stderr": self.stderr.decode("latin-1"),
            "status": self.status,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Output:
        return cls(
            str(data["stdout"]).encode("latin-1"),
            str(data["stderr"]).encode("latin-1"),
            int(str(data["status"])),
        )


def placeholder(output: Output, where: str) -> Output:
    raw = os.fsencode(where)
    return Output(
        output.stdout.replace(raw, b"{dir}"), output.stderr.replace(raw, b"{dir}"), output.status
    )


def run_lkm_inprocess(args: list[str]) -> Output:
    """``lkm modinfo`` called in this process, its output captured as bytes."""
    from lkm.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr
    wrappers = io.TextIOWrapper(out), io.TextIOWrapper(err)
    sys.stdout, sys.stderr = wrappers
    try:
        status = main(["modinfo", *args])
    finally:
        sys.stdout, sys.stderr = saved
        for wrapper in wrappers:
            wrapper.flush()
            wrapper.detach()  # keeps the BytesIO open for reading
    return Output(out.getvalue(), err.getvalue(), status)


def record_with_kmod() -> dict[str, Output]:
    from support import world

    results = {}
    for case in CASES.values():
        where = world.CHROOT / "scratch-cases" / case.name
        materialise(case, where)
        inside = "/" + str(where.relative_to(world.CHROOT))
        done = world.kmod("modinfo", *fill(case.args, inside))
        results[case.name] = placeholder(Output(done.stdout, done.stderr, done.returncode), inside)
    return results


def load_recorded() -> dict[str, Output]:
    return recording.load(RECORDED, Output.from_json)


def main(argv: list[str]) -> int:
    return recording.record_main(argv, "modinfo_cases.py", record_with_kmod, RECORDED)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
