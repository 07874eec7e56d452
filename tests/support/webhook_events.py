"""Lambda Function URL (payload 2.0) events carrying a signed Stripe delivery."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

from tests.support.api_events import load_event
from tests.support.logscan import register_sensitive
from tests.support.stripe_signature import signature_header


def function_url_event(
    raw_body: bytes, headers: dict[str, str], *, base64_body: bool = False, method: str = "POST"
) -> dict[str, Any]:
    event = load_event("webhook_checkout_completed.json")
    event["headers"] = {"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0", **headers}
    event["requestContext"]["http"]["method"] = method
    event["isBase64Encoded"] = base64_body
    event["body"] = base64.b64encode(raw_body).decode() if base64_body else raw_body.decode()
    return event


def delivery_body(stripe_event: dict[str, Any]) -> bytes:
    """The bytes Stripe sends: pretty-printed JSON, as Stripe's deliveries are."""
    return json.dumps(stripe_event, indent=2).encode()


def signed_delivery(
    stripe_event: dict[str, Any] | bytes,
    secrets: Sequence[str],
    *,
    timestamp: int | None = None,
    header_name: str = "stripe-signature",
    base64_body: bool = False,
) -> dict[str, Any]:
    raw = stripe_event if isinstance(stripe_event, bytes) else delivery_body(stripe_event)
    # Whatever the test does with it, this body must never appear in a log.
    register_sensitive(raw.decode(errors="replace"))
    header = signature_header(secrets, int(time.time()) if timestamp is None else timestamp, raw)
    return function_url_event(raw, {header_name: header}, base64_body=base64_body)
