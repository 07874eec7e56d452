"""Reconciliation's decisions, free of I/O: whether what an organization stored is stale, and
what one page of Stripe's subscriptions asks for (see `reconcile_logic` for the run)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import field, replace

from tenant_billing.catalog import Catalog
from tenant_billing.entitlements import ENDED_STATUSES, PastDuePolicy, derive_entitlement
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.records import frozen
from tenant_billing.stripe_port import Subscription
from tenant_billing.subscription_sync import differs, entitlement_differs, synced_state


@frozen
class GrantPolicy:
    """What today's catalog and configuration grant."""

    catalog: Catalog
    prices: Mapping[str, str]
    past_due: PastDuePolicy

    def read(self, org_id: str, subscription: Subscription) -> SubscriptionRecord:
        """The record Stripe's subscription would be stored as (its read time does not matter here)."""
        return synced_state(org_id, subscription, self.catalog, self.prices, self.past_due, 0, 0).subscription

    def grants_otherwise(self, record: SubscriptionRecord | None, entitlement: EntitlementRecord | None) -> bool:
        """Whether the stored entitlement differs from what the stored subscription grants today."""
        if record is None or entitlement is None:
            return False
        derived = derive_entitlement(
            self.catalog, record.plan, record.status, record.site_quantity, self.past_due, version=record.plan_version
        )
        expected = EntitlementRecord(record.org_id, derived.plan, record.status, derived.features, derived.limits)
        return entitlement_differs(entitlement, expected)


def needs_sync(stored: SubscriptionRecord | None, fresh: SubscriptionRecord) -> bool:
    """Whether Stripe's `fresh` state of one of an organization's subscriptions shows that what the
    organization has stored is stale (it is then synced whole, see `sync_org`)."""
    if stored is None:
        return True
    if stored.subscription_id == fresh.subscription_id:
        return differs(stored, replace(fresh, other_live_ids=stored.other_live_ids))
    live = fresh.status not in ENDED_STATUSES
    if fresh.subscription_id in stored.other_live_ids:
        # A known duplicate: stale only once it has ended.
        return not live
    if live:
        # A live subscription the organization does not know of: a lost webhook or a new duplicate.
        return True
    return stored.status in ENDED_STATUSES and stored.created < fresh.created


@frozen
class OrgToSync:
    """An organization to sync whole, with what it has stored."""

    org_id: str
    customer_id: str
    stored: SubscriptionRecord | None
    entitlement: EntitlementRecord | None = None


def org_to_sync(
    org_id: str,
    subscription: Subscription,
    stored: SubscriptionRecord | None,
    entitlement: EntitlementRecord | None,
    policy: GrantPolicy,
) -> OrgToSync | None:
    """The organization to sync if this subscription shows its stored state is stale, if its stored
    entitlement is not what its subscription grants today, or if it has several live
    subscriptions (any of them may have changed unseen); None when it is in sync."""
    fresh = policy.read(org_id, subscription)
    duplicate = stored is not None and bool(stored.other_live_ids)
    if duplicate or needs_sync(stored, fresh) or policy.grants_otherwise(stored, entitlement):
        return OrgToSync(org_id, fresh.customer_id, stored, entitlement)
    return None


@frozen
class StripePageCheck:
    """What one page of Stripe's subscriptions asks for."""

    checked: int
    not_ours: int
    # The page's subscriptions of our customers (the table walk need not read them again).
    seen_ids: tuple[str, ...]
    # In page order, each organization once, none of those already synced.
    to_sync: tuple[OrgToSync, ...] = field(default=())


def check_stripe_page(
    subscriptions: Sequence[Subscription],
    links: Mapping[str, str],
    stored: Mapping[str, SubscriptionRecord],
    entitlements: Mapping[str, EntitlementRecord],
    policy: Callable[[], GrantPolicy],
    already_synced: Collection[str],
) -> StripePageCheck:
    """`links`: the organization of each of our customers; `stored`, `entitlements`: what those
    organizations stored; `already_synced`: the organizations this invocation synced already.
    `policy` is asked for only once an organization of ours is checked (its prices may come
    from Stripe: a page of other customers' subscriptions asks Stripe for nothing more)."""
    seen: list[str] = []
    to_sync: dict[str, OrgToSync] = {}
    for subscription in subscriptions:
        org_id = links.get(subscription.customer_id)
        if org_id is None:
            continue
        seen.append(subscription.id)
        if org_id in already_synced or org_id in to_sync:
            continue
        if wanted := org_to_sync(org_id, subscription, stored.get(org_id), entitlements.get(org_id), policy()):
            to_sync[org_id] = wanted
    return StripePageCheck(len(subscriptions), len(subscriptions) - len(seen), tuple(seen), tuple(to_sync.values()))
