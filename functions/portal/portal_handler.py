"""POST /billing/portal: a billing admin gets a Stripe Customer Portal URL for the organization.
Body: none, or {}."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from tenant_billing.api_models import PortalRequest, UrlResponse
from tenant_billing.auth import Role
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.portal_logic import create_portal
from tenant_billing.settings import get_settings
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation("POST /billing/portal", Role.BILLING_ADMIN, UrlResponse, "The Customer Portal URL to send the browser to")
def portal(_: Annotated[PortalRequest | None, Body()] = None) -> UrlResponse:
    """A Stripe Customer Portal URL for the organization

    Billing admins only. 409 `no_billing_account` before the organization has a Stripe customer.
    """
    return create_portal(app.caller, get_org_billing_store(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
