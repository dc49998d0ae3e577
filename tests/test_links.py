"""``lkm links``: links named after kmod's tools that start lkm, made and taken away again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lkm.cli.commands import TOOLS
from lkm.links import Change, LinkError, LinkRecord, install_links, remove_links
from support.modinfo_cases import GOOD

SCRIPT = Path(sys.executable).parent / "lkm"  # the console script pip installs


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_install_makes_a_link_for_each_tool(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "bin"  # made, with its parents
    records = install_links(directory, SCRIPT, TOOLS)
    assert records == [LinkRecord(directory / name, SCRIPT, Change.CREATED) for name in TOOLS]
    assert sorted(os.listdir(directory)) == sorted(TOOLS)
    assert all(os.readlink(directory / name) == str(SCRIPT) for name in TOOLS)
    again = install_links(directory, SCRIPT, TOOLS)
    assert [record.change for record in again] == [Change.UNCHANGED] * len(TOOLS)


def test_install_replaces_a_link_to_another_lkm(tmp_path: Path) -> None:
    old = tmp_path / "old-venv" / "lkm"  # an lkm installed elsewhere before, since removed
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "modinfo").symlink_to(old)
    records = install_links(tmp_path / "bin", SCRIPT, ["modinfo"])
    assert records == [LinkRecord(tmp_path / "bin" / "modinfo", SCRIPT, Change.REPLACED)]
    assert os.readlink(tmp_path / "bin" / "modinfo") == str(SCRIPT)


@pytest.mark.parametrize("kind", ["file", "link"])
def test_install_replaces_nothing_else_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    directory = tmp_path / "bin"
    directory.mkdir()
    taken = directory / "rmmod"  # after some names that would be free
    if kind == "file":
        taken.write_text("#!/bin/sh\n")
        reason = "exists and is not a link to lkm; not replaced"
    else:
        taken.symlink_to("/bin/true")
        reason = "is a link to /bin/true, not to lkm; not replaced"
    with pytest.raises(LinkError) as caught:
        install_links(directory, SCRIPT, TOOLS)
    assert str(caught.value) == f"{taken}: {reason}"
    assert os.listdir(directory) == ["rmmod"]


def test_remove_takes_only_links_to_lkm(tmp_path: Path) -> None:
    directory = tmp_path / "bin"
    install_links(directory, SCRIPT, ["modinfo", "lsmod"])
    (directory / "depmod").write_text("mine\n")
    (directory / "insmod").symlink_to("/bin/true")
    records = remove_links(directory, SCRIPT, ["modinfo", "lsmod", "depmod", "insmod", "kmod"])
    assert [(r.path.name, r.change) for r in records] == [
        ("modinfo", Change.REMOVED),
        ("lsmod", Change.REMOVED),
        ("depmod", Change.NOT_OURS),
        ("insmod", Change.NOT_OURS),
        ("kmod", Change.ABSENT),
    ]
    assert sorted(os.listdir(directory)) == ["depmod", "insmod"]


def test_a_tool_started_through_its_link(tmp_path: Path) -> None:
    directory = tmp_path / "bin"
    done = run([str(SCRIPT), "links", "install", str(directory)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [
        f"created {directory / name} -> {SCRIPT}" for name in TOOLS
    ]
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    # First on PATH, the link is what a bare `modinfo` runs.
    env = {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}
    by_name = run(["modinfo", "-F", "license", str(module)], env=env)
    assert (by_name.stdout, by_name.stderr, by_name.returncode) == (b"GPL\n", b"", 0)
    missing = run([str(directory / "modprobe"), "-n", "-d", str(tmp_path), "nothere"])
    assert missing.stderr.startswith(b"modprobe: ")  # it speaks as modprobe
    assert run([str(directory / "kmod"), "--help"]).stdout.startswith(b"kmod - ")


def test_cli_refuses_in_one_line_and_removes(tmp_path: Path) -> None:
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "lsmod").write_text("mine\n")
    refused = run([str(SCRIPT), "links", "install", str(directory)])
    assert (refused.stdout, refused.returncode) == (b"", 1)
    assert (
        refused.stderr
        == (
            f"lkm links: ERROR: {directory / 'lsmod'}: exists and is not a link to lkm; "
            "not replaced\n"
        ).encode()
    )
    (directory / "lsmod").unlink()
    assert run([str(SCRIPT), "links", "install", str(directory)]).returncode == 0
    (directory / "rmmod").unlink()
    (directory / "rmmod").write_text("mine\n")
    removed = run([str(SCRIPT), "links", "remove", str(directory)])
    assert removed.returncode == 1
    assert removed.stderr == (
        f"lkm links: ERROR: {directory / 'rmmod'}: not a link to lkm; left alone\n".encode()
    )
    assert os.listdir(directory) == ["rmmod"]


def test_cli_usage_errors(tmp_path: Path) -> None:
    done = run([str(SCRIPT), "links", "frob", str(tmp_path)])
    assert (done.stdout, done.returncode) == (b"", 1)
    assert done.stderr == b"lkm links: ERROR: expected 'install DIR' or 'remove DIR'.\n"
    assert run([str(SCRIPT), "links", "--help"]).stdout.startswith(b"Usage:\n\tlkm links install")
