"""GET /billing/status: any member of the organization reads its plan, subscription state and
entitlements. One DynamoDB Query; never imports the Stripe SDK."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.auth import caller_from_event
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, get_repository
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.settings import get_settings
from tenant_billing.status_logic import get_billing_status

app = build_resolver()


@app.get("/billing/status")
@tracer.capture_method
def billing_status() -> dict[str, Any]:
    settings = get_settings()
    caller = caller_from_event(app.current_event.raw_event, settings)
    logger.append_keys(org_id=caller.org_id)
    status = get_billing_status(caller.org_id, get_repository(), settings, get_catalog())
    return status.model_dump(mode="json", by_alias=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
