"""POST /billing/checkout: a billing admin gets a Stripe Checkout URL for a plan plus per-site
add-ons. Body: {"plan": "starter" | "pro" | "enterprise", "siteQuantity": <integer, default 0>}."""

from __future__ import annotations

from tenant_billing.api_models import PlanSelection, UrlResponse
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.checkout_logic import create_checkout
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.repositories import get_checkout_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe

app = BillingApi(tag="Billing")


@app.operation(
    "POST /billing/checkout",
    Role.BILLING_ADMIN,
    UrlResponse,
    "The Checkout Session URL to send the browser to",
    body=PlanSelection,
    body_required=True,
)
def checkout(caller: Caller, selection: PlanSelection) -> UrlResponse:
    """A Stripe Checkout URL for a plan and its per-site add-ons

    Billing admins only. 409 `subscription_exists` while a subscription has not ended.
    """
    return create_checkout(caller, selection, get_checkout_repository(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, secretsmanager_client, get_settings, get_catalog)
