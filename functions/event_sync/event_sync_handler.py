"""The consumer of the events queue (StripeEventsQueue): each message is a Stripe event, from the
webhook or from Stripe's EventBridge destination, synced by `event_sync_logic` (one Stripe read
per customer per batch, paced to this invocation's share of StripeReadsPerSecond).

Partial batch failures: the answer names the messages to receive again (Stripe or the table
unavailable: after a backoff; a poison message: until the dead-letter queue takes it); the
others are deleted from the queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client, sqs_client
from tenant_billing.catalog import get_catalog
from tenant_billing.event_queue import get_event_queue
from tenant_billing.event_sync_logic import BatchSync, read_pacer, sync_message
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.repositories import get_webhook_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = get_settings()
    batch = BatchSync(
        get_webhook_repository(), get_stripe, settings, get_catalog(), read_pacer(settings.consumer_reads_per_second)
    )
    batch.prefetch(str(record.get("body", "")) for record in event.get("Records", []))
    queue = get_event_queue()
    # Per invocation (it holds the batch's results): every message failed is a partial failure like
    # any other, the answer lists them all.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord) -> str:
        receive_count = int(record.attributes.approximate_receive_count)
        return sync_message(record.body, receive_count, record.receipt_handle, batch, queue).value

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


prime_on_snapshot(dynamodb_client, sqs_client, secretsmanager_client, get_settings, get_catalog)
