"""The names lkm's start-up path takes from ``typing`` (and ``functools.cached_property``),
without importing those modules at run time.

``import typing`` is a large share of a short command's start-up: it imports ``re`` (and
compiles patterns), ``functools``, ``contextlib`` and more, and builds its own classes.
``functools`` and ``collections`` cost several milliseconds more, and ``collections.namedtuple``
compiles a constructor with ``eval`` for every class it makes. Type checkers see the standard
library's own names here (``TYPE_CHECKING`` is true for them). At run time ``NamedTuple`` makes
a tuple class with what ``typing`` gives one (fields by name and index, defaults, ``_fields``,
``_field_defaults``, ``_make``, ``_replace``, ``_asdict``, the same ``repr``, pickling) and the
class body's methods and docstring; ``Protocol`` and ``Generic`` are plain bases that only need
to be subscriptable (nothing in lkm checks protocols at run time); ``cached_property`` computes
a value on first use and keeps it in the instance, as functools' does.

Modules off the start-up path (verbs that run long anyway) can import ``typing`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from functools import cached_property
    from typing import Generic, NamedTuple, Protocol, TypeVar, cast
else:
    from _collections import _tuplegetter  # C, built in: collections itself is not imported

    # What a class body holds besides its fields and methods; typing leaves these out too.
    _NOT_COPIED = frozenset({"__annotations__", "__dict__", "__weakref__", "_is_root"})
    _tuple_new = tuple.__new__  # one global lookup where a record is made

    class _Record(tuple):
        """What every record class shares; each class adds its fields, defaults and ``__new__``."""

        __slots__ = ()
        _fields = ()

        @classmethod
        def _make(cls, iterable):
            made = tuple.__new__(cls, iterable)
            if len(made) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
            return made

        def _replace(self, /, **changes):
            made = self._make(map(changes.pop, self._fields, self))
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return made

        def _asdict(self):
            return dict(zip(self._fields, self, strict=True))

        def __repr__(self):
            pairs = ", ".join(
                f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True)
            )
            return f"{type(self).__name__}({pairs})"

        def __getnewargs__(self):
            return tuple(self)

    def _constructor(name, fields, defaults):
        """``__new__`` for a record: all fields given in order is the common case and the
        quickest; anything else is completed from keywords and defaults, with Python's own
        messages for a call that does not fit."""
        count = len(fields)
        first_default = count - len(defaults)

        def __new__(cls, *args, **kwargs):
            if kwargs or len(args) != count:
                if not kwargs and first_default <= len(args) < count:
                    # The next commonest call: only fields with defaults left out.
                    args += defaults[len(args) - first_default :]
                else:
                    args = _complete(args, kwargs)
            return _tuple_new(cls, args)

        def _complete(args, kwargs):
            where = f"{name}.__new__()"
            if len(args) > count:
                raise TypeError(
                    f"{where} takes from {first_default + 1} to {count + 1} positional "
                    f"arguments but {len(args) + 1} were given"
                    if defaults
                    else f"{where} takes {count + 1} positional arguments but "
                    f"{len(args) + 1} were given"
                )
            values = list(args)
            for field in fields[: len(args)]:
                if field in kwargs:
                    raise TypeError(f"{where} got multiple values for argument '{field}'")
            missing = []
            for index in range(len(args), count):
                field = fields[index]
                if field in kwargs:
                    values.append(kwargs.pop(field))
                elif index >= first_default:
                    values.append(defaults[index - first_default])
                else:
                    missing.append(field)
                    values.append(None)
            for key in kwargs:
                if key not in fields[len(args) :]:
                    raise TypeError(f"{where} got an unexpected keyword argument '{key}'")
            if missing:
                names = " and ".join(f"'{field}'" for field in missing)
                plural = "s" if len(missing) > 1 else ""
                raise TypeError(
                    f"{where} missing {len(missing)} required positional argument{plural}: {names}"
                )
            return values

        __new__.__qualname__ = f"{name}.__new__"
        return __new__

    class _NamedTupleMeta(type):
        def __new__(mcs, name, bases, namespace):
            if namespace.get("_is_root"):
                return super().__new__(mcs, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from a NamedTuple type")
            annotations = namespace.get("__annotations__", {})
            fields = tuple(annotations)
            defaults = tuple(namespace[field] for field in fields if field in namespace)
            if any(field not in namespace for field in fields[len(fields) - len(defaults) :]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            body = {
                key: value
                for key, value in namespace.items()
                if key not in _NOT_COPIED and key not in annotations
            }
            body["__slots__"] = ()
            body["__annotations__"] = dict(annotations)
            body["__match_args__"] = fields
            body["_fields"] = fields
            firsts = len(fields) - len(defaults)
            body["_field_defaults"] = dict(zip(fields[firsts:], defaults, strict=True))
            body["__new__"] = _constructor(name, fields, defaults)
            body.setdefault("__doc__", f"{name}({', '.join(fields)})")
            for index, field in enumerate(fields):
                body[field] = _tuplegetter(index, f"Alias for field number {index}")
            return type(name, (_Record,), body)

    class NamedTuple(metaclass=_NamedTupleMeta):
        _is_root = True

    class _Subscriptable:
        __slots__ = ()

        def __class_getitem__(cls, item):
            return cls

    class Protocol(_Subscriptable):
        __slots__ = ()

    class Generic(_Subscriptable):
        __slots__ = ()

    class TypeVar:
        def __init__(self, name, *constraints, **options):
            self.__name__ = name

    def cast(typ, value):
        return value

    class cached_property:  # functools' name
        def __init__(self, function):
            self.function = function
            self.__doc__ = function.__doc__
            self.attrname = function.__name__

        def __set_name__(self, owner, name):
            self.attrname = name

        def __get__(self, instance, owner=None):
            if instance is None:
                return self
            value = instance.__dict__[self.attrname] = self.function(instance)
            return value


__all__ = [
    "TYPE_CHECKING",
    "Generic",
    "NamedTuple",
    "Protocol",
    "TypeVar",
    "cached_property",
    "cast",
]
