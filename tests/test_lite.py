"""lkm.typing_lite's ``NamedTuple`` and ``cached_property`` and lkm.enum_lite's enums behave as
the standard library's classes do, for what lkm uses of them: each case builds the same class
both ways and compares the results (or the exceptions)."""

from __future__ import annotations

import copy
import enum
import functools
import pickle
import typing
from collections.abc import Callable

import pytest

from lkm import enum_lite, typing_lite
from lkm.jsonable import to_jsonable


def _outcome(call: Callable[[], object]) -> tuple[str, str]:
    try:
        return "value", repr(call())
    except (TypeError, ValueError, KeyError) as err:
        return type(err).__name__, str(err)


def _records(base: type) -> type:
    class Point(base):  # type: ignore[misc,valid-type]
        """A point."""

        x: int
        y: int = 0
        label: str = "p"

        def moved(self) -> object:
            return self._replace(x=self.x + 1)

        @property
        def twice(self) -> int:
            return 2 * self.x

    return Point


REAL, LITE = _records(typing.NamedTuple), _records(typing_lite.NamedTuple)

RECORD_CALLS: list[Callable[[type], object]] = [
    lambda P: P(1),
    lambda P: P(1, 2, "q"),
    lambda P: P(x=3, label="z"),
    lambda P: P(1, y=5),
    lambda P: P(),
    lambda P: P(1, 2, 3, 4),
    lambda P: P(1, x=2),
    lambda P: P(1, z=2),
    lambda P: P(y=2),
    lambda P: P(1).moved(),
    lambda P: P(1).twice,
    lambda P: P(1, 2)._asdict(),
    lambda P: P(1)._replace(z=1),
    lambda P: P._make([1, 2, "l"]),
    lambda P: P._make([1]),
    lambda P: (P._fields, P._field_defaults, P.__match_args__, P.__doc__),
    lambda P: (P.x.__doc__, P(4, 5)[1], P(4, 5) == (4, 5, "p"), hash(P(4)) == hash((4, 0, "p"))),
    lambda P: (P(1) < P(2), isinstance(P(1), tuple), list(P(7))),
    lambda P: copy.deepcopy(P(1, 2)),
]


@pytest.mark.parametrize("index", range(len(RECORD_CALLS)))
def test_named_tuple_as_typing_makes_it(index: int) -> None:
    call = RECORD_CALLS[index]
    lite = _outcome(lambda: call(LITE))
    real = _outcome(lambda: call(REAL))
    assert lite == real


class Pickled(typing_lite.NamedTuple):
    name: str
    size: int = 0


def test_named_tuple_pickles_as_itself() -> None:
    record = Pickled("ext4", 3)
    assert pickle.loads(pickle.dumps(record)) == record
    assert type(pickle.loads(pickle.dumps(record))) is Pickled


def test_named_tuple_rejects_a_required_field_after_a_default() -> None:
    with pytest.raises(TypeError, match="a field without a default follows one with a default"):

        class Bad(typing_lite.NamedTuple):
            a: int = 0
            b: int


def test_cached_property_computes_once() -> None:
    def make(decorator: Callable[..., object]) -> object:
        class Thing:
            calls = 0

            @decorator  # type: ignore[misc]
            def value(self) -> int:
                """The value."""
                Thing.calls += 1
                return 42

        return Thing

    for decorator in (functools.cached_property, typing_lite.cached_property):
        thing_class = make(decorator)
        thing = thing_class()  # type: ignore[operator]
        assert (thing.value, thing.value, thing_class.calls) == (42, 42, 1)  # type: ignore[attr-defined]
        assert thing_class.value.__doc__ == "The value."  # type: ignore[attr-defined]


def _enums(module: typing.Any) -> tuple[type, type, type]:
    class Color(module.Enum):
        """Colours."""

        RED = "red"
        GREEN = "green"
        CRIMSON = "red"  # an alias

        @property
        def loud(self) -> str:
            return str(self.value).upper()

    class Number(module.IntEnum):
        ZERO = 0
        TWO = 2

    class Flag(module.IntFlag):
        A = 1
        B = 2
        C = 8

    return Color, Number, Flag


ENUM_CALLS: list[Callable[[type, type, type], object]] = [
    lambda C, N, F: (repr(C.RED), str(C.RED), f"{C.RED}", f"{C.RED:>10}"),
    lambda C, N, F: (C.RED.name, C.RED.value, C.RED.loud, C.CRIMSON is C.RED),
    lambda C, N, F: (list(C), len(C), list(C.__members__), C("green"), C["CRIMSON"]),
    lambda C, N, F: C("blue"),
    lambda C, N, F: C["BLUE"],
    lambda C, N, F: (C.RED in C, C.RED == "red", hash(C.RED) == hash("RED"), C.__doc__),
    lambda C, N, F: (copy.copy(C.RED) is C.RED, copy.deepcopy(C.RED) is C.RED),
    lambda C, N, F: (repr(N.TWO), str(N.TWO), f"{N.TWO}", f"{N.TWO:>3}", N.TWO + 1, N.TWO == 2),
    lambda C, N, F: (N(2) is N.TWO, N.TWO.name, N.TWO.value, type(N.TWO.value), list(N)),
    lambda C, N, F: N(5),
    lambda C, N, F: (2 in N.__members__.values(), N.TWO < 3, isinstance(N.ZERO, int)),
    lambda C, N, F: (repr(F.A | F.B), str(F.A | F.B), (F.A | F.B).name, repr(F.A | 4)),
    lambda C, N, F: (repr(4 | F.A), repr(F.A & 3), repr(F.A & F.B), bool(F.A & F.B)),
    lambda C, N, F: (repr(F(16)), repr(F(17)), repr(F(0)), F(0).name, repr(F.A ^ F.C)),
    lambda C, N, F: (F(3) is F(3), F.A | F.B == 3, list(F), int(F.C)),
    lambda C, N, F: F("x"),
]


@pytest.mark.parametrize("index", range(len(ENUM_CALLS)))
def test_enum_as_the_standard_library_makes_it(index: int) -> None:
    call = ENUM_CALLS[index]
    lite = _outcome(lambda: call(*_enums(enum_lite)))
    real = _outcome(lambda: call(*_enums(enum)))
    assert lite == real


class Shade(enum_lite.Enum):
    DARK = "dark"


def test_lite_enum_pickles_and_serialises_as_its_value() -> None:
    assert pickle.loads(pickle.dumps(Shade.DARK)) is Shade.DARK
    assert to_jsonable([Shade.DARK]) == ["dark"]
