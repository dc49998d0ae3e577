"""depmod against kmod 34 on bad input and a bad place to write: symlinks that lead nowhere,
module files named on the command line that cannot be taken, missing modules.order and builtin
files, ``-A``, ``-w``, an output directory to create, a read-only one, a full one, an external
directory, and lkm killed while it writes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import world
from support.depmod_trees import OUTPUTS, duplicates_tree, module_elf, write_tree
from support.differential import COMPARED, HASH_SEED, Result, assert_same, kmod, lkm

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-depmod-bad"
RELEASE = "1.0.0"


def _chroot_path(path: Path) -> str:
    return "/" + str(path.relative_to(world.CHROOT))


def _both(args: list[str], *, files: tuple[Path, Path] | None = None) -> Result:
    """kmod and lkm with the same arguments (chroot paths for kmod, host paths for lkm); with
    ``files`` (kmod's and lkm's module directories) every output file is compared too."""
    host = [str(world.CHROOT) + a if a.startswith("/scratch-") else a for a in args]
    expected = kmod("depmod", *args)
    assert_same(expected, lkm("depmod", *host))
    if files is not None:
        theirs, ours = files
        for output in OUTPUTS:
            assert (ours / output).read_bytes() == (theirs / output).read_bytes(), output
    COMPARED["depmod: bad-input command lines"] += 1
    return expected


def _copy_small(name: str, source: Path = SCRATCH / "base") -> Path:
    root = SCRATCH / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(source, root, symlinks=True)
    return root


@pytest.fixture(scope="module", autouse=True)
def base() -> Path:
    """Five real modules with a dependency chain and three broken files; no modules.order."""
    source = world.tree("bookworm-amd64")
    root = SCRATCH / "base"
    shutil.rmtree(root, ignore_errors=True)
    moddir = root / "lib/modules" / RELEASE
    for rel in (
        "kernel/drivers/net/mii.ko", "kernel/drivers/net/ethernet/3com/3c59x.ko",
        "kernel/crypto/twofish_common.ko", "kernel/arch/x86/crypto/twofish-x86_64.ko",
        "kernel/arch/x86/crypto/twofish-x86_64-3way.ko",
    ):  # fmt: skip
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.moddir / rel, moddir / rel)
    (moddir / "kernel/bad1.ko").write_bytes(b"garbage\n")
    (moddir / "kernel/empty.ko").write_bytes(b"")
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        shutil.copy(source.moddir / name, moddir / name)
    return root


def _moddir(root: Path) -> Path:
    return root / "lib/modules" / RELEASE


def test_output_directory_is_created() -> None:
    """kmod makes the missing directories below -o (mode 755) and writes there."""
    outs = [SCRATCH / "made-kmod", SCRATCH / "made-lkm"]
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    base = _chroot_path(SCRATCH / "base")
    expected = kmod("depmod", "-b", base, "-o", _chroot_path(outs[0]), RELEASE)
    actual = lkm("depmod", "-b", str(SCRATCH / "base"), "-o", str(outs[1]), RELEASE)
    assert_same(expected, actual)
    for output in OUTPUTS:
        assert (_moddir(outs[1]) / output).read_bytes() == (_moddir(outs[0]) / output).read_bytes()
    assert (_moddir(outs[1]).stat().st_mode & 0o777) == 0o755
    COMPARED["depmod: bad-input command lines"] += 1


def test_symlinks_that_cannot_be_followed() -> None:
    """Dangling and looping symlinks: kmod's fstatat errors (in walking order, with the
    directory's descriptor number); symlinked files and directories are followed; dotfiles
    are modules too; build and source at the top are skipped."""
    root = _copy_small("symlinks")
    moddir = _moddir(root)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(moddir / "kernel/drivers/net/mii.ko", elsewhere / "linked.ko")
    (moddir / "kernel/a/b").mkdir(parents=True)
    for link, target in {
        "top.ko": "/nonexistent", "kernel/dangle.ko": "nowhere.ko", "kernel/loop.ko": "loop.ko",
        "kernel/a/b/deep.ko": "/nonexistent", "kernel/a/mid.ko": "/nonexistent",
        "kernel/a/notmod.txt": "/nonexistent", "kernel/a/dirlink": "/nonexistent",
        "kernel/dl": "../../../../elsewhere", "kernel/flink.ko": "../../../../elsewhere/linked.ko",
        "build": "/nonexistent",
    }.items():  # fmt: skip
        (moddir / link).symlink_to(target)
    (moddir / "source").mkdir()
    (moddir / "source/zz.ko").symlink_to("/nonexistent")
    (moddir / "kernel/.hidden").mkdir()
    shutil.copy(moddir / "kernel/crypto/twofish_common.ko", moddir / "kernel/.hidden/hmod.ko")
    base = _chroot_path(root)
    _both(["-b", base, "-n", RELEASE])
    _both(["-b", base, "-v", "-n", RELEASE])


def test_module_files_on_the_command_line() -> None:
    base = _chroot_path(SCRATCH / "base")
    moddir = f"{base}/lib/modules/{RELEASE}"
    dup = _chroot_path(SCRATCH / "dup")
    shutil.rmtree(SCRATCH / "dup", ignore_errors=True)
    write_tree(SCRATCH / "dup", RELEASE, duplicates_tree())
    dupdir = f"{dup}/lib/modules/{RELEASE}"
    cases = [
        [f"{moddir}/kernel/drivers/net/mii.ko", f"{moddir}/kernel/drivers/net/ethernet/3com"],
        [f"{moddir}/kernel/missing.ko"],
        [f"{moddir}/kernel/drivers/net/mii.ko", f"{moddir}/kernel/missing.ko"],
        [f"{dupdir}/kernel/drivers/dup.ko", f"{dupdir}/extra/dup.ko"],
        [f"{dupdir}/extra/dup.ko", f"{dupdir}/extra/other.ko", f"{dupdir}/extra/dup.ko"],
        [f"{moddir}/kernel"],
        [f"{moddir}/kernel/bad1.ko", f"{moddir}/kernel/../kernel/empty.ko"],
        [f"{dupdir}/extra/other.ko", f"{moddir}/kernel/drivers/net/mii.ko"],
    ]  # fmt: skip
    for files in cases:
        _both(["-C", "/nonexistent", "-b", base, "-n", RELEASE, *files])


@pytest.mark.parametrize(
    "missing",
    [(), ("modules.builtin",), ("modules.builtin.modinfo",),
     ("modules.builtin", "modules.builtin.modinfo")],
)  # fmt: skip
def test_missing_builtin_files(missing: tuple[str, ...]) -> None:
    """Each missing file is a warning; its index is written empty (not an empty index)."""
    roots = [_copy_small(f"builtin-{who}-{len(missing)}") for who in ("kmod", "lkm")]
    for root in roots:
        for name in missing:
            (_moddir(root) / name).unlink()
        # A modules.order naming some modules and one that is not there.
        (_moddir(root) / "modules.order").write_text(
            "kernel/crypto/twofish_common.ko\nkernel/gone.ko\nkernel/drivers/net/mii.ko\n"
        )
    expected = kmod("depmod", "-b", _chroot_path(roots[0]), RELEASE)
    actual = lkm("depmod", "-b", str(roots[1]), RELEASE)
    assert_same(
        expected,
        Result(actual.stdout, actual.stderr.replace(b"-lkm-", b"-kmod-"), actual.status),
    )
    for output in OUTPUTS:
        assert (_moddir(roots[1]) / output).read_bytes() == (
            _moddir(roots[0]) / output
        ).read_bytes(), output
    COMPARED["depmod: bad-input command lines"] += 1


def _set_times(root: Path, dep: str | None, modules: str, newest: str | None = None) -> None:
    """mtimes as `touch -d` takes them: modules.dep (None: removed), every module, the first."""
    moddir = _moddir(root)
    paths = sorted(str(p) for p in moddir.rglob("*.ko"))
    subprocess.run(["touch", "-h", "-d", modules, *paths], check=True)
    if newest is not None:
        subprocess.run(["touch", "-d", newest, paths[0]], check=True)
    if dep is None:
        (moddir / "modules.dep").unlink(missing_ok=True)
    else:
        (moddir / "modules.dep").write_bytes(b"old\n")
        subprocess.run(["touch", "-d", dep, str(moddir / "modules.dep")], check=True)


@pytest.mark.parametrize(
    "times",
    [
        (None, "2000-01-01"),  # no modules.dep: an error, then the full run
        ("2000-01-01", "1999-01-01"),  # up to date: nothing happens
        ("2000-01-01", "2000-01-01"),  # same second: up to date
        ("2000-01-01", "1999-01-01", "2000-01-01 00:00:00.5"),  # newer by half a second
        ("2000-01-01", "1999-01-01", "2000-01-01 00:00:01"),  # newer by a second: a run
    ],
)
def test_quick(times: tuple[str | None, ...]) -> None:
    dep, modules, *newest = times
    roots = [_copy_small(f"quick-{who}") for who in ("kmod", "lkm")]
    for root in roots:
        assert modules is not None
        _set_times(root, dep, modules, newest[0] if newest else None)
        (_moddir(root) / "notes.txt").touch()  # not a module: never newer
    expected = kmod("depmod", "-A", "-b", _chroot_path(roots[0]), RELEASE)
    actual = lkm("depmod", "-A", "-b", str(roots[1]), RELEASE)
    assert_same(
        expected,
        Result(actual.stdout, actual.stderr.replace(b"-lkm", b"-kmod"), actual.status),
    )
    for output in OUTPUTS:
        ours, theirs = _moddir(roots[1]) / output, _moddir(roots[0]) / output
        assert ours.exists() == theirs.exists()
        if ours.exists():
            assert ours.read_bytes() == theirs.read_bytes(), output
    COMPARED["depmod: bad-input command lines"] += 1


def test_warn_on_duplicates_prints_nothing_more() -> None:
    """kmod 34's -w adds no message for duplicate names, exports or aliases."""
    root = SCRATCH / "warn"
    shutil.rmtree(root, ignore_errors=True)
    write_tree(root, RELEASE, {
        **duplicates_tree(),
        "kernel/a.ko": module_elf(exports=["x", "x"], modinfo=["alias=foo", "alias=foo"],
                                  imports=["y", "y"]),
        "kernel/b.ko": module_elf(exports=["x"], export_crcs={"z": 1}),
        "kernel/c.ko": module_elf(export_crcs={"z": 2}, exports=["y"]),
        "kernel/d.ko": module_elf(imports=["z"], import_crcs={"z": 3}),
    })  # fmt: skip
    for options in (["-w"], ["-w", "-v"], ["-w", "-e"]):
        _both([*options, "-C", "/nonexistent", "-b", _chroot_path(root), "-n", RELEASE])


_NAMESPACE = 'set -e\n{setup}\nexec "$@"\n'


def _in_namespace(setup: str, command: list[str]) -> Result:
    """``command`` in a private mount namespace after the shell lines ``setup``."""
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         _NAMESPACE.format(setup=setup), "sh", *command],
        capture_output=True, check=False, env={**os.environ, "PYTHONHASHSEED": HASH_SEED},
    )  # fmt: skip
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def _kmod_command(*args: str) -> list[str]:
    return ["chroot", str(world.CHROOT), "depmod", *args]


def _lkm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lkm", "depmod", *args]


# kmod's temporary names: <file>.<pid>.<number>.<number>.
_TEMPORARY = re.compile(rb"(modules\.[a-z.]+)\.\d+\.\d+\.\d+")


def test_read_only_output_directory() -> None:
    """Every file fails to open, in kmod's words; the old file stays. kmod then exits 0, lkm
    exits 1 (a deliberate difference: an image build must notice)."""
    out = SCRATCH / "readonly"
    shutil.rmtree(out, ignore_errors=True)
    _moddir(out).mkdir(parents=True)
    (_moddir(out) / "modules.dep").write_bytes(b"old\n")
    setup = f"mount --bind -o ro {out} {out}"
    base = _chroot_path(SCRATCH / "base")
    expected = _in_namespace(setup, _kmod_command("-b", base, "-o", _chroot_path(out), RELEASE))
    actual = _in_namespace(
        setup, _lkm_command("-b", str(SCRATCH / "base"), "-o", str(out), RELEASE)
    )
    assert _TEMPORARY.sub(rb"\1.N", actual.stderr) == _TEMPORARY.sub(rb"\1.N", expected.stderr)
    assert expected.stderr.count(b"Read-only file system") == len(OUTPUTS)
    assert (expected.status, actual.status) == (0, 1)
    assert sorted(os.listdir(_moddir(out))) == ["modules.dep"]
    assert (_moddir(out) / "modules.dep").read_bytes() == b"old\n"
    # Directories to create in a read-only place: FATAL for both.
    setup = f"mount --bind -o ro {out} {out}"
    deeper = out / "deeper"
    expected = _in_namespace(setup, _kmod_command("-b", base, "-o", _chroot_path(deeper), RELEASE))
    actual = _in_namespace(
        setup, _lkm_command("-b", str(SCRATCH / "base"), "-o", str(deeper), RELEASE)
    )
    assert_same(expected, actual)
    assert b"FATAL: could not create directory" in actual.stderr
    COMPARED["depmod: bad-input command lines"] += 2


def test_full_output_directory() -> None:
    """A 64 KiB tmpfs fills up while modules.dep is written: kmod's error, exit 1. kmod renames
    the truncated file into place; lkm leaves the old file whole and no other file behind."""
    tree = world.tree("bookworm-amd64")
    out = SCRATCH / "full"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    target = out / tree.moddir.relative_to(tree.root)
    setup = f"mount -t tmpfs -o size=64k tmpfs {out}"
    expected = _in_namespace(
        setup, _kmod_command("-b", tree.chroot_root, "-o", _chroot_path(out), tree.kver)
    )
    assert expected.status == 1
    assert expected.stderr == (
        b"depmod: ERROR: Could not create index 'modules.dep'. Output is truncated:"
        b" No space left on device\n"
    )
    # lkm over an old modules.dep; what is left is shown after the run, in the namespace.
    setup += f"\nmkdir -p {target}\necho old > {target}/modules.dep"
    after = f"; echo status=$? >&2; cat {target}/modules.dep >&2; ls -A {target} >&2"
    command = _lkm_command("-b", str(tree.root), "-o", str(out), tree.kver)
    actual = _in_namespace(setup, ["sh", "-c", '"$@"' + after, "sh", *command])
    assert actual.stderr == expected.stderr + b"status=1\nold\nmodules.dep\n"
    COMPARED["depmod: bad-input command lines"] += 1


def test_killed_while_writing_leaves_whole_files() -> None:
    """SIGKILL at many moments of a run over a real tree: every output file is the old one or
    the new one, and what is left over is a temporary file no reader takes for an index, or
    the commit record (tests/test_depmod_crash.py kills runs at every step of the commit)."""
    tree = world.tree("bookworm-amd64")
    out = SCRATCH / "killed"
    relative = tree.moddir.relative_to(tree.root)
    target = out / relative
    old = {name: f"old {name}\n".encode() for name in OUTPUTS}
    new = {name: (tree.moddir / name).read_bytes() for name in OUTPUTS}
    command = _lkm_command("-b", str(tree.root), "-o", str(out), tree.kver)
    kinds: set[tuple[bool, ...]] = set()
    # Half the kills at a moment of the run, half just after the first file was renamed in.
    for step in range(16):
        shutil.rmtree(out, ignore_errors=True)
        target.mkdir(parents=True)
        for name, data in old.items():
            (target / name).write_bytes(data)
        first = (target / "modules.dep").stat().st_ino
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if step < 8:
            time.sleep(0.1 + step * 0.1)
        else:
            while (target / "modules.dep").stat().st_ino == first and process.poll() is None:
                time.sleep(0.0005)
            time.sleep((step - 8) * 0.003)
        process.send_signal(signal.SIGKILL)
        process.wait()
        for name in OUTPUTS:
            assert (target / name).read_bytes() in (old[name], new[name]), name
        kinds.add(tuple((target / name).read_bytes() == new[name] for name in OUTPUTS))
        for left in set(os.listdir(target)) - set(OUTPUTS):
            assert _TEMPORARY.fullmatch(os.fsencode(left)) or left == "modules.lkm-commit.bin", left
        COMPARED["depmod: runs killed mid-way"] += 1
    assert len(kinds) > 1


def test_external_directory_at_the_same_path() -> None:
    """depmod.d ``external``: kmod in the chroot sees the directory at the host's path through
    a bind mount in a private mount namespace, so both print the same absolute paths."""
    root = _copy_small("external")
    external = Path(tempfile.mkdtemp(prefix="lkm-depmod-external-"))
    inside = world.CHROOT / "tmp" / external.name
    try:
        extdir = write_tree(external, RELEASE, {
            "mii.ko": (_moddir(root) / "kernel/drivers/net/mii.ko").read_bytes(),
            "sub/ext_only.ko": module_elf(imports=["mii_link_ok"], modinfo=["alias=ext-only"]),
        })  # fmt: skip
        inside.mkdir()
        conf = SCRATCH / "external-conf"
        shutil.rmtree(conf, ignore_errors=True)
        conf.mkdir()
        base = _chroot_path(root)
        for search in ("external built-in", "built-in external", "updates"):
            (conf / "a.conf").write_text(f"search {search}\nexternal {RELEASE} {extdir}\n")
            args = ["-C", _chroot_path(conf), "-b", base, "-n", RELEASE]
            expected = _in_namespace(f"mount --bind {external} {inside}", _kmod_command(*args))
            host = [str(world.CHROOT) + a if a.startswith("/scratch-") else a for a in args]
            assert_same(expected, lkm("depmod", *host))
            assert os.fsencode(str(extdir)) in expected.stdout
            COMPARED["depmod: bad-input command lines"] += 1
    finally:
        shutil.rmtree(external)
        inside.rmdir()


# -- gaps closed later: descriptor numbers, build/source, a failed rename, relative paths, -A ----


@contextlib.contextmanager
def _shared_directory() -> Iterator[Path]:
    """A directory at the same absolute path for kmod (chroot) and lkm: made under /tmp and
    bound at the chroot's /tmp/<same name> by ``_run_both``."""
    shared = Path(tempfile.mkdtemp(prefix="lkm-depmod-gaps-"))
    inside = world.CHROOT / "tmp" / shared.name
    inside.mkdir()
    try:
        yield shared
    finally:
        shutil.rmtree(shared)
        inside.rmdir()


# Shell lines run before the tool: the descriptors it starts with decide the numbers kmod
# prints (the lowest free one for each directory it opens).
DESCRIPTORS = {
    "standard": "",
    "3 and 4 taken": "exec 3</dev/null 4</dev/null",
    "stdin closed": "exec 0<&-",
}


def _run_both(
    args: list[str],
    *,
    shared: Path | None = None,
    descriptors: str = "",
    cwd: str = "/",
    lkm_args: list[str] | None = None,
) -> tuple[Result, Result]:
    """depmod of kmod (chrooted) and of lkm (with ``lkm_args`` if given), each in a private
    mount namespace, from the working directory ``cwd`` (a chroot path), with ``shared`` at
    the same path for both. Chroot paths of arguments are made host paths for lkm."""
    setup = descriptors
    if shared is not None:
        setup = f"mount --bind {shared} {world.CHROOT}/tmp/{shared.name}\n{setup}"
    host = [
        str(world.CHROOT) + a if a.startswith("/scratch-") else a
        for a in (args if lkm_args is None else lkm_args)
    ]
    host_cwd = str(world.CHROOT) + cwd if cwd.startswith("/scratch-") else cwd
    expected = _in_namespace(
        setup,
        ["chroot", str(world.CHROOT), "sh", "-c", 'cd "$0" && exec depmod "$@"', cwd, *args],
    )
    actual = _in_namespace(setup, ["sh", "-c", 'cd "$0" && exec "$@"', host_cwd,
                                   *_lkm_command(*host)])  # fmt: skip
    return expected, actual


def _gaps_tree(name: str) -> Path:
    """The small tree plus what kmod skips or cannot follow: build and source directories
    below the top (with modules and dangling links), an excluded directory and file name,
    dangling links two levels down."""
    root = _copy_small(name)
    moddir = _moddir(root)
    mii = (moddir / "kernel/drivers/net/mii.ko").read_bytes()
    for rel in ("kernel/build/in_build.ko", "kernel/drivers/source/in_source.ko",
                "kernel/skipme/skipped.ko", "kernel/skipme.ko", "kernel/build.ko",
                "extra/deep/er/kept.ko"):  # fmt: skip
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        (moddir / rel).write_bytes(mii)
    for link in ("kernel/build/gone.ko", "kernel/drivers/source", "extra/deep/er/gone.ko",
                 "extra/deep/gone.ko", "extra/gone.ko", "kernel/a/build"):  # fmt: skip
        (moddir / link).parent.mkdir(parents=True, exist_ok=True)
        if not (moddir / link).exists():
            (moddir / link).symlink_to("/nonexistent")
    return root


def _external_tree(shared: Path) -> Path:
    """An external directory with dangling links at three depths and a build directory."""
    external = shared / "ext"
    source = _moddir(SCRATCH / "base")
    for rel in ("top.ko", "sub/one.ko", "sub/deeper/two.ko", "build/no.ko", "skipme/no2.ko"):
        (external / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "kernel/crypto/twofish_common.ko", external / rel)
    for link in ("gone.ko", "sub/gone.ko", "sub/deeper/gone.ko", "build/gone.ko"):
        (external / link).symlink_to("/nonexistent")
    return external


@pytest.mark.parametrize("descriptors", DESCRIPTORS)
def test_descriptor_numbers_in_the_tree_and_external_directories(descriptors: str) -> None:
    """kmod's ``fstatat(N, name)`` carries the descriptor it holds on the directory: the
    lowest free one, so 3 at the top of the module directory and of each external directory,
    one more per level; other numbers when the caller leaves 3 taken or 0 free. build and
    source are skipped at every depth, in external directories too; ``exclude`` names skip
    directories and files."""
    root = _gaps_tree("descriptors")
    with _shared_directory() as shared:
        external = _external_tree(shared)
        conf = shared / "conf"
        conf.mkdir()
        lines = {
            "plain": f"external {RELEASE} {external}\n",
            "trailing-slash": f"search external built-in\nexternal {RELEASE} {external}/\n",
            "excludes": f"exclude skipme\nexclude skipme.ko\nexternal {RELEASE} {external}\n",
        }
        for name, text in lines.items():
            (conf / f"{name}.conf").write_text(text)
            args = ["-C", f"{conf}/{name}.conf", "-b", _chroot_path(root), "-n", RELEASE]
            for extra in ([], ["-v"]):
                expected, actual = _run_both(
                    [*extra, *args], shared=shared, descriptors=DESCRIPTORS[descriptors]
                )
                assert_same(expected, actual)
                assert b"fstatat(" in expected.stderr
                assert b"in_build" not in expected.stdout
                COMPARED["depmod: bad-input command lines"] += 1


@pytest.mark.parametrize(
    "in_the_way",
    [("modules.dep",), ("modules.alias.bin",), ("modules.builtin.bin",),
     ("modules.builtin.alias.bin",), ("modules.softdep", "modules.devname")],
)  # fmt: skip
def test_rename_onto_a_directory(in_the_way: tuple[str, ...]) -> None:
    """An output name taken by a non-empty directory: kmod's renameat error is FATAL, exit 1,
    and the files after it are not written; the builtin files' warnings come only as their
    indexes are written, so they show where kmod stopped. kmod leaves the temporary file of
    the failed rename behind; lkm removes it (pinned difference: its name holds a process id
    and random numbers, so no run could make the same one anyway)."""
    roots = [_copy_small(f"rename-{who}") for who in ("kmod", "lkm")]
    for root in roots:
        (_moddir(root) / "modules.builtin").unlink()  # its warning shows the order
        for name in in_the_way:
            (_moddir(root) / name / "keep").mkdir(parents=True)
        # The other files exist already: the old ones stay where kmod stops.
        for name in set(OUTPUTS) - set(in_the_way):
            (_moddir(root) / name).write_bytes(b"old\n")
    expected = kmod("depmod", "-b", _chroot_path(roots[0]), RELEASE)
    actual = lkm("depmod", "-b", str(roots[1]), RELEASE)
    assert expected.status == 1
    normal = [
        Result(r.stdout, _TEMPORARY.sub(rb"\1.N", r.stderr.replace(b"-lkm", b"-kmod")), r.status)
        for r in (expected, actual)
    ]
    assert_same(normal[0], normal[1])
    assert b"FATAL: renameat(" in expected.stderr
    theirs, ours = (sorted(os.listdir(_moddir(root))) for root in roots)
    left = [name for name in theirs if _TEMPORARY.fullmatch(os.fsencode(name))]
    assert len(left) == 1 and left[0].startswith(in_the_way[0] + ".")
    assert ours == [name for name in theirs if name not in left]
    for name in OUTPUTS:
        if (_moddir(roots[0]) / name).is_file():
            assert (_moddir(roots[1]) / name).read_bytes() == (
                _moddir(roots[0]) / name
            ).read_bytes(), name
        else:
            assert (_moddir(roots[1]) / name).is_dir()
    COMPARED["depmod: bad-input command lines"] += 1


def test_module_paths_relative_and_outside_the_tree() -> None:
    """kmod 34 resolves no relative module path (``X: not absolute path.``, FATAL), from any
    working directory, in the order the paths are checked; an absolute path outside the
    module directory is shown whole, one inside it relative to it (``//``, ``/./`` and
    ``/../`` kept as written); with -a or -A the paths are ignored and every module is
    looked at."""
    root = _gaps_tree("paths")
    base = _chroot_path(root)
    moddir = f"{base}/lib/modules/{RELEASE}"
    outside = SCRATCH / "outside"
    shutil.rmtree(outside, ignore_errors=True)
    outside.mkdir()
    shutil.copy(_moddir(root) / "kernel/crypto/twofish_common.ko", outside / "far.ko")
    sibling = _moddir(root).parent / f"{RELEASE}-x"
    shutil.rmtree(sibling, ignore_errors=True)
    sibling.mkdir()
    shutil.copy(_moddir(root) / "kernel/drivers/net/mii.ko", sibling / "near.ko")
    mii, three_com = "kernel/drivers/net/mii.ko", "kernel/drivers/net/ethernet/3com/3c59x.ko"
    cases: list[tuple[str, list[str]]] = [
        (moddir, [mii]),
        (moddir, [mii, three_com]),
        (base, [f"lib/modules/{RELEASE}/{mii}"]),
        ("/", [f"{moddir}/{mii}"[1:]]),
        (f"{moddir}/kernel/drivers/net", ["./mii.ko"]),
        (f"{moddir}/kernel/drivers/net", ["../net/mii.ko"]),
        (moddir, ["missing.ko"]),
        (moddir, [f"{moddir}/{mii}", three_com]),
        (moddir, [f"{moddir}/missing.ko", three_com]),
        (moddir, [three_com, f"{moddir}/missing.ko"]),
        (moddir, [f"{moddir}/{mii}", f"{moddir}/{mii}", three_com]),
        ("/", [f"{_chroot_path(outside)}/far.ko", f"{moddir}/{three_com}"]),
        ("/", [f"{moddir}//{mii}", f"{moddir}/./{three_com}"]),
        ("/", [f"{moddir}/../{RELEASE}/{mii}"]),
        ("/", [f"{moddir}-x/near.ko"]),
    ]
    for cwd, files in cases:
        for options in (["-n"], ["-a", "-n"], ["-A", "-n"]):
            args = ["-C", "/nonexistent", "-b", base, *options, RELEASE, *files]
            expected, actual = _run_both(args, cwd=cwd)
            assert_same(expected, actual)
            COMPARED["depmod: bad-input command lines"] += 1
    expected, _ = _run_both(["-C", "/nonexistent", "-b", base, "-n", RELEASE, mii], cwd=moddir)
    assert expected.stderr == f"depmod: FATAL: {mii}: not absolute path.\n".encode()


# Which module's time makes -A run: (what is newer than modules.dep, does kmod 34 run?).
QUICK_CASES = {
    "in an excluded directory": ("kernel/skipme/skipped.ko", True),
    "with an excluded name": ("kernel/skipme.ko", True),
    "in build below the top": ("kernel/build/in_build.ko", False),
    "in source below the top": ("kernel/drivers/source/in_source.ko", False),
    "deep down": ("extra/deep/er/kept.ko", True),
    "in an external directory": ("EXTERNAL/top.ko", False),
    "nothing": (None, False),
}


@pytest.mark.parametrize("case", QUICK_CASES)
@pytest.mark.parametrize("extra", ["", "-n", "a module path"])
def test_quick_counts_which_modules(case: str, extra: str) -> None:
    """-A compares modules.dep with every module file of the module directory, depmod.d's
    ``exclude`` notwithstanding (only build and source are skipped, at any depth), never with
    an external directory's; it reports what it cannot follow on the way. A module path on
    the command line changes nothing, and -A with -n does nothing at all."""
    newer, runs = QUICK_CASES[case]
    with _shared_directory() as shared:
        external = _external_tree(shared)
        conf = shared / "depmod.conf"
        conf.write_text(f"exclude skipme\nexclude skipme.ko\nexternal {RELEASE} {external}\n")
        roots = [_gaps_tree(f"quick-gaps-{who}") for who in ("kmod", "lkm")]
        subprocess.run(["touch", "-h", "-d", "1999-01-01", *map(str, external.rglob("*"))],
                       check=True)  # fmt: skip
        for root in roots:
            _set_times(root, "2000-01-01", "1999-01-01")
            if newer is not None and not newer.startswith("EXTERNAL/"):
                subprocess.run(
                    ["touch", "-d", "2001-01-01", str(_moddir(root) / newer)], check=True
                )
        if newer is not None and newer.startswith("EXTERNAL/"):
            path = external / newer.removeprefix("EXTERNAL/")
            subprocess.run(["touch", "-d", "2001-01-01", str(path)], check=True)
        args = []
        for root in roots:
            path = f"{_chroot_path(_moddir(root))}/kernel/skipme.ko"
            tail = {"": [], "-n": ["-n"]}.get(extra, [path])
            args.append(["-A", "-C", str(conf), "-b", _chroot_path(root), RELEASE, *tail])
        expected, actual = _run_both(args[0], shared=shared, lkm_args=args[1])
        ours = Result(actual.stdout, actual.stderr.replace(b"-lkm", b"-kmod"), actual.status)
        assert_same(expected, ours)
        ran = (_moddir(roots[0]) / "modules.dep").read_bytes() != b"old\n"
        assert ran == (runs and extra != "-n")
        for output in OUTPUTS:
            ours_file, theirs = _moddir(roots[1]) / output, _moddir(roots[0]) / output
            assert ours_file.exists() == theirs.exists(), output
            if theirs.exists():
                assert ours_file.read_bytes() == theirs.read_bytes(), output
        COMPARED["depmod: bad-input command lines"] += 1


# -- directories that cannot be walked -----------------------------------------------------------


def _make(path: Path, kind: str) -> None:
    """At ``path``: nothing, or something that cannot be opened as a directory, or a directory
    with one module and a symlink loop inside."""
    if kind == "file":
        path.write_bytes(b"x")
    elif kind == "dangling symlink":
        path.symlink_to("nowhere")
    elif kind == "symlink loop":
        path.symlink_to(path.name)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory with a loop":
        path.mkdir()
        (path / "ext.ko").write_bytes(module_elf(imports=["mii_link_ok"]))
        (path / "sub").symlink_to("sub")


@pytest.mark.parametrize(
    "kind",
    ["missing", "file", "dangling symlink", "symlink loop", "fifo", "name too long",
     "directory with a loop"],
)  # fmt: skip
def test_external_directory_that_cannot_be_opened(kind: str) -> None:
    """kmod reports an ``external`` directory it cannot open and goes on (exit 0). The same
    thing is made at the same absolute path on the host and in the chroot, so both tools read
    the configuration as it is and print the same paths."""
    root = _copy_small("external-bad")
    name = "x" * 300 if kind == "name too long" else "external"
    host = Path(tempfile.mkdtemp(prefix="lkm-depmod-external-"))
    inside = world.CHROOT / str(host).lstrip("/")
    inside.mkdir(parents=True)
    try:
        for top in (host, inside):
            _make(top / name, kind)
        conf = SCRATCH / "external-bad-conf"
        shutil.rmtree(conf, ignore_errors=True)
        conf.mkdir()
        (conf / "a.conf").write_text(
            f"search external built-in\nexternal {RELEASE} {host / name}\n"
        )
        result = _both(["-C", _chroot_path(conf), "-b", _chroot_path(root), "-n", RELEASE])
        assert result.status == 0
        if kind == "directory with a loop":
            assert b"fstatat(" in result.stderr and b"/external/ext.ko:" in result.stdout
        else:
            assert b"ERROR: could not open directory " in result.stderr
    finally:
        shutil.rmtree(host)
        shutil.rmtree(inside)


@pytest.mark.parametrize("kind", ["missing", "file", "dangling symlink", "symlink loop"])
def test_module_directory_that_cannot_be_opened(kind: str) -> None:
    """The module directory itself: kmod's ERROR and FATAL lines, exit 1, whatever stands in
    its place."""
    root = SCRATCH / "moddir-bad"
    shutil.rmtree(root, ignore_errors=True)
    (root / "lib/modules").mkdir(parents=True)
    _make(root / "lib/modules" / RELEASE, kind)
    result = _both(["-C", "/nonexistent", "-b", _chroot_path(root), RELEASE])
    assert result.status == 1 and b"FATAL: could not search modules: " in result.stderr


def test_module_paths_too_long_to_open() -> None:
    """kmod walks directories of any depth, each relative to its parent, and reports a module
    whose whole path is PATH_MAX bytes or more (it opens modules by that path), going on with
    the others; a module at a shorter path is read."""
    root = _copy_small("deep")
    for levels in (25, 12):
        fd = os.open(_moddir(root) / "kernel", os.O_RDONLY)
        try:
            for level in range(levels):
                part = f"{level}".rjust(240, "d")
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
                inner = os.open(part, os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = inner
            module = os.open(f"deep{levels}.ko", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(module, module_elf(imports=["mii_link_ok"]))
            os.close(module)
        finally:
            os.close(fd)
    result = _both(["-C", "/nonexistent", "-b", _chroot_path(root), "-n", RELEASE])
    assert result.status == 0
    assert b"/deep25.ko: File name too long\n" in result.stderr
    assert b"/deep12.ko: kernel/drivers/net/mii.ko\n" in result.stdout


def test_entries_neither_directory_nor_regular_file() -> None:
    """FIFOs, sockets and devices in the tree, named like modules or not, directly and behind
    symlinks: kmod names each with its file-type bits in octal and goes on (a FIFO named like a
    module shadows nothing, and is never opened); excluded names are skipped before that."""
    root = _copy_small("odd-types")
    updates = _moddir(root) / "updates"
    updates.mkdir()
    for name in ("mii.ko", "fifo.ko.xz", "fifo.ko.zst", "plain", "build", "skipme"):
        os.mkfifo(updates / name)
    os.mknod(updates / "null.ko", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    (updates / "to-null.ko").symlink_to("/dev/null")
    (updates / "to-fifo.ko").symlink_to("mii.ko")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(updates / "sock.ko"))
    conf = SCRATCH / "odd-types-conf"
    shutil.rmtree(conf, ignore_errors=True)
    conf.mkdir()
    (conf / "a.conf").write_text("exclude skipme\n")
    result = _both(["-C", _chroot_path(conf), "-b", _chroot_path(root), "-n", RELEASE])
    assert result.status == 0
    assert result.stderr.count(b"ERROR: unsupported file type ") == 8
    assert b"/updates/to-null.ko: 20000\n" in result.stderr
    assert b"/updates/sock.ko: 140000\n" in result.stderr
    assert b"\nkernel/drivers/net/mii.ko:" in result.stdout
