"""The item changes that turn a subscription's items into a plan selection. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tenant_billing.catalog import PriceRef
from tenant_billing.checkout_logic import LineItems
from tenant_billing.stripe_port import ItemChange, SubscriptionItem


def item_changes(current_items: Sequence[SubscriptionItem], wanted: LineItems, index: Mapping[str, PriceRef]) -> list[ItemChange]:
    """The item changes that turn the subscription's items into `wanted` (empty: nothing to do).

    The base item keeps its id when the plan changes (a price swap, prorated), and so does the
    per-site item; a per-site item is added when there was none. At quantity 0 it is deleted, but
    on a change to another plan that sells sites it is kept at quantity 0 on that plan's price: a
    deletion cannot wait in Stripe's pending update, so an upgrade that also drops the sites could
    otherwise never wait for 3-D Secure. Items whose price is not in the catalog are left alone.
    """
    base = next((item for item in current_items if (ref := index.get(item.price_id)) and ref.kind == "base"), None)
    site = next((item for item in current_items if (ref := index.get(item.price_id)) and ref.kind == "site"), None)
    changes: list[ItemChange] = []
    if base is None:
        changes.append(ItemChange(price=wanted.base_price_id, quantity=1))
    elif base.price_id != wanted.base_price_id or base.quantity != 1:
        changes.append(ItemChange(item_id=base.id, price=wanted.base_price_id, quantity=1))
    if wanted.site_quantity > 0 and wanted.site_price_id:
        if site is None:
            changes.append(ItemChange(price=wanted.site_price_id, quantity=wanted.site_quantity))
        elif site.price_id != wanted.site_price_id or site.quantity != wanted.site_quantity:
            changes.append(ItemChange(item_id=site.id, price=wanted.site_price_id, quantity=wanted.site_quantity))
    elif site is not None:
        plan_changes = base is not None and base.price_id != wanted.base_price_id
        if plan_changes and wanted.plan_site_price_id:
            if (site.price_id, site.quantity) != (wanted.plan_site_price_id, 0):
                changes.append(ItemChange(item_id=site.id, price=wanted.plan_site_price_id, quantity=0))
        elif site.price_id != wanted.plan_site_price_id or site.quantity != 0:
            changes.append(ItemChange(item_id=site.id, deleted=True))
    return changes
