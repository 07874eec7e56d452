"""The Stripe webhook on a Lambda Function URL. Verifies Stripe-Signature over the exact raw
body, then syncs the subscription the event concerns from the Stripe API.

Answers: 200 when the event took effect, was a duplicate, or is ignored; 400 for anything that
is not a genuine, fresh Stripe event (nothing written); 405 for other methods; 5xx for transient
failures, so Stripe retries (nothing half-written: the sync is one transaction).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.catalog import get_catalog
from tenant_billing.errors import BillingError
from tenant_billing.http_responses import error_body, error_response, proxy_response
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.repositories import get_webhook_repository
from tenant_billing.settings import get_settings
from tenant_billing.stripe_credentials import get_stripe_credentials
from tenant_billing.stripe_gateway import get_stripe_client
from tenant_billing.webhook_logic import WebhookPayloadError, parse_event, process_event
from tenant_billing.webhook_signature import SignatureError, verify_signature


def _header(event: dict[str, Any], name: str) -> str | None:
    # Function URLs lower-case header names; other callers may not: look up case-insensitively.
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookPayloadError("the body is not valid base64") from None
    return str(body).encode()


def _rejected(code: str, message: str) -> dict[str, Any]:
    # The log line names the reason only: never the body, the header or a secret.
    logger.warning("webhook rejected", extra={"reason": code})
    metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
    return proxy_response(400, error_body(code, message))


def handle(event: dict[str, Any]) -> dict[str, Any]:
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    if method != "POST":
        response = proxy_response(405, error_body("method_not_allowed", "use POST"))
        response["headers"]["Allow"] = "POST"
        return response
    try:
        raw_body = _raw_body(event)
        secrets = get_stripe_credentials().webhook_secrets
        verify_signature(raw_body, _header(event, "stripe-signature"), secrets, now=time.time())
        stripe_event = parse_event(raw_body)
    except SignatureError as exc:
        if exc.code == "no_webhook_secret":
            # Our configuration is missing, not the sender's fault: let Stripe retry later.
            logger.error("no webhook secret configured")
            return proxy_response(503, error_body("billing_not_configured", "billing is not configured"))
        return _rejected(exc.code, exc.message)
    except WebhookPayloadError as exc:
        return _rejected("not_a_stripe_event", str(exc))
    logger.append_keys(event_id=stripe_event.id, event_type=stripe_event.type)
    settings = get_settings()
    outcome = process_event(stripe_event, get_webhook_repository(), get_stripe_client, settings, get_catalog())
    metrics.add_metric(name=f"Webhook_{outcome.value}", unit="Count", value=1)
    return proxy_response(200, {"received": True, "outcome": outcome.value})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return handle(event)
    except BillingError as exc:
        # Transient (DynamoDB, Secrets Manager, Stripe) or configuration: a 5xx makes Stripe retry.
        logger.warning("webhook failed", extra={"error_code": exc.code})
        return error_response(exc)
    except Exception:
        logger.exception("webhook failed unexpectedly")
        return proxy_response(500, error_body("internal_error", "an unexpected error occurred"))
