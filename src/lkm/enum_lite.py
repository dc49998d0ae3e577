"""``Enum``, ``IntEnum`` and ``IntFlag`` for the modules a short command imports, without ``enum``.

``import enum`` costs a short command about a third of a bare interpreter's start-up (it
imports ``functools`` and ``collections``, and each class it makes runs much Python). Type
checkers see ``enum``'s own classes here (``TYPE_CHECKING`` is true for them). At run time these
give what lkm uses of them, as Python 3.11 has it: members as class attributes that are
instances of their class, ``name`` and ``value``, lookup by value (``Kind("x")``) and by name
(``Kind["X"]``), iteration in definition order, ``__members__``, the same ``repr``, ``str`` and
``format``, equality and hashing (by identity and name; ``IntEnum`` and ``IntFlag`` members are
ints), pickling and copying as the member itself, and for ``IntFlag`` the bitwise operators,
whose results are members (unnamed combinations made on demand). They are not instances of
``enum.Enum``: code that tests for enums tests for this ``Enum`` too. Modules off the start-up
path can use ``enum`` itself.
"""

from __future__ import annotations

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from enum import Enum, IntEnum, IntFlag
else:

    class _EnumMeta(type):
        def __new__(mcs, name, bases, namespace):
            if namespace.get("_is_root"):
                return super().__new__(mcs, name, bases, namespace)
            # Members are the plain values of the body; functions, properties and the like
            # (anything with __get__) and underscored names stay what they are.
            members = [
                (key, value)
                for key, value in namespace.items()
                if key[:1] != "_" and not hasattr(value, "__get__")
            ]
            names = {key for key, _ in members}
            body = {key: value for key, value in namespace.items() if key not in names}
            cls = super().__new__(mcs, name, bases, body)
            cls._member_map_ = {}
            cls._member_list_ = []
            cls._value2member_map_ = {}
            is_int = issubclass(cls, int)
            for key, value in members:
                member = cls._value2member_map_.get(value)
                if member is None:  # an equal value again is an alias of the first member
                    member = int.__new__(cls, value) if is_int else object.__new__(cls)
                    member._name_ = key
                    member._value_ = value
                    cls._value2member_map_[value] = member
                    cls._member_list_.append(member)
                cls._member_map_[key] = member
                setattr(cls, key, member)
            return cls

        def __call__(cls, value):
            try:
                return cls._value2member_map_[value]
            except (KeyError, TypeError):
                return cls._missing_(value)

        def __iter__(cls):
            return iter(cls._member_list_)

        def __reversed__(cls):
            return reversed(cls._member_list_)

        def __len__(cls):
            return len(cls._member_list_)

        def __contains__(cls, value):
            if isinstance(value, cls):
                return True
            try:
                return value in cls._value2member_map_
            except TypeError:
                return False

        def __getitem__(cls, name):
            return cls._member_map_[name]

        @property
        def __members__(cls):
            return dict(cls._member_map_)

        def __repr__(cls):
            return f"<enum {cls.__name__!r}>"

    class Enum(metaclass=_EnumMeta):
        _is_root = True

        @classmethod
        def _missing_(cls, value):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")

        @property
        def name(self):
            return self._name_

        @property
        def value(self):
            return self._value_

        def __repr__(self):
            return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

        def __str__(self):
            return f"{type(self).__name__}.{self._name_}"

        def __format__(self, spec):
            return format(str(self), spec)

        def __hash__(self):
            return hash(self._name_)

        def __reduce_ex__(self, protocol):
            return type(self), (self._value_,)

        def __copy__(self):
            return self

        def __deepcopy__(self, memo):
            return self

    class IntEnum(int, Enum):
        _is_root = True
        __repr__ = Enum.__repr__
        __str__ = int.__repr__
        __format__ = int.__format__
        __reduce_ex__ = Enum.__reduce_ex__

    class IntFlag(int, Enum):
        _is_root = True
        __str__ = int.__repr__
        __format__ = int.__format__
        __reduce_ex__ = Enum.__reduce_ex__

        @classmethod
        def _missing_(cls, value):
            """A combination of flags (or bits no flag names): a member made once, unnamed
            without flags, else named by its flags in order of value and then the bits left."""
            if not isinstance(value, int):
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")
            names, rest = [], value
            for member in sorted(cls._member_list_, key=int):
                bits = int(member)
                if bits and bits & (bits - 1) == 0 and rest & bits:
                    names.append(member._name_)
                    rest &= ~bits
            if names and rest:
                names.append(str(rest))
            member = int.__new__(cls, value)
            member._name_ = "|".join(names) if names else None
            member._value_ = value
            cls._value2member_map_[value] = member
            return member

        def __repr__(self):
            if self._name_ is None:
                return f"<{type(self).__name__}: {self._value_}>"
            return f"<{type(self).__name__}.{self._name_}: {self._value_}>"

        def __or__(self, other):
            if not isinstance(other, int):
                return NotImplemented
            return type(self)(int(self) | int(other))

        def __and__(self, other):
            if not isinstance(other, int):
                return NotImplemented
            return type(self)(int(self) & int(other))

        def __xor__(self, other):
            if not isinstance(other, int):
                return NotImplemented
            return type(self)(int(self) ^ int(other))

        __ror__ = __or__
        __rand__ = __and__
        __rxor__ = __xor__


__all__ = ["Enum", "IntEnum", "IntFlag"]
