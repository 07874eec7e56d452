"""Consumes the billing table's DynamoDB stream (ENTITLEMENT items only, by the event source
mapping's filter) and publishes one `EntitlementsChanged` event per real change to EventBridge.

Answers with ReportBatchItemFailures: on a failed publish, the failed record and everything after
it are retried, nothing before it is sent again (see `tenant_billing.entitlement_events`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_billing.aws_clients import events_client
from tenant_billing.entitlement_events import publish_entitlement_changes
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    settings = get_settings()
    outcome = publish_entitlement_changes(
        event.get("Records") or [],
        events_client,
        bus_name=settings.EVENT_BUS_NAME,
        source=settings.ENTITLEMENT_EVENT_SOURCE,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    logger.info(
        "entitlement stream batch",
        extra={"published": outcome.published, "skipped": outcome.skipped, "retry_from": outcome.failed_sequence_number},
    )
    return outcome.response()


prime_on_snapshot(events_client, get_settings)
