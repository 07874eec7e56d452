"""Request limits and query-string checks shared by the API functions (bodies are parsed into the
routes' pydantic models by Powertools; see http_api)."""

from __future__ import annotations

from collections.abc import Mapping

from tenant_billing.errors import InvalidRequestError

MAX_BODY_BYTES = 16 * 1024


def parse_query(parameters: Mapping[str, str] | None, allowed: frozenset[str]) -> dict[str, str]:
    """Query string parameters, with unknown names refused like unknown body fields."""
    values = dict(parameters or {})
    for name in values:
        if name not in allowed:
            raise InvalidRequestError(f"{name}: unknown parameter", field=name, code="unknown_field")
    return values
