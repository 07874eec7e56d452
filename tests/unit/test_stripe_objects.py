"""The readers of Stripe objects, on the example objects Stripe's own API mock serves (current
shapes), and on what a signed event may still carry (fields of the wrong type)."""

from __future__ import annotations

import json
from typing import Any

from tenant_billing.stripe_objects import (
    read_checkout_session,
    read_invoice,
    read_invoice_payment,
    read_item,
    read_subscription,
    read_subscription_with_payment_method,
)
from tenant_billing.stripe_port import PaymentAttempt, SubscriptionItem
from tests.support.template import REPO_ROOT

FIXTURES = REPO_ROOT.parent / "shared" / "stripe-reference" / "fixtures3"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_a_subscription_with_its_items_and_period_on_the_items() -> None:
    raw = fixture("subscription")
    subscription = read_subscription(raw)
    assert (subscription.id, subscription.customer_id, subscription.status) == (raw["id"], raw["customer"], "active")
    assert (subscription.cancel_at_period_end, subscription.cancel_at, subscription.created) == (True, 1234567890, 1234567890)
    assert subscription.latest_invoice_id is None and subscription.latest_invoice is None
    first = raw["items"]["data"][0]
    assert subscription.items[0] == SubscriptionItem(
        first["id"], first["price"]["id"], first["quantity"], first["current_period_end"]
    )
    assert len(subscription.items) == len(raw["items"]["data"])


def test_an_item_alone() -> None:
    raw = fixture("subscription_item")
    assert read_item(raw) == SubscriptionItem(raw["id"], raw["price"]["id"], 1, 976287773)
    assert read_item({"id": "si_1", "price": "price_x"}) == SubscriptionItem("si_1", "price_x", 0, None)


def test_an_expanded_latest_invoice_and_customer() -> None:
    raw = {**fixture("subscription"), "latest_invoice": fixture("invoice"), "customer": {"id": "cus_x", "object": "customer"}}
    subscription = read_subscription(raw)
    assert subscription.customer_id == "cus_x"
    assert subscription.latest_invoice is not None
    assert subscription.latest_invoice_id == subscription.latest_invoice.id == raw["latest_invoice"]["id"]
    assert read_subscription({**raw, "latest_invoice": "in_1"}).latest_invoice_id == "in_1"


def test_a_pending_update_keeps_its_items_and_expiry() -> None:
    raw = {
        **fixture("subscription"),
        "pending_update": {"expires_at": 1770086400, "subscription_items": [{"id": "si_1", "price": {"id": "p"}, "quantity": 3}]},
    }
    pending = read_subscription(raw).pending_update
    assert pending is not None and pending.expires_at == 1770086400
    assert pending.items == (SubscriptionItem("si_1", "p", 3),)
    assert read_subscription({**raw, "pending_update": None}).pending_update is None
    assert read_subscription({**raw, "pending_update": {}}).pending_update is None


def test_an_invoice_links_its_subscription_through_its_parent() -> None:
    raw = fixture("invoice")
    invoice = read_invoice(raw)
    assert (invoice.id, invoice.status, invoice.amount_due, invoice.total, invoice.currency) == (
        raw["id"],
        "draft",
        1000,
        1000,
        "usd",
    )
    assert invoice.customer_id == raw["customer"]
    assert invoice.subscription_id is None  # the example's parent is a quote's
    parent = {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}}
    assert read_invoice({**raw, "parent": parent}).subscription_id == "sub_1"


def test_a_checkout_session() -> None:
    raw = fixture("checkout.session")
    session = read_checkout_session(raw)
    assert (session.id, session.status, session.url, session.mode) == (raw["id"], "open", raw["url"], "payment")
    assert (session.customer_id, session.subscription_id, session.client_reference_id) == (None, None, None)
    named = read_checkout_session({**raw, "metadata": {"organization_id": "org_1"}, "client_reference_id": "org_2"})
    assert (named.organization_id, named.client_reference_id) == ("org_1", "org_2")


def test_an_invoice_payment_gives_its_payment_intent() -> None:
    payment = {
        **fixture("invoice_payment"),
        "payment": {"payment_intent": {"status": "requires_action", "client_secret": "pi_s"}},
    }
    invoice = {**fixture("invoice"), "payments": {"object": "list", "data": [payment]}}
    assert read_invoice_payment(invoice) == PaymentAttempt("requires_action", "pi_s")
    not_expanded = {**invoice, "payments": {"data": [{**payment, "payment": {"payment_intent": "pi_1"}}]}}
    assert read_invoice_payment(not_expanded) is None


def test_fields_of_the_wrong_type_read_as_absent() -> None:
    odd = {"id": 7, "customer": ["cus"], "status": None, "items": {"data": "x"}, "created": "soon", "pending_update": "yes"}
    subscription = read_subscription(odd)
    assert (subscription.id, subscription.customer_id, subscription.items, subscription.created) == ("", "", (), 0)
    assert subscription.pending_update is None
    assert read_invoice({"amount_due": "many", "parent": []}).amount_due == 0


def test_whether_a_subscription_can_be_charged_reads_its_own_and_its_customers_payment_method() -> None:
    def read(own: Any, customer: Any) -> bool | None:
        subscription = {"id": "sub_1", "status": "trialing", "default_payment_method": own, "customer": customer}
        return read_subscription_with_payment_method(subscription).has_payment_method

    no_card = {"id": "cus_1", "invoice_settings": {"default_payment_method": None}, "default_source": None}
    assert read(None, no_card) is False
    assert read("pm_own", no_card) is True
    assert read({"id": "pm_own", "object": "payment_method"}, no_card) is True
    assert read(None, {**no_card, "invoice_settings": {"default_payment_method": "pm_customer"}}) is True
    assert read(None, {**no_card, "default_source": "card_legacy"}) is True
    # The customer not expanded (an id only) says nothing of its card: only the subscription's own counts.
    assert read(None, "cus_1") is False
