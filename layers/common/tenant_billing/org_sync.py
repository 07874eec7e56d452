"""Read all of an organization's subscriptions from Stripe and store the one that decides its
plan (see `choose_subscription`): how the webhook, POST /billing/sync, checkout and
reconciliation write subscription state. One Stripe list call per sync, whatever the event.

Stripe lets one customer hold several subscriptions (two Checkout tabs paid, the Dashboard, an
old integration). Reading them all is what lets the organization keep its best live subscription
when another one is canceled, and what detects the duplicate (metric `DuplicateSubscription`).
"""

from __future__ import annotations

import time

from tenant_billing.catalog import Catalog
from tenant_billing.errors import BillingMisconfiguredError
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.observability import logger, metrics
from tenant_billing.org_billing_store import OrgBillingStore, SaveOutcome
from tenant_billing.records import frozen
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort, Subscription, UnknownStartingPoint
from tenant_billing.stripe_prices import price_ids
from tenant_billing.subscription_store import store_state
from tenant_billing.subscription_sync import (
    SyncedState,
    choose_subscription,
    differs,
    entitlement_differs,
    synced_state,
)

# Stripe lists newest first, 100 a page. A customer with more subscriptions than this (all
# canceled but a few) is an account to look at, not one to page through on every event.
MAX_PAGES = 5


@frozen
class SyncResult:
    # None: nothing was written (no subscription at all, or `skip_unchanged` and nothing changed).
    outcome: SaveOutcome | None
    # What Stripe's state means for the organization; None when the customer has no subscription.
    state: SyncedState | None
    subscription_ids: frozenset[str]


def read_customer_subscriptions(stripe: StripePort, customer_id: str) -> list[Subscription]:
    """Every subscription of the customer, whatever its status (newest first)."""
    subscriptions: list[Subscription] = []
    try:
        for _ in range(MAX_PAGES):
            starting_after = subscriptions[-1].id if subscriptions else None
            try:
                page = stripe.list_subscriptions(customer_id, 100, starting_after)
            except UnknownStartingPoint:
                # The last id of the page Stripe just gave: Stripe refusing it is not ours to fix.
                logger.error("Stripe refused its own subscription as a list cursor", extra={"customer_id": customer_id})
                raise BillingMisconfiguredError("billing is misconfigured") from None
            subscriptions.extend(page.data)
            if not page.has_more or not page.data:
                return subscriptions
    finally:
        metrics.add_metric(name="StripeSubscriptionRead", unit="Count", value=1)
    logger.warning("customer has more subscriptions than one sync reads", extra={"customer_id": customer_id})
    return subscriptions


def sync_org(
    org_id: str,
    customer_id: str,
    stripe: StripePort,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    *,
    stored: SubscriptionRecord | None = None,
    stored_entitlement: EntitlementRecord | None = None,
    skip_unchanged: bool = False,
    must_include: str | None = None,
    event_id: str | None = None,
    event_type: str = "api",
) -> SyncResult:
    """Store the organization's subscription as Stripe has it now, through the guarded write (a
    read that started earlier than the stored one never overwrites it). With `must_include`,
    nothing is written unless that subscription is one of the customer's."""
    # Read time first: a read that starts later can only see the same or a newer state.
    read_at_ns = time.time_ns()
    subscriptions = read_customer_subscriptions(stripe, customer_id)
    if must_include is not None and all(subscription.id != must_include for subscription in subscriptions):
        # Not in the customer's list (a deleted customer's, or past the pages read): read it alone.
        missing = stripe.find_subscription(must_include)
        if missing is not None and missing.customer_id == customer_id:
            subscriptions.append(missing)
    ids = frozenset(subscription.id for subscription in subscriptions)
    prices = price_ids(settings, stripe)
    choice = choose_subscription(subscriptions, catalog, prices, settings.PAST_DUE_ENTITLEMENTS)
    if choice is None or (must_include is not None and must_include not in ids):
        return SyncResult(None, None, ids)
    state = synced_state(
        org_id,
        choice.chosen,
        catalog,
        prices,
        settings.PAST_DUE_ENTITLEMENTS,
        read_at_ns,
        int(time.time()),
        choice.other_live_ids,
    )
    if choice.other_live_ids:
        metrics.add_metric(name="DuplicateSubscription", unit="Count", value=1)
        logger.warning(
            "organization has more than one live subscription",
            extra={
                "org_id": org_id,
                "customer_id": customer_id,
                "kept_subscription_id": state.subscription.subscription_id,
                "other_live_subscription_ids": list(choice.other_live_ids),
            },
        )
    # Unchanged: the subscription, and (when the caller knows it) the entitlement it derives today.
    entitlement_changed = stored_entitlement is not None and entitlement_differs(stored_entitlement, state.entitlement)
    if skip_unchanged and not differs(stored, state.subscription) and not entitlement_changed:
        return SyncResult(None, state, ids)
    outcome = store_state(state, repository, whole_org=True, event_id=event_id, event_type=event_type)
    return SyncResult(outcome, state, ids)
