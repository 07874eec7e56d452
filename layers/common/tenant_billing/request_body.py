"""Parsing of JSON request bodies into strict pydantic models, with stable error codes and the
field concerned. Nothing is written and nothing is sent to Stripe before a body passed here."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from tenant_billing.errors import InvalidRequestError, PayloadTooLargeError

MAX_BODY_BYTES = 16 * 1024

# pydantic error types -> our stable codes.
_ERROR_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
}


def parse_body[ModelT: BaseModel](body: str | bytes | None, model: type[ModelT], *, allow_empty: bool = False) -> ModelT:
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        document: Any = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("the request body is not valid JSON", code="invalid_json") from None
    if document is None and allow_empty:
        document = {}
    if not isinstance(document, dict):
        raise InvalidRequestError("the request body must be a JSON object", code="invalid_body")
    try:
        return model.model_validate(document, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        code = _ERROR_CODES.get(error["type"], "invalid_field")
        message = "unknown field" if code == "unknown_field" else error["msg"]
        raise InvalidRequestError(f"{field}: {message}", field=field, code=code) from None
