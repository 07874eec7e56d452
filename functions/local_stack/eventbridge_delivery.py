"""The Stripe emulator's events the way Stripe's Amazon EventBridge event destination delivers them:
wrapped in the EventBridge event Stripe puts on the partner event bus, sent to the queue the way
the template's StripeEventsRule does (the message body is the EventBridge event, unchanged).

The envelope, as Stripe sends it (docs.stripe.com/event-destinations/eventbridge for the partner
event source; the payload from the test fixtures of a Stripe SDK's `construct_event_from_cloud_provider`
and from events captured off real destinations in public repositories):
`source` is the partner event source, `aws.partner/stripe.com/<event destination id>`
(`ed_test_...` in a sandbox), `detail-type` the Stripe event's type, `resources` the partner event
source's ARN, and `detail` the whole snapshot event (`id` evt_..., `object` "event", `type`,
`api_version`, `created`, `data.object`, `livemode`, `pending_webhooks`, `request`), the same JSON a
webhook endpoint receives. No Stripe-Signature: EventBridge authenticates the sender.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

# The partner event source of a local "event destination" (Stripe names them after its id).
LOCAL_EVENT_SOURCE = "aws.partner/stripe.com/ed_test_local_development"


def eventbridge_event(
    stripe_event: dict[str, Any], *, source: str, account: str, region: str, event_id: str, time: datetime
) -> dict[str, Any]:
    """The EventBridge event Stripe puts on the partner bus for `stripe_event`."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": stripe_event["type"],
        "source": source,
        "account": account,
        "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}::event-source/{source}"],
        "detail": stripe_event,
    }


class EventBridgeToQueue:
    """A delivery transport for the emulator (WebhookDeliveries.send): each event body, wrapped as
    Stripe's EventBridge destination wraps it, sent to the queue as StripeEventsRule would."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, source: str = LOCAL_EVENT_SOURCE) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        _, _, _, self._region, self._account, _ = queue_arn.split(":")
        self._source = source

    def __call__(self, body: bytes) -> tuple[int | None, str]:
        """(200, ...) once the queue has the message, as WebhookDeliveries' transports answer."""
        envelope = eventbridge_event(
            json.loads(body),
            source=self._source,
            account=self._account,
            region=self._region,
            event_id=str(uuid.uuid4()),
            time=datetime.now(UTC),
        )
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(envelope))
        except Exception as error:  # botocore's errors; retried with the emulator's backoff
            return None, type(error).__name__
        return 200, "sent to the queue"
