"""POST /billing/checkout: a Stripe Checkout URL for a plan, with exactly one Stripe customer per
organization however often or concurrently it is called."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping

from tenant_billing.api_models import CheckoutRequest, PlanSelection, UrlResponse
from tenant_billing.auth import Caller
from tenant_billing.catalog import DEFAULT_INTERVAL, Catalog, Plan
from tenant_billing.entitlements import ENDED_STATUSES
from tenant_billing.errors import BillingNotConfiguredError, ConflictError, InvalidRequestError, StripeUnavailableError
from tenant_billing.items import CustomerLink, OrgBilling
from tenant_billing.observability import logger, metrics
from tenant_billing.org_sync import sync_org
from tenant_billing.records import frozen
from tenant_billing.repositories import CheckoutRepository
from tenant_billing.settings import Settings
from tenant_billing.status_logic import is_billing_configured
from tenant_billing.stripe_port import NewCheckoutSession, StripePort
from tenant_billing.stripe_prices import price_ids

# Stripe keeps idempotency keys for about 24 hours. An unfinished customer claim older than
# this gets a fresh key instead of one Stripe may already have forgotten.
CLAIM_KEY_MAX_AGE_SECONDS = 23 * 3600
# An open session this recent that is not the recorded one is a concurrent checkout's, in flight.
CONCURRENT_CHECKOUT_SECONDS = 60
ORG_METADATA_KEY = "organization_id"
PLAN_METADATA_KEY = "plan"


@frozen
class LineItems:
    plan_id: str
    base_price_id: str
    site_price_id: str | None
    site_quantity: int
    # The plan's per-site price even at quantity 0 (a plan change may keep an emptied site item).
    plan_site_price_id: str | None = None
    version: int = 1
    interval: str = DEFAULT_INTERVAL


@frozen
class PriceSelection:
    """A valid plan selection by the catalog's price names (no Stripe id needed to check one)."""

    plan_id: str
    base_price: str
    site_price: str | None
    site_quantity: int
    # The plan's per-site price name even at quantity 0 (when configured).
    plan_site_price: str | None = None
    version: int = 1
    interval: str = DEFAULT_INTERVAL

    def line_items(self, prices: Mapping[str, str]) -> LineItems:
        """The Stripe price ids, from {price name: price id} (`stripe_prices.price_ids`)."""
        base_price_id = prices.get(self.base_price)
        if not base_price_id:
            raise BillingNotConfiguredError("billing is not configured")
        site_price_id = prices.get(self.site_price) if self.site_price else None
        plan_site_price_id = prices.get(self.plan_site_price) if self.plan_site_price else None
        quantity = self.site_quantity if site_price_id else 0
        return LineItems(self.plan_id, base_price_id, site_price_id, quantity, plan_site_price_id, self.version, self.interval)


def _interval_unavailable(plan_id: str, interval: str, offered: Iterable[str]) -> InvalidRequestError:
    return InvalidRequestError(
        f"the {plan_id} plan is not sold {interval}ly; choose one of: {', '.join(offered)}",
        field="interval",
        code="interval_unavailable",
    )


def _no_site_addon(plan_id: str) -> InvalidRequestError:
    return InvalidRequestError(f"the {plan_id} plan has no per-site add-on", field="siteQuantity", code="site_addon_unavailable")


def check_plan_request(request: PlanSelection, catalog: Catalog, settings: Settings) -> Plan:
    """The rules that hold whatever version the subscription has, so a request that can never be
    sold is refused before Stripe is asked: a known plan, a quantity in range, an interval and an
    add-on that some version of the plan sells."""
    plan: Plan | None = catalog.plan(request.plan)
    if plan is None:
        raise InvalidRequestError(f"unknown plan; choose one of: {', '.join(catalog.plans)}", field="plan", code="unknown_plan")
    quantity = request.site_quantity
    if quantity < 0 or quantity > catalog.max_site_quantity:
        raise InvalidRequestError(
            f"siteQuantity must be between 0 and {catalog.max_site_quantity}", field="siteQuantity", code="invalid_site_quantity"
        )
    sold = [prices for version in plan.versions.values() for prices in version.prices.values()]
    if request.interval and not any(version.at(request.interval) for version in plan.versions.values()):
        raise _interval_unavailable(request.plan, request.interval, plan.current.prices)
    if quantity > 0 and not any(prices.site and prices.site.name in settings.STRIPE_PRICES for prices in sold):
        raise _no_site_addon(request.plan)
    return plan


def validate_plan_selection(
    request: PlanSelection,
    catalog: Catalog,
    settings: Settings,
    keep_version: int | None = None,
    current_interval: str | None = None,
) -> PriceSelection:
    """Plan, interval and quantity rules that need the catalog and the configured prices.

    The interval is the request's, else `current_interval` (a change keeps the subscription's),
    else monthly. The prices are the plan's current version's, or `keep_version`'s when that
    version sells the interval: a subscriber who only changes sites or interval keeps their version.
    """
    plan = check_plan_request(request, catalog, settings)
    quantity = request.site_quantity
    interval = request.interval or current_interval or DEFAULT_INTERVAL
    kept = plan.versions.get(keep_version) if keep_version is not None else None
    version = kept if kept is not None and kept.at(interval) is not None else plan.current
    prices = version.at(interval)
    if prices is None:
        raise _interval_unavailable(request.plan, interval, version.prices)
    configured = settings.STRIPE_PRICES
    site_price = prices.site.name if prices.site and prices.site.name in configured else None
    if quantity > 0 and not site_price:
        raise _no_site_addon(request.plan)
    if prices.base.name not in configured:
        raise BillingNotConfiguredError("billing is not configured")
    return PriceSelection(
        request.plan,
        prices.base.name,
        site_price if quantity > 0 else None,
        quantity,
        site_price,
        version.version,
        interval,
    )


def require_configured(settings: Settings, catalog: Catalog) -> None:
    if not is_billing_configured(settings, catalog):
        raise BillingNotConfiguredError("billing is not configured")


def ensure_customer(org_id: str, billing: OrgBilling, repository: CheckoutRepository, stripe: StripePort) -> str:
    """The organization's Stripe customer id, creating the customer at most once.

    A conditional write claims the creation and stores the Stripe idempotency key; concurrent
    callers read the same key back, so their create calls return the same customer, and all of
    them write the same two-way link (an idempotent transaction).
    """
    if billing.customer is not None and billing.customer.is_linked:
        return billing.customer.customer_id
    now = int(time.time())
    claim: CustomerLink = repository.claim_customer(org_id, f"org-customer-{org_id}-{secrets.token_urlsafe(16)}", now)
    if claim.is_linked:
        return claim.customer_id
    if now - claim.claimed_at > CLAIM_KEY_MAX_AGE_SECONDS:
        claim = repository.replace_stale_claim(claim, f"org-customer-{org_id}-{secrets.token_urlsafe(16)}", now)
        if claim.is_linked:
            return claim.customer_id
    customer_id = stripe.create_customer({ORG_METADATA_KEY: org_id}, claim.idempotency_key)
    linked_id = repository.link_customer(org_id, customer_id, claim.idempotency_key)
    if linked_id != customer_id:
        # Only after a stale claim was taken over: the org keeps its linked customer.
        logger.warning("a different customer was already linked", extra={"unused_customer_id": customer_id})
    metrics.add_metric(name="StripeCustomerCreated", unit="Count", value=1)
    logger.info("linked Stripe customer", extra={"customer_id": linked_id})
    return linked_id


def new_checkout_session(
    org_id: str, customer_id: str, items: LineItems, plan: Plan, settings: Settings, first_subscription: bool
) -> NewCheckoutSession:
    trial = plan.trial if first_subscription else None
    line_items = [(items.base_price_id, 1)]
    if items.site_price_id and items.site_quantity > 0:
        line_items.append((items.site_price_id, items.site_quantity))
    return NewCheckoutSession(
        customer_id=customer_id,
        client_reference_id=org_id,
        line_items=tuple(line_items),
        metadata={ORG_METADATA_KEY: org_id, PLAN_METADATA_KEY: items.plan_id},
        success_url=settings.success_url,
        cancel_url=settings.cancel_url,
        # A trial only for an organization's first subscription, never again after a cancel.
        trial_period_days=trial.days if trial else None,
        trial_without_payment_method=trial.without_payment_method if trial and trial.card_less else None,
        allow_promotion_codes=settings.ALLOW_PROMOTION_CODES,
        automatic_tax=settings.AUTOMATIC_TAX,
    )


def _live_subscription_conflict() -> ConflictError:
    return ConflictError(
        "the organization already has a subscription; change its plan or sites with POST /billing/subscription",
        code="subscription_exists",
    )


def _expire_session(stripe: StripePort, session_id: str) -> str:
    """Expire an open Checkout Session so it can no longer be paid; the session's status after it
    ("expired", or "complete" when the customer paid it first)."""
    status = stripe.close_checkout_session(session_id)
    if status not in ("expired", "complete"):
        # Still payable: handing out a second URL now could charge twice. The caller retries.
        raise StripeUnavailableError("the previous checkout could not be closed, try again")
    return status


def _expire_open_sessions(stripe: StripePort, customer_id: str, recorded: str | None) -> bool:
    """Expire every open Checkout Session of the customer (an older tab, one made before the open
    session was recorded, or by another integration), so none of them can be paid any more. A
    session created in the last moments that is not the recorded one belongs to a concurrent
    checkout: the conditional write decides between the two. True when one was paid meanwhile."""
    now = int(time.time())
    paid = False
    for session in stripe.list_open_checkout_sessions(customer_id):
        if session.id != recorded and session.created > now - CONCURRENT_CHECKOUT_SECONDS:
            continue
        paid = _expire_session(stripe, session.id) == "complete" or paid
    return paid


def _refuse_if_subscribed(
    org_id: str,
    customer_id: str,
    billing: OrgBilling,
    repository: CheckoutRepository,
    settings: Settings,
    catalog: Catalog,
    stripe: StripePort,
) -> bool:
    """Ask Stripe, not only the table: a subscription paid a moment ago (its webhook not yet here)
    is stored now and refused. True when the customer never had a subscription."""
    result = sync_org(
        org_id, customer_id, stripe, repository, settings, catalog, stored=billing.subscription, skip_unchanged=True
    )
    if result.state is not None and result.state.subscription.status not in ENDED_STATUSES:
        raise _live_subscription_conflict()
    return result.state is None


def create_checkout(
    caller: Caller,
    request: CheckoutRequest,
    repository: CheckoutRepository,
    settings: Settings,
    catalog: Catalog,
    stripe_factory: Callable[[], StripePort],
) -> UrlResponse:
    """A Checkout Session URL for the plan, and at most one session per organization that can
    still be paid: every open one is expired first, and the new one is recorded with a
    conditional write, so of two concurrent checkouts only one URL is ever handed out.

    Validation and the configuration check come before any read or write. Stripe calls: with an
    existing customer, the list of its open sessions, one expiry per open session, the list of its
    subscriptions, and the create; with a new customer, the customer create and the session create.
    """
    selection = validate_plan_selection(request, catalog, settings)
    require_configured(settings, catalog)
    stripe = stripe_factory()
    items = selection.line_items(price_ids(settings, stripe))
    org_id = caller.org_id
    billing = repository.get_org_billing(org_id)
    if billing.subscription is not None and billing.subscription.status not in ENDED_STATUSES:
        raise _live_subscription_conflict()
    had_customer = billing.customer is not None and billing.customer.is_linked
    customer_id = ensure_customer(org_id, billing, repository, stripe)
    recorded = billing.checkout.session_id if billing.checkout is not None else None
    # A customer created just now has no subscription nor session in Stripe to look for. A trial
    # only for an organization's first subscription: none stored and none in Stripe.
    first_subscription = billing.subscription is None
    if had_customer:
        # Sessions first: once none is open, a payment can only have happened before the list of
        # subscriptions below, which then shows it.
        if _expire_open_sessions(stripe, customer_id, recorded):
            # One was paid just before its expiry: that subscription is the answer.
            sync_org(org_id, customer_id, stripe, repository, settings, catalog)
            raise _live_subscription_conflict()
        never_subscribed = _refuse_if_subscribed(org_id, customer_id, billing, repository, settings, catalog, stripe)
        first_subscription = first_subscription and never_subscribed
    new_session = new_checkout_session(
        org_id, customer_id, items, catalog.plans[items.plan_id], settings, first_subscription=first_subscription
    )
    session = stripe.create_checkout_session(new_session)
    if not session.url:
        raise StripeUnavailableError("the payment provider returned no checkout URL")
    if not repository.record_checkout_session(org_id, session.id, recorded):
        # A concurrent checkout recorded its session first: ours is never handed out, and expired.
        _expire_session(stripe, session.id)
        raise ConflictError(
            "another checkout for this organization started at the same moment; use that one or try again",
            code="checkout_in_progress",
        )
    metrics.add_metric(name="CheckoutSessionCreated", unit="Count", value=1)
    logger.info("created checkout session", extra={"plan": items.plan_id, "site_quantity": items.site_quantity})
    return UrlResponse(url=session.url)
