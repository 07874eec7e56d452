"""The organization's existing subscription (billing admins only): preview and apply a plan or
site add-on change, cancel at period end or now, and resume."""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_billing.api_models import (
    BillingStatusResponse,
    CancelRequest,
    ChangePreviewResponse,
    PlanChange,
    PlanSelection,
    ResumeRequest,
)
from tenant_billing.catalog import get_catalog
from tenant_billing.http_api import build_resolver, current_caller, documented, resolve
from tenant_billing.observability import logger, metrics, tracer
from tenant_billing.plan_change_logic import change_subscription, preview_change
from tenant_billing.repositories import get_plan_change_repository
from tenant_billing.request_body import parse_query
from tenant_billing.settings import get_settings
from tenant_billing.stripe_gateway import get_stripe_client
from tenant_billing.subscription_logic import cancel_subscription, resume_subscription

app = build_resolver()
ADMIN_ROUTES = frozenset(
    {
        "GET /billing/subscription/preview",
        "POST /billing/subscription",
        "POST /billing/subscription/cancel",
        "POST /billing/subscription/resume",
    }
)


@app.get(
    "/billing/subscription/preview",
    summary="What a plan or site change costs now, and the next invoice's total",
    description=(
        "Billing admins only. Amounts in the currency's minor unit (cents), from Stripe's invoice preview. "
        "`previewId` names this quote for 10 minutes: POST /billing/subscription with it is charged exactly `amountDueNow`."
    ),
    tags=["Subscription"],
    responses=documented(ChangePreviewResponse, "The amounts of the change"),
)
@tracer.capture_method
def preview(
    plan: Annotated[str, Query(max_length=64)],
    site_quantity: Annotated[int, Query(alias="siteQuantity")] = 0,
) -> ChangePreviewResponse:
    parse_query(app.current_event.query_string_parameters, frozenset({"plan", "siteQuantity"}))
    selection = PlanSelection(plan=plan, siteQuantity=site_quantity)
    return preview_change(
        current_caller(app), selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe_client
    )


@app.post(
    "/billing/subscription",
    summary="Change the plan or the number of site add-ons, prorated and invoiced now",
    description=(
        "Billing admins only. The same validation and codes as checkout; 409 `no_subscription` without one. Applied only "
        "once paid: 402 `payment_failed` or `payment_requires_action` (with `hostedInvoiceUrl`, and `clientSecret` for "
        "3-D Secure) leave the plan unchanged; 409 `payment_outstanding` while an invoice is unpaid; 409 "
        "`change_in_progress` while another change runs; 400 `invalid_preview` for a previewId not issued for this change."
    ),
    tags=["Subscription"],
    responses=documented(BillingStatusResponse, "The billing status after the change"),
)
@tracer.capture_method
def change(selection: Annotated[PlanChange, Body()]) -> BillingStatusResponse:
    return change_subscription(
        current_caller(app), selection, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe_client
    )


@app.post(
    "/billing/subscription/cancel",
    summary="Cancel at the end of the period, or now with immediately=true",
    tags=["Subscription"],
    responses=documented(BillingStatusResponse, "The billing status after the cancellation"),
)
@tracer.capture_method
def cancel(request: Annotated[CancelRequest | None, Body()] = None) -> BillingStatusResponse:
    immediately = bool(request and request.immediately)
    return cancel_subscription(
        current_caller(app), immediately, get_plan_change_repository(), get_settings(), get_catalog(), get_stripe_client
    )


@app.post(
    "/billing/subscription/resume",
    summary="Undo a pending cancellation",
    tags=["Subscription"],
    responses=documented(BillingStatusResponse, "The billing status after resuming"),
)
@tracer.capture_method
def resume(_: Annotated[ResumeRequest | None, Body()] = None) -> BillingStatusResponse:
    return resume_subscription(
        current_caller(app), get_plan_change_repository(), get_settings(), get_catalog(), get_stripe_client
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, admin_routes=ADMIN_ROUTES)
