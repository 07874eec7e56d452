"""GET /billing/invoices?limit=&cursor=: the organization's recent invoices (any member)."""

from __future__ import annotations

from tenant_billing.api_models import InvoiceListResponse, InvoicesQuery
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.invoices_logic import list_invoices
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation("GET /billing/invoices", Role.MEMBER, InvoiceListResponse, "A page of invoices", query=InvoicesQuery)
def invoices(caller: Caller, query: InvoicesQuery) -> InvoiceListResponse:
    """The organization's invoices, newest first

    Any member. Pass `nextCursor` back as `cursor` for the next page.
    """
    return list_invoices(
        caller, query.limit, query.cursor or None, get_org_billing_store(), get_settings(), get_catalog(), get_stripe
    )


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, secretsmanager_client, get_settings, get_catalog)
