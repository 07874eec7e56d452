"""POST /billing/portal: a billing admin gets a Stripe Customer Portal URL for the organization.
Body: none, or {}."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import PortalRequest, UrlResponse
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.portal_logic import create_portal
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client

app = build_resolver()


@app.post(
    "/billing/portal",
    summary="A Stripe Customer Portal URL for the organization",
    description="Billing admins only. 409 `no_billing_account` before the organization has a Stripe customer.",
    tags=["Billing"],
    responses=documented(UrlResponse, "The Customer Portal URL to send the browser to"),
)
@tracer.capture_method
def portal(_: Annotated[PortalRequest | None, Body()] = None) -> UrlResponse:
    return create_portal(current_caller(app), get_org_billing_store(), get_settings(), get_catalog(), get_stripe_client)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, admin_routes=frozenset({"POST /billing/portal"}))
