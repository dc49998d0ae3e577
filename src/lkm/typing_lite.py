"""The names lkm's start-up path takes from ``typing``, without importing ``typing`` at run time.

``import typing`` is a large share of a short command's start-up: it imports ``re`` (and
compiles patterns), ``functools``, ``contextlib`` and more, and builds its own classes. Type
checkers see ``typing``'s own names here (``TYPE_CHECKING`` is true for them). At run time
``NamedTuple`` makes the same class ``typing`` makes (``collections.namedtuple`` with the
class body's defaults, methods and docstring), and ``Protocol`` and ``Generic`` are plain bases
that only need to be subscriptable; nothing in lkm checks protocols at run time.

Modules off the start-up path (verbs that run long anyway) can import ``typing`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Generic, NamedTuple, Protocol, TypeVar, cast
else:
    # What a class body holds besides its fields and methods; typing leaves these out too.
    _NOT_COPIED = frozenset(
        {"__module__", "__qualname__", "__annotations__", "__doc__", "__dict__", "__weakref__"}
    )

    class _NamedTupleMeta(type):
        def __new__(mcs, name, bases, namespace):
            if namespace.get("_is_root"):
                return super().__new__(mcs, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from a NamedTuple type")
            fields = namespace.get("__annotations__", {})
            defaults = [namespace[field] for field in fields if field in namespace]
            if any(field not in namespace for field in list(fields)[len(fields) - len(defaults) :]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            import collections  # here, not at the top: ``lkm --version`` defines no records

            made = collections.namedtuple(
                name, list(fields), defaults=defaults, module=namespace["__module__"]
            )
            made.__annotations__ = dict(fields)
            if namespace.get("__doc__") is not None:
                made.__doc__ = namespace["__doc__"]
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(made, key, value)
            return made

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


__all__ = [
    "TYPE_CHECKING",
    "Generic",
    "NamedTuple",
    "Protocol",
    "TypeVar",
    "cast",
]
