"""``dataclass`` and ``field`` for the modules ``lkm depmod`` imports, without ``dataclasses``.

``import dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis`` and ``tokenize``),
``re``, ``copy`` and ``functools``, and each class it makes runs much Python and compiles half
a dozen methods: together about a fifth of a small depmod run's start-up. Type checkers see
``dataclasses``' own names here (``TYPE_CHECKING`` is true for them). At run time
``dataclass`` (bare, or with ``frozen=True``) gives a class what lkm's records use, as Python
3.11 makes them: an ``__init__`` taking the annotated fields in order (defaults given as plain
values, ``field(default=...)`` or ``field(default_factory=...)``), the same ``repr``, equality
with an instance of the very same class field by field, ``__match_args__``, and for a frozen
class assignment and deletion refused with ``dataclasses.FrozenInstanceError`` and a hash of
the fields (an unfrozen class's instances are unhashable). ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` take them too: the first look at
``__dataclass_fields__`` imports ``dataclasses`` and makes the standard field records.

Not supported (refused when the class is made): inheritance between data classes,
``ClassVar`` and ``InitVar`` fields, and every other option of ``dataclass`` and ``field``.
Modules off depmod's path can use ``dataclasses`` itself.
"""

from __future__ import annotations

from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from _operator import attrgetter  # C, built in: operator itself is not imported

    _MISSING = object()

    class _Field:
        __slots__ = ("default", "default_factory")

        def __init__(self, default, default_factory):
            self.default = default
            self.default_factory = default_factory

    def field(*, default=_MISSING, default_factory=_MISSING):
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        return _Field(default, default_factory)

    def dataclass(cls=None, /, *, frozen=False):
        if cls is None:
            return lambda cls: _process(cls, frozen)
        return _process(cls, frozen)

    class _Standard:
        """``__dataclass_fields__`` and ``__dataclass_params__`` made by ``dataclasses`` itself
        on first use, from a copy of the class's fields and defaults."""

        def __init__(self, cls, frozen, defaults):
            self.cls, self.frozen, self.defaults = cls, frozen, defaults

        def __get__(self, instance, owner=None):
            import dataclasses

            cls = self.cls
            body = {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__annotations__": dict(cls.__annotations__),
            }
            for name, (default, factory) in self.defaults.items():
                body[name] = (
                    dataclasses.field(default_factory=factory) if factory is not None else default
                )
            copy = dataclasses.dataclass(frozen=self.frozen)(type(cls.__name__, (), body))
            cls.__dataclass_fields__ = copy.__dataclass_fields__
            cls.__dataclass_params__ = copy.__dataclass_params__
            return cls.__dataclass_fields__

    class _StandardParams(_Standard):
        def __get__(self, instance, owner=None):
            super().__get__(instance, owner)
            return self.cls.__dataclass_params__

    def _process(cls, frozen):
        namespace = cls.__dict__
        for base in cls.__mro__[1:]:
            if "__dataclass_fields__" in base.__dict__:
                raise TypeError(f"{cls.__name__}: a lite data class cannot inherit fields")
        annotations = namespace.get("__annotations__", {})
        names = tuple(annotations)
        defaults = {}  # name: (default, factory or None), in order
        for name in names:
            annotation = str(annotations[name])  # a string under postponed annotations
            if "ClassVar" in annotation or "InitVar" in annotation:
                raise TypeError(f"{cls.__name__}.{name}: a lite data class has no {annotation}")
            value = namespace.get(name, _MISSING)
            if isinstance(value, _Field):
                if value.default_factory is not _MISSING:
                    delattr(cls, name)  # as dataclasses: no class attribute for a factory
                    defaults[name] = (None, value.default_factory)
                    continue
                value = value.default
                if value is not _MISSING:
                    setattr(cls, name, value)
            if value is not _MISSING:
                if type(value).__hash__ is None:
                    raise ValueError(
                        f"mutable default {type(value)} for field {name} is not allowed: "
                        "use default_factory"
                    )
                defaults[name] = (value, None)
            elif defaults:
                raise TypeError(f"non-default argument {name!r} follows default argument")

        # __init__ is compiled, as dataclasses compiles it: records are made by the thousand,
        # and Python itself checks the arguments and words the errors.
        scope = {"_MISSING": _MISSING}
        parameters = []
        # A frozen instance's fields go straight into its __dict__: what object.__setattr__
        # (dataclasses' way past the refusing __setattr__) does, at half the cost.
        lines = ["    _instance_dict = self.__dict__"] if frozen else []
        for name in names:
            default, factory = defaults.get(name, (_MISSING, None))
            if factory is not None:
                scope[f"_factory_{name}"] = factory
                parameters.append(f"{name}=_MISSING")
                value = f"_factory_{name}() if {name} is _MISSING else {name}"
            else:
                if default is not _MISSING:
                    scope[f"_default_{name}"] = default
                    parameters.append(f"{name}=_default_{name}")
                else:
                    parameters.append(name)
                value = name
            if frozen:
                lines.append(f"    _instance_dict[{name!r}] = {value}")
            else:
                lines.append(f"    self.{name} = {value}")
        source = f"def __init__(self, {', '.join(parameters)}):\n" + (
            "\n".join(lines) or "    pass"
        )
        exec(source, scope)  # the source is made of the class's own field names
        init = scope["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        init.__module__ = cls.__module__

        if len(names) == 1:
            one = attrgetter(names[0])

            def values(self):
                return (one(self),)

        elif names:
            values = attrgetter(*names)
        else:

            def values(self):
                return ()

        def __repr__(self):
            pairs = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
            return f"{type(self).__qualname__}({pairs})"

        def __eq__(self, other):
            if other.__class__ is self.__class__:
                return values(self) == values(other)
            return NotImplemented

        # The class body's own hash stays, as with dataclasses (a body with __eq__ alone has a
        # __hash__ of None, which is not its own). Looked at before __eq__ is added below.
        class_hash = namespace.get("__hash__", _MISSING)
        own_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in namespace))
        methods = {"__init__": init, "__repr__": __repr__, "__eq__": __eq__}
        for name, method in methods.items():
            if name not in namespace:
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, method)
        if frozen:

            def __setattr__(self, name, value):
                if type(self) is cls or name in names:
                    from dataclasses import FrozenInstanceError

                    raise FrozenInstanceError(f"cannot assign to field {name!r}")
                super(cls, self).__setattr__(name, value)

            def __delattr__(self, name):
                if type(self) is cls or name in names:
                    from dataclasses import FrozenInstanceError

                    raise FrozenInstanceError(f"cannot delete field {name!r}")
                super(cls, self).__delattr__(name)

            def __hash__(self):
                return hash(values(self))

            for method in (__setattr__, __delattr__, __hash__):
                if method is not __hash__ or not own_hash:
                    method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
                    setattr(cls, method.__name__, method)
        elif not own_hash:
            cls.__hash__ = None  # equality by value and mutable: as dataclasses, no hash
        if "__match_args__" not in namespace:
            cls.__match_args__ = names
        cls.__dataclass_fields__ = _Standard(cls, frozen, defaults)
        cls.__dataclass_params__ = _StandardParams(cls, frozen, defaults)
        return cls


__all__ = ["dataclass", "field"]
