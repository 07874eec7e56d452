"""Frozen dataclasses, built on first use.

`dataclasses.dataclass` writes each class's methods (exec) when its module is imported: about half
a millisecond a class, and a Stripe function's cold start imports some fifty of them, most of which
its request never instantiates. A `@frozen` class is the same frozen dataclass (mypy sees exactly
that: `dataclass_transform`); `dataclasses.dataclass` processes it, and its record bases, the first
time it is instantiated or its fields are asked for (`record_fields`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, dataclass_transform, overload

_OPTIONS = "__record_options__"
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
        setattr(declared, _OPTIONS, {"kw_only": kw_only})
        # Replaced by the dataclass's own __init__ when the class is built.
        declared.__init__ = _build_then_init
        return declared

    return declare if cls is None else declare(cls)


def _build_then_init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    for klass in reversed(cls.__mro__):
        build_record(klass)
    cls.__init__(self, *args, **kwargs)


def build_record[Cls: type[Any]](cls: Cls) -> Cls:
    """The record class processed into its dataclass (its record bases first); once."""
    if _OPTIONS not in vars(cls) or "__dataclass_fields__" in vars(cls):
        return cls
    with _BUILDING:
        if "__dataclass_fields__" in vars(cls):
            return cls
        for base in reversed(cls.__mro__[1:]):
            build_record(base)
        # dataclass does not replace a method the class defines itself.
        del cls.__init__
        dataclasses.dataclass(cls, frozen=True, kw_only=vars(cls)[_OPTIONS]["kw_only"])
    return cls


def is_record(value: object) -> bool:
    """A record class, built or not, or a plain dataclass."""
    return isinstance(value, type) and (_OPTIONS in vars(value) or dataclasses.is_dataclass(value))


def record_fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    """`dataclasses.fields` of a record class (built first)."""
    return dataclasses.fields(build_record(cls))
