"""The synchronous webhook, for the storm benchmark's comparison only: the design before the
queue, kept here so the storm can run both in one process. Verifies the signature, then syncs the
organization from Stripe inline (the consumer's own logic, `event_sync_logic.BatchSync`, for this
one event, unpaced: one Stripe read per new event) and answers 200, or 5xx when Stripe (a 429
included) or the table fails, so Stripe delivers again later: what the webhook did on main. Not
shipped.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tenant_billing.catalog import get_catalog
from tenant_billing.errors import BillingError
from tenant_billing.event_sync_logic import BatchSync, ReadPacer
from tenant_billing.http_responses import internal_error, proxy_response, webhook_failed, webhook_rejected
from tenant_billing.observability import logger, metrics
from tenant_billing.repositories import get_webhook_repository
from tenant_billing.settings import get_settings
from tenant_billing.stripe_adapter import get_stripe
from tenant_billing.stripe_credentials import get_stripe_credentials
from tenant_billing.webhook_logic import WebhookPayloadError, parse_event
from tenant_billing.webhook_signature import SignatureError, verify_signature


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    headers = {str(key).lower(): str(value) for key, value in (event.get("headers") or {}).items()}
    raw_body = str(event.get("body") or "").encode()
    try:
        verify_signature(raw_body, headers.get("stripe-signature"), get_stripe_credentials().webhook_secrets, now=time.time())
        stripe_event = parse_event(raw_body)
    except SignatureError as exc:
        return webhook_rejected(exc.code, exc.message)
    except WebhookPayloadError as exc:
        return webhook_rejected("not_a_stripe_event", str(exc))
    # No pacing: each delivery reads Stripe at once, as the synchronous webhook did.
    batch = BatchSync(get_webhook_repository(), get_stripe, get_settings(), get_catalog(), ReadPacer(float("inf")))
    # Without its `created`, so a stored read never stands in for the event's own (as on main).
    outcome = batch.process(dataclasses.replace(stripe_event, created=0))
    return proxy_response(200, {"received": True, "outcome": outcome.value})


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return _handle(event)
    except BillingError as exc:
        return webhook_failed(exc)
    except Exception:
        logger.exception("webhook failed unexpectedly")
        return proxy_response(500, internal_error())
