"""GET /billing/status: any member of the organization reads its plan, subscription state and
entitlements. One DynamoDB Query; never imports the Stripe SDK."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import BillingStatusResponse
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.status_logic import get_billing_status

app = build_resolver()


@app.get(
    "/billing/status",
    summary="The organization's plan, subscription state and entitlements",
    description="Any member of the organization. `subscription` is null when it never subscribed.",
    tags=["Billing"],
    responses=documented(BillingStatusResponse, "The organization's billing status"),
)
@tracer.capture_method
def billing_status() -> BillingStatusResponse:
    caller = current_caller(app)
    return get_billing_status(caller.org_id, get_org_billing_store(), get_settings(), get_catalog())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
