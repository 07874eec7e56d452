"""The one module that maps domain errors to HTTP responses.

Every error body has the same shape: {"error": {"code": ..., "message": ..., "field": ...}}
("field" only when the error concerns one; "hostedInvoiceUrl" and "clientSecret" only when an
open invoice is to be paid).
"""

from __future__ import annotations

import json
from typing import Any

from tenant_billing.errors import BillingError

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def error_payload(exc: BillingError) -> tuple[int, dict[str, Any]]:
    body = error_body(exc.code, exc.message, exc.field)
    payment = getattr(exc, "payment", None)
    if payment is not None:
        body["error"]["hostedInvoiceUrl"] = payment.hosted_invoice_url
        if payment.client_secret:
            body["error"]["clientSecret"] = payment.client_secret
    return exc.status_code, body


def proxy_response(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    """A Lambda proxy (HTTP API v2 / Function URL) response, for handlers without a resolver."""
    return {
        "statusCode": status_code,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(exc: BillingError) -> dict[str, Any]:
    return proxy_response(*error_payload(exc))
