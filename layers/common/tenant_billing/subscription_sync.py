"""From a Stripe subscription (as read from the API, the source of truth) to the stored
subscription and entitlement records. Pure: the caller supplies the read time and the clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenant_billing.catalog import Catalog, PriceRef
from tenant_billing.entitlements import PastDuePolicy, derive_entitlement
from tenant_billing.items import EntitlementRecord, SubscriptionRecord


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
) -> SyncedState:
    items: list[Mapping[str, Any]] = list((subscription.get("items") or {}).get("data") or [])
    plan, quantity, unknown = plan_and_quantity(items, catalog.price_index(price_ids))
    customer = subscription.get("customer")
    customer_id = str(customer.get("id") if isinstance(customer, Mapping) else customer or "")
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
    )
    derived = derive_entitlement(catalog, plan, status, quantity, past_due_policy)
    entitlement = EntitlementRecord(org_id, derived.plan, status, derived.features, derived.limits, now)
    return SyncedState(record, entitlement, unknown)
