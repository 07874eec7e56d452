"""The consumer of the events queue (StripeEventsQueue): each message is a Stripe event, from the
webhook or from Stripe's EventBridge destination, synced by `event_sync_logic` (one Stripe read
per customer per batch, paced to this invocation's share of StripeReadsPerSecond).

Partial batch failures: the answer names the messages to receive again (Stripe or the table
unavailable: after a backoff; a poison message: until the dead-letter queue takes it); the
others are deleted from the queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client, sqs_client
from tenant_billing.catalog import get_catalog
from tenant_billing.event_queue import get_event_queue
from tenant_billing.event_sync_logic import BatchSync, read_pacer, sync_message
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.queue_batch import PartialBatchResponse, QueueMessage, partial_batch_response, queue_records
from tenant_billing.repositories import get_webhook_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse:
    settings = get_settings()
    batch = BatchSync(
        get_webhook_repository(), get_stripe, settings, get_catalog(), read_pacer(settings.consumer_reads_per_second)
    )
    records = queue_records(event)
    batch.prefetch(str(record.get("body", "")) for record in records)
    queue = get_event_queue()

    def sync(message: QueueMessage) -> None:
        sync_message(message.body, message.receive_count, message.receipt_handle, batch, queue)

    return partial_batch_response(records, sync)


prime_on_snapshot(dynamodb_client, sqs_client, secretsmanager_client, get_settings, get_catalog)
