"""``python -m fuzz.corpus [--world DIR] [--out DIR]``: seed corpora from real inputs.

Reads the test world (``$LKM_TEST_CACHE``, default ``~/.cache/lkm-tests``: real Debian module
trees of four architectures, their kmod-made indexes, kmod 34's chroot) and this system's own
configuration, and writes one directory of inputs per target under ``--out`` (default
``fuzz/corpus``). Inputs are kept small, so that each execution is fast: the smallest modules of
each tree, signature tails, small indexes (the real small ones, and real keys re-indexed by
lkm's writer in small sets), configuration files and kernel command lines as found.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

from lkm.compress import decompress
from lkm.errors import LkmError

HERE = Path(__file__).resolve().parent
WORLD = Path(os.environ.get("LKM_TEST_CACHE", "~/.cache/lkm-tests")).expanduser()
MODULES_PER_TREE = 25
MODULE_LIMIT = 16 * 1024  # bytes of ELF, decompressed
SYSTEM_CONFIG = ("etc", "usr/lib", "lib", "run", "usr/local/lib")


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file()) if root.is_dir() else []


def _walk(root: Path, wanted: str, parent: str | None = None) -> list[Path]:
    """Files named ``wanted*`` (in a directory named ``parent``) below ``root``; unreadable
    corners (some test trees nest past PATH_MAX on purpose) are skipped."""
    found = []
    for directory, _, names in os.walk(root):
        if parent is None or os.path.basename(directory) == parent:
            found += [Path(directory, n) for n in names if n.startswith(wanted)]
    return sorted(found)


def _trees(world: Path) -> list[Path]:
    """The module directories of the world's trees (``.../modules/RELEASE``)."""
    trees = world / "chroot" / "trees"
    found = []
    for tree in sorted(trees.iterdir()) if trees.is_dir() else []:
        for base in ("lib/modules", "usr/lib/modules"):
            found += sorted(p for p in (tree / base).glob("*") if (p / "modules.dep").is_file())
    return found


def _smallest_modules(moddir: Path) -> list[Path]:
    modules = [p for p in moddir.rglob("*.ko*") if p.is_file()]
    modules.sort(key=lambda p: (p.stat().st_size, str(p)))
    return modules[:MODULES_PER_TREE]


def _signature_tail(data: bytes) -> bytes | None:
    from lkm.signature import MAGIC, read_trailer

    if not data.endswith(MAGIC):
        return None
    with contextlib.suppress(LkmError):
        trailer = read_trailer(data)
        # A little content before the blob keeps the lengths' check meaningful.
        return data[max(0, trailer.blob_start - 64) :]
    return None


def _small_indexes(moddir: Path, rng: random.Random) -> Iterator[bytes]:
    from lkm.index import write_index

    for name in ("modules.builtin.bin", "modules.builtin.alias.bin"):
        path = moddir / name
        if path.is_file() and path.stat().st_size <= MODULE_LIMIT:
            yield path.read_bytes()
    # Real keys and values (aliases with their glob patterns, dependencies, symbols), a few
    # dozen at a time, through lkm's writer: real shapes at a size that runs fast.
    for text, split in (("modules.alias", 1), ("modules.dep", 0), ("modules.symbols", 1)):
        path = moddir / text
        if not path.is_file():
            continue
        lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
        for _ in range(2):
            entries = []
            for priority, line in enumerate(rng.sample(lines, min(40, len(lines)))):
                if split:
                    _, key, value = [*line.split(None, 2), "", ""][:3]
                else:
                    key, _, value = line.partition(":")
                    value = f"{key}:{value}"
                entries.append((key, value, priority))
            yield write_index(entries)


def _config_files(world: Path, kind: str) -> Iterator[Path]:
    chroot = world / "chroot"
    roots = [chroot, Path("/")]
    for root in roots:
        for base in SYSTEM_CONFIG:
            yield from _files(root / base / kind, "*.conf")
    if kind == "modprobe.d":
        for scratch in ("scratch-config", "scratch-drivers"):
            yield from _walk(chroot / scratch, "", "modprobe.d")


def _cmdlines(world: Path) -> Iterator[bytes]:
    proc = Path("/proc/cmdline")
    if proc.is_file():
        yield proc.read_bytes()
    chroot = world / "chroot"
    paths = [
        *_walk(chroot / "scratch-resolve", "cmdline"),
        *_walk(chroot / "scratch-kernel", "cmdline"),
    ]
    for path in paths:
        yield path.read_bytes()


def _certificates(world: Path) -> Iterator[bytes]:
    from lkm.certificates import load_file

    pems = []
    for root in (world / "chroot", Path("/")):
        pems += _files(root / "usr/share/ca-certificates", "*/*.crt")
    for number, path in enumerate(pems[:30]):
        data = path.read_bytes()
        if number % 2:
            yield data  # PEM
        else:
            with contextlib.suppress(LkmError):
                yield from (cert.der for cert in load_file(data))


def generate(world: Path, out: Path, seed: int = 1) -> dict[str, int]:
    """Write the corpora; return the number of inputs of each target."""
    rng = random.Random(seed)
    corpora: dict[str, dict[str, bytes]] = {}

    def add(target: str, data: bytes) -> None:
        if data:
            corpora.setdefault(target, {})[hashlib.sha1(data).hexdigest()] = data

    for moddir in _trees(world):
        for path in _smallest_modules(moddir):
            data = path.read_bytes()
            try:
                raw = decompress(data)
            except LkmError:
                continue
            if len(raw) > MODULE_LIMIT:
                continue
            add("module", data)
            add("elf", raw)
            add("modinfo", raw)
            if data is not raw:
                add("decompress", data)
            tail = _signature_tail(raw)
            if tail is not None:
                add("signature", tail)
                from lkm.signature import read_trailer

                trailer = read_trailer(raw)
                add("pkcs7", raw[trailer.blob_start : trailer.struct_start])
        for index in _small_indexes(moddir, rng):
            add("index", index)
        for name in ("modules.softdep", "modules.weakdep"):
            if (moddir / name).is_file():
                add("modprobe.d", (moddir / name).read_bytes())
    for kind, target in (("modprobe.d", "modprobe.d"), ("depmod.d", "depmod.d"),
                         ("modules-load.d", "modules-load.d")):  # fmt: skip
        for path in _config_files(world, kind):
            add(target, path.read_bytes())
    man = world / "chroot" / "usr/share/man/man5/depmod.d.5.gz"
    if man.is_file():
        # The manual's example lines, as a file each.
        words = ("search ", "override ", "external ", "exclude ")
        for line in gzip.decompress(man.read_bytes()).decode(errors="replace").splitlines():
            if line.startswith(words):
                add("depmod.d", line.encode() + b"\n")
    for cmdline in _cmdlines(world):
        add("cmdline", cmdline)
    for cert in _certificates(world):
        add("certificate", cert)
    counts = {}
    for target, inputs in sorted(corpora.items()):
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in inputs.items():
            (directory / name).write_bytes(data)
        counts[target] = len(inputs)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fuzz.corpus", description=__doc__)
    parser.add_argument("--world", default=str(WORLD), help="the test world's cache")
    parser.add_argument("--out", default=str(HERE / "corpus"), help="where the corpora go")
    args = parser.parse_args()
    for target, count in generate(Path(args.world), Path(args.out)).items():
        size = sum(p.stat().st_size for p in (Path(args.out) / target).iterdir())
        print(f"{target}: {count} inputs, {size} bytes")


if __name__ == "__main__":
    main()
