"""Preview and apply a plan or site add-on change of an organization's subscription, payment first.

- The preview prices the change at a moment the server chooses and keeps that quote (`quotes`);
  the change names the quote (`previewId`) and is charged exactly what it showed. No client
  amount or date is ever taken.
- Stripe applies the change only once its prorated invoice is paid
  (`payment_behavior=pending_if_incomplete`): a declined card or a 3-D Secure challenge leaves
  plan and entitlements as they were, with the change pending (402 and the invoice to pay).
- A subscription with an unpaid invoice (past_due, unpaid, incomplete, a pending change) is not
  changed again (409 payment_outstanding), so one upgrade can never be invoiced twice.
- One change per organization at a time (409 change_in_progress), whatever the double clicks.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from tenant_billing.api_models import BillingStatusResponse, ChangePreviewResponse, PlanChange, PlanSelection
from tenant_billing.auth import Caller
from tenant_billing.catalog import DEFAULT_INTERVAL, Catalog
from tenant_billing.checkout_logic import LineItems, check_plan_request, require_configured, validate_plan_selection
from tenant_billing.errors import ConflictError, InvalidRequestError, PaymentLinks, PaymentRequiredError, TransientStoreError
from tenant_billing.item_changes import item_changes
from tenant_billing.items import SubscriptionRecord
from tenant_billing.observability import logger, metrics
from tenant_billing.quotes import (
    QUOTE_TTL_SECONDS,
    Quote,
    accept_quote,
    changes_fingerprint,
    check_preview_id,
    check_quote_items,
    items_fingerprint,
    new_preview_id,
)
from tenant_billing.records import frozen
from tenant_billing.repositories import PlanChangeRepository
from tenant_billing.settings import Settings
from tenant_billing.status_logic import iso_timestamp
from tenant_billing.stripe_port import (
    Invoice,
    ItemChange,
    PaymentBehavior,
    PaymentDeclined,
    ProrationBehavior,
    StripePort,
    Subscription,
)
from tenant_billing.stripe_prices import price_ids
from tenant_billing.subscription_logic import live_subscription, store_and_answer
from tenant_billing.subscription_sync import plan_items

# Proration is invoiced and charged at once, so "amount due now" is what the customer pays now.
PRORATION_BEHAVIOR: ProrationBehavior = "always_invoice"
# Stripe applies price and quantity changes only once the invoice they create is paid.
PAYMENT_BEHAVIOR: PaymentBehavior = "pending_if_incomplete"
# Statuses whose latest invoice is unpaid: no further change until it is paid.
OUTSTANDING_STATUSES = frozenset({"past_due", "unpaid", "incomplete"})
# A change lock lapses after this long, should its holder die (above the function's timeout).
CHANGE_LOCK_MS = 30_000


@frozen
class PlannedChange:
    record: SubscriptionRecord
    wanted: LineItems
    changes: list[ItemChange]
    # Stripe's subscription as read just now (with its latest invoice), and when that read started.
    current: Subscription
    read_at_ns: int
    # The billing interval of the subscription's prices in Stripe (None: not catalog prices).
    current_interval: str | None = None


def _refuse_if_outstanding(current: Subscription, stripe: StripePort) -> None:
    """No change while an invoice is unpaid: the caller gets that invoice to pay (and, for a
    payment waiting for 3-D Secure, its client secret, so a reload can still finish it in place)."""
    if current.status not in OUTSTANDING_STATUSES and current.pending_update is None:
        return
    invoice = current.latest_invoice
    secret = None
    if invoice is not None and invoice.status == "open" and invoice.id:
        intent = stripe.invoice_payment(invoice.id)
        if intent is not None and intent.status == "requires_action":
            secret = intent.client_secret
    raise ConflictError(
        "the subscription has an unpaid invoice; pay it (hostedInvoiceUrl) before changing the plan",
        code="payment_outstanding",
        payment=PaymentLinks(invoice.hosted_invoice_url if invoice is not None else None, secret),
    )


def _plan_change(
    caller: Caller,
    request: PlanSelection,
    repository: PlanChangeRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> tuple[PlannedChange, StripePort]:
    check_plan_request(request, catalog, settings)
    require_configured(settings, catalog)
    record = live_subscription(repository, caller.org_id)
    stripe = stripe_factory()
    prices = price_ids(settings, stripe)
    index = catalog.price_index(prices)
    read_at_ns = time.time_ns()
    current = stripe.subscription_with_invoice(record.subscription_id)
    # The version and interval the subscription has in Stripe (not as last stored: a migration or a
    # change elsewhere may not have reached the table yet).
    base = plan_items(current.items, index).base
    selection = validate_plan_selection(
        request,
        catalog,
        settings,
        keep_version=base.version if base is not None and base.plan == request.plan else None,
        current_interval=base.interval if base is not None else None,
    )
    wanted = selection.line_items(prices)
    changes = item_changes(current.items, wanted, index)
    interval = base.interval if base is not None else None
    return PlannedChange(record, wanted, changes, current, read_at_ns, interval), stripe


def _no_change() -> InvalidRequestError:
    return InvalidRequestError("the subscription already has this plan and quantity", field="plan", code="no_change")


def preview_change(
    caller: Caller,
    request: PlanSelection,
    repository: PlanChangeRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> ChangePreviewResponse:
    """What a change costs now (the prorated invoice) and what the next regular invoice totals,
    kept as a quote the change can name for QUOTE_TTL_SECONDS."""
    plan, stripe = _plan_change(caller, request, repository, settings, catalog, stripe_factory)
    if not plan.changes:
        raise _no_change()
    _refuse_if_outstanding(plan.current, stripe)
    proration_date = int(time.time())
    customer_id, subscription_id = plan.record.customer_id, plan.record.subscription_id
    due_now = stripe.preview_invoice(
        customer_id, subscription_id, plan.changes, proration_behavior=PRORATION_BEHAVIOR, proration_date=proration_date
    )
    next_invoice = stripe.preview_invoice(customer_id, subscription_id, plan.changes, proration_behavior="none")
    quote = Quote(
        preview_id=new_preview_id(),
        org_id=caller.org_id,
        subscription_id=plan.record.subscription_id,
        plan=plan.wanted.plan_id,
        site_quantity=plan.wanted.site_quantity,
        interval=plan.wanted.interval,
        plan_version=plan.wanted.version,
        changes_fingerprint=changes_fingerprint(plan.changes),
        proration_date=proration_date,
        amount_due_now=due_now.amount_due,
        currency=due_now.currency,
        items_fingerprint=_fingerprint(plan.current),
        expires_at=proration_date + QUOTE_TTL_SECONDS,
    )
    repository.save_quote(quote)
    return ChangePreviewResponse(
        plan=quote.plan,
        site_quantity=quote.site_quantity,
        interval=quote.interval,
        plan_version=plan.wanted.version,
        currency=quote.currency,
        amount_due_now=quote.amount_due_now,
        next_invoice_total=next_invoice.total,
        next_invoice_date=iso_timestamp(_next_invoice_date(plan, due_now)),
        proration_date=proration_date,
        preview_id=quote.preview_id,
        expires_at=iso_timestamp(quote.expires_at) or "",
    )


def _next_invoice_date(plan: PlannedChange, due_now: Invoice) -> int | None:
    """When the next regular invoice comes: the period end, unless the interval changes, which
    restarts the billing period now (Stripe resets the billing anchor): then the end of the period
    the change's invoice bills."""
    if plan.current_interval is not None and plan.current_interval != plan.wanted.interval:
        return due_now.service_end
    return plan.record.current_period_end


def change_subscription(
    caller: Caller,
    request: PlanChange,
    repository: PlanChangeRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> BillingStatusResponse:
    """Swap the base price and add, update or remove the per-site item, prorated and charged now;
    applied by Stripe only once paid."""
    # What refuses a bad request comes before the lock: a refusal writes nothing. (Interval and
    # add-on depend on the version the subscription has in Stripe: checked once it is read.)
    check_plan_request(request, catalog, settings)
    require_configured(settings, catalog)
    quote = _accepted_quote(caller, request, repository) if request.preview_id is not None else None
    owner = secrets.token_urlsafe(12)
    now_ms = time.time_ns() // 1_000_000
    if not repository.acquire_change_lock(caller.org_id, owner, now_ms, now_ms + CHANGE_LOCK_MS):
        raise ConflictError("a change of this subscription is in progress; wait for it and reload", code="change_in_progress")
    try:
        return _change(caller, request, quote, repository, settings, catalog, stripe_factory)
    finally:
        try:
            repository.release_change_lock(caller.org_id, owner)
        except TransientStoreError:  # the answer stands; the lock lapses by itself
            logger.warning("could not release the change lock")


def _accepted_quote(caller: Caller, request: PlanChange, repository: PlanChangeRepository) -> Quote:
    """The caller's quote for exactly this change of its stored subscription, checked against what
    is stored before anything reaches Stripe."""
    assert request.preview_id is not None
    check_preview_id(request.preview_id)
    record = live_subscription(repository, caller.org_id)
    return accept_quote(
        repository.get_quote(request.preview_id),
        org_id=caller.org_id,
        subscription_id=record.subscription_id,
        plan=request.plan,
        site_quantity=request.site_quantity,
        # Left out, the interval is the subscription's, as the preview resolved it.
        interval=request.interval or record.interval or DEFAULT_INTERVAL,
        now=int(time.time()),
    )


def _payment_behavior(changes: list[ItemChange]) -> PaymentBehavior:
    if any(change.deleted for change in changes):
        # Stripe's pending updates hold prices and quantities, not item deletions: such a change
        # is applied only if paid at once, or not at all (a 402, nothing changed).
        return "error_if_incomplete"
    return PAYMENT_BEHAVIOR


def _proration_date(quote: Quote | None) -> int | None:
    if quote is not None and quote.amount_due_now > 0:
        # Charged exactly what was previewed. A credit is never backdated: prorated now, it is at
        # most what was previewed (the customer kept the better plan until now).
        return quote.proration_date
    return None


def _change(
    caller: Caller,
    request: PlanChange,
    quote: Quote | None,
    repository: PlanChangeRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> BillingStatusResponse:
    plan, stripe = _plan_change(caller, request, repository, settings, catalog, stripe_factory)
    if not plan.changes:
        stored = (plan.record.plan, plan.record.site_quantity, plan.record.interval, plan.record.plan_version)
        if stored != (plan.wanted.plan_id, plan.wanted.site_quantity, plan.wanted.interval, plan.wanted.version):
            # Stripe already has this change (an earlier attempt whose answer was lost) but the
            # table does not yet: store what Stripe says, and the retry succeeds.
            return store_and_answer(plan.record, plan.current, plan.read_at_ns, repository, settings, catalog, stripe)
        raise _no_change()
    _refuse_if_outstanding(plan.current, stripe)
    if quote is not None:
        check_quote_items(quote, _fingerprint(plan.current), changes_fingerprint(plan.changes))
        if not repository.consume_quote(quote.preview_id):
            raise InvalidRequestError(
                "the preview was used already; preview the change again", field="previewId", code="invalid_preview"
            )
    read_at_ns = time.time_ns()
    try:
        updated = stripe.change_items(
            plan.record.subscription_id,
            plan.changes,
            proration_behavior=PRORATION_BEHAVIOR,
            payment_behavior=_payment_behavior(plan.changes),
            proration_date=_proration_date(quote),
        )
    except PaymentDeclined as declined:
        # error_if_incomplete: Stripe changed nothing.
        raise _declined(declined.code) from None
    answer = store_and_answer(plan.record, updated, read_at_ns, repository, settings, catalog, stripe)
    if updated.pending_update is not None:
        metrics.add_metric(name="SubscriptionChangeUnpaid", unit="Count", value=1)
        raise _unpaid(updated, stripe)
    metrics.add_metric(name="SubscriptionChanged", unit="Count", value=1)
    return answer


def _fingerprint(subscription: Subscription) -> str:
    """The subscription's items and its latest invoice: any invoiced change since a preview (even
    one that came back to the same items) voids the quote."""
    return items_fingerprint(subscription.items, str(subscription.latest_invoice_id))


def _declined(code: str | None) -> PaymentRequiredError:
    metrics.add_metric(name="SubscriptionChangeUnpaid", unit="Count", value=1)
    if code == "subscription_payment_intent_requires_action":
        return PaymentRequiredError(
            "the payment needs the cardholder's authentication (3-D Secure); nothing was changed, try again",
            code="payment_requires_action",
            payment=PaymentLinks(None),
        )
    return PaymentRequiredError(
        "the payment was declined: the plan is unchanged; update the card and try again",
        code="payment_failed",
        payment=PaymentLinks(None),
    )


def _unpaid(updated: Subscription, stripe: StripePort) -> PaymentRequiredError:
    """The change waits for its invoice: why, and where to pay it. Plan and entitlements are as before."""
    invoice = updated.latest_invoice
    intent = stripe.invoice_payment(invoice.id) if invoice is not None and invoice.id else None
    hosted = invoice.hosted_invoice_url if invoice is not None else None
    status = intent.status if intent is not None else None
    logger.info("plan change awaits payment", extra={"payment_status": status})
    if intent is not None and status == "requires_action":
        return PaymentRequiredError(
            "the payment needs the cardholder's authentication (3-D Secure): complete it to apply the change",
            code="payment_requires_action",
            payment=PaymentLinks(hosted, intent.client_secret),
        )
    return PaymentRequiredError(
        "the payment was declined: the plan is unchanged; pay the invoice with another card to apply the change",
        code="payment_failed",
        payment=PaymentLinks(hosted),
    )
