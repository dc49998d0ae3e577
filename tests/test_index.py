"""kmod's binary index: hand-built files, exact errors, kmod 34's byte layout and merge order."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.errors import IndexFormatError, IndexMapError, LkmError
from lkm.index import Index, IndexBuilder, IndexValue, index_bytes, write_index
from lkm.wildcard import fnmatch_regex

HEADER = bytes.fromhex("b007f457 00020001")
PREFIX, VALUES, CHILDS = 0x80000000, 0x40000000, 0x20000000


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def entries_of(index: Index) -> list[tuple[str, list[tuple[int, str]]]]:
    return [(k, [(v.priority, v.value) for v in vs]) for k, vs in index.items()]


# -- kmod 34's bytes, as its depmod wrote them ---------------------------------------------

# modules.builtin.bin of a tree whose modules.builtin lists one module, abc: the root never
# has a prefix, so "a" is an edge and "bc" the child's prefix.
KMOD_ONE_KEY = (
    HEADER
    + u32(CHILDS | 12)
    + b"aa"
    + u32(PREFIX | VALUES | 0x12)
    + b"bc\0"
    + u32(1)
    + u32(0)
    + b"\0"
)


def test_empty_index_is_twelve_bytes() -> None:
    assert write_index([]) == HEADER + u32(12)
    assert list(Index.from_bytes(HEADER + u32(12)).items()) == []


def test_one_key_matches_kmod() -> None:
    assert write_index([("abc", "", 0)]) == KMOD_ONE_KEY
    index = Index.from_bytes(KMOD_ONE_KEY)
    assert index.lookup("abc") == [IndexValue(0, "")]
    assert index.lookup("ab") == []
    assert index.lookup("abcd") == []


def test_equal_priorities_come_out_in_reverse_insertion_order() -> None:
    # Pinned with kmod 34: builtin aliases m1, m2, m3 for one key are stored m3, m2, m1.
    data = write_index([("abc", "m1", 0), ("abc", "m2", 0), ("abc", "m3", 0)])
    assert Index.from_bytes(data).lookup("abc") == [
        IndexValue(0, "m3"),
        IndexValue(0, "m2"),
        IndexValue(0, "m1"),
    ]


def test_values_sorted_by_priority_and_duplicates_kept() -> None:
    data = write_index([("k", "b", 7), ("k", "a", 3), ("k", "a", 3), ("k", "c", 5)])
    assert [(v.priority, v.value) for v in Index.from_bytes(data).lookup("k")] == [
        (3, "a"),
        (3, "a"),
        (5, "c"),
        (7, "b"),
    ]


def test_node_kinds_and_child_table_holes() -> None:
    # "a" ends on the node that also branches, "a\x01z" and "a\x7fz" need a 127-slot table.
    data = write_index([("ab", "v1", 1), ("a", "v0", 0), ("a\x01z", "x", 2), ("a\x7fz", "y", 3)])
    index = Index.from_bytes(data)
    assert entries_of(index) == [
        ("a", [(0, "v0")]),
        ("a\x01z", [(2, "x")]),
        ("ab", [(1, "v1")]),
        ("a\x7fz", [(3, "y")]),
    ]


def test_root_last_layout_is_followed() -> None:
    # An older writer's file: children first, the root at the end. Keys "ab" and "ac".
    leaf_b = 12
    leaf_c = leaf_b + 10
    root = leaf_c + 10
    data = (
        HEADER
        + u32(CHILDS | PREFIX | root)
        + u32(1)
        + u32(4)
        + b"x\0"  # at 12: the value block of leaf b (count 1, priority 4, "x")
        + u32(1)
        + u32(5)
        + b"y\0"
        + b"a\0"  # the root: prefix "a", children b..c
        + b"bc"
        + u32(VALUES | leaf_b)
        + u32(VALUES | leaf_c)
    )
    index = Index.from_bytes(data)
    assert entries_of(index) == [("ab", [(4, "x")]), ("ac", [(5, "y")])]
    assert index.lookup("ac") == [IndexValue(5, "y")]


# -- malformed files: exact errors with path and offset -------------------------------------


def error_of(data: bytes) -> IndexFormatError:
    with pytest.raises(IndexFormatError) as info:
        index = Index.from_bytes(data, path="x.bin")
        list(index.items())
    return info.value


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "truncated header: expected 12 bytes, found 0", 0),
        (HEADER[:5], "truncated header: expected 12 bytes, found 5", 0),
        (
            bytes.fromhex("b007f458 00020001 0000000c"),
            "bad magic: expected 0xb007f457, found 0xb007f458",
            0,
        ),
        (
            bytes.fromhex("b007f457 00010001 0000000c"),
            "unsupported version: expected 0x00020001, found 0x00010001",
            4,
        ),
        (
            HEADER + u32(CHILDS | 0x40),
            "reference 0x20000040 points outside the nodes (bytes 0xc to 0xc)",
            8,
        ),
        (HEADER + u32(4), "reference 0x00000004 points outside the nodes (bytes 0xc to 0xc)", 8),
        (HEADER + u32(PREFIX | 12) + b"abc", "unterminated prefix: no NUL before the end", 12),
        (HEADER + u32(CHILDS | 12) + b"a", "truncated child table: expected first and last", 12),
        (
            HEADER + u32(CHILDS | 12) + b"ab" + u32(0),
            "truncated child table: expected 2 references, found 1",
            14,
        ),
        (
            HEADER + u32(CHILDS | 12) + b"ba",
            "bad child table: first character 0x62 is after last 0x61",
            12,
        ),
        (HEADER + u32(VALUES | 12) + b"\0\0", "truncated values: expected a 4-byte count", 12),
        (
            HEADER + u32(VALUES | 12) + u32(1000) + b"\0" * 8,
            "truncated values: 1000 values cannot fit in 8 bytes",
            12,
        ),
        (
            HEADER + u32(VALUES | 12) + u32(1) + u32(0) + b"abc",
            "unterminated value: no NUL before the end",
            16,
        ),
        (
            HEADER + u32(CHILDS | 12) + b"aa" + u32(CHILDS | 12),
            "reference cycle: node 0xc is its own ancestor",
            14,
        ),
        (
            HEADER + u32(CHILDS | 12) + b"ab" + u32(VALUES | 22) + u32(VALUES | 22) + u32(0),
            "node 0x16 is referenced twice in one trie",
            18,
        ),
    ],
)
def test_malformed(data: bytes, message: str, offset: int) -> None:
    err = error_of(data)
    assert err.path == "x.bin"
    assert err.offset == offset
    assert err.detail.startswith(message)
    assert str(err).startswith(f"x.bin: {message}")
    assert str(err).endswith(f"(at byte {offset:#x})")


def test_cycle_does_not_hang_lookups_or_searches() -> None:
    data = HEADER + u32(CHILDS | 12) + b"aa" + u32(CHILDS | 12)
    index = Index.from_bytes(data)
    assert index.lookup("a" * 1000) == []
    assert index.search_wildcard("a" * 1000) == []


def test_open_maps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "modules.alias.bin"
    path.write_bytes(write_index([("pci:v*", "m", 1)]))
    with Index.open(path) as index:
        assert index.search_wildcard("pci:v1") == [IndexValue(1, "m")]
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(IndexFormatError, match=r"empty\.bin: truncated header"):
        Index.open(empty)


def test_writer_rejects_what_the_format_cannot_hold() -> None:
    builder = IndexBuilder()
    with pytest.raises(IndexFormatError, match=r"byte 0xc3 at position 1, expected 7-bit ASCII"):
        builder.add("x\u00e9y", "m", 0)
    with pytest.raises(IndexFormatError, match="contains a NUL"):
        builder.add("k", "a\0b", 0)
    with pytest.raises(IndexFormatError, match="does not fit in 32 bits"):
        builder.add("k", "m", 1 << 32)
    assert len(builder) == 0


# -- wildcard search: merge order pinned against kmod 34's modprobe -R ----------------------


def search(entries: list[tuple[str, str, int]], key: str) -> list[str]:
    return [v.value for v in Index.from_bytes(write_index(entries)).search_wildcard(key)]


def test_wildcard_merge_order_matches_kmod() -> None:
    aliases = [
        ("char_major_4_*", "ma", 5),
        ("char_major_4_6?", "mb", 5),
        ("char_major_4_64", "mc", 5),
        ("char_major_5", "md", 1),
        ("char_major_[45]_64", "me", 5),
        ("char*", "mf", 9),
    ]
    assert search(aliases, "char_major_4_64") == ["mc", "mb", "ma", "me", "mf"]
    assert search(aliases, "char_major_4_65") == ["mb", "ma", "mf"]
    assert search(aliases, "char_major_5") == ["md", "mf"]
    # A literal "*" in the key follows the "*" edge too: kmod reports the hit twice.
    assert search(aliases, "char_major_4_*") == ["ma", "ma", "mf"]
    assert search(aliases, "cha") == []


def test_wildcard_ties_and_subtree_order_match_kmod() -> None:
    aliases = [
        ("x*", "ma", 5),
        ("x*", "mb", 5),
        ("xy", "mc", 5),
        ("xy", "md", 5),
        ("x?", "me", 5),
        ("xa", "mf", 7),
    ]
    assert search(aliases, "xy") == ["mc", "md", "me", "ma", "mb"]
    assert search(aliases, "xz") == ["me", "ma", "mb"]
    subtree = [("*", "m10", 3), ("*[ab]", "m0", 3), ("?[ab]", "m8", 2)]
    assert search(subtree, "xa") == ["m8", "m10", "m0"]
    ends = [("x", "m1", 5), ("x*", "m2", 5), ("x?", "m3", 5), ("*", "m5", 5), ("?", "m6", 5)]
    assert search(ends, "x") == ["m1", "m2", "m6", "m5"]


def test_wildcard_inside_a_prefix() -> None:
    aliases = [("pre*fix", "ma", 5), ("pa", "mb", 5), ("pre*fix", "mc", 3)]
    assert search(aliases, "prefix") == ["mc", "ma"]
    assert search(aliases, "preXXfix") == ["mc", "ma"]
    assert search(aliases, "pre") == []


def test_backslash_in_the_literal_part_escapes_nothing() -> None:
    # kmod 34 matches only the part from the wildcard on, so "\*" below a literal "\" is a star.
    aliases = [("\\*", "m5", 2), ("\\*\\a", "m6", 2)]
    # Here "*" sits inside the prefix of the node below "\\": only the wildcard walk runs.
    assert search(aliases, "\\*\\a") == ["m5", "m6"]
    # With a sibling, "*" is an edge: the wildcard walk and the literal path both report m6.
    assert search([*aliases, ("\\ab", "m4", 1)], "\\*\\a") == ["m6", "m5", "m6"]


# -- fnmatch(3) ----------------------------------------------------------------------------


def c_fnmatch() -> Callable[[bytes, bytes, int], int] | None:
    """glibc's fnmatch, the reference kmod links against; None elsewhere (musl differs)."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    func = libc.fnmatch
    func.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    func.restype = ctypes.c_int
    return func


def py_fnmatch(pattern: bytes, name: bytes) -> bool:
    return re.match(fnmatch_regex(pattern), name, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        (b"[!a]", b"b", True),
        (b"[^a]", b"b", True),  # glibc negates with ^ too; Python's fnmatch does not
        (b"[^a]", b"^", True),
        (b"\\*", b"*", True),
        (b"\\*", b"x", False),
        (b"\\", b"\\", False),  # a lone trailing backslash matches nothing
        (b"[]a]", b"]", True),
        (b"[a-c]", b"b", True),
        (b"[[:digit:]]x", b"1x", True),
        (b"[a[:foo:]]", b"a", True),  # members before an unknown class still match
        (b"[![:foo:]]", b"b", False),
        (b"[ab", b"[ab", True),  # an unclosed bracket is a literal [
        (b"a*/b", b"a/x/b", True),  # flags 0: * crosses /
        (b"?", b".", True),
        (b"[[.b.]]", b"b", True),
    ],
)
def test_fnmatch_cases(pattern: bytes, name: bytes, expected: bool) -> None:
    assert py_fnmatch(pattern, name) is expected


GLOB_ATOMS = [bytes([c]) for c in b"ab]*?[!^-\\:/."] + [b"[:alpha:]", b"[:digit:]", b"[a-c]"]


@settings(max_examples=2000)
@given(
    st.lists(st.sampled_from(GLOB_ATOMS), max_size=7).map(b"".join),
    st.binary(max_size=5).map(lambda b: bytes(c % 0x60 + 0x20 for c in b)),
)
def test_fnmatch_agrees_with_glibc(pattern: bytes, name: bytes) -> None:
    func = c_fnmatch()
    if func is None:
        pytest.skip("no glibc fnmatch to compare with")
    # Known gap: a range ending in a [:class:] (e.g. "[*-[:upper:]") is not modelled.
    if re.search(rb"-\[:", pattern):
        return
    assert py_fnmatch(pattern, name) is (func(pattern, name, 0) == 0)


# -- properties ----------------------------------------------------------------------------

KEY = st.text(alphabet="ab_:*?[]\\x", max_size=6)
VALUE = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=4)
ENTRIES = st.lists(st.tuples(KEY, VALUE, st.integers(0, 3)), max_size=25)


def model(entries: list[tuple[str, str, int]]) -> dict[str, list[IndexValue]]:
    values: dict[str, list[tuple[int, str]]] = {}
    for key, value, priority in entries:
        values.setdefault(key, []).append((priority, value))
    return {
        key: [IndexValue(p, v) for p, v in sorted(reversed(vs), key=lambda e: e[0])]
        for key, vs in values.items()
    }


@given(ENTRIES)
def test_write_then_read_gives_the_entries_back(entries: list[tuple[str, str, int]]) -> None:
    index = Index.from_bytes(write_index(entries))
    expected = model(entries)
    got = dict(index.items())
    assert got == expected
    assert [k.encode() for k in got] == sorted(k.encode() for k in got)
    for key, values in expected.items():
        assert index.lookup(key) == values
    for key in ("", "a", "ab", "zz", "a*"):
        assert index.lookup(key) == expected.get(key, [])


@given(ENTRIES)
def test_round_trip_is_byte_exact(entries: list[tuple[str, str, int]]) -> None:
    data = write_index(entries)
    again = [(k, v.value, v.priority) for k, vs in Index.from_bytes(data).items() for v in vs[::-1]]
    assert write_index(again) == data


@given(ENTRIES, st.text(alphabet="ab_:x", max_size=6))
def test_wildcard_search_agrees_with_brute_force(
    entries: list[tuple[str, str, int]], key: str
) -> None:
    # Keys without pattern characters never follow a wildcard edge literally, so every stored
    # pattern counts once; patterns without backslashes match the same whole or in part.
    entries = [e for e in entries if "\\" not in e[0]]
    hits = Index.from_bytes(write_index(entries)).search_wildcard(key)
    expected = [
        value
        for pattern, values in model(entries).items()
        if py_fnmatch(pattern.encode(), key.encode())
        for value in values
    ]
    assert sorted(hits, key=lambda v: (v.priority, v.value)) == sorted(
        expected, key=lambda v: (v.priority, v.value)
    )
    assert [v.priority for v in hits] == sorted(v.priority for v in hits)


@settings(max_examples=500)
@given(st.binary(max_size=200), st.text(alphabet="ab*", max_size=4))
def test_random_bytes_raise_only_lkm_errors(data: bytes, key: str) -> None:
    for blob in (data, HEADER + data):
        try:
            index = Index.from_bytes(blob)
            list(index.items())
            index.lookup(key)
            index.search_wildcard(key)
        except LkmError:
            pass


@settings(max_examples=500)
@given(ENTRIES, st.data())
def test_mutated_indexes_raise_only_lkm_errors(
    entries: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    blob = bytearray(write_index(entries))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(blob) - 1))
        blob[where] = data.draw(st.integers(0, 255))
    try:
        index = Index.from_bytes(bytes(blob))
        list(index.items())
        index.lookup("ab")
        index.search_wildcard("ab")
    except LkmError:
        pass


def test_open_maps_what_fstat_says(tmp_path: Path) -> None:
    """A directory opens but cannot be mapped: IndexMapError with kmod's mmap arguments (the
    directory's size, the descriptor, the lowest free one, closed again); a FIFO with a writer
    and a character device have size 0 and read as empty (nothing is read from them)."""
    (tmp_path / "dir").mkdir()
    lowest = os.open("/", os.O_RDONLY)
    os.close(lowest)
    with pytest.raises(IndexMapError) as caught:
        Index.open(tmp_path / "dir")
    failure = caught.value
    assert (failure.fd, failure.size, failure.errno) == (
        lowest,
        os.stat(tmp_path / "dir").st_size,
        errno.ENODEV,
    )
    assert isinstance(failure, IndexFormatError)
    assert os.open("/", os.O_RDONLY) == lowest  # closed again
    os.close(lowest)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(writer, index_bytes({b"key": [(0, b"value")]}))
        with pytest.raises(IndexFormatError, match="truncated header: expected 12 bytes, found 0"):
            Index.open(fifo)
    finally:
        os.close(writer)
    with pytest.raises(IndexFormatError, match="found 0"):
        Index.open("/dev/null")
