"""GET /billing/invoices?limit=&cursor=: the organization's recent invoices (any member)."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from tenant_billing.api_models import InvoiceListResponse
from tenant_billing.auth import Role
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.invoices_logic import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, list_invoices
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation(
    "GET /billing/invoices", Role.MEMBER, InvoiceListResponse, "A page of invoices", query=frozenset({"limit", "cursor"})
)
def invoices(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> InvoiceListResponse:
    """The organization's invoices, newest first

    Any member. Pass `nextCursor` back as `cursor` for the next page.
    """
    return list_invoices(app.caller, limit, cursor or None, get_org_billing_store(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
