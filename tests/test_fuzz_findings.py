"""What the fuzzing harness (fuzz/, results in fuzz/RESULTS.md) found, kept as regressions.

Each test names the target that found the input; the input is the smallest one showing it.
"""

from __future__ import annotations

from pathlib import Path

from lkm.config import Config, Origins, load_config_located, parse_config_located


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
