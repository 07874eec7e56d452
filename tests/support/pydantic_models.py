"""The API's dataclass models (tenant_billing.api_models) as the pydantic models they stand for:
what Powertools documents in the OpenAPI document, and the oracle the tests hold `wire` to.

A request model is strict and forbids unknown fields (as `wire` reads bodies); the same model lax
(`strict=False`) is how a query string is validated. Response models serialize by alias.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from tenant_billing import api_models
from tenant_billing.records import is_record, record_fields

# The models a route takes: everything else in api_models is an answer.
REQUEST_MODELS = frozenset(
    {
        api_models.PlanSelection,
        api_models.PlanChange,
        api_models.PortalRequest,
        api_models.SyncRequest,
        api_models.CancelRequest,
        api_models.ResumeRequest,
        api_models.InvoicesQuery,
    }
)


def _docstring(model: type[Any]) -> str | None:
    # A dataclass without a docstring gets its signature as one: that is no description.
    doc = model.__doc__
    return None if doc is None or doc.startswith(f"{model.__name__}(") else doc


def _annotation(annotation: Any, strict: bool) -> Any:
    if is_record(annotation):
        return pydantic_model(typing.cast("type[Any]", annotation), strict=strict)
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    arguments = tuple(_annotation(argument, strict) for argument in typing.get_args(annotation))
    if origin is types.UnionType or origin is typing.Union:
        return typing.Union[arguments]  # noqa: UP007 - built from a runtime tuple
    return origin[arguments if len(arguments) > 1 else arguments[0]]


_BUILT: dict[tuple[type[Any], bool], type[BaseModel]] = {}


def pydantic_model(model: type[Any], *, strict: bool = True) -> type[BaseModel]:
    """The pydantic model of a dataclass of api_models (with its nested models), built once."""
    if (model, strict) not in _BUILT:
        _BUILT[model, strict] = _build(model, strict)
    return _BUILT[model, strict]


def _build(model: type[Any], strict: bool) -> type[BaseModel]:
    hints = typing.get_type_hints(model)
    request = model in REQUEST_MODELS
    fields: dict[str, Any] = {}
    for field in record_fields(model):
        metadata = field.metadata
        default = ... if field.default is dataclasses.MISSING else field.default
        constraints = {key: metadata[key] for key in ("max_length", "ge", "le") if key in metadata}
        info = Field(default, alias=metadata.get("alias"), description=metadata.get("description"), **constraints)
        fields[field.name] = (_annotation(hints[field.name], strict), info)
    if request:
        config = ConfigDict(extra="forbid", strict=strict, populate_by_name=False, frozen=True)
    else:
        config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    built: type[BaseModel] = create_model(model.__name__, __config__=config, __doc__=_docstring(model), **fields)
    return built
