"""Request limits and query-string checks shared by the API functions (bodies are parsed into the
routes' pydantic models by Powertools; see http_api)."""

from __future__ import annotations

from collections.abc import Mapping

from tenant_billing.errors import InvalidRequestError

MAX_BODY_BYTES = 16 * 1024
MAX_FIELD_NAME = 128


def parse_query(parameters: Mapping[str, str] | None, allowed: frozenset[str]) -> dict[str, str]:
    """Query string parameters, with unknown names refused like unknown body fields."""
    values = dict(parameters or {})
    for name in values:
        if name not in allowed:
            # The name is the caller's own text: it goes back in `field` (bounded), never into a
            # message, which tracebacks and traces may carry into logs.
            raise InvalidRequestError("unknown query parameter", field=name[:MAX_FIELD_NAME], code="unknown_field")
    return values
