"""Damaged real modules: random damage of chosen kinds, and modinfo of each by lkm and kmod 34.

``damaged(source, rng)`` returns a copy of a module file with one kind of damage (bit flips in
the ELF header, the section header table, the section names, ``.modinfo`` or anywhere;
truncation at a random point or at a section boundary; damage inside the xz or zstd stream;
damage in the signature trailer or the PKCS#7 blob) and a description of it. ``compare`` runs
both tools on a batch of such files and returns the differences. Run as a script for a large
run: ``python tests/support/module_damage.py COUNT [SEED]``.
"""

from __future__ import annotations

import concurrent.futures
import lzma
import os
import random
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Run as a script (``python tests/support/module_damage.py record``): the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import world
from support.modinfo_cases import Output, placeholder, run_lkm_inprocess

# The trees damage is drawn from: every class, byte order and compression of the test world.
TREES = ("bookworm-amd64", "trixie-amd64", "trixie-amd64-zstd", "trixie-armhf", "bookworm-s390x")
# Big modules only slow the run down; their structure is the same as the small ones'.
MAX_SOURCE_SIZE = 400_000
_MAGIC = b"~Module signature appended~\n"
_TRAILER = 12 + len(_MAGIC)


@dataclass(frozen=True)
class Damaged:
    name: str  # the file name the damaged copy gets (unique in a batch)
    source: str  # the real module it was made from, relative to its tree
    what: str  # the damage, in words
    data: bytes


@dataclass(frozen=True)
class Difference:
    case: Damaged
    kmod: Output
    lkm: Output

    def __str__(self) -> str:
        return (
            f"{self.case.name} from {self.case.source}: {self.case.what}\n"
            f"  kmod: status {self.kmod.status}\n{_indent(self.kmod)}\n"
            f"  lkm:  status {self.lkm.status}\n{_indent(self.lkm)}"
        )


def _indent(out: Output) -> str:
    text = (out.stdout + b"--- stderr\n" + out.stderr).decode("latin-1")
    return "\n".join("    " + line for line in text.splitlines()[:30])


def sources(rng: random.Random, per_tree: int) -> list[tuple[str, Path]]:
    """``per_tree`` random modules of each tree (name of tree, path), small ones only."""
    chosen = []
    for name in TREES:
        tree = world.tree(name)
        modules = [p for p in tree.modules() if p.stat().st_size <= MAX_SOURCE_SIZE]
        chosen += [(name, path) for path in rng.sample(modules, min(per_tree, len(modules)))]
    return chosen


# --- the structure of a module, for aiming the damage ----------------------------------------


@dataclass(frozen=True)
class _Layout:
    is64: bool
    order: str
    ehsize: int
    shoff: int
    shentsize: int
    shnum: int
    sections: list[tuple[int, int, int, int]]  # (header offset, name offset, offset, size)
    names: tuple[int, int]  # .shstrtab offset and size
    signature: tuple[int, int] | None  # PKCS#7 blob offset and size


def _layout(data: bytes) -> _Layout | None:
    """Where things are in an intact uncompressed module; None if it does not look like one."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return None
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    ehdr = struct.Struct(order + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"))
    fields = ehdr.unpack_from(data, 16)
    shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
    shdr = struct.Struct(order + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII"))
    sections = []
    for i in range(shnum):
        at = shoff + i * shentsize
        name, _type, _flags, _addr, offset, size = shdr.unpack_from(data, at)[:6]
        sections.append((at, name, offset, size))
    names = sections[shstrndx][2:] if shstrndx < shnum else (0, 0)
    signature = None
    if data.endswith(_MAGIC):
        sig_len = struct.unpack_from(">I", data, len(data) - _TRAILER + 8)[0]
        signature = (len(data) - _TRAILER - sig_len, sig_len)
    return _Layout(is64, order, 16 + ehdr.size, shoff, shentsize, shnum, sections, names, signature)


def _section(data: bytes, layout: _Layout, wanted: bytes) -> tuple[int, int] | None:
    start = layout.names[0]
    for _at, name, offset, size in layout.sections:
        end = data.find(b"\0", start + name)
        if data[start + name : end] == wanted:
            return offset, size
    return None


# --- kinds of damage ---------------------------------------------------------------------------

_SPECIAL = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF)


def _flip(data: bytearray, rng: random.Random, start: int, end: int, count: int) -> str:
    spots = []
    for _ in range(count):
        at = rng.randrange(start, max(end, start + 1))
        if at >= len(data):
            continue
        bit = rng.randrange(8)
        data[at] ^= 1 << bit
        spots.append(f"{at}.{bit}")
    return "bit flips at " + ",".join(spots)


def _field(data: bytearray, rng: random.Random, start: int, end: int) -> str:
    """Overwrite a 1, 2 or 4-byte field inside [start, end) with a telling value."""
    width = rng.choice((1, 2, 4))
    at = rng.randrange(start, max(start + 1, end - width + 1))
    value = rng.choice((*_SPECIAL, rng.randrange(1 << (8 * width)))) & ((1 << (8 * width)) - 1)
    data[at : at + width] = value.to_bytes(width, rng.choice(("little", "big")))
    return f"{width}-byte field at {at} set to {value:#x}"


def _elf_damage(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One kind of damage to an uncompressed module."""
    out = bytearray(data)
    layout = _layout(data)
    kinds = ["anywhere", "truncate"]
    if layout is not None:
        kinds += ["header", "header", "shtab", "shtab", "names", "modinfo", "boundary"]
        if layout.signature is not None:
            kinds += ["trailer", "pkcs7", "pkcs7", "pkcs7-structure"]
    kind = rng.choice(kinds)
    if kind == "anywhere":
        what = _flip(out, rng, 0, len(out), rng.choice((1, 1, 2, 4, 16)))
    elif kind == "truncate":
        cut = rng.randrange(len(out))
        del out[cut:]
        what = f"truncated at {cut}"
    else:
        assert layout is not None
        what = _aimed(kind, out, data, layout, rng)
    return bytes(out), f"{kind}: {what}"


def _aimed(kind: str, out: bytearray, data: bytes, layout: _Layout, rng: random.Random) -> str:
    tables = layout.shoff, layout.shoff + layout.shnum * layout.shentsize
    if kind == "header":
        if rng.random() < 0.5:
            return _flip(out, rng, 0, layout.ehsize, rng.choice((1, 1, 2)))
        return _field(out, rng, 16, layout.ehsize)
    if kind == "shtab":
        if rng.random() < 0.5:
            return _flip(out, rng, *tables, rng.choice((1, 1, 2, 3)))
        return _field(out, rng, *tables)
    if kind == "names":
        start, size = layout.names
        strtab = _section(data, layout, b".strtab")
        if strtab is not None and rng.random() < 0.3:
            start, size = strtab
        return "names " + _flip(out, rng, start, start + size, rng.choice((1, 2, 4)))
    if kind == "modinfo":
        found = _section(data, layout, b".modinfo")
        if found is None:
            return "no .modinfo: " + _flip(out, rng, 0, len(out), 1)
        start, size = found
        return ".modinfo " + _flip(out, rng, start, start + size, rng.choice((1, 2, 8)))
    if kind == "boundary":
        edges = [
            edge for _at, _name, offset, size in layout.sections for edge in (offset, offset + size)
        ] + list(tables)
        cut = max(0, min(len(out) - 1, rng.choice(edges) + rng.choice((-1, 0, 0, 1))))
        del out[cut:]
        return f"truncated at {cut}"
    assert layout.signature is not None
    blob, size = layout.signature
    if kind == "trailer":
        if rng.random() < 0.5:
            return "trailer " + _flip(out, rng, len(out) - _TRAILER, len(out), 1)
        return "trailer " + _field(out, rng, len(out) - _TRAILER, len(out) - len(_MAGIC))
    if kind == "pkcs7":
        return "pkcs7 " + _flip(out, rng, blob, blob + size, rng.choice((1, 1, 2, 8)))
    return "pkcs7 " + _restructure(out, rng, blob, size)


def _restructure(out: bytearray, rng: random.Random, blob: int, size: int) -> str:
    """Bytes inserted into or removed from the PKCS#7 blob, its length kept consistent."""
    at = rng.randrange(blob, blob + size)
    change = rng.choice(("insert", "delete", "append"))
    if change == "append":
        at = blob + size
    if change == "delete":
        count = rng.choice((1, 1, 2, 16))
        del out[at : at + count]
        delta = -count
    else:
        extra = bytes(rng.randrange(256) for _ in range(rng.choice((1, 1, 2, 16))))
        if rng.random() < 0.3:
            extra = b"\0" * len(extra)
        out[at:at] = extra
        delta = len(extra)
    length_at = len(out) - _TRAILER + 8
    new_size = size + delta
    if rng.random() < 0.8:  # usually the trailer follows the change, sometimes it does not
        out[length_at : length_at + 4] = struct.pack(">I", new_size)
    return f"{change} {abs(delta)} bytes at {at}"


def damaged(index: int, tree: str, path: Path, rng: random.Random) -> Damaged:
    data = path.read_bytes()
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith((".xz", ".zst")) else ".ko"
    name = f"d{index:05d}{suffix}"
    source = f"{tree}:{path.name}"
    if suffix == ".ko":
        out, what = _elf_damage(data, rng)
        return Damaged(name, source, what, out)
    # A compressed module: damage its stream, or damage the module inside and repack it.
    unpack, pack = _codec(suffix)
    roll = rng.random()
    if roll < 0.35:
        out = bytearray(data)
        what = "stream " + _flip(out, rng, 0, len(out), rng.choice((1, 1, 2, 8)))
        return Damaged(name, source, what, bytes(out))
    if roll < 0.45:
        cut = rng.randrange(len(data))
        return Damaged(name, source, f"stream truncated at {cut}", data[:cut])
    inner, what = _elf_damage(unpack(data), rng)
    return Damaged(name, source, "inside the stream, " + what, pack(inner))


def _codec(suffix: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if suffix.endswith(".xz"):
        return lzma.decompress, lambda data: lzma.compress(data, check=lzma.CHECK_CRC32)
    import zstandard

    return (
        lambda data: zstandard.ZstdDecompressor().decompress(data),
        lambda data: zstandard.ZstdCompressor(level=1).compress(data),
    )


def cases(count: int, seed: int) -> Iterator[Damaged]:
    """``count`` damaged modules, the same ones for the same seed."""
    rng = random.Random(seed)
    pool = sources(rng, max(1, min(400, count // len(TREES))))
    for index in range(count):
        tree, path = rng.choice(pool)
        yield damaged(index, tree, path, rng)


# --- running both tools ------------------------------------------------------------------------


@contextmanager
def scratch() -> Iterator[Path]:
    """A directory inside the chroot, so kmod reads the very files lkm reads."""
    where = Path(tempfile.mkdtemp(prefix="damaged-", dir=world.CHROOT / "tmp"))
    try:
        yield where
    finally:
        shutil.rmtree(where)


def _kmod(inside: str, name: str) -> Output:
    done = world.kmod("modinfo", f"{inside}/{name}")
    return placeholder(Output(done.stdout, done.stderr, done.returncode), inside)


def compare(batch: list[Damaged], where: Path) -> list[Difference]:
    """Run kmod (a process per file, two at a time) and lkm (in this process) on each file."""
    inside = "/" + str(where.relative_to(world.CHROOT))
    for case in batch:
        (where / case.name).write_bytes(case.data)
    differences = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        expected = pool.map(lambda case: _kmod(inside, case.name), batch)
        for case, kmod in zip(batch, expected, strict=True):
            lkm = placeholder(run_lkm_inprocess([f"{where}/{case.name}"]), str(where))
            if lkm != kmod:
                differences.append(Difference(case, kmod, lkm))
    for case in batch:
        (where / case.name).unlink()
    return differences


def kmod_crashed(difference: Difference) -> bool:
    """kmod 34 died of a signal (it aborts on some damaged headers) and lkm printed the
    filename and its one-line error instead."""
    lkm = difference.lkm
    return (
        difference.kmod.status < 0
        and lkm.status == 1
        and lkm.stdout == f"filename:       {{dir}}/{difference.case.name}\n".encode()
        and lkm.stderr.startswith(b"modinfo: ERROR: could not get modinfo from ")
        and lkm.stderr.count(b"\n") == 1
    )


def run(count: int, seed: int, batch_size: int = 200) -> tuple[list[Difference], int]:
    """Damage ``count`` modules and compare; return the differences and how many crashed kmod."""
    differences: list[Difference] = []
    crashes = 0
    pending: list[Damaged] = []
    with scratch() as where:
        for case in cases(count, seed):
            pending.append(case)
            if len(pending) == batch_size:
                found = compare(pending, where)
                pending = []
                crashes += sum(kmod_crashed(d) for d in found)
                differences += [d for d in found if not kmod_crashed(d)]
        found = compare(pending, where)
        crashes += sum(kmod_crashed(d) for d in found)
        differences += [d for d in found if not kmod_crashed(d)]
    return differences, crashes


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 1000
    seed = int(argv[1]) if len(argv) > 1 else 0
    differences, crashes = run(count, seed)
    for difference in differences:
        print(difference, end="\n\n")
    print(
        f"{count} damaged modules, seed {seed}: {len(differences)} differ, {crashes} crashed kmod",
        file=sys.stderr,
    )
    return 1 if differences else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
