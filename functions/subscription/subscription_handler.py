"""The organization's existing subscription (billing admins only): preview and apply a plan or
site add-on change, cancel at period end or now, and resume."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from tenant_billing.api_models import (
    BillingStatusResponse,
    CancelRequest,
    ChangePreviewResponse,
    PlanChange,
    PlanSelection,
    ResumeRequest,
)
from tenant_billing.auth import Role
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import BillingApi, api_lambda_handler
from tenant_billing.plan_change_logic import change_subscription, preview_change
from tenant_billing.repositories import get_plan_change_repository
from tenant_billing.settings import get_settings
from tenant_billing.stripe_adapter import get_stripe
from tenant_billing.subscription_logic import cancel_subscription, resume_subscription

app = BillingApi(tag="Subscription")


@app.operation(
    "GET /billing/subscription/preview",
    Role.BILLING_ADMIN,
    ChangePreviewResponse,
    "The amounts of the change",
    query=frozenset({"plan", "siteQuantity"}),
)
def preview(
    plan: Annotated[str, Query(max_length=64)],
    site_quantity: Annotated[int, Query(alias="siteQuantity")] = 0,
) -> ChangePreviewResponse:
    """What a plan or site change costs now, and the next invoice's total

    Billing admins only. Amounts in the currency's minor unit (cents), from Stripe's invoice preview.
    `previewId` names this quote for 10 minutes: POST /billing/subscription with it is charged exactly `amountDueNow`.
    """
    selection = PlanSelection(plan=plan, siteQuantity=site_quantity)
    return preview_change(app.caller, selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation("POST /billing/subscription", Role.BILLING_ADMIN, BillingStatusResponse, "The billing status after the change")
def change(selection: Annotated[PlanChange, Body()]) -> BillingStatusResponse:
    """Change the plan or the number of site add-ons, prorated and invoiced now

    Billing admins only. The same validation and codes as checkout; 409 `no_subscription` without one. Applied only
    once paid: 402 `payment_failed` or `payment_requires_action` (with `hostedInvoiceUrl`, and `clientSecret` for
    3-D Secure) leave the plan unchanged; 409 `payment_outstanding` while an invoice is unpaid; 409
    `change_in_progress` while another change runs; 400 `invalid_preview` for a previewId not issued for this change.
    """
    return change_subscription(app.caller, selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation(
    "POST /billing/subscription/cancel", Role.BILLING_ADMIN, BillingStatusResponse, "The billing status after the cancellation"
)
def cancel(request: Annotated[CancelRequest | None, Body()] = None) -> BillingStatusResponse:
    """Cancel at the end of the period, or now with immediately=true"""
    immediately = bool(request and request.immediately)
    return cancel_subscription(app.caller, immediately, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


@app.operation(
    "POST /billing/subscription/resume", Role.BILLING_ADMIN, BillingStatusResponse, "The billing status after resuming"
)
def resume(_: Annotated[ResumeRequest | None, Body()] = None) -> BillingStatusResponse:
    """Undo a pending cancellation"""
    return resume_subscription(app.caller, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe)


lambda_handler = api_lambda_handler(app)
