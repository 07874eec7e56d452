"""From a Stripe subscription (as read from the API, the source of truth) to the stored
subscription and entitlement records, and which of a customer's subscriptions decides the
organization's plan. Pure: the caller supplies the read time and the clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenant_billing.catalog import Catalog, PriceRef
from tenant_billing.entitlements import ENDED_STATUSES, PAID_STATUSES, PastDuePolicy, derive_entitlement, is_entitled_status
from tenant_billing.items import EntitlementRecord, SubscriptionRecord

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
)


@dataclass(frozen=True, slots=True)
class SyncedState:
    subscription: SubscriptionRecord
    entitlement: EntitlementRecord
    # Price ids on the subscription that the catalog does not know (a warning metric).
    unknown_prices: tuple[str, ...]


def _price_id(item: Mapping[str, Any]) -> str:
    price = item.get("price")
    if isinstance(price, Mapping):
        return str(price.get("id", ""))
    return str(price or "")


def plan_and_quantity(items: list[Mapping[str, Any]], index: Mapping[str, PriceRef]) -> tuple[str | None, int, tuple[str, ...]]:
    """The base item's price gives the plan; that plan's per-site item gives siteQuantity.

    Anything else (a price we do not know, a second base price, another plan's add-on) is
    reported as unknown and grants nothing.
    """
    refs = [(item, index.get(_price_id(item))) for item in items]
    bases = sorted({ref.plan for _, ref in refs if ref and ref.kind == "base"})
    plan = bases[0] if len(bases) == 1 else None
    quantity = sum(int(item.get("quantity") or 0) for item, ref in refs if ref and ref.kind == "site" and ref.plan == plan)
    unknown = tuple(
        _price_id(item)
        for item, ref in refs
        if ref is None or (ref.kind == "site" and ref.plan != plan) or (ref.kind == "base" and plan is None)
    )
    return plan, quantity if plan else 0, unknown


def subscription_items(subscription: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((subscription.get("items") or {}).get("data") or [])


def customer_id_of(subscription: Mapping[str, Any]) -> str:
    """The subscription's customer: an id, or an expanded customer object."""
    customer = subscription.get("customer")
    return str(customer.get("id") if isinstance(customer, Mapping) else customer or "")


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A field that should be an object; anything else (even in a signed event) counts as empty."""
    return value if isinstance(value, Mapping) else {}


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _pending_items(items: list[Mapping[str, Any]], pending: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The items the subscription will have once its pending update is paid: the current ones,
    each replaced by its pending version (same item id), plus the pending new ones."""
    updates = [item for item in pending.get("subscription_items") or [] if isinstance(item, Mapping)]
    by_id = {str(item.get("id")): item for item in updates}
    merged = [by_id.pop(str(item.get("id")), item) for item in items]
    return merged + list(by_id.values())


def _current_period_end(items: list[Mapping[str, Any]]) -> int | None:
    # Since API 2025-03-31.basil the billing period lives on the items, not the subscription.
    ends = [int(item["current_period_end"]) for item in items if item.get("current_period_end") is not None]
    return max(ends) if ends else None


def synced_state(
    org_id: str,
    subscription: Mapping[str, Any],
    catalog: Catalog,
    price_ids: Mapping[str, str],
    past_due_policy: PastDuePolicy,
    read_at_ns: int,
    now: int,
    other_live_ids: tuple[str, ...] = (),
) -> SyncedState:
    items = subscription_items(subscription)
    index = catalog.price_index(price_ids)
    plan, quantity, unknown = plan_and_quantity(items, index)
    pending = as_mapping(subscription.get("pending_update"))
    pending_plan, pending_quantity = None, 0
    if pending:
        pending_plan, pending_quantity, _ = plan_and_quantity(_pending_items(items, pending), index)
    customer_id = customer_id_of(subscription)
    status = str(subscription["status"])
    record = SubscriptionRecord(
        org_id=org_id,
        subscription_id=str(subscription["id"]),
        customer_id=customer_id,
        status=status,
        plan=plan,
        site_quantity=quantity,
        current_period_end=_current_period_end(items),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        created=int(subscription.get("created") or 0),
        read_at_ns=read_at_ns,
        prices_known=not unknown and plan is not None,
        other_live_ids=other_live_ids,
        cancel_at=_optional_int(subscription.get("cancel_at")),
        pending_plan=pending_plan,
        pending_site_quantity=pending_quantity,
        pending_expires_at=_optional_int(pending.get("expires_at")),
    )
    derived = derive_entitlement(catalog, plan, status, quantity, past_due_policy)
    entitlement = EntitlementRecord(org_id, derived.plan, status, derived.features, derived.limits, now)
    return SyncedState(record, entitlement, unknown)


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: Mapping[str, Any]
    # The customer's other subscriptions that have not ended (a duplicate when not empty).
    other_live_ids: tuple[str, ...]


def choose_subscription(
    subscriptions: Sequence[Mapping[str, Any]], catalog: Catalog, price_ids: Mapping[str, str], past_due_policy: PastDuePolicy
) -> Choice | None:
    """The subscription whose entitlement the organization gets: one that grants its plan, then one
    that is paid (not past_due), then one that has not ended, then the one listing for the most, then the newest. So with two live
    subscriptions the better one counts, and cancelling either leaves the other in force."""
    index = catalog.price_index(price_ids)

    def rank(subscription: Mapping[str, Any]) -> tuple[bool, bool, bool, int, int, str]:
        status = str(subscription.get("status"))
        plan, quantity, _ = plan_and_quantity(subscription_items(subscription), index)
        return (
            is_entitled_status(status, past_due_policy),
            status in PAID_STATUSES,
            status not in ENDED_STATUSES,
            catalog.monthly_value(plan, quantity),
            int(subscription.get("created") or 0),
            str(subscription.get("id")),
        )

    if not subscriptions:
        return None
    ordered = sorted(subscriptions, key=rank, reverse=True)
    others = tuple(sorted(str(other["id"]) for other in ordered[1:] if other.get("status") not in ENDED_STATUSES))
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
