"""Wildcard search of the index: the grouped, uncompiled matching gives what fnmatch gives.

A search of a fresh index must be cheap, so the patterns below a wildcard branch are matched
without regular expressions where they hold only literals and ``*``, and large groups try only
the patterns whose literal text occurs in the key. These properties pin that both shortcuts
agree with C's fnmatch (as ``fnmatch_regex`` translates it) and keep kmod's merge order.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.index import Index, IndexValue, write_index
from lkm.wildcard import Patterns, fnmatch_regex, pieces_match

_STAR_ONLY = st.text(alphabet="ab*", max_size=12).map(str.encode)
_PATTERNS = st.text(alphabet="abcd*?[]!\\", max_size=12).map(str.encode)
_KEYS = st.text(alphabet="abcd*?[]", max_size=14).map(str.encode)
# A key holding a wildcard can reach a pattern both literally and through the group (kmod
# reports it twice), so the brute-force comparison uses plain keys.
_PLAIN_KEYS = st.text(alphabet="abcd]!", max_size=14).map(str.encode)


def _fnmatch(pattern: bytes, key: bytes) -> bool:
    return re.match(fnmatch_regex(pattern), key, re.DOTALL) is not None


@settings(max_examples=500, deadline=None)
@given(_STAR_ONLY, _KEYS)
def test_pieces_match_is_fnmatch(pattern: bytes, key: bytes) -> None:
    assert pieces_match(pattern.split(b"*"), key) == _fnmatch(pattern, key)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERNS, min_size=0, max_size=40), _KEYS)
def test_group_tries_every_pattern_that_can_match(patterns: list[bytes], key: bytes) -> None:
    values: list[tuple[IndexValue, ...]] = [(IndexValue(n, str(n)),) for n in range(len(patterns))]
    group = Patterns(list(patterns), values)
    expected = [v for p, v in zip(patterns, values, strict=True) if _fnmatch(p, key)]
    assert list(group.matching(key)) == expected  # each pattern tried in turn
    assert list(group.matching(key)) == expected  # a large group through its index, built now


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_PATTERNS, st.integers(0, 3)), max_size=40), _PLAIN_KEYS)
def test_search_is_the_brute_force_merge(entries: list[tuple[bytes, int]], key: bytes) -> None:
    """Keys starting with a wildcard are all reached through one group of the root."""
    items = [(b"*" + p, f"m{n}", prio) for n, (p, prio) in enumerate(entries)]
    index = Index.from_bytes(write_index((p.decode(), v, prio) for p, v, prio in items))
    expected = sorted(
        ((prio, value) for p, value, prio in items if _fnmatch(p, key)),
        key=lambda hit: hit[0],
    )
    got = [(hit.priority, hit.value) for hit in index.search_wildcard(key.decode())]
    assert sorted(got) == sorted(expected)
    assert [p for p, _ in got] == sorted(p for p, _ in got)


def test_large_group_on_a_real_shape() -> None:
    """of: aliases as Linux writes them, with and without the trailing ``C*``."""
    names = [f"vendor{n},device{n % 97}" for n in range(300)]
    entries = []
    for n, name in enumerate(names):
        entries += [(f"of:N*T*C{name}", f"m{n}", n), (f"of:N*T*C{name}C*", f"m{n}", n)]
    index = Index.from_bytes(write_index(entries))
    hits = index.search_wildcard("of:NfooT<NULL>Cvendor7,device7")
    assert [h.value for h in hits] == ["m7"]
    hits = index.search_wildcard("of:NfooT<NULL>Cvendor7,device7Cgeneric")
    assert [h.value for h in hits] == ["m7"]
    assert index.search_wildcard("of:NfooT<NULL>Cvendor7,device8") == []


def test_header_versions_as_kmod_reads_them() -> None:
    """kmod 34 checks the major version only (pinned in test_modprobe_bad.py)."""
    import pytest

    from lkm.errors import IndexHeaderError

    data = write_index([("key", "value", 0)])
    for minor in (b"\x00\x00", b"\x00\x07", b"\xff\xff"):
        assert Index.from_bytes(data[:4] + b"\x00\x02" + minor + data[8:]).lookup("key")
    for major in (1, 3):
        with pytest.raises(IndexHeaderError) as caught:
            Index.from_bytes(data[:4] + bytes((0, major, 0, 1)) + data[8:])
        assert (caught.value.field, caught.value.found, caught.value.expected) == (
            "version",
            major,
            2,
        )
    with pytest.raises(IndexHeaderError) as caught:
        Index.from_bytes(b"\xb0\x07\xf4\x58" + data[4:])
    assert (caught.value.field, caught.value.found) == ("magic", 0xB007F458)
