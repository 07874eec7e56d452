from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.repositories import get_checkout_repository
from tenant_billing.webhook_event_store import DynamoWebhookEventStore
from tests.conftest import TABLE_NAME

pytestmark = pytest.mark.usefixtures("dynamodb")


def record(**changes: Any) -> SubscriptionRecord:
    base = SubscriptionRecord(
        org_id="org_r",
        subscription_id="sub_1",
        customer_id="cus_1",
        status="active",
        plan="pro",
        site_quantity=2,
        current_period_end=1780000000,
        cancel_at_period_end=False,
        created=1770000000,
        read_at_ns=time.time_ns(),
    )
    return replace(base, **changes)


def entitlement(plan: str = "pro", sites: int = 4) -> EntitlementRecord:
    return EntitlementRecord("org_r", plan, "active", ("page_builder",), {"sites": sites}, 1)


def save(
    rec: SubscriptionRecord, ent: EntitlementRecord | None = None, event_id: str | None = None, *, whole_org: bool = True
) -> SaveOutcome:
    return get_checkout_repository().save_subscription(
        rec, ent or entitlement(), event_id or f"evt_{time.time_ns()}", "test", 2_000_000_000, whole_org=whole_org
    )


def test_round_trip_of_customer_subscription_and_entitlement() -> None:
    repository = get_checkout_repository()
    claim = repository.claim_customer("org_r", "key-1", 100)
    assert not claim.is_linked
    repository.link_customer("org_r", "cus_1", "key-1")
    rec = record()
    assert save(rec, entitlement()) is SaveOutcome.WRITTEN
    billing = repository.get_org_billing("org_r")
    assert billing.customer is not None and billing.customer.customer_id == "cus_1"
    assert billing.subscription == rec
    assert billing.entitlement == entitlement()
    assert DynamoWebhookEventStore(TABLE_NAME).lookup_event("evt_unknown", "cus_1").org_id == "org_r"


def test_a_second_claim_returns_the_first() -> None:
    repository = get_checkout_repository()
    first = repository.claim_customer("org_r", "key-1", 100)
    second = repository.claim_customer("org_r", "key-2", 200)
    assert (second.idempotency_key, second.claimed_at) == (first.idempotency_key, 100)


def test_linking_is_idempotent_but_never_switches_customer(table_items: Any) -> None:
    repository = get_checkout_repository()
    repository.claim_customer("org_r", "key-1", 100)
    assert repository.link_customer("org_r", "cus_1", "key-1") == "cus_1"
    assert repository.link_customer("org_r", "cus_1", "key-1") == "cus_1"
    # A second customer for a linked org: the existing link stands and is returned, and no
    # reverse item is written for the other customer (the transaction is all or nothing).
    assert repository.link_customer("org_r", "cus_2", "key-1") == "cus_1"
    assert repository.get_org_billing("org_r").customer.customer_id == "cus_1"  # type: ignore[union-attr]
    assert not [item for item in table_items() if item["pk"]["S"] == "CUSTOMER#cus_2"]


def test_an_older_read_never_overwrites_a_newer_one() -> None:
    older = record(status="past_due", read_at_ns=1)
    newer = record(status="active", read_at_ns=2)
    assert save(newer) is SaveOutcome.WRITTEN
    assert save(older) is SaveOutcome.SUPERSEDED
    assert get_checkout_repository().get_org_billing("org_r").subscription.status == "active"  # type: ignore[union-attr]


def test_a_whole_organization_read_replaces_any_older_one() -> None:
    # Chosen from all of the customer's subscriptions: only the read time orders such writes.
    assert save(record(subscription_id="sub_new", created=2000, read_at_ns=1)) is SaveOutcome.WRITTEN
    assert save(record(subscription_id="sub_old", created=1000, status="canceled", read_at_ns=5)) is SaveOutcome.WRITTEN
    assert save(record(subscription_id="sub_new", created=2000, read_at_ns=4)) is SaveOutcome.SUPERSEDED
    stored = get_checkout_repository().get_org_billing("org_r").subscription
    assert stored is not None and (stored.subscription_id, stored.status) == ("sub_old", "canceled")


def test_one_subscriptions_read_back_never_switches_the_organization_to_it() -> None:
    assert save(record(subscription_id="sub_new", created=2000, read_at_ns=1)) is SaveOutcome.WRITTEN
    for status in ("active", "canceled", "incomplete"):
        other = record(subscription_id="sub_other", created=3000, status=status, read_at_ns=9)
        assert save(other, whole_org=False) is SaveOutcome.SUPERSEDED
    assert save(record(subscription_id="sub_new", status="past_due", read_at_ns=10), whole_org=False) is SaveOutcome.WRITTEN
    stored = get_checkout_repository().get_org_billing("org_r").subscription
    assert stored is not None and (stored.subscription_id, stored.status) == ("sub_new", "past_due")
    # Nor over a duplicate that a whole-organization read recorded meanwhile.
    assert save(record(subscription_id="sub_new", other_live_ids=("sub_dup",), read_at_ns=11)) is SaveOutcome.WRITTEN
    assert save(record(subscription_id="sub_new", read_at_ns=12), whole_org=False) is SaveOutcome.SUPERSEDED


def test_the_duplicate_list_round_trips() -> None:
    rec = record(other_live_ids=("sub_2", "sub_3"))
    assert save(rec) is SaveOutcome.WRITTEN
    assert get_checkout_repository().get_org_billing("org_r").subscription == rec


def test_one_checkout_session_is_recorded_at_a_time() -> None:
    repository = get_checkout_repository()
    assert repository.record_checkout_session("org_r", "cs_1", None)
    # A concurrent checkout that also saw no session loses; one that saw cs_1 replaces it once.
    assert not repository.record_checkout_session("org_r", "cs_2", None)
    assert repository.record_checkout_session("org_r", "cs_3", "cs_1")
    assert not repository.record_checkout_session("org_r", "cs_4", "cs_1")
    checkout = repository.get_org_billing("org_r").checkout
    assert checkout is not None and checkout.session_id == "cs_3"


def test_the_sync_slot_is_taken_once_per_window_and_can_be_given_back() -> None:
    repository = get_checkout_repository()
    assert repository.claim_sync("org_r", 10_000, 5_000)
    assert not repository.claim_sync("org_r", 14_999, 5_000)
    assert repository.claim_sync("org_r", 15_000, 5_000)
    repository.release_sync("org_r", 10_000)  # not the holder's claim: nothing changes
    assert not repository.claim_sync("org_r", 16_000, 5_000)
    repository.release_sync("org_r", 15_000)
    assert repository.claim_sync("org_r", 16_000, 5_000)


def test_an_event_takes_effect_once() -> None:
    assert save(record(read_at_ns=1), event_id="evt_1") is SaveOutcome.WRITTEN
    assert save(record(read_at_ns=2, status="unpaid"), event_id="evt_1") is SaveOutcome.DUPLICATE
    assert get_checkout_repository().get_org_billing("org_r").subscription.status == "active"  # type: ignore[union-attr]
    lookup = DynamoWebhookEventStore(TABLE_NAME).lookup_event("evt_1", "cus_nobody")
    assert lookup.already_processed and lookup.org_id is None


def test_mark_event_is_conditional() -> None:
    assert DynamoWebhookEventStore(TABLE_NAME).mark_event("evt_x", "customer.subscription.trial_will_end", 2_000_000_000)
    assert not DynamoWebhookEventStore(TABLE_NAME).mark_event("evt_x", "customer.subscription.trial_will_end", 2_000_000_000)


def test_event_markers_expire_by_ttl(table_items: Any) -> None:
    DynamoWebhookEventStore(TABLE_NAME).mark_event("evt_ttl", "x", 1_900_000_000)
    (item,) = [item for item in table_items() if item["pk"]["S"] == "EVENT#evt_ttl"]
    assert item["expires_at"] == {"N": "1900000000"}
