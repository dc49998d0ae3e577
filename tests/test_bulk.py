"""Reading many modules in worker processes gives what reading them one by one gives."""

from __future__ import annotations

import errno
import lzma
from pathlib import Path

from lkm.bulk import ModuleSummary, summarize, summarize_many
from support.modinfo_cases import GOOD, PARAMS


def test_many_in_order_with_failures(tmp_path: Path) -> None:
    paths = []
    for i in range(100):
        path = tmp_path / f"m{i}.ko.xz"
        data = GOOD if i % 2 else PARAMS
        path.write_bytes(b"broken" if i % 17 == 0 else lzma.compress(data))
        paths.append(str(path))
    serial = [summarize(p) for p in paths]
    parallel = list(summarize_many(paths, jobs=2, chunk=8))
    assert parallel == serial
    broken = serial[0]
    assert broken.errno == errno.ENOEXEC
    assert broken.modinfo == ()
    assert serial[1].modinfo[0] == ("license", "GPL")


def test_missing_file(tmp_path: Path) -> None:
    summary = summarize(str(tmp_path / "nothing.ko"))
    assert summary == ModuleSummary(
        str(tmp_path / "nothing.ko"),
        (),
        None,
        f"could not read '{tmp_path}/nothing.ko': No such file or directory",
        errno.ENOENT,
    )
