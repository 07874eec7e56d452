"""The Stripe webhook on a Lambda Function URL. Verifies Stripe-Signature over the exact raw
body, then puts the event, exactly as received, on the events queue (one SendMessage; no table
and no Stripe call): the queue's consumer (functions/event_sync) syncs it.

Answers: 200 when the event is queued, or ignored (a type the product does not handle); 400 for
anything that is not a genuine, fresh Stripe event (nothing queued); 405 for other methods; 5xx
when the queue (or the signing secret) is unavailable, so Stripe retries (nothing was queued).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Any

from tenant_billing.aws_clients import secretsmanager_client, sqs_client
from tenant_billing.errors import BillingError
from tenant_billing.event_queue import get_event_queue
from tenant_billing.http_responses import (
    internal_error,
    method_not_allowed,
    proxy_response,
    webhook_failed,
    webhook_not_configured,
    webhook_rejected,
)
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_credentials import get_stripe_credentials
from tenant_billing.webhook_logic import HANDLED_EVENTS, Outcome, WebhookPayloadError, parse_event
from tenant_billing.webhook_signature import SignatureError, verify_signature

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


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


def handle(event: dict[str, Any]) -> dict[str, Any]:
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    if method != "POST":
        return method_not_allowed("POST")
    try:
        raw_body = _raw_body(event)
        secrets = get_stripe_credentials().webhook_secrets
        verify_signature(raw_body, _header(event, "stripe-signature"), secrets, now=time.time())
        stripe_event = parse_event(raw_body)
    except SignatureError as exc:
        if exc.code == "no_webhook_secret":
            return webhook_not_configured()
        return webhook_rejected(exc.code, exc.message)
    except WebhookPayloadError as exc:
        return webhook_rejected("not_a_stripe_event", str(exc))
    logger.append_keys(event_id=stripe_event.id, event_type=stripe_event.type)
    if stripe_event.type in HANDLED_EVENTS:
        get_event_queue().send_event(raw_body.decode(), stripe_event.id, stripe_event.type)
        # Counted by the queue (AWS/SQS NumberOfMessagesSent, on the dashboard): a metric of ours
        # here would cost every cold start of the webhook Powertools' import (observability).
        outcome = Outcome.QUEUED
    else:
        outcome = Outcome.IGNORED
        metrics.add_metric(name="Webhook_ignored", unit="Count", value=1)
    return proxy_response(200, {"received": True, "outcome": outcome.value})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return handle(event)
    except BillingError as exc:
        return webhook_failed(exc)
    except Exception:
        logger.exception("webhook failed unexpectedly")
        return proxy_response(500, internal_error())


prime_on_snapshot(sqs_client, secretsmanager_client, get_settings)
