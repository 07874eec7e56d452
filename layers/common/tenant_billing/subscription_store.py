"""Store subscription state exactly as Stripe returned it (guarded, all or nothing): the one path
by which every writer of subscription state reaches the repository."""

from __future__ import annotations

import time

from tenant_billing.catalog import Catalog
from tenant_billing.errors import StaleReadError
from tenant_billing.observability import logger, metrics
from tenant_billing.org_billing_store import OrgBillingStore, SaveOutcome
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort, Subscription
from tenant_billing.stripe_prices import price_ids
from tenant_billing.subscription_sync import SyncedState, differs, synced_state

# Stripe retries a delivery for up to 3 days and keeps events for 30: a marker outlives both.
EVENT_MARKER_TTL_SECONDS = 30 * 24 * 3600


def store_state(
    state: SyncedState,
    repository: OrgBillingStore,
    *,
    whole_org: bool,
    event_id: str | None = None,
    event_type: str = "api",
) -> SaveOutcome:
    """`whole_org`: the state was chosen from all of the customer's subscriptions (it may replace
    any stored one); otherwise it is one subscription's read-back and may only update that one."""
    if state.unknown_prices:
        metrics.add_metric(name="UnknownSubscriptionPrice", unit="Count", value=1)
        logger.warning("subscription has prices outside the catalog", extra={"prices": list(state.unknown_prices)})
    expires_at = int(time.time()) + EVENT_MARKER_TTL_SECONDS
    outcome = repository.save_subscription(
        state.subscription, state.entitlement, event_id, event_type, expires_at, whole_org=whole_org
    )
    logger.info(
        "subscription stored",
        extra={
            "source": event_type,
            "outcome": outcome.value,
            "status": state.subscription.status,
            "plan": state.entitlement.plan,
            "site_quantity": state.subscription.site_quantity,
        },
    )
    return outcome


def store_stripe_subscription(
    org_id: str,
    subscription: Subscription,
    read_at_ns: int,
    repository: OrgBillingStore,
    settings: Settings,
    catalog: Catalog,
    stripe: StripePort,
) -> tuple[SaveOutcome, SyncedState]:
    """Store the read-back of a change our API made to the organization's stored subscription.
    `read_at_ns` is when the Stripe call that returned it started: a read that started later wins."""
    state = synced_state(
        org_id, subscription, catalog, price_ids(settings, stripe), settings.PAST_DUE_ENTITLEMENTS, read_at_ns, int(time.time())
    )
    return store_state(state, repository, whole_org=False), state


def confirm_superseded(repository: OrgBillingStore, state: SyncedState) -> None:
    """A write the guard refused because a later read is stored: fine when what is stored agrees
    with our read. When it does not, the stored read's time may come from an instance whose clock
    runs ahead (or ours behind), so neither read can be trusted to be the newer: answer a
    retryable error, and the retry (a fresh read, later on every clock) settles it."""
    stored = repository.get_org_billing(state.subscription.org_id).subscription
    if differs(stored, state.subscription):
        logger.warning("a newer read is stored and disagrees with ours; asking for a retry")
        metrics.add_metric(name="StaleReadRetried", unit="Count", value=1)
        raise StaleReadError("billing state changed while it was read, try again")
