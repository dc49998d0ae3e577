"""lkm.typing_lite's ``NamedTuple`` and ``cached_property``, lkm.enum_lite's enums and
lkm.dataclasses_lite's ``dataclass`` behave as the standard library's do, for what lkm uses of
them: each case builds the same class both ways and compares the results (or the exceptions)."""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import pickle
import typing
from collections.abc import Callable

import pytest

from lkm import dataclasses_lite, enum_lite, typing_lite
from lkm.jsonable import to_jsonable


def _outcome(call: Callable[[], object]) -> tuple[str, str]:
    try:
        return "value", repr(call())
    except (TypeError, ValueError, KeyError, AttributeError) as err:
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


def _data_classes(module: typing.Any) -> tuple[type, type]:
    @module.dataclass(frozen=True)
    class Point:
        """A point."""

        x: int
        y: int = 0
        tags: tuple[str, ...] = module.field(default=())

        @property
        def twice(self) -> int:
            return 2 * self.x

    @module.dataclass
    class Bag:
        """A bag."""

        name: str
        items: list[int] = module.field(default_factory=list)
        size: int = 0

    return Point, Bag


DATA_CALLS: list[Callable[[type, type], object]] = [
    lambda P, B: (P(1), B("b")),
    lambda P, B: (P(1, 2, ("t",)), P(x=3, tags=("u",)), B("b", [1], size=2)),
    lambda P, B: P(),
    lambda P, B: P(1, 2, (), 4),
    lambda P, B: P(1, x=2),
    lambda P, B: P(1, z=2),
    lambda P, B: B(),
    lambda P, B: (P(1) == P(1), P(1) == P(2), P(1) != P(1, 1), P(1) == (1, 0, ())),
    lambda P, B: (B("b") == B("b"), B("b") == B("c"), B("b").items is not B("b").items),
    lambda P, B: (hash(P(1, 2)) == hash((1, 2, ())), {P(1), P(1)}),
    lambda P, B: hash(B("b")),
    lambda P, B: setattr(P(1), "x", 2),
    lambda P, B: setattr(P(1), "other", 2),
    lambda P, B: delattr(P(1), "x"),
    lambda P, B: isinstance(_raises(lambda: setattr(P(1), "x", 2)), AttributeError),
    lambda P, B: _resized(B("b")),
    lambda P, B: (P.__match_args__, B.__match_args__, P.y, P.tags, hasattr(B, "items")),
    lambda P, B: (P.__doc__, P.__init__.__qualname__, P.__repr__.__qualname__, P(3).twice),
    lambda P, B: (dataclasses.is_dataclass(P), dataclasses.is_dataclass(B("b"))),
    lambda P, B: [(f.name, f.type, f.default) for f in dataclasses.fields(P)],
    lambda P, B: [(f.name, f.default_factory) for f in dataclasses.fields(B("b"))],
    lambda P, B: (P.__dataclass_params__.frozen, B.__dataclass_params__.frozen),
    lambda P, B: (dataclasses.replace(P(1, 2), y=5), dataclasses.replace(B("b", [3]), name="c")),
    lambda P, B: (dataclasses.asdict(P(1, 2, ("a",))), dataclasses.astuple(B("b", [1]))),
    lambda P, B: (copy.copy(P(1)), copy.deepcopy(B("b", [1]))),
]


@dataclasses_lite.dataclass(frozen=True)
class Found:
    path: str
    name: str = ""


def _hashes(module: typing.Any) -> tuple[object, ...]:
    @module.dataclass(frozen=True)
    class Own:
        x: int

        def __hash__(self) -> int:
            return 7

    @module.dataclass
    class Equal:  # noqa: PLW1641 - a body with __eq__ alone is the case looked at
        x: int

        def __eq__(self, other: object) -> bool:
            return True

    @module.dataclass
    class Hashed:
        x: int

        def __hash__(self) -> int:
            return 8

    return hash(Own(1)), Equal.__hash__, hash(Hashed(1)), Equal(1) == Equal(2)


def test_dataclass_keeps_a_class_bodys_own_hash() -> None:
    assert _hashes(dataclasses_lite) == _hashes(dataclasses)


def test_dataclass_pickles_as_itself() -> None:
    record = Found("/a", "a")
    assert pickle.loads(pickle.dumps(record)) == record
    assert type(pickle.loads(pickle.dumps(record))) is Found


def _resized(bag: typing.Any) -> object:
    bag.size = 5
    return bag


def _raises(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except BaseException as err:
        return err
    return None


@pytest.mark.parametrize("index", range(len(DATA_CALLS)))
def test_dataclass_as_dataclasses_makes_it(index: int) -> None:
    call = DATA_CALLS[index]
    lite = _outcome(lambda: call(*_data_classes(dataclasses_lite)))
    real = _outcome(lambda: call(*_data_classes(dataclasses)))
    assert lite == real


def test_dataclass_refuses_frozen_assignment_with_dataclasses_error() -> None:
    point, _ = _data_classes(dataclasses_lite)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        point(1).x = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"__annotations__": {"a": "int", "b": "int"}, "a": 0}, "non-default argument 'b'"),
        ({"__annotations__": {"a": "list[int]"}, "a": []}, "mutable default"),
        ({"__annotations__": {"a": "ClassVar[int]"}}, "has no ClassVar"),
    ],
)
def test_dataclass_refuses_what_it_cannot_make(body: dict[str, object], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        dataclasses_lite.dataclass(type("Bad", (), body))
