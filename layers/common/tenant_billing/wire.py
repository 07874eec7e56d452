"""The API's models on the wire: a JSON object read into a request dataclass (validated as the
OpenAPI document says), and a response dataclass written out, camelCase.

Fields carry their wire name and constraints in their metadata (`api`), which is also what the
OpenAPI document is generated from. Reading is strict for bodies ("3" is not 3, 1 is not true)
and, as for any query string, lax for query parameters ("3" is 3). The first problem found is
the one reported, in pydantic's order (declared fields first, then unknown ones), with the codes
of the API: missing_field, invalid_field, unknown_field.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

from tenant_billing.errors import InvalidRequestError
from tenant_billing.records import frozen, is_record, record_fields

# The field name may be the caller's own (an unknown field): it is kept bounded.
MAX_FIELD_NAME = 128
# What a query string holds for an integer: digits with an optional sign, `_` separators and a
# zero fraction, around whitespace (pydantic's lax integer).
_QUERY_INTEGER = re.compile(r"\s*([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?\s*")


def api(
    alias: str | None = None,
    *,
    description: str | None = None,
    max_length: int | None = None,
    ge: int | None = None,
    le: int | None = None,
) -> dict[str, Any]:
    """A model field's metadata (`field(metadata=api(...))`): its wire name when not the
    attribute's, its documentation and its constraints."""
    metadata = {"alias": alias, "description": description, "max_length": max_length, "ge": ge, "le": le}
    return {key: value for key, value in metadata.items() if value is not None}


@frozen
class WireField:
    name: str
    wire_name: str
    # The declared type without `| None`, and whether None is allowed.
    kind: Any
    optional: bool
    required: bool
    metadata: typing.Mapping[str, Any]


_FIELDS: dict[type[Any], tuple[WireField, ...]] = {}


def wire_fields(model: type[Any]) -> tuple[WireField, ...]:
    """A model's fields in declaration order, with their resolved types (once per model)."""
    if (known := _FIELDS.get(model)) is not None:
        return known
    hints = typing.get_type_hints(model)
    found = []
    for field in record_fields(model):
        kind, optional = _without_none(hints[field.name])
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        alias = field.metadata.get("alias") or field.name
        found.append(WireField(field.name, alias, kind, optional, required, field.metadata))
    _FIELDS[model] = tuple(found)
    return _FIELDS[model]


def resolve_models(model: type[Any]) -> None:
    """Resolve a model's fields and those of every model it holds (what its first use would do)."""
    pending: list[Any] = [model]
    while pending:
        kind = pending.pop()
        if is_record(kind) and kind not in _FIELDS:
            pending.extend(field.kind for field in wire_fields(kind))
        pending.extend(typing.get_args(kind))


def _without_none(annotation: Any) -> tuple[Any, bool]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def read_model[Model](model: type[Model], document: typing.Mapping[str, Any], *, query: bool = False) -> Model:
    """The request model from a JSON object (or the query string's parameters, `query=True`)."""
    values: dict[str, Any] = {}
    fields = wire_fields(model)
    for field in fields:
        if field.wire_name not in document:
            if field.required:
                raise InvalidRequestError(f"{field.wire_name}: required", field=field.wire_name, code="missing_field")
            continue
        values[field.name] = _read_value(field, document[field.wire_name], query)
    known = {field.wire_name for field in fields}
    for name in document:
        if name not in known:
            # The name is the caller's text: returned in `field`, kept out of the message.
            raise InvalidRequestError(
                "unknown query parameter" if query else "unknown field", field=str(name)[:MAX_FIELD_NAME], code="unknown_field"
            )
    return model(**values)


def _invalid(field: WireField, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"{field.wire_name}: {reason}", field=field.wire_name, code="invalid_field")


def _read_value(field: WireField, value: Any, query: bool) -> Any:
    if value is None and field.optional and not query:
        return None
    kind, metadata = field.kind, field.metadata
    if kind is bool:
        if type(value) is not bool:
            raise _invalid(field, "Input should be a valid boolean")
        return value
    if kind is int:
        number = _query_integer(value) if query and isinstance(value, str) else value
        if type(number) is not int:
            raise _invalid(field, "Input should be a valid integer")
        if "ge" in metadata and number < metadata["ge"]:
            raise _invalid(field, f"Input should be greater than or equal to {metadata['ge']}")
        if "le" in metadata and number > metadata["le"]:
            raise _invalid(field, f"Input should be less than or equal to {metadata['le']}")
        return number
    if kind is str:
        if type(value) is not str:
            raise _invalid(field, "Input should be a valid string")
        if "max_length" in metadata and len(value) > metadata["max_length"]:
            raise _invalid(field, f"String should have at most {metadata['max_length']} characters")
        return value
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        if type(value) is not str or value not in choices:
            # pydantic's words: "Input should be 'month' or 'year'".
            quoted = [repr(choice) for choice in choices]
            listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            raise _invalid(field, f"Input should be {listed}")
        return value
    raise TypeError(f"{field.name}: requests take str, int, bool and Literal[str, ...] fields, not {kind!r}")


def _query_integer(text: str) -> int | None:
    match = _QUERY_INTEGER.fullmatch(text)
    return int(match.group(1)) if match else None


def to_wire(value: Any) -> Any:
    """A response model (and what it holds) as JSON-ready values under their wire names."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.wire_name: to_wire(getattr(value, field.name)) for field in wire_fields(type(value))}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    return value
