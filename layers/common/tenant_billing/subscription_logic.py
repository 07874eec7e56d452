"""Changes to an organization's existing subscription: preview and apply a plan or quantity
change (with proration, charged at once), cancel (at period end or now) and resume.

Every change reads the subscription from Stripe, changes it there, and stores what Stripe
answered at once (guarded like the webhook's writes), so the caller's next status call already
shows it; the webhook events that follow are then duplicates of a state already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import stripe
from stripe.params import (
    InvoiceCreatePreviewParamsSubscriptionDetailsItem,
    SubscriptionUpdateParams,
    SubscriptionUpdateParamsItem,
)

from tenant_billing.api_models import BillingStatusResponse, ChangePreviewResponse, PlanChange, PlanSelection
from tenant_billing.auth import Caller, require_billing_admin
from tenant_billing.catalog import Catalog, PriceRef
from tenant_billing.checkout_logic import LineItems, require_configured, validate_plan_selection
from tenant_billing.entitlements import ENDED_STATUSES
from tenant_billing.errors import ConflictError, InvalidRequestError
from tenant_billing.items import SubscriptionRecord
from tenant_billing.observability import metrics
from tenant_billing.org_sync import sync_org
from tenant_billing.repository import BillingRepository, SaveOutcome
from tenant_billing.settings import Settings
from tenant_billing.status_logic import get_billing_status, is_billing_configured, iso_timestamp, status_response
from tenant_billing.stripe_gateway import stripe_errors
from tenant_billing.subscription_store import store_stripe_subscription

# Proration is invoiced and charged at once, so "amount due now" is what the customer pays now.
PRORATION_BEHAVIOR = "always_invoice"
# A preview's prorationDate may be reused for this long (then the caller previews again).
PRORATION_DATE_MAX_AGE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One entry of Stripe's `items` array: update/swap an item (id), add one (no id) or delete."""

    item_id: str | None = None
    price: str | None = None
    quantity: int | None = None
    deleted: bool = False

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"id": self.item_id} if self.item_id else {}
        if self.deleted:
            return {**fields, "deleted": True}
        if self.price:
            fields["price"] = self.price
        if self.quantity is not None:
            fields["quantity"] = self.quantity
        return fields

    # The same fields, typed for each of the two Stripe calls that take them.
    def for_update(self) -> SubscriptionUpdateParamsItem:
        return cast(SubscriptionUpdateParamsItem, self._fields())

    def for_preview(self) -> InvoiceCreatePreviewParamsSubscriptionDetailsItem:
        return cast(InvoiceCreatePreviewParamsSubscriptionDetailsItem, self._fields())


def _price_id(item: Mapping[str, Any]) -> str:
    price = item.get("price")
    return str(price.get("id") if isinstance(price, Mapping) else price or "")


def item_changes(current_items: list[Mapping[str, Any]], wanted: LineItems, index: Mapping[str, PriceRef]) -> list[ItemChange]:
    """The item changes that turn the subscription's items into `wanted` (empty: nothing to do).

    The base item keeps its id when the plan changes (a price swap, prorated), and so does the
    per-site item; a per-site item is added when there was none and deleted at quantity 0.
    Items whose price is not in the catalog are left alone.
    """
    base = next((item for item in current_items if (ref := index.get(_price_id(item))) and ref.kind == "base"), None)
    site = next((item for item in current_items if (ref := index.get(_price_id(item))) and ref.kind == "site"), None)
    changes: list[ItemChange] = []
    if base is None:
        changes.append(ItemChange(price=wanted.base_price_id, quantity=1))
    elif _price_id(base) != wanted.base_price_id or int(base.get("quantity") or 0) != 1:
        changes.append(ItemChange(item_id=str(base["id"]), price=wanted.base_price_id, quantity=1))
    if wanted.site_quantity > 0 and wanted.site_price_id:
        if site is None:
            changes.append(ItemChange(price=wanted.site_price_id, quantity=wanted.site_quantity))
        elif _price_id(site) != wanted.site_price_id or int(site.get("quantity") or 0) != wanted.site_quantity:
            changes.append(ItemChange(item_id=str(site["id"]), price=wanted.site_price_id, quantity=wanted.site_quantity))
    elif site is not None:
        changes.append(ItemChange(item_id=str(site["id"]), deleted=True))
    return changes


def live_subscription(repository: BillingRepository, org_id: str) -> SubscriptionRecord:
    subscription = repository.get_org_billing(org_id).subscription
    if subscription is None or subscription.status in ENDED_STATUSES:
        raise ConflictError("the organization has no subscription to change; subscribe through checkout", code="no_subscription")
    return subscription


@dataclass(frozen=True, slots=True)
class _Plan:
    record: SubscriptionRecord
    wanted: LineItems
    changes: list[ItemChange]
    # Stripe's subscription as read just now, and when that read started.
    current: dict[str, Any]
    read_at_ns: int


def _plan_change(
    caller: Caller,
    request: PlanSelection,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    client: Callable[[], stripe.StripeClient],
) -> tuple[_Plan, stripe.StripeClient]:
    require_billing_admin(caller)
    wanted = validate_plan_selection(request, catalog, settings)
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    stripe_client = client()
    read_at_ns = time.time_ns()
    with stripe_errors("subscriptions.retrieve"):
        current = stripe_client.v1.subscriptions.retrieve(record.subscription_id).to_dict()
    items = list((current.get("items") or {}).get("data") or [])
    changes = item_changes(items, wanted, catalog.price_index(settings.price_ids))
    return _Plan(record, wanted, changes, current, read_at_ns), stripe_client


def _no_change() -> InvalidRequestError:
    return InvalidRequestError("the subscription already has this plan and quantity", field="plan", code="no_change")


def _check_proration_date(proration_date: int | None, current: Mapping[str, Any]) -> None:
    """Stripe only prorates at a moment of the current period: refuse any other date as ours."""
    if proration_date is None:
        return
    items = list((current.get("items") or {}).get("data") or [])
    starts = [int(item["current_period_start"]) for item in items if item.get("current_period_start") is not None]
    ends = [int(item["current_period_end"]) for item in items if item.get("current_period_end") is not None]
    if starts and ends and not max(starts) <= proration_date <= min(ends):
        raise InvalidRequestError(
            "prorationDate is outside the current billing period; preview again", field="prorationDate", code="invalid_field"
        )


def preview_change(
    caller: Caller,
    request: PlanSelection,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    client: Callable[[], stripe.StripeClient],
) -> ChangePreviewResponse:
    """What a change costs now (the prorated invoice) and what the next regular invoice totals."""
    plan, stripe_client = _plan_change(caller, request, repository, settings, catalog, client)
    if not plan.changes:
        raise _no_change()
    proration_date = int(time.time())
    items = [change.for_preview() for change in plan.changes]
    with stripe_errors("invoices.create_preview"):
        due_now = stripe_client.v1.invoices.create_preview(
            params={
                "customer": plan.record.customer_id,
                "subscription": plan.record.subscription_id,
                "subscription_details": {
                    "items": items,
                    "proration_behavior": PRORATION_BEHAVIOR,
                    "proration_date": proration_date,
                },
            }
        )
        next_invoice = stripe_client.v1.invoices.create_preview(
            params={
                "customer": plan.record.customer_id,
                "subscription": plan.record.subscription_id,
                "subscription_details": {"items": items, "proration_behavior": "none"},
            }
        )
    return ChangePreviewResponse(
        plan=plan.wanted.plan_id,
        site_quantity=plan.wanted.site_quantity,
        currency=str(due_now.currency),
        amount_due_now=int(due_now.amount_due or 0),
        next_invoice_total=int(next_invoice.total or 0),
        next_invoice_date=iso_timestamp(plan.record.current_period_end),
        proration_date=proration_date,
    )


def change_subscription(
    caller: Caller,
    request: PlanChange,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    client: Callable[[], stripe.StripeClient],
) -> BillingStatusResponse:
    """Swap the base price and add, update or remove the per-site item, prorated and invoiced now."""
    now = int(time.time())
    if request.proration_date is not None and not now - PRORATION_DATE_MAX_AGE_SECONDS <= request.proration_date <= now + 60:
        raise InvalidRequestError(
            "prorationDate must come from a preview of the last hour", field="prorationDate", code="invalid_field"
        )
    plan, stripe_client = _plan_change(caller, request, repository, settings, catalog, client)
    if not plan.changes:
        if (plan.record.plan, plan.record.site_quantity) != (plan.wanted.plan_id, plan.wanted.site_quantity):
            # Stripe already has this change (an earlier attempt whose answer was lost) but the
            # table does not yet: store what Stripe says, and the retry succeeds.
            return _store_and_answer(plan.record, plan.current, plan.read_at_ns, repository, settings, catalog, stripe_client)
        raise _no_change()
    _check_proration_date(request.proration_date, plan.current)
    params: SubscriptionUpdateParams = {
        "items": [change.for_update() for change in plan.changes],
        "proration_behavior": PRORATION_BEHAVIOR,
    }
    if request.proration_date is not None:
        params["proration_date"] = request.proration_date
    read_at_ns = time.time_ns()
    with stripe_errors("subscriptions.update"):
        updated = stripe_client.v1.subscriptions.update(plan.record.subscription_id, params=params)
    metrics.add_metric(name="SubscriptionChanged", unit="Count", value=1)
    return _store_and_answer(plan.record, updated.to_dict(), read_at_ns, repository, settings, catalog, stripe_client)


def cancel_subscription(
    caller: Caller,
    immediately: bool,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    client: Callable[[], stripe.StripeClient],
) -> BillingStatusResponse:
    require_billing_admin(caller)
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    stripe_client = client()
    read_at_ns = time.time_ns()
    with stripe_errors("subscriptions.cancel"):
        if immediately:
            try:
                result = stripe_client.v1.subscriptions.cancel(record.subscription_id)
            except stripe.InvalidRequestError:
                # A DELETE carries no idempotency key: if an earlier attempt canceled it and its
                # answer was lost, Stripe now refuses. Canceled is what was asked for.
                result = stripe_client.v1.subscriptions.retrieve(record.subscription_id)
                if result.status != "canceled":
                    raise
        else:
            result = stripe_client.v1.subscriptions.update(record.subscription_id, params={"cancel_at_period_end": True})
    metrics.add_metric(name="SubscriptionCanceled" if immediately else "SubscriptionCancelScheduled", unit="Count", value=1)
    return _store_and_answer(record, result.to_dict(), read_at_ns, repository, settings, catalog, stripe_client)


def resume_subscription(
    caller: Caller,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    client: Callable[[], stripe.StripeClient],
) -> BillingStatusResponse:
    """Undo a pending cancellation (cancel at period end). A no-op when none is pending."""
    require_billing_admin(caller)
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    if not record.cancel_at_period_end:
        return get_billing_status(caller.org_id, repository, settings, catalog)
    stripe_client = client()
    read_at_ns = time.time_ns()
    with stripe_errors("subscriptions.update"):
        result = stripe_client.v1.subscriptions.update(record.subscription_id, params={"cancel_at_period_end": False})
    metrics.add_metric(name="SubscriptionResumed", unit="Count", value=1)
    return _store_and_answer(record, result.to_dict(), read_at_ns, repository, settings, catalog, stripe_client)


def _store_and_answer(
    record: SubscriptionRecord,
    subscription: Mapping[str, Any],
    read_at_ns: int,
    repository: BillingRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_client: stripe.StripeClient,
) -> BillingStatusResponse:
    """Store Stripe's answer to the change. The organization is synced whole instead (one more
    Stripe read) when the changed subscription may no longer be the one that decides its plan: it
    has another live subscription, this one just ended, or a webhook stored something else meanwhile."""
    state = None
    if not record.other_live_ids and subscription.get("status") not in ENDED_STATUSES:
        outcome, single = store_stripe_subscription(record.org_id, subscription, read_at_ns, repository, settings, catalog)
        state = single if outcome is SaveOutcome.WRITTEN else None
    if state is None:
        state = sync_org(record.org_id, record.customer_id, stripe_client, repository, settings, catalog).state
    if state is None:
        return get_billing_status(record.org_id, repository, settings, catalog)
    configured = is_billing_configured(settings, catalog)
    return status_response(state.subscription, state.entitlement, catalog, configured, has_customer=True)
