"""The item changes that turn a subscription's items into a plan selection (pure)."""

from __future__ import annotations

from tenant_billing.catalog import PriceRef
from tenant_billing.checkout_logic import LineItems
from tenant_billing.item_changes import item_changes
from tenant_billing.stripe_adapter import _item_fields as item_fields
from tenant_billing.stripe_objects import read_item
from tenant_billing.stripe_port import ItemChange, SubscriptionItem

INDEX = {
    "p_base": PriceRef("pro", "base"),
    "p_site": PriceRef("pro", "site"),
    "e_base": PriceRef("enterprise", "base"),
    "e_site": PriceRef("enterprise", "site"),
    "s_base": PriceRef("starter", "base"),
}


def items(*rows: tuple[str, str, int]) -> list[SubscriptionItem]:
    return [read_item({"id": item_id, "price": {"id": price}, "quantity": quantity}) for item_id, price, quantity in rows]


def wanted(plan: str, base: str, site: str | None, quantity: int) -> LineItems:
    return LineItems(plan, base, site if quantity > 0 else None, quantity, site)


def test_nothing_to_do() -> None:
    assert item_changes(items(("si_b", "p_base", 1), ("si_s", "p_site", 3)), wanted("pro", "p_base", "p_site", 3), INDEX) == []


def test_a_plan_change_swaps_prices_and_keeps_item_ids() -> None:
    changes = item_changes(
        items(("si_b", "p_base", 1), ("si_s", "p_site", 3)), wanted("enterprise", "e_base", "e_site", 4), INDEX
    )
    assert changes == [ItemChange("si_b", "e_base", 1), ItemChange("si_s", "e_site", 4)]


def test_sites_are_added_and_removed_on_the_same_plan() -> None:
    assert item_changes(items(("si_b", "p_base", 1)), wanted("pro", "p_base", "p_site", 2), INDEX) == [
        ItemChange(None, "p_site", 2)
    ]
    removed = item_changes(items(("si_b", "p_base", 1), ("si_s", "p_site", 3)), wanted("pro", "p_base", "p_site", 0), INDEX)
    assert removed == [ItemChange("si_s", deleted=True)]


def test_a_plan_change_that_drops_the_sites_keeps_the_item_at_zero() -> None:
    # A deletion cannot wait in a pending update: the emptied item moves to the new plan's price.
    changes = item_changes(
        items(("si_b", "p_base", 1), ("si_s", "p_site", 3)), wanted("enterprise", "e_base", "e_site", 0), INDEX
    )
    assert changes == [ItemChange("si_b", "e_base", 1), ItemChange("si_s", "e_site", 0)]
    # To a plan without an add-on the item is deleted.
    to_starter = item_changes(items(("si_b", "p_base", 1), ("si_s", "p_site", 3)), wanted("starter", "s_base", None, 0), INDEX)
    assert to_starter == [ItemChange("si_b", "s_base", 1), ItemChange("si_s", deleted=True)]


def test_an_emptied_item_is_left_alone_or_reused() -> None:
    current = items(("si_b", "e_base", 1), ("si_s", "e_site", 0))
    assert item_changes(current, wanted("enterprise", "e_base", "e_site", 0), INDEX) == []
    assert item_changes(current, wanted("enterprise", "e_base", "e_site", 2), INDEX) == [ItemChange("si_s", "e_site", 2)]


def test_unknown_prices_are_left_alone() -> None:
    current = items(("si_b", "p_base", 1), ("si_x", "price_other", 1))
    assert item_changes(current, wanted("pro", "p_base", "p_site", 0), INDEX) == []


def test_a_missing_base_item_is_added_and_a_wrong_quantity_set_back_to_one() -> None:
    assert item_changes(items(("si_s", "p_site", 3)), wanted("pro", "p_base", "p_site", 3), INDEX) == [
        ItemChange(None, "p_base", 1)
    ]
    assert item_changes(items(("si_b", "p_base", 2)), wanted("pro", "p_base", None, 0), INDEX) == [
        ItemChange("si_b", "p_base", 1)
    ]


def test_a_price_given_as_an_id_or_as_an_object_is_the_same_price() -> None:
    current = [read_item({"id": "si_b", "price": "p_base", "quantity": 1})]
    assert current == items(("si_b", "p_base", 1))
    assert item_changes(current, wanted("pro", "p_base", "p_site", 0), INDEX) == []


def test_the_fields_stripe_gets() -> None:
    assert item_fields(ItemChange(None, "p_site", 2)) == {"price": "p_site", "quantity": 2}
    assert item_fields(ItemChange("si_s", "e_site", 0)) == {"id": "si_s", "price": "e_site", "quantity": 0}
    # A deletion names only the item.
    assert item_fields(ItemChange("si_s", "p_site", 3, deleted=True)) == {"id": "si_s", "deleted": True}
