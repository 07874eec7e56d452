"""POST /billing/sync: any member of the organization gets its billing status as Stripe has it
now (stored at once), at most one Stripe read per organization per 5 seconds. Body: none, or {}."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import BillingStatusResponse, SyncRequest
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client
from tenant_billing.sync_logic import sync_billing

app = build_resolver()


@app.post(
    "/billing/sync",
    summary="The organization's billing status, read from Stripe now",
    description=(
        "Any member of the organization. Reads the organization's subscriptions from Stripe, stores them and answers "
        "like GET /billing/status; at most one Stripe read per organization per 5 seconds (inside that window it "
        "answers with what is stored). Changes nothing in Stripe. Call it when Checkout or the portal sends the "
        "customer back, before showing the plan."
    ),
    tags=["Billing"],
    responses=documented(BillingStatusResponse, "The organization's billing status"),
)
@tracer.capture_method
def sync(_: Annotated[SyncRequest | None, Body()] = None) -> BillingStatusResponse:
    now_ms = time.time_ns() // 1_000_000
    return sync_billing(current_caller(app), get_org_billing_store(), get_settings(), get_catalog(), get_stripe_client, now_ms)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
