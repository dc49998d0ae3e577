"""depmod's module cache on real modules: after every step of a random sequence of modules
added, removed, changed and touched (fixed seed), a run with the cache writes exactly the
files of a full run and of kmod 34's depmod."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lkm.depmod.cache import CACHE_NAME, load
from support import world
from support.depmod_trees import KEPT, OUTPUTS

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-depmod-cache-tests"


def _lkm_depmod(root: Path, kver: str, *options: str, cache: bool) -> None:
    env = {**os.environ, "LKM_DEPMOD_CACHE": "1" if cache else "0"}
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "depmod", *options, "-b", str(root), kver],
        capture_output=True, env=env, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def _outputs(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in OUTPUTS}


def _replace(path: Path, data: bytes) -> None:
    """New contents by a new file renamed over the old: the trees' files may be hard links to
    the shared test tree, which must not change."""
    spare = path.with_name(path.name + ".new")
    spare.write_bytes(data)
    os.rename(spare, path)


def _step(rng: random.Random, moddir: Path, present: list[str], spares: list[Path]) -> str:
    action = rng.choice(("add", "remove", "change", "touch", "same"))
    relative = ""
    if action == "add" and spares:
        source = spares.pop(rng.randrange(len(spares)))
        relative = f"kernel/added/{source.name}"
        (moddir / relative).parent.mkdir(parents=True, exist_ok=True)
        _replace(moddir / relative, source.read_bytes())
        present.append(relative)
    elif action == "remove":
        relative = present.pop(rng.randrange(len(present)))
        (moddir / relative).unlink()
    elif action == "change":
        # Another module's contents (another suffix would be another file): same name, new
        # exports, imports and aliases.
        relative = rng.choice(present)
        suffix = relative[relative.rfind(".ko") :]
        others = [p for p in spares if p.name.endswith(suffix)]
        if others:
            _replace(moddir / relative, rng.choice(others).read_bytes())
    elif action == "touch":
        relative = rng.choice(present)
        _replace(moddir / relative, (moddir / relative).read_bytes())
        os.utime(moddir / relative, ns=(0, rng.randrange(10**18)))
    else:  # the same bytes in a new file with the old times: only the inode differs
        relative = rng.choice(present)
        old = (moddir / relative).stat()
        _replace(moddir / relative, (moddir / relative).read_bytes())
        os.utime(moddir / relative, ns=(old.st_atime_ns, old.st_mtime_ns))
    return f"{action} {relative}"


def _check(root: Path, moddir: Path, kver: str, label: str) -> None:
    _lkm_depmod(root, kver, cache=True)
    ours = _outputs(moddir)
    full = root.parent / (root.name + "-full")
    kmod_out = root.parent / (root.name + "-kmod")
    relative = moddir.relative_to(root)
    for out in (full, kmod_out):
        shutil.rmtree(out, ignore_errors=True)
        (out / relative).mkdir(parents=True)
    _lkm_depmod(root, kver, "-o", str(full), cache=False)
    assert not (full / relative / CACHE_NAME).exists()
    done = world.kmod(
        "depmod", "-b", "/" + str(root.relative_to(world.CHROOT)),
        "-o", "/" + str(kmod_out.relative_to(world.CHROOT)), kver,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    theirs, full_files = _outputs(kmod_out / relative), _outputs(full / relative)
    for name in OUTPUTS:
        assert ours[name] == full_files[name], f"{label}: {name} differs from a full run"
        assert ours[name] == theirs[name], f"{label}: {name} differs from kmod 34's"


def _slice(name: str, size: int, seed: int) -> tuple[Path, Path, str, list[str], list[Path]]:
    """``size`` modules of a real tree (hard links) with its modules.order and builtin files,
    and spare modules of the same tree not among them."""
    tree = world.tree(name)
    root = SCRATCH / f"{name}-{size}"
    for leftover in (
        root,
        root.parent / (root.name + "-full"),
        root.parent / (root.name + "-kmod"),
    ):
        shutil.rmtree(leftover, ignore_errors=True)
    moddir = root / "lib/modules" / tree.kver
    moddir.mkdir(parents=True)
    rng = random.Random(seed)
    modules = sorted(tree.modules())
    rng.shuffle(modules)
    chosen, spares = modules[:size], modules[size : size + 200]
    present = []
    for path in chosen:
        relative = str(path.relative_to(tree.moddir))
        (moddir / relative).parent.mkdir(parents=True, exist_ok=True)
        os.link(path, moddir / relative)
        present.append(relative)
    for kept in KEPT:
        shutil.copyfile(tree.moddir / kept, moddir / kept)
    return root, moddir, tree.kver, present, spares


@pytest.mark.parametrize(("name", "size", "steps"), [("trixie-amd64", 400, 14),
                                                      ("trixie-amd64", 0, 3)])  # fmt: skip
def test_random_changes_between_runs(name: str, size: int, steps: int) -> None:
    """``size`` 0: the whole tree."""
    SCRATCH.mkdir(exist_ok=True)
    total = len(world.tree(name).modules())
    root, moddir, kver, present, spares = _slice(name, size or total - 200, seed=size + 12)
    try:
        _check(root, moddir, kver, "first run")
        rng = random.Random(size + 34)
        for number in range(steps):
            done = [_step(rng, moddir, present, spares) for _ in range(rng.randint(1, 3))]
            _check(root, moddir, kver, f"step {number}: {', '.join(done)}")
        # The cache was used: it holds an entry for the files older than its racy window.
        assert len(load(str(moddir / CACHE_NAME)).entries) > len(present) // 2
    finally:
        for leftover in (root, root.parent / (root.name + "-full"),
                         root.parent / (root.name + "-kmod")):  # fmt: skip
            shutil.rmtree(leftover, ignore_errors=True)
