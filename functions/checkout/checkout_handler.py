"""POST /billing/checkout: a billing admin gets a Stripe Checkout URL for a plan plus per-site
add-ons. Body: {"plan": "starter" | "pro" | "enterprise", "siteQuantity": <integer, default 0>}."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import PlanSelection, UrlResponse
from tenant_billing.catalog import get_catalog
from tenant_billing.checkout_logic import create_checkout
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.repositories import get_checkout_repository
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client

app = build_resolver()


@app.post(
    "/billing/checkout",
    summary="A Stripe Checkout URL for a plan and its per-site add-ons",
    description="Billing admins only. 409 `subscription_exists` while a subscription has not ended.",
    tags=["Billing"],
    responses=documented(UrlResponse, "The Checkout Session URL to send the browser to"),
)
@tracer.capture_method
def checkout(selection: Annotated[PlanSelection, Body()]) -> UrlResponse:
    return create_checkout(
        current_caller(app), selection, get_checkout_repository(), get_settings(), get_catalog(), get_stripe_client
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, admin_routes=frozenset({"POST /billing/checkout"}))
