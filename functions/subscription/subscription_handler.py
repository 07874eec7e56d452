"""The organization's existing subscription (billing admins only): preview and apply a plan or
site add-on change, cancel at period end or now, and resume."""

from __future__ import annotations

from tenant_billing.api_models import (
    BillingStatusResponse,
    CancelRequest,
    ChangePreviewResponse,
    PlanChange,
    PlanSelection,
    ResumeRequest,
)
from tenant_billing.auth import Caller, Role
from tenant_billing.aws_clients import dynamodb_client, secretsmanager_client
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.plan_change_logic import change_subscription, preview_change
from tenant_billing.repositories import get_plan_change_repository
from tenant_billing.settings import get_settings
from tenant_billing.snapstart import prime_on_snapshot
from tenant_billing.stripe_adapter import get_stripe
from tenant_billing.subscription_logic import cancel_subscription, resume_subscription

app = BillingApi(tag="Subscription")


@app.operation(
    "GET /billing/subscription/preview",
    Role.BILLING_ADMIN,
    ChangePreviewResponse,
    "The amounts of the change",
    query=PlanSelection,
)
def preview(caller: Caller, selection: PlanSelection) -> ChangePreviewResponse:
    """What a plan or site change costs now, and the next invoice's total

    Billing admins only. Amounts in the currency's minor unit (cents), from Stripe's invoice preview.
    `previewId` names this quote for 10 minutes: POST /billing/subscription with it is charged exactly `amountDueNow`.
    """
    return preview_change(caller, selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation(
    "POST /billing/subscription",
    Role.BILLING_ADMIN,
    BillingStatusResponse,
    "The billing status after the change",
    body=PlanChange,
    body_required=True,
)
def change(caller: Caller, selection: PlanChange) -> BillingStatusResponse:
    """Change the plan or the number of site add-ons, prorated and invoiced now

    Billing admins only. The same validation and codes as checkout; 409 `no_subscription` without one. Applied only
    once paid: 402 `payment_failed` or `payment_requires_action` (with `hostedInvoiceUrl`, and `clientSecret` for
    3-D Secure) leave the plan unchanged; 409 `payment_outstanding` while an invoice is unpaid; 409
    `change_in_progress` while another change runs; 400 `invalid_preview` for a previewId not issued for this change.
    """
    return change_subscription(caller, selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation(
    "POST /billing/subscription/cancel",
    Role.BILLING_ADMIN,
    BillingStatusResponse,
    "The billing status after the cancellation",
    body=CancelRequest,
)
def cancel(caller: Caller, request: CancelRequest | None) -> BillingStatusResponse:
    """Cancel at the end of the period, or now with immediately=true"""
    immediately = bool(request and request.immediately)
    return cancel_subscription(caller, immediately, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation(
    "POST /billing/subscription/resume",
    Role.BILLING_ADMIN,
    BillingStatusResponse,
    "The billing status after resuming",
    body=ResumeRequest,
)
def resume(caller: Caller, _: ResumeRequest | None) -> BillingStatusResponse:
    """Undo a pending cancellation"""
    return resume_subscription(caller, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
prime_on_snapshot(app.warm, dynamodb_client, secretsmanager_client, get_settings, get_catalog)
