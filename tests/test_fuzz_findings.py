"""What the fuzzing harness (fuzz/, results in fuzz/RESULTS.md) found, kept as regressions.

Each test names the target that found the input; the input is the smallest one showing it.
"""

from __future__ import annotations

import base64
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lkm.config import (
    Config,
    Origins,
    load_config_located,
    matches,
    parse_config,
    parse_config_located,
)
from lkm.errors import IndexFormatError
from lkm.index import Index, IndexValue
from lkm.wildcard import fnmatch_regex


@contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the suite, when the block takes longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_file_of_only_comments_without_its_last_newline_reads_as_nothing() -> None:
    # modprobe.d target: zip(strict=True) raised ValueError placing the (no) entries' origins.
    assert parse_config_located("# only a comment", "x.conf") == (Config(), Origins())
    assert parse_config_located("#a\\\n#b", "x.conf") == (Config(), Origins())


def test_a_directory_with_such_a_file_is_read_with_the_others(tmp_path: Path) -> None:
    # What `lkm status` and `lkm audit` read: the comment-only file counts for nothing.
    (tmp_path / "a.conf").write_text("# nothing here")
    (tmp_path / "b.conf").write_text("options dummy numdummies=2\n")
    config, origins = load_config_located([str(tmp_path)], cmdline=None)
    assert [(o.module, o.options) for o in config.options] == [("dummy", "numdummies=2")]
    assert [(o.path, o.line) for o in origins.options] == [(f"{tmp_path}/b.conf", 1)]


# index target: a damaged alias index whose wildcard branch holds a key with 61 stars in a
# row; searching for that key took longer than libFuzzer's 10 s (the stars' ``.*`` backtracked
# into one another, exponentially).
_STARS_INDEX = base64.b64decode(
    "sAf0VwACAAEgAAAMYXWgAABiAAEAACAAALXAAAGCAAAAAAAAAAAAAAAAIAABtSAAAnAAAAAAAAAAAAAgAAAAAAAA"
    "AAAAAMAAAZugAAPEAAAAAAAAAACgAAdaAAAAAKAAB6FjcGkqOgBHScAAAHYAAAAAwAAAm0//////////////////"
    "//////////8/KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioq"
    "KioqKtbV1dEqKioqKjoqAAAAAAEAAB5pbnQBAAAADmcAMjAyAAAAAAAAwAAKYXfAACo="
)


def test_a_key_of_many_stars_is_searched_at_once() -> None:
    index = Index.from_bytes(_STARS_INDEX, path="modules.alias.bin")
    found = []
    with pytest.raises(IndexFormatError) as raised:
        for key, _ in index.items():
            found.append(key)
    assert str(raised.value) == (
        "modules.alias.bin: reference 0x00010000 points outside the nodes (bytes 0xc to 0xf8) "
        "(at byte 0x12)"
    )
    assert len(found) == 2
    with _within(5):
        assert index.search_wildcard(found[0]) == [IndexValue(7785, "nt\x01")]


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        (b"?" + b"*" * 40 + b":x", b"?" + b"a" * 60, False),
        (b"?" + b"*a" * 30 + b"b", b"?" + b"a" * 80, False),
        (b"[a]" + b"*a" * 30, b"a" * 80, True),
        (b"*a*?b*[cd]*", b"xxaxxbxxdxx", True),
        (b"*a*?b*[cd]*", b"xxaxxbxx", False),
    ],
)
def test_stars_do_not_backtrack_into_one_another(
    pattern: bytes, name: bytes, expected: bool
) -> None:
    # The same patterns in modprobe.d lines go through the same translation.
    with _within(5):
        assert (re.match(fnmatch_regex(pattern), name, re.DOTALL) is not None) is expected
        assert matches(pattern.decode(), name.decode()) is expected


def test_a_softdep_line_of_many_stars_is_matched_at_once() -> None:
    # modprobe.d target: the same backtracking, reached through a softdep line's pattern.
    config = parse_config("softdep ************cifs cmac\n", "x.conf")
    with _within(5):
        assert config.softdep("pci:v00008086d000010D3sv00000000") is None
        assert config.softdep("smb3-cifs") == config.softdeps[0]
