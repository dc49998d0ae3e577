"""depmod: unit tests of the pieces and properties of the readers and the index writer."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.depmod import (
    DependencyCycleError,
    DepmodOptions,
    ModuleArgumentError,
    Reporter,
    build,
    find_modules,
    modules_from_files,
    order_modules,
    run_depmod,
    walk_modules,
)
from lkm.depmod.config import DepmodConfig, Override, parse_config
from lkm.depmod.order import hash_order, superfasthash, superfasthash_all
from lkm.depmod.output import OutputError, render, write_outputs
from lkm.depmod.parallel import Background, Handoff, run_chunks
from lkm.depmod.scan import ModuleScan, scan_bytes
from lkm.errors import LkmError
from support.depmod_trees import (
    CYCLE_CASES,
    ENDLESS_CYCLE_CASES,
    cycle_tree,
    duplicates_tree,
    graph_tree,
    module_elf,
    write_tree,
)


def test_module_hash_order_is_kmods() -> None:
    # kmod 34's modules.dep for these names without modules.order (black-box, 512 buckets).
    names = [b"twofish_x86_64_3way", b"empty", b"bad3", b"twofish_common", b"3c59x", b"bad1",
             b"twofish_x86_64", b"bad2", b"mii"]  # fmt: skip
    assert hash_order(reversed(names), 512) == names


def test_superfasthash_tails() -> None:
    assert superfasthash(b"") == 0
    assert len({superfasthash(b"a" * n) for n in range(1, 9)}) == 8
    assert superfasthash(b"\xff") != superfasthash(b"\x7f")


def test_superfasthash_of_many_keys_at_once_is_the_same() -> None:
    # Every tail length, high bytes (a lone tail byte is a signed char), groups below and
    # above the size that is packed into lanes.
    rnd = random.Random(12)
    for length in range(41):
        for count in (1, 7, 8, 50):
            keys = [bytes(rnd.randrange(256) for _ in range(length)) for _ in range(count)]
            assert superfasthash_all(keys) == [superfasthash(key) for key in keys]
    keys = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(30))) for _ in range(2000)]
    expected = sorted(set(keys), key=lambda key: (superfasthash(key) & 2047, key))
    assert hash_order(set(keys), 2048) == expected


def test_modules_order_moves_listed_modules_first(tmp_path: Path) -> None:
    moddir = write_tree(tmp_path, "1.0", {f"kernel/{n}.ko": module_elf() for n in "abcde"})
    found = find_modules(str(moddir), DepmodConfig())
    order = ["kernel/d.ko", "kernel/zz.ko", "kernel/b.ko", "kernel/d.ko"]
    names = [m.name for m in order_modules(found, order)]
    assert names[:2] == ["d", "b"]
    assert sorted(names) == list("abcde")


def test_scan_reads_exports_imports_aliases() -> None:
    data = module_elf(
        exports=["e1"], imports=["i1", "i2"], modinfo=["alias=x-y", "softdep=pre: z"],
        import_crcs={"i1": 0x1234}, weak=["i2"],
    )  # fmt: skip
    assert scan_bytes(data) == ModuleScan(
        (b"x-y",), (b"pre: z",), (), (b"e1",), (None,), (b"i1", b"i2"), (0x1234, None),
        b"\0\1",
    )  # fmt: skip
    with_crc = scan_bytes(module_elf(export_crcs={"e2": 0xABCD}))
    assert with_crc.exports == ((b"e2", 0xABCD),)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_scan_raises_only_lkm_errors(noise: bytes, cut: int) -> None:
    base = module_elf(exports=["e"], imports=["i"], modinfo=["alias=a"])
    for data in (noise, base[:cut] + noise, base[:cut] + noise + base[cut + len(noise) :]):
        with contextlib.suppress(LkmError):
            scan_bytes(data)


def test_config_search_override_external_exclude() -> None:
    errors: list[str] = []
    text = (
        "# comment\nsearch extra \\\n updates\noverride Foo-bar 1.* extra\noverride x 2.0 y\n"
        "external * /opt/mods\nexclude skip\nfrobnicate this\n"
    )
    config = parse_config([("a.conf", text)], "1.5", errors.append)
    assert config.search == ("extra", "updates", "built-in")
    assert config.overrides == (Override("Foo_bar", "extra"),)
    assert [e.path for e in config.externals] == ["/opt/mods"]
    assert config.excludes == ("skip",)
    assert errors == ["a.conf:8: ignoring bad line starting with 'frobnicate'"]


def test_duplicates_rank_and_override(tmp_path: Path) -> None:
    moddir = str(write_tree(tmp_path, "1.0", duplicates_tree()))
    chosen = {m.name: m.relpath for m in find_modules(moddir, DepmodConfig())}
    assert chosen["dup"] == "updates/dup.ko"
    config = DepmodConfig(("extra", "built-in"), excludes=("skipme",))
    chosen = {m.name: m.relpath for m in find_modules(moddir, config)}
    assert chosen["dup"] == "extra/dup.ko"
    assert "hidden" not in chosen and "hidden2" not in chosen
    config = DepmodConfig(overrides=(Override("dup", "kernel/drivers"),))
    assert {m.name: m.relpath for m in find_modules(moddir, config)}["dup"] == (
        "kernel/drivers/dup.ko"
    )


def test_external_directory(tmp_path: Path) -> None:
    from lkm.depmod.config import External

    moddir = str(write_tree(tmp_path / "a", "1.0", {"kernel/m.ko": module_elf()}))
    external = write_tree(tmp_path / "b", "1.0", {"m.ko": module_elf(exports=["x"])})
    config = DepmodConfig(("external", "built-in"), externals=(External(str(external)),))
    (found,) = find_modules(moddir, config)
    assert found.relpath == f"{external}/m.ko"


def test_cycles_are_reported_and_nothing_is_built(tmp_path: Path) -> None:
    moddir = str(write_tree(tmp_path, "1.0", cycle_tree()))
    messages: list[tuple[str, str]] = []
    reporter = Reporter(lambda level, text: messages.append((level, text)))
    with pytest.raises(DependencyCycleError) as caught:
        build(moddir, DepmodConfig(), reporter, jobs=1)
    assert str(caught.value) == "Found 5 modules in dependency cycles!"
    assert ("ERROR", "Cycle detected: c -> a -> b -> c") in messages
    assert ("ERROR", "Cycle detected: d -> e -> d") in messages


def test_library_builds_and_renders(tmp_path: Path) -> None:
    moddir = str(write_tree(tmp_path, "1.0", {
        "kernel/a.ko": module_elf(exports=["a_fn"], modinfo=["alias=devname:foo",
                                                            "alias=char-major-10-1"]),
        "kernel/b.ko": module_elf(imports=["a_fn"]),
    }))  # fmt: skip
    result = build(moddir, DepmodConfig(), Reporter(), jobs=1)
    files = dict(render(result))
    assert sorted(files["modules.dep"].splitlines()) == [
        b"kernel/a.ko:",
        b"kernel/b.ko: kernel/a.ko",
    ]
    assert files["modules.devname"].endswith(b"a foo c10:1\n")
    assert files["modules.symbols"].endswith(b"alias symbol:a_fn a\n")


_WRITE = """\
import sys
from lkm.depmod.output import OutputError, write_outputs
try:
    write_outputs(sys.argv[1], [("modules.dep", b"newer\\n")])
except OutputError as err:
    print(err)
"""


def test_write_outputs_keeps_old_files_on_failure(tmp_path: Path) -> None:
    """A directory of mode 0555, written by a process held to file modes (root too)."""
    from support.unprivileged import held_to_modes

    (tmp_path / "modules.dep").write_bytes(b"old\n")
    write_outputs(str(tmp_path), [("modules.dep", b"new\n")])
    assert (tmp_path / "modules.dep").read_bytes() == b"new\n"
    os.chmod(tmp_path, 0o555)
    try:
        command = held_to_modes([sys.executable, "-c", _WRITE, str(tmp_path)])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        os.chmod(tmp_path, 0o755)
    assert done.stdout.startswith("openat"), done.stdout
    assert "Permission denied" in done.stdout
    assert os.listdir(tmp_path) == ["modules.dep"]
    assert (tmp_path / "modules.dep").read_bytes() == b"new\n"


def test_write_outputs_stops_at_a_file_that_cannot_be_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fails (EIO) to flush the second file: the first is committed, the second and
    third are not, and no temporary file is left."""
    import errno

    for name in ("modules.a", "modules.b", "modules.c"):
        (tmp_path / name).write_bytes(b"old\n")
    real_fsync = os.fsync
    second = []

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith("modules.b."):
            second.append(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files = [("modules.a", b"new\n"), ("modules.b", b"new\n"), ("modules.c", b"new\n")]
    with pytest.raises(OutputError) as caught:
        write_outputs(str(tmp_path), files)
    assert second
    assert caught.value.messages == (
        "Could not create index 'modules.b'. Output is truncated: Input/output error",
    )
    assert sorted(os.listdir(tmp_path)) == ["modules.a", "modules.b", "modules.c"]
    assert [(tmp_path / name).read_bytes() for name in ("modules.a", "modules.b", "modules.c")] == [
        b"new\n",
        b"old\n",
        b"old\n",
    ]


def _square_chunk(paths: Sequence[str], names: dict[bytes, bytes]) -> list[int]:
    return [int(p) ** 2 for p in paths]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_chunks_come_back_in_order(jobs: int) -> None:
    paths = [str(i) for i in range(500)]
    assert run_chunks(_square_chunk, paths, jobs) == [i * i for i in range(500)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_meanwhile_runs_once_here_before_this_process_reads(jobs: int) -> None:
    events: list[tuple[str, int]] = []

    def square_here(paths: Sequence[str], names: dict[bytes, bytes]) -> list[int]:
        if os.getpid() == parent:
            events.append(("chunk", parent))
        return _square_chunk(paths, names)

    parent = os.getpid()
    paths = [str(i) for i in range(200)]
    squares = run_chunks(
        square_here, paths, jobs, meanwhile=lambda: events.append(("meanwhile", os.getpid()))
    )
    assert squares == [i * i for i in range(200)]
    assert events[0] == ("meanwhile", parent)
    assert events.count(("meanwhile", parent)) == 1


def test_chunks_of_a_dead_worker_are_done_again() -> None:
    parent = os.getpid()

    def dies_in_worker(paths: Sequence[str], names: dict[bytes, bytes]) -> list[int]:
        if os.getpid() != parent:
            os._exit(3)
        return _square_chunk(paths, names)

    assert run_chunks(dies_in_worker, [str(i) for i in range(100)], 2) == [
        i * i for i in range(100)
    ]


def _sum_of_halves(shared: list[int]) -> list[int]:
    return [sum(shared), os.getpid()]


@pytest.mark.parametrize("jobs", [2, 3])
def test_handoff_goes_on_in_a_worker(jobs: int) -> None:
    paths = [str(i) for i in range(500)]
    handoff = Handoff(lambda square: square // 2, _sum_of_halves)
    assert run_chunks(_square_chunk, paths, jobs, handoff=handoff) == [i * i for i in range(500)]
    assert handoff.pending is not None
    total, pid = handoff.pending.result()
    assert total == sum(i * i // 2 for i in range(500))
    assert pid != os.getpid()


def test_handoff_of_a_dead_worker_is_done_here() -> None:
    parent = os.getpid()

    def dies_in_worker(shared: list[int]) -> list[int]:
        if os.getpid() != parent:
            os._exit(3)
        return _sum_of_halves(shared)

    handoff = Handoff(lambda square: square // 2, dies_in_worker)
    paths = [str(i) for i in range(100)]
    assert run_chunks(_square_chunk, paths, 2, handoff=handoff) == [i * i for i in range(100)]
    assert handoff.pending is not None
    assert handoff.pending.result() == [sum(i * i // 2 for i in range(100)), parent]


def test_handoff_cancel_stops_the_worker() -> None:
    def slow(shared: list[int]) -> list[int]:
        time.sleep(30)
        return shared

    handoff = Handoff(lambda square: square, slow)
    run_chunks(_square_chunk, [str(i) for i in range(100)], 2, handoff=handoff)
    assert handoff.pending is not None
    begun = time.monotonic()
    handoff.pending.cancel()
    handoff.pending.cancel()
    assert time.monotonic() - begun < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the worker was reaped


def test_background_result_and_fallback() -> None:
    assert Background(lambda: [b"a", b"bc"]).result() == [b"a", b"bc"]
    parent = os.getpid()

    def dies_in_child() -> list[bytes]:
        if os.getpid() != parent:
            os._exit(3)
        return [b"here"]

    assert Background(dies_in_child).result() == [b"here"]


def test_background_cancel_stops_the_child() -> None:
    def slow() -> list[bytes]:
        time.sleep(30)
        return [b""]

    started = Background(slow)
    begun = time.monotonic()
    started.cancel()
    started.cancel()  # a second cancel, like one after the result was taken, does nothing
    assert time.monotonic() - begun < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the child was reaped


def _chain_tree(count: int, cycle: bool) -> dict[str, bytes]:
    """``count`` modules, each needing the next (the last needing the first when ``cycle``),
    with an alias each: enough for depmod to lay out the output files in two processes."""
    return {
        f"kernel/m{i}.ko": module_elf(
            exports=[f"fn_{i}"],
            imports=[f"fn_{i + 1}"] if i + 1 < count else ["fn_0"] if cycle else [],
            modinfo=[f"alias=chain-{i}"],
        )
        for i in range(count)
    }


def test_two_process_layout_is_the_one_process_layout(tmp_path: Path) -> None:
    moddir = write_tree(tmp_path, "1.0", _chain_tree(300, cycle=False))
    result = build(str(moddir), DepmodConfig(), Reporter(), jobs=1)
    assert dict(render(result, 2)) == dict(render(result, 1))
    # The command's own process shows the same (and leaves without tidying up).
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lkm",
            "depmod",
            "-n",
            "-C",
            "/nonexistent",
            "-b",
            str(tmp_path),
            "1.0",
        ],
        capture_output=True,
        check=True,
        env={**os.environ, "LKM_DEPMOD_CACHE": "0"},
    )
    options = DepmodOptions("1.0", basedir=str(tmp_path), config=("/nonexistent",), dry_run=True)
    shown = run_depmod(options).shown
    assert done.stdout == shown
    assert b"alias chain-299 m299\n" in shown


def test_a_cycle_found_leaves_no_process_behind(tmp_path: Path) -> None:
    write_tree(tmp_path, "1.0", _chain_tree(300, cycle=True))
    with pytest.raises(DependencyCycleError):
        run_depmod(DepmodOptions("1.0", str(tmp_path), config=("/nonexistent",), dry_run=True))
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_write_outputs_makes_the_directory_or_says_why(tmp_path: Path) -> None:
    write_outputs(str(tmp_path / "a/b"), [("modules.dep", b"x\n")])
    assert (tmp_path / "a/b/modules.dep").read_bytes() == b"x\n"
    assert os.listdir(tmp_path / "a/b") == ["modules.dep"]
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError) as caught:
        write_outputs(str(tmp_path / "file/sub"), [("modules.dep", b"x\n")])
    assert caught.value.fatal
    assert caught.value.messages == (
        f"could not create directory {tmp_path}/file/sub: Not a directory",
    )


def test_walk_reports_what_it_cannot_follow(tmp_path: Path) -> None:
    moddir = write_tree(tmp_path, "1.0", {"kernel/a/m.ko": module_elf(), "n.ko": module_elf()})
    (moddir / "kernel/a/gone.ko").symlink_to("nowhere")
    (moddir / "kernel/loop").symlink_to("loop")
    (moddir / "kernel/up").symlink_to("a")
    (moddir / "build").symlink_to("nowhere")
    errors: list[str] = []
    found = sorted(walk_modules(str(moddir), report=errors.append))
    assert found == sorted(f"{moddir}/{p}" for p in ("kernel/a/m.ko", "kernel/up/m.ko", "n.ko"))
    # The descriptor numbers are those the walk holds: the lowest free at the top, one more
    # per level, all closed again afterwards.
    top = os.open("/", os.O_RDONLY)
    os.close(top)
    # gone.ko twice: once below a/, once below the symlink to it.
    assert sorted(errors) == [
        f"fstatat({top + 1}, loop): Too many levels of symbolic links",
        f"fstatat({top + 2}, gone.ko): No such file or directory",
        f"fstatat({top + 2}, gone.ko): No such file or directory",
    ]


def test_walk_skips_build_and_source_everywhere(tmp_path: Path) -> None:
    """kmod 34 never descends into a directory named build or source, at any depth, nor into
    an excluded one; a file with an excluded name is skipped too."""
    moddir = write_tree(tmp_path, "1.0", {
        "kernel/a.ko": module_elf(), "kernel/build/b.ko": module_elf(),
        "kernel/x/source/c.ko": module_elf(), "source/d.ko": module_elf(),
        "kernel/skip/e.ko": module_elf(), "kernel/skip.ko": module_elf(),
        "kernel/build.ko": module_elf(),
    })  # fmt: skip
    (moddir / "kernel/x/build").symlink_to("nowhere")
    errors: list[str] = []
    found = walk_modules(str(moddir), frozenset(("skip", "skip.ko")), errors.append)
    assert sorted(found) == [f"{moddir}/kernel/a.ko", f"{moddir}/kernel/build.ko"]
    assert errors == []


def test_module_files_must_exist_and_have_their_own_names(tmp_path: Path) -> None:
    moddir = write_tree(tmp_path, "1.0", {"a/m.ko": module_elf(), "b/m.ko": module_elf()})
    errors: list[tuple[str, str]] = []
    reporter = Reporter(lambda level, text: errors.append((level, text)))
    (one,) = modules_from_files(str(moddir), [f"{moddir}/a/m.ko"], reporter)
    assert (one.relpath, one.name) == ("a/m.ko", "m")
    with pytest.raises(ModuleArgumentError, match=r"could not create module .*/x\.ko: No such"):
        modules_from_files(str(moddir), [f"{moddir}/x.ko"], reporter)
    with pytest.raises(ModuleArgumentError, match=r"could not add module .*a/m\.ko: File exists"):
        modules_from_files(str(moddir), [f"{moddir}/a/m.ko"] * 2, reporter)
    with pytest.raises(ModuleArgumentError, match=r"could not create module .*b/m\.ko: File exi"):
        modules_from_files(str(moddir), [f"{moddir}/a/m.ko", f"{moddir}/b/m.ko"], reporter)
    assert errors == [
        ("ERROR", "hash_add_unique m: File exists"),
        ("ERROR", f"kmod_module 'm' already exists with different path: "
                  f"new-path='{moddir}/b/m.ko' old-path='{moddir}/a/m.ko'"),
    ]  # fmt: skip


def test_a_failed_rename_stops_the_writing(tmp_path: Path) -> None:
    """A directory in an output file's place: the rename fails, FATAL (``fatal``, the last
    message), nothing after it is written or even computed, no temporary file is left."""
    (tmp_path / "b/keep").mkdir(parents=True)
    computed: list[str] = []

    def later(name: str) -> bytes:
        computed.append(name)
        return name.encode()

    files = [("a", lambda: later("a")), ("b", b"b"), ("c", lambda: later("c"))]
    with pytest.raises(OutputError) as caught:
        write_outputs(str(tmp_path), files)
    assert caught.value.fatal
    (message,) = caught.value.messages
    assert message.startswith(f"renameat({tmp_path}, b.") and message.endswith(
        f", {tmp_path}, b): Is a directory"
    )
    assert computed == ["a"]
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "a").read_bytes() == b"a"


def test_module_files_must_be_absolute(tmp_path: Path) -> None:
    """kmod 34 resolves no relative path; the paths are checked one after the other."""
    moddir = write_tree(tmp_path, "1.0", {"a/m.ko": module_elf()})
    with pytest.raises(ModuleArgumentError, match=r"\Aa/m\.ko: not absolute path\.\Z"):
        modules_from_files(str(moddir), ["a/m.ko"])
    with pytest.raises(ModuleArgumentError, match=r"could not create module /nonexistent/x\.ko"):
        modules_from_files(str(moddir), ["/nonexistent/x.ko", "a/m.ko"])
    with pytest.raises(ModuleArgumentError, match="not absolute"):
        modules_from_files(str(moddir), [f"{moddir}/a/m.ko", "./m.ko"])


def _depmod(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from lkm.cli.depmod import main

    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_quick_and_all_ignore_module_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-A with -n does nothing at all, whatever the times; with -a or -A, module paths on the
    command line are ignored (a relative one too) and every module is looked at."""
    moddir = write_tree(tmp_path, "1.0", {"kernel/a.ko": module_elf(), "kernel/b.ko": module_elf()})
    base = ["-C", "/nonexistent", "-b", str(tmp_path)]
    assert _depmod([*base, "-A", "-n", "1.0"], capsys) == (0, "", "")
    assert not (moddir / "modules.dep").exists()
    status, out, _ = _depmod([*base, "-a", "-n", "1.0", "relative.ko"], capsys)
    assert status == 0
    assert "kernel/a.ko:\n" in out and "kernel/b.ko:\n" in out
    assert _depmod([*base, "-n", "1.0", "relative.ko"], capsys) == (
        1,
        "",
        "depmod: FATAL: relative.ko: not absolute path.\n",
    )
    status, _, _ = _depmod([*base, "-A", "1.0", f"{moddir}/kernel/a.ko"], capsys)
    assert status == 0
    assert (moddir / "modules.dep").read_bytes().count(b".ko:") == 2


def test_run_depmod_writes_prints_nothing_and_keeps_the_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The library's whole run: files written, messages kept as records, nothing printed, and
    the garbage collector left as it was found, enabled or disabled, after success or failure."""
    import gc

    from lkm.depmod import DepmodError, DepmodOptions, run_depmod

    moddir = write_tree(tmp_path, "1.0", {
        "kernel/a.ko": module_elf(exports=["a_fn"]),
        "kernel/b.ko": module_elf(imports=["a_fn"]),
    })  # fmt: skip
    options = DepmodOptions("1.0", str(tmp_path), config=("/nonexistent",))
    was_enabled = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            reporter = Reporter()
            done = run_depmod(options, reporter)
            assert gc.isenabled() is enabled
            assert done.written and done.shown == b""
            assert [name for name, _ in done.outputs][:2] == ["modules.dep", "modules.dep.bin"]
            dep = (moddir / "modules.dep").read_bytes()
            assert dict(done.outputs)["modules.dep"] == dep
            assert b"kernel/b.ko: kernel/a.ko\n" in dep
            missing = f"at {moddir}: No such file or directory"
            assert reporter.records == [
                ("WARNING", f"could not open modules.order {missing}"),
                ("WARNING", f"could not open modules.builtin {missing}"),
                ("WARNING", f"could not open modules.builtin.modinfo {missing}"),
            ]
            with pytest.raises(DepmodError) as caught:
                run_depmod(DepmodOptions("2.0", str(tmp_path), config=("/nonexistent",)))
            assert caught.value.lines == (
                ("FATAL", "could not search modules: No such file or directory"),
            )
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()
    assert capsys.readouterr() == ("", "")


def test_run_depmod_dry_run_and_verbose(tmp_path: Path) -> None:
    """-n returns the text files and writes nothing; -v's lines go to the verbose callback
    only when asked for; the records keep messages in their order."""
    from lkm.depmod import DepmodOptions, run_depmod

    moddir = write_tree(tmp_path, "1.0", {
        "kernel/a.ko": module_elf(exports=["a_fn"]),
        "kernel/b.ko": module_elf(imports=["a_fn"]),
    })  # fmt: skip
    (moddir / "modules.order").write_text("kernel/b.ko\nkernel/a.ko\n")
    lines: list[str] = []
    base = DepmodOptions("1.0", str(tmp_path), config=("/nonexistent",), dry_run=True)
    done = run_depmod(base, Reporter(verbose=lines.append))
    assert not done.written and lines == []
    assert [name for name, _ in done.outputs] == [
        "modules.dep", "modules.alias", "modules.softdep", "modules.weakdep", "modules.symbols",
        "modules.devname",
    ]  # fmt: skip
    assert done.shown.startswith(b"kernel/b.ko: kernel/a.ko\nkernel/a.ko:\n# Aliases")
    assert not (moddir / "modules.dep").exists()
    reporter = Reporter(verbose=lines.append)
    run_depmod(DepmodOptions("1.0", str(tmp_path), config=("/nonexistent",), dry_run=True,
                             verbose=True), reporter)  # fmt: skip
    assert lines == [f'{moddir}/kernel/b.ko needs "a_fn": {moddir}/kernel/a.ko\n']
    assert reporter.records == []


@pytest.mark.parametrize("case", [*CYCLE_CASES, *ENDLESS_CYCLE_CASES])
def test_cycle_report(case: str, tmp_path: Path) -> None:
    """kmod 34's lines for dependency cycles, recorded from it (the slow differential test
    compares them live); where kmod never ends, every cycle once."""
    graph, order, lines, count = {**CYCLE_CASES, **ENDLESS_CYCLE_CASES}[case]
    moddir = str(write_tree(tmp_path, "1.0", graph_tree(graph, order)))
    reporter = Reporter()
    with pytest.raises(DependencyCycleError) as caught:
        build(moddir, DepmodConfig(), reporter, jobs=1, builtin=False)
    assert reporter.records == [("ERROR", f"Cycle detected: {line}") for line in lines]
    assert caught.value.count == count


def test_external_directory_that_cannot_be_opened(tmp_path: Path) -> None:
    """Reported as kmod 34 reports it, and the run goes on with the other modules."""
    from lkm.depmod.config import External

    moddir = str(write_tree(tmp_path / "a", "1.0", {"kernel/m.ko": module_elf()}))
    (tmp_path / "file").write_bytes(b"")
    externals = (External(str(tmp_path / "missing")), External(str(tmp_path / "file")))
    reporter = Reporter()
    found = find_modules(
        moddir, DepmodConfig(("external", "built-in"), externals=externals), reporter
    )
    assert [m.relpath for m in found] == ["kernel/m.ko"]
    assert reporter.records == [
        ("ERROR", f"could not open directory {tmp_path}/missing: No such file or directory"),
        ("ERROR", f"could not open directory {tmp_path}/file: Not a directory"),
    ]


def test_compressed_modules_by_name_and_magic(tmp_path: Path) -> None:
    """``.ko.gz`` is a module file like ``.ko.xz`` (lkm is kmod built with zlib too); the
    compression is read from the bytes: an xz stream named ``.ko.gz`` is read all the same."""
    import gzip
    import lzma

    moddir = str(write_tree(tmp_path, "1.0", {
        "kernel/a.ko.gz": gzip.compress(module_elf(exports=["a_fn"]), mtime=0),
        "kernel/b.ko.gz": lzma.compress(module_elf(exports=["b_fn"], imports=["a_fn"])),
        "kernel/c.ko.xz": lzma.compress(module_elf(imports=["b_fn"])),
        "kernel/d.ko.bz2": b"not a module name",
    }))  # fmt: skip
    result = build(moddir, DepmodConfig(), Reporter(), jobs=1, builtin=False)
    assert sorted(dict(render(result))["modules.dep"].splitlines()) == [
        b"kernel/a.ko.gz:",
        b"kernel/b.ko.gz: kernel/a.ko.gz",
        b"kernel/c.ko.xz: kernel/b.ko.gz kernel/a.ko.gz",
    ]
