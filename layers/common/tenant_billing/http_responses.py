"""The one module that maps domain errors to HTTP responses (Lambda proxy responses, for the API
and for the webhook), and logs each refusal.

Every error body has the same shape: {"error": {"code": ..., "message": ..., "field": ...}}
("field" only when the error concerns one; "hostedInvoiceUrl" and "clientSecret" only when an
open invoice is to be paid).
"""

from __future__ import annotations

import json
from typing import Any

from tenant_billing.errors import BillingError, BillingStateError
from tenant_billing.observability import logger, metrics

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def error_payload(exc: BillingError) -> tuple[int, dict[str, Any]]:
    body = error_body(exc.code, exc.message, exc.field)
    payment = exc.payment if isinstance(exc, BillingStateError) else None
    if payment is not None:
        body["error"]["hostedInvoiceUrl"] = payment.hosted_invoice_url
        if payment.client_secret:
            body["error"]["clientSecret"] = payment.client_secret
    return exc.status_code, body


def refused(exc: BillingError) -> tuple[int, dict[str, Any]]:
    """Log a refused API request, count it when it is worth a retry, and give its answer."""
    status, body = error_payload(exc)
    log = logger.warning if status >= 500 else logger.info
    # An unknown field's name is the caller's own text (it may be a card number or a key used as a
    # JSON key), so it is not logged; every other field name is one of our models'.
    field = "(not logged)" if exc.code == "unknown_field" else exc.field
    # The code is ours and the field is safe; the message may quote the caller's input: not logged.
    log("request refused", extra={"error_code": exc.code, "status": status, "field": field})
    if exc.retryable:
        metrics.add_metric(name="TransientFailure", unit="Count", value=1)
    return status, body


def proxy_response(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    """A Lambda proxy (HTTP API v2 / Function URL) response."""
    return {
        "statusCode": status_code,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def internal_error() -> dict[str, Any]:
    return error_body("internal_error", "an unexpected error occurred")


def route_not_found() -> dict[str, Any]:
    return error_body("not_found", "no such route")


def method_not_allowed(allowed: str) -> dict[str, Any]:
    response = proxy_response(405, error_body("method_not_allowed", f"use {allowed}"))
    response["headers"]["Allow"] = allowed
    return response


def webhook_not_configured() -> dict[str, Any]:
    # Our configuration is missing, not the sender's fault: a 503 lets Stripe retry later.
    logger.error("no webhook secret configured")
    return proxy_response(503, error_body("billing_not_configured", "billing is not configured"))


def webhook_rejected(code: str, message: str) -> dict[str, Any]:
    """A delivery that is not a genuine, fresh Stripe event: 400, so Stripe does not retry."""
    # The log line names the reason only: never the body, the header or a secret.
    logger.warning("webhook rejected", extra={"reason": code})
    metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
    return proxy_response(400, error_body(code, message))


def webhook_failed(exc: BillingError) -> dict[str, Any]:
    """Transient (DynamoDB, Secrets Manager, Stripe) or configuration: a 5xx makes Stripe retry."""
    logger.warning("webhook failed", extra={"error_code": exc.code})
    return proxy_response(*error_payload(exc))
