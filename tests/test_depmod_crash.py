"""depmod killed at any moment, and depmod beside many readers, on real modules: lkm's readers
see the complete old set of files or the complete new one, never a mix and never a part, and
the next run writes the new set byte for byte.

The kills are SIGKILL at random moments of a run (a fixed seed), spread over its whole length
(start-up, the scan, the writing), and from inside ``os.rename`` after its k-th call, so that
every moment of the commit's burst is hit too (a timer almost never lands there). Each is done
for a full run (cache off) and for an incremental one (cache on, after modules were added,
changed and removed).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lkm.depmod.cache import CACHE_NAME, load
from lkm.fileset import RECORD, open_set, recover
from lkm.moddir import ModuleDirectory
from support import world
from support.depmod_trees import KEPT, OUTPUTS

pytestmark = pytest.mark.slow

SCRATCH = world.CHROOT / "scratch-depmod-crash"
TEMPORARY = re.compile(r"modules\.[a-z.]+\.\d+\.\d+\.\d+|modules\.lkm-(cache|commit)-\d+\.tmp\.bin")
KILLS = 200  # per kind of run
# Runs lkm with one os function (CRASH_CALL: rename, whose os.replace is wrapped too, or fsync)
# killing the process after its k-th call (CRASH_AFTER).
KILLER = """
import os, runpy, signal, sys
limit = int(os.environ["CRASH_AFTER"])
calls = 0
def wrap(real):
    def call(*args, **kwargs):
        global calls
        result = real(*args, **kwargs)
        calls += 1
        if calls == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return call
names = ("rename", "replace") if os.environ["CRASH_CALL"] == "rename" else ("fsync",)
for name in names:
    setattr(os, name, wrap(getattr(os, name)))
sys.argv = ["lkm", *sys.argv[1:]]
runpy.run_module("lkm", run_name="__main__", alter_sys=True)
"""


def _slice(name: str, size: int, seed: int) -> tuple[Path, Path, str, list[Path]]:
    """``size`` modules of a real tree (hard links) with its modules.order and builtin files,
    and spare modules of the same tree."""
    tree = world.tree(name)
    root = SCRATCH / f"{name}-{size}-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    moddir = root / "lib/modules" / tree.kver
    moddir.mkdir(parents=True)
    modules = sorted(tree.modules())
    random.Random(seed).shuffle(modules)
    for path in modules[:size]:
        target = moddir / path.relative_to(tree.moddir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    for kept in KEPT:
        shutil.copyfile(tree.moddir / kept, moddir / kept)
    return root, moddir, tree.kver, modules[size : size + 10]


def _depmod(
    root: Path,
    kver: str,
    *,
    cache: bool,
    extra: tuple[str, ...] = (),
    killer: tuple[str, int] | None = None,
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LKM_DEPMOD_CACHE": "1" if cache else "0"}
    if killer is not None:
        env["CRASH_CALL"], env["CRASH_AFTER"] = killer[0], str(killer[1])
        command = [sys.executable, "-c", KILLER]
    else:
        command = [sys.executable, "-m", "lkm"]
    command += ["depmod", *extra, "-b", str(root), kver]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _run(root: Path, kver: str, *, cache: bool, extra: tuple[str, ...] = ()) -> None:
    process = _depmod(root, kver, cache=cache, extra=extra)
    out, err = process.communicate()
    assert (process.returncode, out, err) == (0, b"", b""), err


def _on_disk(moddir: Path) -> dict[str, bytes]:
    return {name: (moddir / name).read_bytes() for name in OUTPUTS}


def _seen(moddir: Path) -> dict[str, bytes]:
    """The outputs as lkm's readers take them (the commit record followed)."""
    opened = open_set(str(moddir), OUTPUTS, lambda fd, _, size: os.read(fd, size + 1), print)
    return {name: opened[name].value or b"" for name in OUTPUTS}


def _extras(moddir: Path) -> set[str]:
    return {name for name in os.listdir(moddir) if name.startswith("modules.")} - set(
        OUTPUTS + KEPT + (CACHE_NAME,)
    )


def _put(moddir: Path, files: dict[str, bytes]) -> None:
    for name in _extras(moddir):
        (moddir / name).unlink()
    for name, data in files.items():
        (moddir / name).write_bytes(data)


def _change(moddir: Path, spares: list[Path]) -> list[str]:
    """One module added, one changed (another module's bytes under its name), one removed."""
    present = sorted(p for p in moddir.rglob("*.ko"))
    added = moddir / "kernel/added" / spares[0].name
    added.parent.mkdir(parents=True)
    shutil.copyfile(spares[0], added)
    changed, removed = present[0], present[1]
    replacement = changed.with_name(changed.name + ".new")
    shutil.copyfile(spares[1], replacement)
    os.rename(replacement, changed)
    removed.unlink()
    return [str(p.relative_to(moddir)) for p in (added, changed, removed)]


def _state(moddir: Path, old: dict[str, bytes], new: dict[str, bytes]) -> str:
    seen = _seen(moddir)
    assert seen in (old, new), [n for n in OUTPUTS if seen[n] not in (old[n], new[n])]
    for name, data in _on_disk(moddir).items():
        assert data in (old[name], new[name]), f"{name} is neither the old nor the new file"
    extras = _extras(moddir)
    assert all(TEMPORARY.fullmatch(n) or n == RECORD for n in extras), extras
    # The phase the kill hit, from what it left.
    if RECORD in extras:
        return "in the commit's burst"
    if extras:
        return "writing (new set)" if seen == new else "writing"
    if seen == new:
        return "after the commit"
    return "before writing"


@pytest.mark.parametrize("cache", [False, True], ids=["full", "incremental"])
def test_killed_at_200_moments(cache: bool) -> None:
    SCRATCH.mkdir(exist_ok=True)
    root, moddir, kver, spares = _slice("bookworm-amd64", 150, seed=5)
    try:
        _run(root, kver, cache=True)
        old = _on_disk(moddir)
        old_files = {**old, CACHE_NAME: (moddir / CACHE_NAME).read_bytes()}
        if not cache:
            del old_files[CACHE_NAME]
            (moddir / CACHE_NAME).unlink()
        _change(moddir, spares)
        start = time.monotonic()
        _run(root, kver, cache=cache)
        length = time.monotonic() - start
        new = _on_disk(moddir)
        assert new != old
        renames = 13 if cache else 12  # the record, eleven files and the cache
        rng = random.Random(2026)
        phases: Counter[str] = Counter()
        moments: Counter[str] = Counter()
        next_runs = 0
        for kill in range(KILLS):
            _put(moddir, old_files)
            if kill % 4 == 3:  # every step of the commit's burst (and the cache's rename)
                killer = ("rename", 1 + (kill // 4) % renames)
            elif kill % 8 == 1:  # after each file was flushed, before the commit
                killer = ("fsync", 1 + (kill // 8) % len(OUTPUTS))
            else:
                killer = None
            if killer is not None:
                process = _depmod(root, kver, cache=cache, killer=killer)
                process.communicate()
                moment = f"after {killer[0]} {killer[1]}"
            else:
                delay = rng.uniform(0, length * 1.05)
                process = _depmod(root, kver, cache=cache)
                time.sleep(delay)
                process.send_signal(signal.SIGKILL)
                process.communicate()
                moment = f"at {int(10 * delay / length) * 10:3d}% of a run"
            if process.returncode == 0:
                phase = "finished"
            else:
                assert process.returncode == -signal.SIGKILL
                phase = _state(moddir, old, new)
            kind = moment.split()[1] if killer else "timer"
            phases[f"{phase} ({kind})"] += 1
            moments[moment if killer is None else f"after a {kind}"] += 1
            # What a reader sees is what the directory holds once a run has recovered it.
            seen = _seen(moddir)
            recover(str(moddir))
            assert _extras(moddir) == set() and _on_disk(moddir) == seen, moment
            if phase in ("before writing", "finished") and kill % 10:
                continue  # the old set or the new one untouched: the next run is the first's
            _run(root, kver, cache=cache)
            assert _on_disk(moddir) == new, moment
            assert _extras(moddir) == set()
            if cache:
                load(str(moddir / CACHE_NAME))  # whole and ours, whatever the kill hit
            next_runs += 1
        print(f"\n{'incremental' if cache else 'full'} depmod killed {KILLS} times "
              f"(an uninterrupted run takes {length:.2f} s); the next run checked after "
              f"{next_runs}")  # fmt: skip
        for moment, count in sorted(moments.items()):
            print(f"  {count:4d} {moment}")
        print("  what the kills left:")
        for phase, count in sorted(phases.items()):
            print(f"  {count:4d} {phase}")
        # The kills reached every phase.
        left = {p.split(" (")[0] for p in phases}
        assert left >= {"before writing", "writing", "in the commit's burst", "finished"}, left
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- readers beside a writer ----------------------------------------------------------------


def _reader_answers(directory: str) -> tuple[object, ...]:
    with ModuleDirectory(directory) as moddir:
        return _ask(moddir)


QUERIES: dict[str, tuple[str, ...]] = {}


def _ask(moddir: ModuleDirectory) -> tuple[object, ...]:
    return (
        tuple(_hashable(moddir.dependency_line(name)) for name in QUERIES["names"]),
        tuple(tuple(moddir.alias_owners(alias)) for alias in QUERIES["aliases"]),
        tuple(tuple(moddir.symbol_owners(symbol)) for symbol in QUERIES["symbols"]),
        moddir.is_builtin(QUERIES["builtin"][0]),
        len(moddir.module_names()),
    )


def _hashable(line: tuple[str, list[str]] | None) -> tuple[str, tuple[str, ...]] | None:
    return None if line is None else (line[0], tuple(line[1]))


def _lkm(*args: str) -> tuple[int, bytes, bytes]:
    done = subprocess.run([sys.executable, "-m", "lkm", *args], capture_output=True, check=False)
    return done.returncode, done.stdout, done.stderr


def test_readers_beside_depmod_in_a_loop() -> None:
    """depmod over one tree again and again, alternately with and without a depmod.d
    ``exclude net`` (the modules of every directory so named left out of the indexes), while
    readers query the tree: in-process lookups in tight loops and ``lkm modprobe -R``,
    ``--show-depends`` and ``modinfo`` by name. Every answer is the answer of one whole set.
    Then two depmods at once, one with each configuration, ten times."""
    SCRATCH.mkdir(exist_ok=True)
    root, moddir, kver, _ = _slice("bookworm-amd64", 400, seed=9)
    conf = {"plain": SCRATCH / "conf-plain", "exclude": SCRATCH / "conf-exclude"}
    try:
        for path in conf.values():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
        # Directories named net (kernel/net, drivers/net) hold modules others depend on.
        (conf["exclude"] / "x.conf").write_text("exclude net\n")
        configs = {key: ("-C", str(path)) for key, path in conf.items()}
        _run(root, kver, cache=True, extra=configs["exclude"])
        excluded = ModuleDirectory(str(moddir))
        excluded.index("modules.dep.bin")  # the whole set opened now, kept through the next run
        _run(root, kver, cache=True, extra=configs["plain"])
        plain = ModuleDirectory(str(moddir))
        names = [n for n in plain.module_names()
                 if plain.dependency_line(n) and not excluded.dependency_line(n)]  # fmt: skip
        depending = [
            n
            for n in plain.module_names()
            if n not in names
            and any("/net/" in d for d in (plain.dependency_line(n) or ("", []))[1])
        ]
        gone = set(names)
        aliases = [
            line.split()[1]
            for line in (moddir / "modules.alias").read_text().splitlines()
            if line.startswith("alias ")
            and line.split()[2] in gone
            and not set("*?[") & set(line.split()[1])
        ][:3]
        symbols = [line.split()[1] for line in (moddir / "modules.symbols").read_text().splitlines()
                   if line.startswith("alias ") and line.split()[2] in gone][:3]  # fmt: skip
        assert names and depending and aliases and symbols
        builtin = (moddir / "modules.builtin").read_text().split()[0].rsplit("/", 1)[1]
        QUERIES.update(names=(names[0], depending[0], names[-1]), aliases=tuple(aliases),
                       symbols=tuple(symbols), builtin=(builtin.split(".")[0],))  # fmt: skip
        expected = {_ask(plain), _ask(excluded)}
        assert len(expected) == 2
        base = ("-d", str(root), "-S", kver)
        commands = [
            ("modprobe", *base, "-R", aliases[0]),
            ("modprobe", *base, "--show-depends", depending[0]),
            ("modinfo", "-b", str(root), "-k", kver, "-F", "depends", names[0]),
            ("modprobe", *base, "--show-depends", names[-1]),
        ]
        plain.close()
        excluded.close()
        answers: dict[tuple[str, ...], set[tuple[int, bytes, bytes]]] = {}
        for key in ("exclude", "plain"):
            _run(root, kver, cache=True, extra=configs[key])
            for command in commands:
                answers.setdefault(command, set()).add(_lkm(*command))
        assert all(len(found) == 2 for found in answers.values()), answers
        stop = threading.Event()
        problems: list[str] = []
        counts: Counter[str] = Counter()

        def in_process() -> None:
            while not stop.is_set():
                answer = _reader_answers(str(moddir))
                counts["lookups in lkm's reader"] += 1
                if answer not in expected:
                    problems.append(f"mixed answer {answer}")

        def commands_loop(offset: int) -> None:
            while not stop.is_set():
                command = commands[(counts["tool runs"] + offset) % len(commands)]
                counts["tool runs"] += 1
                if _lkm(*command) not in answers[command]:
                    problems.append(f"{command}: {_lkm(*command)}")

        readers = [threading.Thread(target=in_process) for _ in range(2)]
        readers += [threading.Thread(target=commands_loop, args=(i,)) for i in range(4)]
        for reader in readers:
            reader.start()
        try:
            for run in range(24):
                _run(root, kver, cache=True, extra=configs["exclude" if run % 2 else "plain"])
                counts["depmod runs"] += 1
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        print(f"\nreaders beside depmod: {dict(counts)}")
        assert not problems, problems[:5]
        assert counts["tool runs"] > 50 and counts["lookups in lkm's reader"] > 200

        # Two writers at once, each with its own configuration: one set or the other, whole.
        sets = {}
        for key, extra in configs.items():
            _run(root, kver, cache=True, extra=extra)
            sets[key] = _on_disk(moddir)
        outcomes: Counter[str] = Counter()
        for _ in range(10):
            pair = [_depmod(root, kver, cache=True, extra=configs[key]) for key in configs]
            for process in pair:
                out, err = process.communicate()
                assert (process.returncode, out, err) == (0, b"", b"")
            on_disk = _on_disk(moddir)
            assert on_disk in sets.values()
            assert _extras(moddir) == set()
            load(str(moddir / CACHE_NAME))
            outcomes[next(k for k, v in sets.items() if v == on_disk)] += 1
        print(f"two writers at once, the set that stayed: {dict(outcomes)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for path in conf.values():
            shutil.rmtree(path, ignore_errors=True)
