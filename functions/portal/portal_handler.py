"""POST /billing/portal: a billing admin gets a Stripe Customer Portal URL for the organization.
Body: none, or {}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import PortalRequest
from tenant_billing.auth import caller_from_event, require_billing_admin
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, get_repository
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.portal_logic import create_portal
from tenant_billing.request_body import parse_body
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client

app = build_resolver()


@app.post("/billing/portal")
@tracer.capture_method
def portal() -> dict[str, Any]:
    settings = get_settings()
    caller = caller_from_event(app.current_event.raw_event, settings)
    logger.append_keys(org_id=caller.org_id)
    require_billing_admin(caller)
    parse_body(app.current_event.decoded_body, PortalRequest, allow_empty=True)
    response = create_portal(caller, get_repository(), settings, get_catalog(), get_stripe_client)
    return response.model_dump(mode="json")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
