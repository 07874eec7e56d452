"""POST /billing/sync: any member of the organization gets its billing status as Stripe has it
now (stored at once), at most one Stripe read per organization per 5 seconds. Body: none, or {}."""

from __future__ import annotations

import time

from tenant_billing.api_models import BillingStatusResponse, SyncRequest
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe
from tenant_billing.sync_logic import sync_billing

app = BillingApi(tag="Billing")


@app.operation("POST /billing/sync", Role.MEMBER, BillingStatusResponse, "The organization's billing status", body=SyncRequest)
def sync(caller: Caller, _: SyncRequest | None) -> BillingStatusResponse:
    """The organization's billing status, read from Stripe now

    Any member of the organization. Reads the organization's subscriptions from Stripe, stores them and answers
    like GET /billing/status; at most one Stripe read per organization per 5 seconds (inside that window it
    answers with what is stored). Changes nothing in Stripe. Call it when Checkout or the portal sends the
    customer back, before showing the plan.
    """
    now_ms = time.time_ns() // 1_000_000
    return sync_billing(caller, get_org_billing_store(), get_settings(), get_catalog(), get_stripe, now_ms)


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, secretsmanager_client, get_settings, get_catalog)
