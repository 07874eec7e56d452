"""GET /billing/status: any member of the organization reads its plan, subscription state and
entitlements. One DynamoDB Query; never imports the Stripe SDK."""

from __future__ import annotations

from tenant_billing.api_models import BillingStatusResponse
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.status_logic import get_billing_status

app = BillingApi(tag="Billing")


@app.operation("GET /billing/status", Role.MEMBER, BillingStatusResponse, "The organization's billing status")
def billing_status(caller: Caller) -> BillingStatusResponse:
    """The organization's plan, subscription state and entitlements

    Any member of the organization. `subscription` is null when it never subscribed.
    """
    return get_billing_status(caller.org_id, get_org_billing_store(), get_settings(), get_catalog())


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, get_settings, get_catalog)
