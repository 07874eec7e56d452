"""Event parsing, what an event concerns, and the subscription -> stored state mapping, on
payloads in the current API shape (and the legacy envelopes for the envelope itself)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenant_billing.catalog import get_catalog
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.subscription_sync import synced_state
from tenant_billing.webhook_logic import StripeEvent, WebhookPayloadError, event_target, parse_event
from tests.conftest import TEST_PRICES
from tests.support.template import REPO_ROOT

LEGACY = REPO_ROOT.parent / "shared" / "stripe-reference" / "legacy-events-api-2020-08-27"


@pytest.mark.parametrize("name", sorted(path.name for path in LEGACY.glob("*.json")))
def test_legacy_envelopes_parse(name: str) -> None:
    event = parse_event((LEGACY / name).read_bytes())
    assert event.type == name.removesuffix(".json")
    assert event.id.startswith("evt_")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"object": "customer", "id": "cus_1"}',
        b'{"object": "event", "id": "x", "type": "a", "data": {"object": {}}}',
        b'{"object": "event", "id": "evt_1", "type": "a", "data": {}}',
        b'{"object": "event", "id": "evt_1", "data": {"object": {}}}',
        b"\xff\xfe",
    ],
)
def test_bodies_that_are_not_stripe_events(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(body)


def invoice(parent: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": "in_1", "object": "invoice", "customer": "cus_1", "parent": parent}


def test_invoice_links_its_subscription_through_parent() -> None:
    parent = {
        "type": "subscription_details",
        "subscription_details": {"subscription": "sub_1", "metadata": {}},
        "quote_details": None,
    }
    target = event_target(StripeEvent("evt_1", "invoice.paid", invoice(parent)))
    assert target is not None and (target.customer_id, target.subscription_id) == ("cus_1", "sub_1")


@pytest.mark.parametrize(
    "parent", [None, {"type": "quote_details", "quote_details": {"quote": "qt_1"}, "subscription_details": None}]
)
def test_invoice_without_a_subscription_concerns_nothing(parent: dict[str, Any] | None) -> None:
    assert event_target(StripeEvent("evt_1", "invoice.payment_failed", invoice(parent))) is None


def test_the_old_invoice_subscription_field_is_not_read() -> None:
    old_shape = {**invoice(None), "subscription": "sub_legacy"}
    assert event_target(StripeEvent("evt_1", "invoice.paid", old_shape)) is None


def test_checkout_session_in_subscription_mode() -> None:
    session = {"id": "cs_1", "object": "checkout.session", "mode": "subscription", "customer": "cus_1", "subscription": "sub_1"}
    target = event_target(StripeEvent("evt_1", "checkout.session.completed", session))
    assert target is not None and target.subscription_id == "sub_1"
    payment = {**session, "mode": "payment", "subscription": None}
    assert event_target(StripeEvent("evt_2", "checkout.session.completed", payment)) is None


def test_expanded_customer_objects_are_read_by_id() -> None:
    sub = {"id": "sub_1", "object": "subscription", "customer": {"id": "cus_9", "object": "customer"}}
    target = event_target(StripeEvent("evt_1", "customer.subscription.updated", sub))
    assert target is not None and target.customer_id == "cus_9"


def subscription(items: list[tuple[str, int]], status: str = "active", **extra: Any) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "created": 1770000000,
        "cancel_at_period_end": False,
        "items": {
            "object": "list",
            "data": [
                {"id": f"si_{n}", "price": {"id": price}, "quantity": quantity, "current_period_start": 1770000000,
                 "current_period_end": 1772668800}
                for n, (price, quantity) in enumerate(items)
            ],
        },
        **extra,
    }  # fmt: skip


def sync(sub: dict[str, Any], policy: Any = "plan") -> Any:
    return synced_state("org_1", read_subscription(sub), get_catalog(), TEST_PRICES, policy, read_at_ns=5, now=100)


def test_plan_and_quantity_come_from_the_item_prices() -> None:
    state = sync(subscription([("price_pro_base", 1), ("price_pro_site", 3)]))
    assert (state.subscription.plan, state.subscription.site_quantity) == ("pro", 3)
    assert state.subscription.current_period_end == 1772668800
    assert state.entitlement.limits["sites"] == 5
    assert state.unknown_prices == ()


def test_the_period_is_read_from_the_items_not_the_subscription() -> None:
    sub = subscription([("price_pro_base", 1)], current_period_end=1)
    assert sync(sub).subscription.current_period_end == 1772668800


def test_unknown_prices_get_the_fallback_and_are_reported() -> None:
    state = sync(subscription([("price_legacy_gold", 1)]))
    assert state.subscription.plan is None
    assert state.entitlement.plan == "starter"
    assert state.unknown_prices == ("price_legacy_gold",)
    assert not state.subscription.prices_known


def test_another_plans_add_on_grants_nothing() -> None:
    state = sync(subscription([("price_pro_base", 1), ("price_enterprise_site", 4)]))
    assert (state.subscription.plan, state.subscription.site_quantity) == ("pro", 0)
    assert state.unknown_prices == ("price_enterprise_site",)


def test_two_base_prices_are_ambiguous_and_grant_the_fallback() -> None:
    state = sync(subscription([("price_pro_base", 1), ("price_enterprise_base", 1)]))
    assert state.entitlement.plan == "starter"


@pytest.mark.parametrize(
    ("status", "plan"), [("past_due", "pro"), ("unpaid", "starter"), ("canceled", "starter"), ("trialing", "pro")]
)
def test_status_decides_the_entitlement(status: str, plan: str) -> None:
    assert sync(subscription([("price_pro_base", 1)], status=status)).entitlement.plan == plan


def test_past_due_fallback_policy() -> None:
    assert sync(subscription([("price_pro_base", 1)], status="past_due"), policy="fallback").entitlement.plan == "starter"


def test_legacy_subscription_shape_has_no_item_period() -> None:
    legacy = json.loads((LEGACY / "customer.subscription.updated.json").read_bytes())["data"]["object"]
    state = sync(legacy)
    assert state.entitlement.plan == "starter"
