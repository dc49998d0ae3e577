"""depmod's output files as one set (lkm.fileset): the commit, its record, its recovery and
the readers that follow it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lkm.depmod.output import OutputError, write_outputs
from lkm.fileset import RECORD, commit, open_set, read_record, recover

NAMES = ("modules.dep", "modules.alias.bin", "modules.symbols")


def _read(fd: int, name: str, size: int) -> bytes:
    return os.read(fd, size + 1)


def _seen(directory: Path, names: tuple[str, ...] = NAMES) -> dict[str, bytes | None]:
    opened = open_set(str(directory), names, _read, lambda _: None)
    return {name: opened[name].value for name in names}


def _old_and_new(directory: Path) -> list[tuple[str, str]]:
    """The old files in place and the new ones at temporary names: the pairs to commit."""
    pairs = []
    for i, name in enumerate(NAMES):
        (directory / name).write_bytes(b"old " + name.encode())
        temporary = f"{name}.{os.getpid()}.{i}.7"
        (directory / temporary).write_bytes(b"new " + name.encode())
        pairs.append((temporary, name))
    return pairs


def _new(name: str) -> bytes:
    return b"new " + name.encode()


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, check=True, text=True)  # fmt: skip
    return int(child.stdout)


def test_a_commit_renames_every_file_and_leaves_no_record(tmp_path: Path) -> None:
    commit(str(tmp_path), _old_and_new(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(NAMES)
    assert _seen(tmp_path) == {name: _new(name) for name in NAMES}


def test_readers_follow_a_commit_killed_between_two_renames(tmp_path: Path) -> None:
    """The record lists the pairs; the first file is renamed, the others still wait: a reader
    takes the new set, and the next run finishes the commit (kmod's readers then agree)."""
    pairs = _old_and_new(tmp_path)
    record = "lkm depmod commit 1 123\n" + "".join(f"{t} {f}\n" for t, f in pairs)
    (tmp_path / RECORD).write_text(record)
    os.rename(tmp_path / pairs[0][0], tmp_path / pairs[0][1])
    assert _seen(tmp_path) == {name: _new(name) for name in NAMES}
    assert (tmp_path / "modules.symbols").read_bytes() == b"old modules.symbols"
    recover(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(NAMES)
    assert {name: (tmp_path / name).read_bytes() for name in NAMES} == {
        name: _new(name) for name in NAMES
    }


def test_a_record_lkm_did_not_write_whole_is_ignored(tmp_path: Path) -> None:
    pairs = _old_and_new(tmp_path)
    (tmp_path / RECORD).write_text(f"lkm depmod commit 1 5\n{pairs[0][0]} ../{pairs[0][1]}\n")
    assert _seen(tmp_path)["modules.dep"] == b"old modules.dep"
    recover(str(tmp_path))
    assert read_record(str(tmp_path)) is None
    assert (tmp_path / "modules.dep").read_bytes() == b"old modules.dep"


def test_recovery_removes_temporary_files_of_gone_writers_only(tmp_path: Path) -> None:
    dead = _dead_pid()
    alive = os.getppid()
    stale = [f"modules.dep.{dead}.1.2", f"modules.lkm-cache-{dead}.tmp.bin",
             f"modules.lkm-commit-{dead}.tmp.bin"]  # fmt: skip
    kept = [f"modules.dep.{alive}.1.2", f"modules.lkm-cache-{alive}.tmp.bin", "modules.dep",
            "modules.builtin.modinfo", "modules.dep.1.2"]  # fmt: skip
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    recover(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_a_commit_between_two_opens_makes_the_reader_try_again(tmp_path: Path) -> None:
    """The reader opens the first file, a whole commit happens, it opens the others: what it
    opened is checked against the directory afterwards, and it reads again."""
    pairs = _old_and_new(tmp_path)
    calls = []

    def read_then_commit(fd: int, name: str, size: int) -> bytes:
        calls.append(name)
        if len(calls) == 1:
            commit(str(tmp_path), pairs)
        return _read(fd, name, size)

    opened = open_set(str(tmp_path), NAMES, read_then_commit, lambda _: None)
    assert {name: opened[name].value for name in NAMES} == {name: _new(name) for name in NAMES}
    assert len(calls) == 2 * len(NAMES)


def test_a_reader_outrun_by_commits_keeps_its_last_attempt_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory that changes after every attempt: the last attempt's files are returned
    open (they were closed before being handed over, and a lookup met a closed mmap)."""
    from lkm import fileset

    for name in NAMES:
        (tmp_path / name).write_bytes(name.encode())
    monkeypatch.setattr(fileset, "_ATTEMPTS", 3)
    monkeypatch.setattr(fileset, "_identity_at", lambda path: None)  # never as opened
    closed: list[bytes] = []
    opened = open_set(str(tmp_path), NAMES, _read, closed.append)
    assert {name: opened[name].value for name in NAMES} == {n: n.encode() for n in NAMES}
    assert len(closed) == 2 * len(NAMES)  # the two attempts before the last


def test_a_file_that_cannot_be_opened_is_not_a_commit(tmp_path: Path) -> None:
    """Opening fails (as for a file its mode forbids), but the file stays as it was: one
    attempt, the error kept."""
    import socket

    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "modules.dep"))  # open(2) of a socket: ENXIO
        (tmp_path / "modules.alias.bin").write_bytes(b"x")
        calls: list[str] = []

        def read(fd: int, name: str, size: int) -> bytes:
            calls.append(name)
            return _read(fd, name, size)

        opened = open_set(str(tmp_path), ("modules.dep", "modules.alias.bin"), read, print)
    assert isinstance(opened["modules.dep"].error, OSError)
    assert opened["modules.alias.bin"].value == b"x"
    assert len(calls) == 1


def test_an_opener_failure_is_kept_for_its_name(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_bytes(b"x")

    def refuse(fd: int, name: str, size: int) -> bytes:
        raise ValueError(name)

    opened = open_set(str(tmp_path), ("modules.dep", "modules.alias.bin"), refuse, print)
    assert str(opened["modules.dep"].error) == f"{tmp_path}/modules.dep"
    assert isinstance(opened["modules.alias.bin"].error, FileNotFoundError)


def test_write_outputs_commits_the_files_together(tmp_path: Path) -> None:
    for name in NAMES:
        (tmp_path / name).write_bytes(b"old")
    renamed: list[str] = []

    def written() -> bytes:
        # While the files are written nothing is renamed yet.
        renamed.extend(name for name in NAMES if (tmp_path / name).read_bytes() != b"old")
        return b"late"

    write_outputs(str(tmp_path), [("modules.dep", b"a"), ("modules.alias.bin", b"b"),
                                  ("modules.symbols", written)])  # fmt: skip
    assert renamed == []
    assert sorted(os.listdir(tmp_path)) == sorted(NAMES)
    assert (tmp_path / "modules.symbols").read_bytes() == b"late"


def test_an_interrupted_write_leaves_the_old_set(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_bytes(b"old")

    def interrupted() -> bytes:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_outputs(str(tmp_path), [("modules.dep", b"new"), ("modules.alias", interrupted)])
    assert os.listdir(tmp_path) == ["modules.dep"]
    assert (tmp_path / "modules.dep").read_bytes() == b"old"


def test_a_record_that_cannot_be_written_keeps_the_old_set(tmp_path: Path) -> None:
    """A directory where the record goes: nothing is renamed, no temporary file stays."""
    (tmp_path / RECORD / "x").mkdir(parents=True)
    (tmp_path / "modules.dep").write_bytes(b"old")
    with pytest.raises(OutputError) as caught:
        write_outputs(str(tmp_path), [("modules.dep", b"new")])
    assert caught.value.lines == (
        ("FATAL", f"could not write {tmp_path}/{RECORD}: Is a directory"),
    )
    assert sorted(os.listdir(tmp_path)) == ["modules.dep", RECORD]
    assert (tmp_path / "modules.dep").read_bytes() == b"old"
