"""From a Stripe subscription (as read from the API, the source of truth) to the stored
subscription and entitlement records, and which of a customer's subscriptions decides the
organization's plan. Pure: the caller supplies the read time and the clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tenant_billing.catalog import Catalog, PriceRef
from tenant_billing.entitlements import ENDED_STATUSES, PAID_STATUSES, PastDuePolicy, derive_entitlement, is_entitled_status
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.records import frozen
from tenant_billing.stripe_port import PendingUpdate, Subscription, SubscriptionItem

# What the organization's billing shows; read times and `created` only order and rank.
_COMPARED_FIELDS = (
    "subscription_id",
    "status",
    "plan",
    "site_quantity",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "pending_plan",
    "pending_site_quantity",
    "other_live_ids",
    "plan_version",
    "interval",
    "trial_end",
)


@frozen
class SyncedState:
    subscription: SubscriptionRecord
    entitlement: EntitlementRecord
    # Price ids on the subscription that the catalog does not know (a warning metric).
    unknown_prices: tuple[str, ...]


@frozen
class PlanItems:
    """What a subscription's items are in catalog terms."""

    # The base item's catalog price (plan, version, interval); None when not exactly one is known.
    base: PriceRef | None
    site_quantity: int
    # Price ids that grant nothing: not in the catalog, a second base price, another plan's or
    # version's add-on.
    unknown: tuple[str, ...]

    @property
    def plan(self) -> str | None:
        return self.base.plan if self.base is not None else None


def plan_items(items: Sequence[SubscriptionItem], index: Mapping[str, PriceRef]) -> PlanItems:
    """The base item's price gives the plan, its version and interval; the per-site item of that
    same plan version gives siteQuantity. Anything else is reported as unknown and grants nothing."""
    refs = [(item, index.get(item.price_id)) for item in items]
    bases = sorted({ref for _, ref in refs if ref and ref.kind == "base"}, key=lambda ref: (ref.plan, ref.version, ref.interval))
    base = bases[0] if len(bases) == 1 else None

    def add_on(ref: PriceRef | None) -> bool:
        return (
            ref is not None and base is not None and ref.kind == "site" and (ref.plan, ref.version) == (base.plan, base.version)
        )

    quantity = sum(item.quantity for item, ref in refs if add_on(ref))
    unknown = tuple(
        item.price_id
        for item, ref in refs
        if ref is None or (ref.kind == "site" and not add_on(ref)) or (ref.kind == "base" and base is None)
    )
    return PlanItems(base, quantity if base else 0, unknown)


def _pending_items(items: Sequence[SubscriptionItem], pending: PendingUpdate) -> list[SubscriptionItem]:
    """The items the subscription will have once its pending update is paid: the current ones,
    each replaced by its pending version (same item id), plus the pending new ones."""
    by_id = {item.id: item for item in pending.items}
    merged = [by_id.pop(item.id, item) for item in items]
    return merged + list(by_id.values())


def current_period_end(items: Sequence[SubscriptionItem]) -> int | None:
    ends = [item.current_period_end for item in items if item.current_period_end is not None]
    return max(ends) if ends else None


def synced_state(
    org_id: str,
    subscription: Subscription,
    catalog: Catalog,
    price_ids: Mapping[str, str],
    past_due_policy: PastDuePolicy,
    read_at_ns: int,
    now: int,
    other_live_ids: tuple[str, ...] = (),
) -> SyncedState:
    items = subscription.items
    index = catalog.price_index(price_ids)
    found = plan_items(items, index)
    plan, quantity, unknown = found.plan, found.site_quantity, found.unknown
    pending = subscription.pending_update
    pending_plan, pending_quantity = None, 0
    if pending is not None:
        pending_found = plan_items(_pending_items(items, pending), index)
        pending_plan, pending_quantity = pending_found.plan, pending_found.site_quantity
    status = subscription.status
    record = SubscriptionRecord(
        org_id=org_id,
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        status=status,
        plan=plan,
        site_quantity=quantity,
        current_period_end=current_period_end(items),
        cancel_at_period_end=subscription.cancel_at_period_end,
        created=subscription.created,
        read_at_ns=read_at_ns,
        prices_known=not unknown and plan is not None,
        other_live_ids=other_live_ids,
        cancel_at=subscription.cancel_at,
        pending_plan=pending_plan,
        pending_site_quantity=pending_quantity,
        pending_expires_at=pending.expires_at if pending is not None else None,
        plan_version=found.base.version if found.base else None,
        interval=found.base.interval if found.base else None,
        trial_end=subscription.trial_end if status == "trialing" else None,
    )
    # Without a known base price the plan is None: the fallback, never "the current version".
    derived = derive_entitlement(catalog, plan, status, quantity, past_due_policy, version=record.plan_version)
    entitlement = EntitlementRecord(org_id, derived.plan, status, derived.features, derived.limits, now)
    return SyncedState(record, entitlement, unknown)


@frozen
class Choice:
    chosen: Subscription
    # The customer's other subscriptions that have not ended (a duplicate when not empty).
    other_live_ids: tuple[str, ...]


def choose_subscription(
    subscriptions: Sequence[Subscription], catalog: Catalog, price_ids: Mapping[str, str], past_due_policy: PastDuePolicy
) -> Choice | None:
    """The subscription whose entitlement the organization gets: one that grants its plan, then one
    that is paid (not past_due), then one that has not ended, then the one listing for the most, then the newest. So with two live
    subscriptions the better one counts, and cancelling either leaves the other in force."""
    index = catalog.price_index(price_ids)

    def rank(subscription: Subscription) -> tuple[bool, bool, bool, int, int, str]:
        status = subscription.status
        found = plan_items(subscription.items, index)
        base = found.base
        value = catalog.monthly_value(base.plan, found.site_quantity, base.version, base.interval) if base else -1
        return (
            is_entitled_status(status, past_due_policy),
            status in PAID_STATUSES,
            status not in ENDED_STATUSES,
            value,
            subscription.created,
            subscription.id,
        )

    if not subscriptions:
        return None
    ordered = sorted(subscriptions, key=rank, reverse=True)
    others = tuple(sorted(other.id for other in ordered[1:] if other.status not in ENDED_STATUSES))
    return Choice(ordered[0], others)


def entitlement_differs(stored: EntitlementRecord | None, fresh: EntitlementRecord) -> bool:
    """Whether the stored entitlement grants something else than the one Stripe's state derives."""
    if stored is None:
        return True
    return (stored.plan, stored.status, set(stored.features), stored.limits) != (
        fresh.plan,
        fresh.status,
        set(fresh.features),
        fresh.limits,
    )


def differs(stored: SubscriptionRecord | None, fresh: SubscriptionRecord) -> bool:
    """Whether `fresh` says something about the organization that `stored` does not."""
    if stored is None:
        return True
    return any(getattr(stored, name) != getattr(fresh, name) for name in _COMPARED_FIELDS)
