"""Reconciliation's per-page check (pure): which organizations a page of Stripe's subscriptions
shows stale, what it counts, and which subscriptions it marks as seen."""

from __future__ import annotations

from dataclasses import replace

from tenant_billing.catalog import get_catalog
from tenant_billing.entitlements import derive_entitlement
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.reconcile_check import GrantPolicy, OrgToSync, check_stripe_page, org_to_sync
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.stripe_port import Subscription

PRICES = {"starter_base": "price_s", "pro_base": "price_p", "pro_site": "price_ps",
          "enterprise_base": "price_e", "enterprise_site": "price_es"}  # fmt: skip
POLICY = GrantPolicy(get_catalog(), PRICES, "plan")


def sub(sub_id: str, customer: str, *, status: str = "active", sites: int = 2, created: int = 1_700_000_000) -> Subscription:
    items = [{"price": {"id": "price_p"}, "quantity": 1}, {"price": {"id": "price_ps"}, "quantity": sites}]
    return read_subscription({"id": sub_id, "customer": customer, "status": status, "created": created, "items": {"data": items}})


def stored_as(org_id: str, subscription: Subscription) -> SubscriptionRecord:
    return replace(POLICY.read(org_id, subscription), read_at_ns=1)


def entitlement_of(record: SubscriptionRecord) -> EntitlementRecord:
    derived = derive_entitlement(get_catalog(), record.plan, record.status, record.site_quantity)
    return EntitlementRecord(record.org_id, derived.plan, record.status, derived.features, derived.limits)


def test_an_in_sync_page_asks_for_nothing_and_counts_every_subscription() -> None:
    ours, theirs = sub("sub_a", "cus_a"), sub("sub_x", "cus_x")
    record = stored_as("org_a", ours)
    check = check_stripe_page(
        [ours, theirs], {"cus_a": "org_a"}, {"org_a": record}, {"org_a": entitlement_of(record)}, lambda: POLICY, set()
    )
    assert (check.checked, check.not_ours, check.seen_ids, check.to_sync) == (2, 1, ("sub_a",), ())


def test_a_stale_organization_is_synced_once_with_what_it_stored() -> None:
    record = stored_as("org_a", sub("sub_a", "cus_a", sites=2))
    entitlement = entitlement_of(record)
    # Two subscriptions of the same organization on the page, the first one showing it stale.
    page = [sub("sub_a", "cus_a", sites=5), sub("sub_b", "cus_a", created=1_600_000_000)]
    check = check_stripe_page(page, {"cus_a": "org_a"}, {"org_a": record}, {"org_a": entitlement}, lambda: POLICY, set())
    assert check.to_sync == (OrgToSync("org_a", "cus_a", record, entitlement),)
    assert (check.checked, check.not_ours, check.seen_ids) == (2, 0, ("sub_a", "sub_b"))


def test_an_organization_this_invocation_synced_already_is_not_synced_again() -> None:
    check = check_stripe_page([sub("sub_a", "cus_a")], {"cus_a": "org_a"}, {}, {}, lambda: POLICY, {"org_a"})
    assert (check.to_sync, check.seen_ids) == ((), ("sub_a",))


def test_a_later_subscription_of_the_page_may_show_the_organization_stale() -> None:
    ended = sub("sub_old", "cus_a", status="canceled", created=1_600_000_000)
    live = sub("sub_a", "cus_a")
    record = stored_as("org_a", live)
    page = [ended, sub("sub_new", "cus_a", created=1_800_000_000)]
    check = check_stripe_page(page, {"cus_a": "org_a"}, {"org_a": record}, {}, lambda: POLICY, set())
    assert [org.org_id for org in check.to_sync] == ["org_a"]


def test_nothing_stored_a_known_duplicate_or_an_outdated_entitlement_needs_a_sync() -> None:
    subscription = sub("sub_a", "cus_a")
    record = stored_as("org_a", subscription)
    assert org_to_sync("org_a", subscription, None, None, POLICY) == OrgToSync("org_a", "cus_a", None)
    duplicate = replace(record, other_live_ids=("sub_b",))
    assert org_to_sync("org_a", subscription, duplicate, None, POLICY) is not None
    outdated = replace(entitlement_of(record), limits={"sites": 1})
    assert org_to_sync("org_a", subscription, record, outdated, POLICY) is not None
    assert org_to_sync("org_a", subscription, record, entitlement_of(record), POLICY) is None
    assert org_to_sync("org_a", subscription, record, None, POLICY) is None


def test_an_empty_page_counts_nothing() -> None:
    check = check_stripe_page([], {}, {}, {}, lambda: POLICY, set())
    assert (check.checked, check.not_ours, check.seen_ids, check.to_sync) == (0, 0, (), ())


def test_a_page_of_other_customers_needs_no_policy() -> None:
    def no_policy() -> GrantPolicy:
        raise AssertionError("asked for the policy (and so for the prices) without a subscription of ours")

    check = check_stripe_page([sub("sub_x", "cus_x")], {}, {}, {}, no_policy, set())
    assert (check.checked, check.not_ours, check.to_sync) == (1, 1, ())
