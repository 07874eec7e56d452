"""The Stripe event a queued message carries, in either of the two envelopes the queue receives.

- From the webhook: the body is the verified Stripe event exactly as Stripe sent it.
- From Stripe's EventBridge event destination, through an EventBridge rule targeting the queue:
  the body is the EventBridge event, `{"version": "0", "id": ..., "detail-type": <event type>,
  "source": "aws.partner/stripe.com/<destination id>", ..., "detail": <the Stripe event>}`.

Pure: no I/O. Anything else is a QueuedEventError (a poison message).
"""

from __future__ import annotations

import json

from tenant_billing.webhook_logic import StripeEvent, WebhookPayloadError, read_event_document

EVENTBRIDGE_SOURCE_PREFIX = "aws.partner/stripe.com/"


class QueuedEventError(WebhookPayloadError):
    """A queued message that is not a Stripe event in either envelope."""


def read_queued_event(body: str) -> StripeEvent:
    try:
        document = json.loads(body)
    except ValueError:
        raise QueuedEventError("the message is not JSON") from None
    if isinstance(document, dict) and document.get("object") != "event":
        source = document.get("source")
        if not isinstance(source, str) or not source.startswith(EVENTBRIDGE_SOURCE_PREFIX):
            raise QueuedEventError("the EventBridge event is not from Stripe")
        detail_type, document = document.get("detail-type"), document.get("detail")
        if not isinstance(document, dict) or document.get("type") != detail_type:
            raise QueuedEventError("the EventBridge event's detail is not the Stripe event it names")
    try:
        return read_event_document(document)
    except WebhookPayloadError as exc:
        raise QueuedEventError(str(exc)) from None
