"""Scheduled reconciliation of Stripe's subscriptions with the table (an EventBridge schedule,
daily by default): heals any state a lost webhook left behind. See `tenant_billing.reconcile_logic`.

Answers {"outcome": "completed" | "paused" | "busy" | "preempted" | "not_configured", "run_id",
"checked", "repaired", "not_ours", "orphaned", "superseded"} with the run's counts so far. Transient
failures (DynamoDB, Stripe) raise after the checkpoint is stored, so the schedule's retry, or the
next run, resumes where this one stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.errors import BillingError
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.reconcile_logic import reconcile
from tenant_billing.repositories import get_reconcile_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    try:
        result = reconcile(
            get_reconcile_repository(),
            get_stripe,
            settings,
            get_catalog(),
            context.get_remaining_time_in_millis,
        )
    except BillingError as exc:
        # Raised on purpose: the invocation fails, the schedule retries, the checkpoint resumes.
        logger.warning("reconciliation failed", extra={"error_code": exc.code})
        metrics.add_metric(name="ReconcileFailed", unit="Count", value=1)
        raise
    return result.as_dict()


prime_on_snapshot(dynamodb_client, secretsmanager_client, get_settings, get_catalog)
