"""POST /billing/checkout: a billing admin gets a Stripe Checkout URL for a plan plus per-site
add-ons. Body: {"plan": "starter" | "pro" | "enterprise", "siteQuantity": <integer, default 0>}."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from tenant_billing.api_models import PlanSelection, UrlResponse
from tenant_billing.auth import Role
from tenant_billing.catalog import get_catalog
from tenant_billing.checkout_logic import create_checkout
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.repositories import get_checkout_repository
from tenant_billing.settings import get_settings
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation("POST /billing/checkout", Role.BILLING_ADMIN, UrlResponse, "The Checkout Session URL to send the browser to")
def checkout(selection: Annotated[PlanSelection, Body()]) -> UrlResponse:
    """A Stripe Checkout URL for a plan and its per-site add-ons

    Billing admins only. 409 `subscription_exists` while a subscription has not ended.
    """
    return create_checkout(app.caller, selection, get_checkout_repository(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
