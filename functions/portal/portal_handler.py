"""POST /billing/portal: a billing admin gets a Stripe Customer Portal URL for the organization.
Body: none, or {}."""

from __future__ import annotations

from tenant_billing.api_models import PortalRequest, UrlResponse
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.portal_logic import create_portal
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation(
    "POST /billing/portal", Role.BILLING_ADMIN, UrlResponse, "The Customer Portal URL to send the browser to", body=PortalRequest
)
def portal(caller: Caller, _: PortalRequest | None) -> UrlResponse:
    """A Stripe Customer Portal URL for the organization

    Billing admins only. 409 `no_billing_account` before the organization has a Stripe customer.
    """
    return create_portal(caller, get_org_billing_store(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, secretsmanager_client, get_settings, get_catalog)
