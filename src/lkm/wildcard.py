"""Wildcard matching as kmod does it: C's fnmatch(3) with flags 0, and groups of patterns
matched against one key at a time (the wildcard branches of an alias index, the glob lines
of modprobe.d).

Python's fnmatch differs from C's, so patterns become regular expressions of their own
(``fnmatch_regex``); patterns made of literals and ``*`` only are matched without one.
"""

from __future__ import annotations

from lkm.typing_lite import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["Patterns", "fnmatch_regex", "pieces_match"]

V = TypeVar("V")

_GRAM = 4  # length of the literal pieces a large group is indexed by
_SMALL_GROUP = 12  # below this many patterns, trying each one is cheaper than the index
_SPECIAL = frozenset(b"?[\\")


class Patterns(Generic[V]):
    """The fnmatch patterns (their unmatched rests) below one wildcard branch, with values.

    A search of a fresh index reaches thousands of such patterns once each, so building this
    must cost little: patterns made of literals and ``*`` only (all but a few hundred of a
    real tree's) are matched by searching their pieces in order and never compiled; the rest
    become regular expressions the first time they are tried. A large group is also indexed
    by one rare 4-byte piece of literal text per pattern, which any key it matches contains;
    a search tries only the patterns whose piece occurs in the key (and those without one),
    still in the group's order, so the values merge exactly as if all had been tried. The
    index is built at the second search: one search (``modprobe ALIAS``) tries each pattern
    once for less than indexing them costs.
    """

    __slots__ = ("_always", "_buckets", "_pieces", "_regexes", "_rests", "_searched", "values")

    def __init__(self, rests: list[bytes], values: list[V]) -> None:
        self._rests = rests
        self.values = values
        self._pieces: list[list[bytes] | None] = [
            None if _SPECIAL.intersection(rest) else rest.split(b"*") for rest in rests
        ]
        self._regexes: dict[int, Callable[[bytes], object]] = {}
        self._buckets: dict[bytes, list[int]] | None = None
        self._always: list[int] = []
        self._searched = False

    def _index(self) -> None:
        grams: list[set[bytes]] = []
        counts: dict[bytes, int] = {}
        for pieces in self._pieces:
            own: set[bytes] = set()
            for piece in pieces or ():
                own.update(piece[i : i + _GRAM] for i in range(len(piece) - _GRAM + 1))
            grams.append(own)
            for gram in own:
                counts[gram] = counts.get(gram, 0) + 1
        buckets: dict[bytes, list[int]] = {}
        for number, own in enumerate(grams):
            if own:
                rarest = min(sorted(own), key=counts.__getitem__)
                buckets.setdefault(rarest, []).append(number)
            else:
                self._always.append(number)
        self._buckets = buckets

    def matching(self, key: bytes) -> Iterator[V]:
        """The values of the patterns ``key`` matches, in the group's order."""
        buckets = self._buckets
        if buckets is None and self._searched and len(self._rests) >= _SMALL_GROUP:
            self._index()
            buckets = self._buckets
        self._searched = True
        candidates: Iterable[int]
        if buckets is None:
            candidates = range(len(self._rests))
        else:
            found = set(self._always)
            for i in range(len(key) - _GRAM + 1):
                hit = buckets.get(key[i : i + _GRAM])
                if hit is not None:
                    found.update(hit)
            candidates = sorted(found)
        pieces = self._pieces
        for number in candidates:
            mine = pieces[number]
            if mine is None:
                if self._regex(number)(key) is not None:
                    yield self.values[number]
            elif pieces_match(mine, key):
                yield self.values[number]

    def _regex(self, number: int) -> Callable[[bytes], object]:
        found = self._regexes.get(number)
        if found is None:
            import re  # only patterns with ?, [ or a backslash need it

            found = re.compile(fnmatch_regex(self._rests[number]), re.DOTALL).match
            self._regexes[number] = found
        return found


def pieces_match(pieces: list[bytes], key: bytes) -> bool:
    """fnmatch of the pattern ``b"*".join(pieces)`` (literals and ``*`` only) against ``key``.

    The first piece must start the key and the last end it; the ones between are taken
    leftmost, which finds a match whenever there is one.
    """
    first = pieces[0]
    if len(pieces) == 1:
        return key == first
    last = pieces[-1]
    end = len(key) - len(last)
    if end < len(first) or not key.startswith(first) or not key.endswith(last):
        return False
    pos = len(first)
    for piece in pieces[1:-1]:
        pos = key.find(piece, pos, end)
        if pos < 0:
            return False
        pos += len(piece)
    return True


# -- fnmatch(3) with flags 0 ---------------------------------------------------------------

# POSIX character classes in the C locale, as byte ranges.
_CLASSES: dict[bytes, str] = {
    b"alnum": r"0-9A-Za-z",
    b"alpha": r"A-Za-z",
    b"blank": r" \t",
    b"cntrl": r"\x00-\x1f\x7f",
    b"digit": r"0-9",
    b"graph": r"\x21-\x7e",
    b"lower": r"a-z",
    b"print": r"\x20-\x7e",
    b"punct": r"\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e",
    b"space": r"\t\n\v\f\r ",
    b"upper": r"A-Z",
    b"xdigit": r"0-9A-Fa-f",
}


def fnmatch_regex(pattern: bytes) -> bytes:
    """A regular expression (for re.DOTALL) accepting what C's fnmatch(pattern, name, 0) does.

    Python's fnmatch differs from C's: it has no backslash escapes, reads ``[^...]`` as a
    literal caret and knows no ``[:class:]``; so the translation is done here.
    """
    import re

    out = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == 0x2A:  # *
            out.append(b".*")
        elif char == 0x3F:  # ?
            out.append(b".")
        elif char == 0x5C:  # backslash: the next byte is literal; a trailing one is itself
            if i < n:
                out.append(re.escape(pattern[i : i + 1]))
                i += 1
            else:  # glibc: a pattern ending in a lone backslash matches nothing
                out.append(b"(?!)")
        elif char == 0x5B:  # [
            try:
                bracket = _bracket(pattern, i)
            except _InvalidPattern:
                return b"(?!)"
            if bracket is None:
                out.append(rb"\[")
            else:
                regex, i = bracket
                out.append(regex)
        else:
            out.append(re.escape(bytes((char,))))
    return b"(?:" + _without_backtracking(out) + rb")\Z"


def _without_backtracking(parts: list[bytes]) -> bytes:
    """Join the parts so that the stars cannot backtrack into one another.

    Between two stars the pattern matches text of a fixed length, so each such piece may be
    taken at its leftmost place: if the pattern matches at all, it matches so. Each middle piece
    is found by a lazy search in a lookahead and taken whole by a backreference (an atomic
    group in Python 3.10's regex syntax); only the last star backtracks, over the key once.
    Plain ``.*`` for each star costs time exponential in the number of stars on a key that
    does not match (a crafted index or configuration line hangs modprobe), and several stars
    in a row are one.
    """
    pieces: list[list[bytes]] = [[]]
    for part in parts:
        if part == b".*":
            pieces.append([])
        else:
            pieces[-1].append(part)
    if len(pieces) == 1:
        return b"".join(pieces[0])
    out = [b"".join(pieces[0])]
    middles = [b"".join(piece) for piece in pieces[1:-1] if piece]
    for group, middle in enumerate(middles, 1):
        out.append(b"(?=(.*?%s))\\%d" % (middle, group))
    out.append(b".*" + b"".join(pieces[-1]))
    return b"".join(out)


class _InvalidPattern(Exception):
    """Internal: glibc's fnmatch rejects the pattern, so it matches nothing."""


def _bracket(pattern: bytes, i: int) -> tuple[bytes, int] | None:
    """Translate the bracket expression after a ``[`` at ``i``; None if it is not closed."""
    n = len(pattern)
    negate = i < n and pattern[i] in b"!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    # glibc tries the members in order and gives up at an unknown [:class:]: members after
    # it never match, and a negated set containing one matches nothing.
    cut = False
    while True:
        if i >= n:
            return None
        if pattern[i] == 0x5D and not first:  # ]
            i += 1
            break
        first = False
        kind, value, i = _member(pattern, i)
        if kind == "class":
            if value in _CLASSES and not cut:
                parts.append(_CLASSES[value])
            cut = cut or value not in _CLASSES
            continue
        low = high = value[0]
        if i + 1 < n and pattern[i] == 0x2D and pattern[i + 1] != 0x5D:  # a-z
            if pattern.startswith(b"[:", i + 1):  # a range ends at a literal [, never a class
                high, i = 0x5B, i + 2
            else:
                _, value, i = _member(pattern, i + 1)
                high = value[0]
        if low <= high and not cut:
            parts.append(f"\\x{low:02x}-\\x{high:02x}")
    body = "".join(parts)
    if negate and cut:
        return b"(?!)", i
    if not body:
        return (b"." if negate else b"(?!)"), i
    return ("[" + ("^" if negate else "") + body + "]").encode(), i


def _member(pattern: bytes, i: int) -> tuple[str, bytes, int]:
    """One bracket member at ``i``: ("class", name, next) or ("char", byte, next)."""
    n = len(pattern)
    char = pattern[i]
    if char == 0x5B and i + 1 < n and pattern[i + 1] in b":.=":
        delimiter = pattern[i + 1 : i + 2]
        close = pattern.find(delimiter + b"]", i + 2)
        name = pattern[i + 2 : close]
        if delimiter == b":":
            if close >= 0 and (name.isalpha() or not name):
                return "class", name, close + 2
        elif close >= 0 and len(name) == 1:  # [.c.] and [=c=]: a single character
            return "char", name, close + 2
        else:
            raise _InvalidPattern
    if char == 0x5C and i + 1 < n:
        return "char", pattern[i + 1 : i + 2], i + 2
    return "char", pattern[i : i + 1], i + 1


# -- writing -------------------------------------------------------------------------------
