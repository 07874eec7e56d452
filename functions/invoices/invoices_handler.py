"""GET /billing/invoices?limit=&cursor=: the organization's recent invoices (any member)."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import InvoiceListResponse
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.invoices_logic import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, list_invoices
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.request_body import parse_query
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client

app = build_resolver()


@app.get(
    "/billing/invoices",
    summary="The organization's invoices, newest first",
    description="Any member. Pass `nextCursor` back as `cursor` for the next page.",
    tags=["Billing"],
    responses=documented(InvoiceListResponse, "A page of invoices"),
)
@tracer.capture_method
def invoices(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> InvoiceListResponse:
    parse_query(app.current_event.query_string_parameters, frozenset({"limit", "cursor"}))
    return list_invoices(
        current_caller(app), limit, cursor or None, get_org_billing_store(), get_settings(), get_catalog(), get_stripe_client
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
