"""The item changes that turn a subscription's items into a plan selection. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from stripe.params import InvoiceCreatePreviewParamsSubscriptionDetailsItem, SubscriptionUpdateParamsItem

from tenant_billing.catalog import PriceRef
from tenant_billing.checkout_logic import LineItems


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
    per-site item; a per-site item is added when there was none. At quantity 0 it is deleted, but
    on a change to another plan that sells sites it is kept at quantity 0 on that plan's price: a
    deletion cannot wait in Stripe's pending update, so an upgrade that also drops the sites could
    otherwise never wait for 3-D Secure. Items whose price is not in the catalog are left alone.
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
        plan_changes = base is not None and _price_id(base) != wanted.base_price_id
        if plan_changes and wanted.plan_site_price_id:
            if (_price_id(site), int(site.get("quantity") or 0)) != (wanted.plan_site_price_id, 0):
                changes.append(ItemChange(item_id=str(site["id"]), price=wanted.plan_site_price_id, quantity=0))
        elif _price_id(site) != wanted.plan_site_price_id or int(site.get("quantity") or 0) != 0:
            changes.append(ItemChange(item_id=str(site["id"]), deleted=True))
    return changes
