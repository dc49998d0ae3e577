"""The real world lkm is tested against: Debian kernel trees and the reference kmod 34.

Everything is fetched once and cached outside the repository, under ``$LKM_TEST_CACHE``
(default ``~/.cache/lkm-tests``):

- ``apt/<suite>-<arch>/``: a private apt configuration per Debian suite and architecture, so
  packages of another release or architecture can be downloaded without touching the machine's
  own apt state;
- ``debs/``: the downloaded kernel packages;
- ``chroot/``: a minimal Debian trixie with kmod 34 (``debootstrap``); the trees live inside it at
  ``chroot/trees/<name>/`` so that kmod runs on exactly the files lkm reads, and each tree carries
  the index files kmod 34's depmod made for it.

Run ``python tests/support/world.py prepare`` to fetch everything ahead of a test run; the pytest
fixtures call the same code on demand. Needs root (debootstrap, chroot) and Debian's archive.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import functools
import gzip
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

CACHE = Path(os.environ.get("LKM_TEST_CACHE", "~/.cache/lkm-tests")).expanduser()
CHROOT = CACHE / "chroot"
DEBS = CACHE / "debs"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class TreeSpec:
    """A Debian kernel image package unpacked into a module tree."""

    name: str
    suite: str
    arch: str
    metapackage: str


# The corpus: the two amd64 releases (uncompressed 6.1 under lib/modules, xz 6.12 under
# usr/lib/modules), a 32-bit little-endian tree and a 64-bit big-endian tree.
SPECS = {
    spec.name: spec
    for spec in (
        TreeSpec("bookworm-amd64", "bookworm", "amd64", "linux-image-amd64"),
        TreeSpec("trixie-amd64", "trixie", "amd64", "linux-image-amd64"),
        TreeSpec("trixie-armhf", "trixie", "armhf", "linux-image-armmp"),
        TreeSpec("bookworm-s390x", "bookworm", "s390x", "linux-image-s390x"),
    )
}
# Copies made from a real tree: every module recompressed with zstd (kmod 34 reads it), and a
# sample recompressed with gzip (kmod 34 as built by Debian cannot read gzip, so those are
# compared against the uncompressed originals).
DERIVED = {"trixie-amd64-zstd": "trixie-amd64", "bookworm-amd64-gzip": "bookworm-amd64"}
GZIP_SAMPLE_EVERY = 25
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


@dataclass(frozen=True)
class Tree:
    """A prepared module tree: where lkm sees it and where kmod in the chroot sees it."""

    name: str
    root: Path  # host path of the tree's base directory (what `-b` gets)
    kver: str
    moddir: Path  # host path of <root>/[usr/]lib/modules/<kver>

    @property
    def chroot_root(self) -> str:
        return "/" + str(self.root.relative_to(CHROOT))

    def chroot_path(self, path: Path | str) -> str:
        return "/" + str(Path(path).relative_to(CHROOT))

    def modules(self) -> list[Path]:
        """Every module file of the tree, sorted by path."""
        found = [
            Path(dirpath) / name
            for dirpath, _dirs, files in os.walk(self.moddir)
            for name in files
            if name.endswith(MODULE_SUFFIXES)
        ]
        return sorted(found)


def unavailable(message: str) -> NoReturn:
    """A piece of the test world that is missing: a skip on a developer's machine, a failure on
    CI (which sets ``CI``), where a skipped differential test would stay green unseen."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def log(message: str) -> None:
    print(f"[world] {message}", file=sys.stderr, flush=True)


def run(cmd: Sequence[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], check=True, text=True, capture_output=True, **kwargs
    )  # type: ignore[call-overload, no-any-return]


@contextmanager
def locked() -> Iterator[None]:
    """Serialise preparation between concurrent test processes."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def mirror() -> str:
    for line in SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1]
    raise RuntimeError(f"no URIs: line in {SOURCES}")


def apt_options(suite: str, arch: str) -> list[str]:
    """A private apt configuration for one suite and architecture, updated once."""
    base = CACHE / "apt" / f"{suite}-{arch}"
    parts = base / "sources"
    for sub in ("lists/partial", "archives/partial", "sources"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    opts = [
        "-o", "Dir::Etc::sourcelist=/dev/null",
        "-o", f"Dir::Etc::sourceparts={parts}",
        "-o", f"Dir::State::Lists={base / 'lists'}",
        "-o", f"Dir::Cache::archives={base / 'archives'}",
        "-o", "Dir::State::status=/dev/null",
        "-o", f"APT::Architecture={arch}",
        "-o", f"APT::Architectures={arch}",
    ]  # fmt: skip
    if not (base / ".updated").exists():
        (parts / "debian.sources").write_text(
            f"Types: deb\nURIs: {mirror()}\nSuites: {suite}\nComponents: main\n"
            f"Signed-By: {KEYRING}\n"
        )
        log(f"apt-get update ({suite} {arch})")
        run(["apt-get", *opts, "update"])
        (base / ".updated").touch()
    return opts


def download(spec: TreeSpec, *, retry: bool = True) -> Path:
    """The kernel image package the metapackage currently points at, downloaded once."""
    DEBS.mkdir(parents=True, exist_ok=True)
    opts = apt_options(spec.suite, spec.arch)
    depends = run(["apt-cache", *opts, "depends", spec.metapackage]).stdout
    match = re.search(r"Depends: (linux-image-\S+)", depends)
    if match is None:
        raise RuntimeError(f"{spec.metapackage} ({spec.suite} {spec.arch}) names no kernel")
    package = match.group(1).split(":")[0]
    found = sorted(DEBS.glob(f"{package}_*_{spec.arch}.deb"))
    if found:
        return found[-1]
    log(f"downloading {package} ({spec.suite} {spec.arch})")
    try:
        run(["apt-get", *opts, "download", f"{package}:{spec.arch}"], cwd=DEBS)
    except subprocess.CalledProcessError:
        if not retry:
            raise
        # Lists kept from an earlier run may name a package the archive has dropped since.
        (CACHE / "apt" / f"{spec.suite}-{spec.arch}" / ".updated").unlink()
        return download(spec, retry=False)
    found = sorted(DEBS.glob(f"{package}_*_{spec.arch}.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} left no file in {DEBS}")
    return found[-1]


KMOD_VERSION = "34"


@functools.cache
def check_kmod_version() -> None:
    """The reference is kmod 34 and nothing else: a newer trixie kmod would move every
    expectation of the differential tests without saying so. Checked once per process."""
    first = kmod("kmod", "-V", check=True).stdout.decode(errors="replace").partition("\n")[0]
    if re.fullmatch(rf"kmod version {KMOD_VERSION}(\.\d+)*", first) is None:
        raise RuntimeError(f"the chroot's kmod is not kmod {KMOD_VERSION}: kmod -V says {first!r}")


def ensure_chroot() -> None:
    if not (CHROOT / ".ready").exists():
        if CHROOT.exists():
            shutil.rmtree(CHROOT)
        log("debootstrap trixie with kmod 34")
        run(
            [
                "debootstrap", "--variant=minbase", "--include=kmod,xz-utils,zstd,openssl",
                "trixie", CHROOT, mirror(),
            ]
        )  # fmt: skip
        check_kmod_version()
        (CHROOT / ".ready").touch()
    check_kmod_version()


def kmod(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run a kmod 34 tool inside the chroot; outputs are bytes, exactly as printed."""
    return subprocess.run(
        ["chroot", str(CHROOT), *[str(a) for a in args]], capture_output=True, check=check
    )


def kmod_liblzma() -> Path | None:
    """The chroot's liblzma, the one kmod 34 decompresses with (its file name ends in its
    version); None if there is none."""
    found = sorted(CHROOT.glob("usr/lib/*/liblzma.so.5.*"))
    return found[-1] if found else None


def locate_moddir(root: Path) -> Path:
    for base in (root / "lib/modules", root / "usr/lib/modules"):
        if base.is_dir():
            kvers = [p for p in base.iterdir() if p.is_dir()]
            if len(kvers) == 1:
                return kvers[0]
    raise RuntimeError(f"no single lib/modules/<kver> under {root}")


def _tree(name: str, root: Path) -> Tree:
    moddir = locate_moddir(root)
    return Tree(name=name, root=root, kver=moddir.name, moddir=moddir)


def _depmod(tree: Tree) -> None:
    log(f"kmod 34 depmod on {tree.name}")
    kmod("depmod", "-b", tree.chroot_root, tree.kver, check=True)


def unpack(spec: TreeSpec) -> Tree:
    root = CHROOT / "trees" / spec.name
    if (root / ".ready").exists():
        return _tree(spec.name, root)
    deb = download(spec)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log(f"unpacking {deb.name}")
    run(["dpkg-deb", "-x", deb, root])
    # Only the module tree and System.map matter; the kernel image and docs are dead weight.
    for sub in ("usr/share", "boot/vmlinuz", "boot/vmlinux"):
        for path in root.glob(sub + "*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    # kmod 34 looks only under lib/modules; a merged-/usr system reaches usr/lib through the
    # /lib symlink, so the tree gets one too.
    if (root / "usr/lib/modules").is_dir() and not (root / "lib").exists():
        (root / "lib").symlink_to("usr/lib")
    tree = _tree(spec.name, root)
    _depmod(tree)
    (root / ".ready").touch()
    return tree


def _recompress_zstd(path: Path) -> None:
    import zstandard

    data = lzma.decompress(path.read_bytes())
    target = path.with_name(path.name.removesuffix(".xz") + ".zst")
    target.write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
    path.unlink()


def _recompress_gzip(path: Path) -> None:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    path.unlink()


def derive(name: str) -> Tree:
    """A recompressed copy of a real tree, with kmod's index files made afresh."""
    source = unpack(SPECS[DERIVED[name]])
    root = CHROOT / "trees" / name
    if (root / ".ready").exists():
        return _tree(name, root)
    if root.exists():
        shutil.rmtree(root)
    log(f"making {name} from {source.name}")
    shutil.copytree(source.root, root, symlinks=True)
    tree = _tree(name, root)
    for index in tree.moddir.glob("modules.*"):
        if index.name not in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            index.unlink()
    # modules.order names modules without a compression suffix: it needs no rewriting.
    if name.endswith("-zstd"):
        with concurrent.futures.ProcessPoolExecutor() as pool:
            list(pool.map(_recompress_zstd, tree.modules(), chunksize=64))
    else:
        for path in tree.modules()[::GZIP_SAMPLE_EVERY]:
            _recompress_gzip(path)
    _depmod(tree)
    (root / ".ready").touch()
    return tree


def tree(name: str) -> Tree:
    """A prepared tree by name, fetching and building whatever is missing."""
    with locked():
        ensure_chroot()
        return derive(name) if name in DERIVED else unpack(SPECS[name])


def kernel_image(name: str) -> Path:
    """The vmlinuz of a tree's Debian kernel package, unpacked once into the VM cache."""
    tree_ = tree(name)
    target = CACHE / "vm" / name
    vmlinuz = target / f"vmlinuz-{tree_.kver}"
    if not vmlinuz.exists():
        target.mkdir(parents=True, exist_ok=True)
        deb = download(SPECS[name])
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            run(["dpkg-deb", "-x", deb, tmp])
            shutil.copy(Path(tmp) / "boot" / vmlinuz.name, vmlinuz)
    return vmlinuz


def uapi_headers() -> Path:
    """``usr/include`` of trixie's ``linux-libc-dev``: the kernel's user-space headers for every
    architecture Debian builds for (one ``<triplet>/asm`` directory each)."""
    target = CACHE / "uapi"
    with locked():
        if not (target / ".ready").exists():
            DEBS.mkdir(parents=True, exist_ok=True)
            log("downloading linux-libc-dev (trixie)")
            run(
                ["apt-get", *apt_options("trixie", "amd64"), "download", "linux-libc-dev"], cwd=DEBS
            )
            deb = sorted(DEBS.glob("linux-libc-dev_*.deb"))[-1]
            if target.exists():
                shutil.rmtree(target)
            run(["dpkg-deb", "-x", deb, target])
            (target / ".ready").touch()
    return target / "usr" / "include"


ALL_TREES = (*SPECS, *DERIVED)


def main(argv: Sequence[str]) -> int:
    if argv[:1] != ["prepare"]:
        print("usage: support/world.py prepare [TREE...]", file=sys.stderr)
        return 2
    for name in argv[1:] or ALL_TREES:
        prepared = tree(name)
        log(f"{prepared.name}: {prepared.kver}, {len(prepared.modules())} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
