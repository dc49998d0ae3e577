"""modprobe on broken module directories and odd names, lkm against kmod 34.

- Each binary index in turn missing, empty, cut short, with a bad magic, an older, newer or
  other-minor version, or a root reference pointing nowhere; then several at once, which
  shows the order kmod opens them in and where it stops (``load_indexes``).
- ``-S`` and ``-d`` naming nothing usable.
- Names holding ``/`` or ``..``: looked up as names, never opened as files, unless they are
  explicit paths (``/...`` or ``./...``).

The module directory is a copy of the trixie tree's files, its subdirectories linked back
(relative links, so they resolve both inside the chroot and outside), made under
``scratch-resolve2``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from lkm.index import Index
from support import modprobe_world, world
from support.differential import COMPARED, HASH_SEED, Result, assert_same, kmod, lkm
from support.modprobe_world import TREE, device_strings, make_state, run_kmod, run_lkm

pytestmark = pytest.mark.slow

SCRATCH = "scratch-resolve2"
INDEXES = (
    "modules.dep.bin",
    "modules.alias.bin",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
)


def _set(at: int, raw: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data[:at] + raw + data[at + len(raw) :]


CORRUPTIONS: dict[str, Callable[[bytes], bytes] | None] = {
    "missing": None,
    "empty": lambda data: b"",
    "short-header": lambda data: data[:7],
    "half": lambda data: data[: len(data) // 2],
    "magic": _set(0, b"\0\0\0\0"),
    "version-0": _set(4, b"\0\0\0\7"),
    "version-1": _set(4, b"\0\1\0\1"),
    "version-minor": _set(4, b"\0\2\0\7"),
    "version-newer": _set(4, b"\0\3\0\1"),
    "root-nowhere": _set(8, b"\x7f\xff\xff\xff"),
    "root-no-flags": _set(8, b"\0\0\0\x0c"),
}


def _copy_tree(name: str) -> tuple[Path, Path]:
    """A fresh ``<scratch>/<name>`` with root/lib/modules/<kver> and an empty conf dir."""
    tree = world.tree(TREE)
    base = world.CHROOT / SCRATCH / name
    if base.exists():
        shutil.rmtree(base)
    moddir = base / "root/lib/modules" / tree.kver
    moddir.mkdir(parents=True)
    for entry in tree.moddir.iterdir():
        if entry.is_file():
            shutil.copy(entry, moddir / entry.name)
        elif entry.is_dir():
            (moddir / entry.name).symlink_to(os.path.relpath(entry, moddir))
    (base / "conf").mkdir()
    return base, moddir


def _args(base: Path) -> list[str]:
    rel = f"/{SCRATCH}/{base.name}"
    return ["-d", f"{rel}/root", "-S", world.tree(TREE).kver, "-C", f"{rel}/conf"]


def _first_key(moddir: Path, index: str, want: Callable[[str, str], bool]) -> str:
    with Index.open(moddir / index) as opened:
        return next(k for k, values in opened.items() if want(k, values[0].value))


@pytest.fixture(scope="module")
def queries() -> list[str]:
    """One name for each lookup stage: a module with dependencies, a device string, a
    symbol, a builtin module, a builtin alias, and a name nothing knows."""
    tree = world.tree(TREE)
    moddir = tree.moddir
    return [
        _first_key(moddir, "modules.dep.bin", lambda k, v: v.count(" ") >= 2),
        device_strings(tree)[1000],
        _first_key(moddir, "modules.symbols.bin", lambda k, v: True),
        _first_key(moddir, "modules.builtin.bin", lambda k, v: True),
        _first_key(moddir, "modules.builtin.alias.bin", lambda k, v: True),
        "no-such-module",
    ]


def _compare(base: Path, args: list[str], label: str, case: str = "") -> None:
    state = base / ".state"
    if not state.exists():
        make_state(base)
    expected = run_kmod([*_args(base), *args], state)
    try:
        assert_same(expected, run_lkm([*_args(base), *args], state))
    except AssertionError as err:
        raise AssertionError(f"{case} {args[:3]}: {err}") from None
    COMPARED[label] += 1


def _corrupt(moddir: Path, index: str, how: str, original: bytes) -> None:
    path = moddir / index
    change = CORRUPTIONS[how]
    if change is None:
        path.unlink()
    else:
        path.write_bytes(change(original))


@pytest.mark.parametrize("index", INDEXES)
def test_each_index_broken_in_turn(index: str, queries: list[str]) -> None:
    base, moddir = _copy_tree(f"bad-{index}")
    original = (moddir / index).read_bytes()
    for how in CORRUPTIONS:
        (moddir / index).write_bytes(original)
        _corrupt(moddir, index, how, original)
        for mode in (["-R"], ["-D"], ["-n", "-v"]):
            _compare(base, [*mode, "-a", *queries], "modprobe: a broken index, every stage", how)
        if how in ("magic", "version-0"):
            _compare(base, ["-q", "-R", "-a", *queries], "modprobe: a broken index, every stage")
            _compare(base, ["-c"], "modprobe: a broken index, every stage")
    shutil.rmtree(base)


# Several indexes broken at once: which kmod reports shows its order and where it stops.
TOGETHER = {
    "three-bad-magics": {
        "modules.symbols.bin": b"\xb0\x07\xf4\x03",
        "modules.builtin.alias.bin": b"\xb0\x07\xf4\x02",
        "modules.builtin.bin": b"\xb0\x07\xf4\x01",
    },
    "builtin-ones": {
        "modules.builtin.alias.bin": b"\xb0\x07\xf4\x02",
        "modules.builtin.bin": b"\xb0\x07\xf4\x01",
    },
    "all-bad-magics": {name: b"\xb0\x07\xf4\x58" for name in INDEXES},
    "missing-dep-first": {"modules.dep.bin": None, "modules.alias.bin": b"\xb0\x07\xf4\x02"},
    "empty-dep-first": {"modules.dep.bin": b"", "modules.alias.bin": b"\xb0\x07\xf4\x02"},
}


@pytest.mark.parametrize("case", TOGETHER)
def test_several_indexes_broken(case: str, queries: list[str]) -> None:
    base, moddir = _copy_tree(f"bad-{case}")
    for index, magic in TOGETHER[case].items():
        path = moddir / index
        if magic is None:
            path.unlink()
        elif magic == b"":
            path.write_bytes(b"")
        else:
            path.write_bytes(magic + path.read_bytes()[4:])
    for mode in (["-R"], ["-D"], ["-c"]):
        args = mode if mode == ["-c"] else [*mode, "-a", *queries]
        _compare(base, args, "modprobe: several broken indexes")
    shutil.rmtree(base)


def _odd_names(moddir: Path) -> Iterator[str]:
    tree = world.tree(TREE)
    some = _first_key(tree.moddir, "modules.dep.bin", lambda k, v: v.count(" ") >= 2)
    relative = _first_key(tree.moddir, "modules.dep.bin", lambda k, v: k == some)
    with Index.open(tree.moddir / "modules.dep.bin") as opened:
        path = opened.lookup(relative)[0].value.partition(":")[0]
    yield path  # kernel/...: relative to the module directory, but not ./
    yield path.removesuffix(".ko.xz")
    yield f"../{tree.kver}/{path}"
    yield "../../../../etc/passwd"
    yield f"{some}/../{some}"
    yield f"./{some}"  # an explicit path, relative to the working directory: missing
    yield "/etc/hostname"  # explicit and present: taken as the module file
    yield f"{moddir}/{path}"
    yield "symbol:../x"
    yield "a*b/../c"


def test_names_with_slashes_and_dots(queries: list[str]) -> None:
    base, moddir = _copy_tree("odd-names")
    rel_moddir = Path(str(moddir).removeprefix(str(world.CHROOT)))
    for name in _odd_names(rel_moddir):
        for mode in (["-R"], ["-D"], ["-n", "-v"], ["-r", "-n", "-v"]):
            _compare(base, [*mode, name], "modprobe: names with / and ..")
    shutil.rmtree(base)


def test_set_version_and_dirname_errors() -> None:
    tree = world.tree(TREE)
    base, _ = _copy_tree("bad-dirs")
    (base / "a-file").write_text("")
    rel = f"/{SCRATCH}/{base.name}"
    cases = [
        ["-d", f"{rel}/root", "-S", "0.0-none"],
        ["-d", f"{rel}/nowhere", "-S", tree.kver],
        ["-d", f"{rel}/a-file", "-S", tree.kver],
        ["-d", f"{rel}/root", "-S", f"../modules/{tree.kver}"],
        ["-d", f"{rel}/root", "-S", ""],
        ["-d", "", "-S", "0.0-none"],
    ]
    state = make_state(base)
    for where in cases:
        for mode in (["-R", "aes"], ["-D", "aes"], ["-n", "-v", "aes"], ["-c"]):
            args = [*where, "-C", f"{rel}/conf", *mode]
            expected = run_kmod(args, state)
            assert_same(expected, run_lkm(args, state))
            COMPARED["modprobe: -S and -d naming nothing usable"] += 1
    shutil.rmtree(base)


# -- an index that is not a regular file --------------------------------------------------------

# Shell lines run before the tool: the descriptors it starts with decide the number kmod prints
# in its mmap error (the lowest free one when the index is opened).
DESCRIPTORS = {
    "standard": "",
    "3 and 4 taken": "exec 3</dev/null 4</dev/null",
    "stdin closed": "exec 0<&-",
}


def _run(
    who: str, args: list[str], state: Path, descriptors: str = "", timeout: float = 300
) -> Result:
    """run_kmod / run_lkm with ``descriptors`` applied first, and a time limit (TimeoutExpired
    when the tool blocks)."""
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    command += [f"{descriptors}\n{modprobe_world._SCRIPT}", str(world.CHROOT), who, str(state)]
    if who == "kmod":
        command += args
    else:
        command += [sys.executable, "-m", "lkm", "modprobe", *modprobe_world.host_args(args)]
    env = {**modprobe_world._env(None), "PYTHONHASHSEED": HASH_SEED}
    done = subprocess.run(command, capture_output=True, check=False, env=env, timeout=timeout)
    assert done.returncode != 99, done.stderr
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def _modinfo_both(base: Path, names: list[str]) -> None:
    """modinfo looks the indexes up lazily and reports nothing of one it cannot map."""
    rel = f"/{SCRATCH}/{base.name}/root"
    kver = world.tree(TREE).kver
    for options in ([], ["-F", "filename"]):
        args = [*options, "-b", rel, "-k", kver, *names]
        expected = kmod("modinfo", *args)
        actual = lkm("modinfo", *modprobe_world.host_args(args))
        assert_same(expected, actual)
        COMPARED["modinfo: an index that is not a regular file"] += 1


def _assert_blocks(run: Callable[[], object]) -> None:
    """``run`` is still waiting when its time is up (and was killed); else what it gave."""
    try:
        done = run()
    except subprocess.TimeoutExpired:
        return
    raise AssertionError(f"expected to block, but it ended: {done!r}")


@pytest.mark.parametrize("index", INDEXES)
def test_index_is_a_directory(index: str, queries: list[str]) -> None:
    """An index path that opens but cannot be mapped: kmod's ``mmap(NULL, <size>, PROT_READ,
    MAP_PRIVATE, <fd>, 0): No such device`` (the directory's st_size, the lowest free
    descriptor), unless -q; then as if the index were missing."""
    base, moddir = _copy_tree(f"dir-{index}")
    state = make_state(base)
    path = moddir / index
    path.unlink()
    for content in ("empty", "with an entry"):
        if content == "with an entry":
            (path / "entry").mkdir()
        else:
            path.mkdir()
        for name, descriptors in DESCRIPTORS.items():
            modes = [["-R", "-a", *queries], ["-D", "-a", *queries], ["-n", "-v", "-a", *queries],
                     ["-q", "-R", "-a", *queries], ["-c"]]  # fmt: skip
            for mode in modes if name == "standard" else modes[:1]:
                args = [*_args(base), *mode]
                expected = _run("kmod", args, state, descriptors)
                assert_same(expected, _run("lkm", args, state, descriptors))
                if mode[0] != "-q":
                    assert b"mmap(NULL, " in expected.stderr
                COMPARED["modprobe: an index that is not a regular file"] += 1
        _modinfo_both(base, queries[:-1])
    shutil.rmtree(base)


def test_alias_index_is_a_fifo_or_a_device(queries: list[str]) -> None:
    """modules.alias.bin as a FIFO: kmod's open blocks until a writer comes, and so does
    lkm's, for modprobe and modinfo alike. With a writer holding it open, fstat says 0 bytes,
    so the index fails to load (silently) and a name modules.dep.bin knows is found by both;
    but kmod then reads the FIFO itself on every alias lookup and blocks there, where lkm,
    which counts the index unreadable once, answers "not found" (pinned difference: matching
    it would mean hanging on purpose). As /dev/null: an empty index for both."""
    base, moddir = _copy_tree("fifo")
    state = make_state(base)
    path = moddir / "modules.alias.bin"
    path.unlink()
    os.mkfifo(path)
    name, device = queries[0], queries[1]
    for who in ("kmod", "lkm"):
        _assert_blocks(partial(_run, who, [*_args(base), "-R", device], state, timeout=3))
    modinfo = ["-b", f"/{SCRATCH}/{base.name}/root", "-k", world.tree(TREE).kver, device]
    for command in (
        ["chroot", str(world.CHROOT), "modinfo", *modinfo],
        [sys.executable, "-m", "lkm", "modinfo", *modprobe_world.host_args(modinfo)],
    ):
        _assert_blocks(partial(subprocess.run, command, capture_output=True, timeout=3))
    COMPARED["modprobe: an index that is not a regular file"] += 2
    writer = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        for mode in (["-R", name], ["-D", name]):
            expected = _run("kmod", [*_args(base), *mode], state, timeout=60)
            assert_same(expected, _run("lkm", [*_args(base), *mode], state, timeout=60))
            COMPARED["modprobe: an index that is not a regular file"] += 1
        _assert_blocks(lambda: _run("kmod", [*_args(base), "-R", device], state, timeout=3))
        actual = _run("lkm", [*_args(base), "-R", device], state, timeout=60)
        assert actual.status == 1
        assert actual.stderr.startswith(f"modprobe: FATAL: Module {device} not found".encode())
    finally:
        os.close(writer)
    path.unlink()
    path.symlink_to("/dev/null")
    for mode in (["-R", "-a", *queries], ["-c"]):
        expected = _run("kmod", [*_args(base), *mode], state)
        assert_same(expected, _run("lkm", [*_args(base), *mode], state))
        COMPARED["modprobe: an index that is not a regular file"] += 1
    _modinfo_both(base, queries[:-1])
    shutil.rmtree(base)
