"""The queue of verified Stripe events (StripeEventsQueue): every SQS request, and the translation
of SQS's failures into domain errors.

The webhook sends each event's body exactly as Stripe sent it (the queue is not a log: nothing
is added to it but the event's id and type, as message attributes). The consumer hands a message
back with a backoff when Stripe or the table is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from tenant_billing.aws_clients import sqs_client
from tenant_billing.errors import ConfigurationError, EventQueueUnavailableError
from tenant_billing.observability import logger

if TYPE_CHECKING:
    from tenant_billing.aws_clients import SQSClient

UNAVAILABLE = "the event queue is temporarily unavailable, try again"
# A message's visibility timeout may not exceed 12 hours.
MAX_VISIBILITY_SECONDS = 12 * 3600


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Every failure of an SQS request (throttled, unavailable, denied, timed out) is retryable for
    the caller: the request had no effect that a retry would repeat wrongly."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("event queue request failed", extra={"error_code": code})
        raise EventQueueUnavailableError(UNAVAILABLE) from exc


class EventQueue:
    def __init__(self, queue_url: str, client_factory: Callable[[], SQSClient] = sqs_client) -> None:
        self.queue_url = queue_url
        self.client_factory = client_factory

    def send_event(self, body: str, event_id: str, event_type: str) -> None:
        """One SendMessage; EventQueueUnavailableError when the event was not queued."""
        attributes = {
            "event_id": {"DataType": "String", "StringValue": event_id},
            "event_type": {"DataType": "String", "StringValue": event_type},
        }
        with _translated_errors():
            self.client_factory().send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes)

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again in `delay_seconds`. Best effort: when this fails the
        message still returns, after the queue's own visibility timeout."""
        try:
            with _translated_errors():
                self.client_factory().change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=receipt_handle,
                    VisibilityTimeout=max(0, min(delay_seconds, MAX_VISIBILITY_SECONDS)),
                )
        except EventQueueUnavailableError:
            return


@cache
def get_event_queue() -> EventQueue:
    """The queue of this environment (EVENTS_QUEUE_URL), one per execution environment."""
    from tenant_billing.settings import get_settings

    queue_url = get_settings().EVENTS_QUEUE_URL
    if not queue_url:
        raise ConfigurationError("EVENTS_QUEUE_URL is not set")
    return EventQueue(queue_url)
