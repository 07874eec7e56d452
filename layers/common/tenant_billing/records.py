"""Frozen dataclasses without the cost of writing their methods.

`dataclasses.dataclass(frozen=True)` writes each class's `__init__`, `__repr__`, `__eq__`,
`__hash__` and `__setattr__` as source and compiles it (exec): about a millisecond a class,
which bytecode caching cannot save, and a cold start uses dozens of them. A `@frozen` class is
processed by `dataclasses.dataclass` (so its fields, `dataclasses.fields`, `replace` and `asdict`
are the dataclass's own) with those methods left out, and gets instead the generic ones below,
written once, that do the same from the fields: one tenth of the cost. mypy sees exactly a frozen
dataclass (`dataclass_transform`). The processing waits for the class's first instance or the
first `record_fields`: most classes a cold start imports are never used by its request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from itertools import pairwise
from operator import attrgetter
from typing import Any, NoReturn, dataclass_transform, overload

_OPTIONS = "__record_options__"
# Per built class: (field names, positional field names, {name: (default, factory)}).
_LAYOUT = "__record_layout__"
# What a record cannot define: the generic constructor would not call it.
_CONSTRUCTORS = frozenset({"__init__", "__post_init__"})
# Two threads may instantiate a record for the first time together (the local stack's servers).
_BUILDING = threading.RLock()


@overload
def frozen[Cls: type[Any]](cls: Cls, /) -> Cls: ...


@overload
def frozen[Cls: type[Any]](*, kw_only: bool = False) -> Callable[[Cls], Cls]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[Any] | None = None, /, *, kw_only: bool = False) -> Any:
    """`@dataclass(frozen=True)` (with `kw_only`), processed when first used."""

    def declare(declared: type[Any]) -> type[Any]:
        if defined := _CONSTRUCTORS & vars(declared).keys():
            raise TypeError(f"{declared.__name__}: a record's fields are its constructor; it cannot define {sorted(defined)}")
        setattr(declared, _OPTIONS, {"kw_only": kw_only})
        # Replaced by the record's own __init__ when the class is built.
        declared.__init__ = _build_then_init
        return declared

    return declare if cls is None else declare(cls)


def _build_then_init(self: Any, *args: Any, **kwargs: Any) -> None:
    for klass in reversed(type(self).__mro__):
        build_record(klass)
    # Not type(self).__init__: a plain subclass's own __init__ would run twice.
    _record_init(self, *args, **kwargs)


def _is_built(cls: type[Any]) -> bool:
    # Set last, once everything else is: a thread that sees it sees a finished class.
    return vars(cls).get("__init__") is _record_init


def build_record[Cls: type[Any]](cls: Cls) -> Cls:
    """The record class processed into its dataclass (its record bases first); once."""
    if _OPTIONS not in vars(cls) or _is_built(cls):
        return cls
    with _BUILDING:
        if _is_built(cls):
            return cls
        for base in reversed(cls.__mro__[1:]):
            build_record(base)
        # dataclass documents an undocumented class by its signature (inspect: slow); ours is its fields.
        undocumented = not cls.__doc__
        cls.__doc__ = cls.__doc__ or cls.__name__
        dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=vars(cls)[_OPTIONS]["kw_only"])
        if undocumented:
            cls.__doc__ = f"{cls.__name__}({', '.join(field.name for field in dataclasses.fields(cls))})"
        _add_methods(cls)
    return cls


def _add_methods(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    if computed := [field.name for field in fields if not field.init]:
        raise TypeError(f"{cls.__name__}: every field of a record is an argument; init=False on {computed}")
    names = tuple(field.name for field in fields)
    positional = tuple(field.name for field in fields if not field.kw_only)
    defaults = {
        field.name: (field.default, None if field.default_factory is dataclasses.MISSING else field.default_factory)
        for field in fields
        if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    }
    # Dataclass order: non-default positional fields cannot follow default ones.
    for earlier, later in pairwise(positional):
        if earlier in defaults and later not in defaults:
            raise TypeError(f"non-default argument {later!r} follows default argument {earlier!r}")
    setattr(cls, _LAYOUT, (names, positional, defaults))
    compared = tuple(field.name for field in fields if field.compare)
    hashed = tuple(field.name for field in fields if (field.compare if field.hash is None else field.hash))
    methods = {
        "__repr__": _record_repr,
        "__eq__": _record_eq,
        "__hash__": _record_hash,
        "__setattr__": _refuse_assignment,
        "__delattr__": _refuse_deletion,
        "__match_args__": positional,
        "__record_compared__": _values_of(compared),
        "__record_hashed__": _values_of(hashed),
        "__record_shown__": tuple(field.name for field in fields if field.repr),
    }
    for name, method in methods.items():
        if name not in vars(cls):  # as dataclass, a method the class defines itself stays
            setattr(cls, name, method)
    cls.__init__ = _record_init


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        (name,) = names
        return lambda record: (getattr(record, name),)
    return attrgetter(*names) if names else lambda record: ()


def _record_init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    names, positional, defaults = getattr(cls, _LAYOUT)
    if len(args) > len(positional):
        raise TypeError(f"{cls.__qualname__}() takes {len(positional)} positional arguments but {len(args)} were given")
    values = dict(zip(positional, args, strict=False))
    for name, value in kwargs.items():
        if name in values:
            raise TypeError(f"{cls.__qualname__}() got multiple values for argument {name!r}")
        if name not in names:
            raise TypeError(f"{cls.__qualname__}() got an unexpected keyword argument {name!r}")
        values[name] = value
    if len(values) < len(names):
        missing = [name for name in names if name not in values and name not in defaults]
        if missing:
            raise TypeError(f"{cls.__qualname__}() missing required arguments: {', '.join(map(repr, missing))}")
    assign = object.__setattr__
    for name in names:
        if name in values:
            assign(self, name, values[name])
        else:
            default, factory = defaults[name]
            assign(self, name, default if factory is None else factory())


def _record_repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record_shown__)
    return f"{type(self).__qualname__}({shown})"


def _record_eq(self: Any, other: Any) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    compared = type(self).__record_compared__
    return bool(compared(self) == compared(other))


def _record_hash(self: Any) -> int:
    return hash(type(self).__record_hashed__(self))


def _refuse_assignment(self: Any, name: str, value: Any) -> NoReturn:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> NoReturn:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def is_record(value: object) -> bool:
    """A record class, built or not, or a plain dataclass."""
    return isinstance(value, type) and (_OPTIONS in vars(value) or dataclasses.is_dataclass(value))


def record_fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    """`dataclasses.fields` of a record class (built first)."""
    return dataclasses.fields(build_record(cls))
