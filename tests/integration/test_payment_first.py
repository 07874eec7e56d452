"""Payment first: a plan change grants nothing until its invoice is paid. Declined cards, 3-D
Secure, unpaid invoices: each attack through the real handlers and the webhook."""

from __future__ import annotations

from typing import Any

import pytest

import subscription_handler
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, status_of, subscribe, webhook_status

pytestmark = pytest.mark.usefixtures("billing")
DECLINES_LATER = "4000000000000341"  # pays in Checkout, every later charge declined
ALWAYS_AUTHENTICATE = "4000002760003184"  # every charge needs 3-D Secure


def change(body: dict[str, Any]) -> tuple[int, Any]:
    return call(subscription_handler, api_event("POST", "/billing/subscription", body=body))


def subscribed(fake: FakeStripe, *, card: str | None = None) -> tuple[str, str]:
    subscription_id = subscribe(fake, plan="pro", sites=3, deliver_with=webhook_status).subscription_id
    customer_id = fake.subscriptions[subscription_id]["customer"]
    if card:
        fake.set_default_card(customer_id, card)
    return subscription_id, customer_id


def items_of(fake: FakeStripe, subscription_id: str) -> list[tuple[str, int]]:
    return sorted((item["price"]["id"], item["quantity"]) for item in fake.subscriptions[subscription_id]["items"]["data"])


def deliver_all(fake: FakeStripe) -> None:
    for stripe_event in fake.events:
        assert deliver(stripe_event)[0] == 200


def test_a_declined_upgrade_grants_nothing(stripe_fake: FakeStripe) -> None:
    # The attack: Enterprise with 100 sites on a declined card used to be granted at once
    # (Stripe's default allow_incomplete applies it; past_due keeps the plan).
    subscription_id, _ = subscribed(stripe_fake, card=DECLINES_LATER)
    status, body = change({"plan": "enterprise", "siteQuantity": 100})
    assert (status, body["error"]["code"]) == (402, "payment_failed")
    assert body["error"]["hostedInvoiceUrl"]
    (update,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == f"/v1/subscriptions/{subscription_id}"]
    assert update.params["payment_behavior"] == "pending_if_incomplete"
    assert items_of(stripe_fake, subscription_id) == [("price_pro_base", 1), ("price_pro_site", 3)]
    deliver_all(stripe_fake)  # every event Stripe sent, in order, changes nothing
    shown = status_of()
    assert (shown["subscription"]["plan"], shown["subscription"]["status"], shown["subscription"]["siteQuantity"]) == (
        "pro",
        "active",
        3,
    )
    assert shown["subscription"]["pendingChange"]["plan"] == "enterprise"
    assert shown["entitlement"]["limits"]["sites"] == 5


def test_an_upgrade_needing_3d_secure_applies_once_authenticated(stripe_fake: FakeStripe) -> None:
    subscription_id, _ = subscribed(stripe_fake, card=ALWAYS_AUTHENTICATE)
    status, body = change({"plan": "enterprise", "siteQuantity": 4})
    assert (status, body["error"]["code"]) == (402, "payment_requires_action")
    assert body["error"]["hostedInvoiceUrl"] and body["error"]["clientSecret"].startswith("pi_")
    assert status_of()["entitlement"]["limits"]["sites"] == 5  # nothing granted yet
    invoice_id = stripe_fake.subscriptions[subscription_id]["latest_invoice"]
    intent = stripe_fake.invoice_payment_intent(invoice_id)
    assert intent is not None
    stripe_fake.authenticate_payment(intent["id"])
    deliver_all(stripe_fake)
    shown = status_of()
    assert (shown["subscription"]["plan"], shown["subscription"]["pendingChange"]) == ("enterprise", None)
    assert shown["entitlement"]["limits"]["sites"] == 9
    assert stripe_fake.invoices[invoice_id]["status"] == "paid"


def test_a_failed_challenge_leaves_the_plan(stripe_fake: FakeStripe) -> None:
    subscription_id, _ = subscribed(stripe_fake, card=ALWAYS_AUTHENTICATE)
    assert change({"plan": "enterprise", "siteQuantity": 4})[0] == 402
    intent = stripe_fake.invoice_payment_intent(stripe_fake.subscriptions[subscription_id]["latest_invoice"])
    assert intent is not None
    stripe_fake.authenticate_payment(intent["id"], succeed=False)
    deliver_all(stripe_fake)
    assert status_of()["entitlement"]["limits"]["sites"] == 5


def test_a_declined_upgrade_paid_later_with_another_card_applies(stripe_fake: FakeStripe) -> None:
    subscription_id, _ = subscribed(stripe_fake, card=DECLINES_LATER)
    assert change({"plan": "enterprise", "siteQuantity": 4})[0] == 402
    stripe_fake.pay_invoice(stripe_fake.subscriptions[subscription_id]["latest_invoice"], "4242424242424242")
    deliver_all(stripe_fake)
    assert status_of()["subscription"]["plan"] == "enterprise"


def test_no_second_change_while_one_waits_for_payment(stripe_fake: FakeStripe) -> None:
    subscribed(stripe_fake, card=DECLINES_LATER)
    assert change({"plan": "enterprise", "siteQuantity": 4})[0] == 402
    stripe_fake.reset_requests()
    status, body = change({"plan": "enterprise", "siteQuantity": 5})
    assert (status, body["error"]["code"]) == (409, "payment_outstanding")
    assert body["error"]["hostedInvoiceUrl"]
    assert all(r.method == "GET" for r in stripe_fake.requests)
    open_invoices = [i for i in stripe_fake.invoices.values() if i["status"] == "open"]
    assert len(open_invoices) == 1


@pytest.mark.parametrize("route", ["change", "preview"])
def test_a_past_due_subscription_must_pay_first(stripe_fake: FakeStripe, route: str) -> None:
    subscription_id, _ = subscribed(stripe_fake)
    for stripe_event in stripe_fake.fail_payment(subscription_id):
        assert deliver(stripe_event)[0] == 200
    stripe_fake.reset_requests()
    if route == "change":
        status, body = change({"plan": "enterprise", "siteQuantity": 4})
    else:
        event = api_event("GET", "/billing/subscription/preview")
        event["queryStringParameters"] = {"plan": "enterprise", "siteQuantity": "4"}
        status, body = call(subscription_handler, event)
    assert (status, body["error"]["code"]) == (409, "payment_outstanding")
    assert (
        body["error"]["hostedInvoiceUrl"]
        == stripe_fake.invoices[stripe_fake.subscriptions[subscription_id]["latest_invoice"]]["hosted_invoice_url"]
    )
    assert all(r.method == "GET" for r in stripe_fake.requests)


def test_a_paid_upgrade_applies_at_once(stripe_fake: FakeStripe) -> None:
    subscription_id, _ = subscribed(stripe_fake)
    status, body = change({"plan": "enterprise", "siteQuantity": 4})
    assert status == 200, body
    assert (body["subscription"]["plan"], body["subscription"]["pendingChange"]) == ("enterprise", None)
    assert items_of(stripe_fake, subscription_id) == [("price_enterprise_base", 1), ("price_enterprise_site", 4)]


def test_a_reload_during_3d_secure_still_gets_what_finishes_it(stripe_fake: FakeStripe) -> None:
    subscribed(stripe_fake, card=ALWAYS_AUTHENTICATE)
    first = change({"plan": "enterprise", "siteQuantity": 4})[1]["error"]
    status, body = change({"plan": "enterprise", "siteQuantity": 4})
    assert (status, body["error"]["code"]) == (409, "payment_outstanding")
    assert (body["error"]["hostedInvoiceUrl"], body["error"]["clientSecret"]) == (
        first["hostedInvoiceUrl"],
        first["clientSecret"],
    )


def test_the_action_required_webhook_is_handled(stripe_fake: FakeStripe) -> None:
    subscribed(stripe_fake, card=ALWAYS_AUTHENTICATE)
    assert change({"plan": "enterprise", "siteQuantity": 4})[0] == 402
    (event,) = stripe_fake.events_of_type("invoice.payment_action_required")[-1:]
    status, body = deliver(event)
    assert (status, body["outcome"]) in ((200, "synced"), (200, "superseded"))


def test_an_upgrade_that_drops_the_sites_can_wait_for_3d_secure(stripe_fake: FakeStripe) -> None:
    # Pro with 3 sites to bare Enterprise costs more. A deletion cannot wait in a pending update,
    # so the site item is kept at quantity 0 on Enterprise's price, and the change waits like any.
    subscription_id, _ = subscribed(stripe_fake, card=ALWAYS_AUTHENTICATE)
    status, body = change({"plan": "enterprise", "siteQuantity": 0})
    assert (status, body["error"]["code"]) == (402, "payment_requires_action")
    assert body["error"]["hostedInvoiceUrl"] and body["error"]["clientSecret"]
    assert items_of(stripe_fake, subscription_id) == [("price_pro_base", 1), ("price_pro_site", 3)]
    intent = stripe_fake.invoice_payment_intent(stripe_fake.subscriptions[subscription_id]["latest_invoice"])
    assert intent is not None
    stripe_fake.authenticate_payment(intent["id"])
    deliver_all(stripe_fake)
    assert items_of(stripe_fake, subscription_id) == [("price_enterprise_base", 1), ("price_enterprise_site", 0)]
    shown = status_of()
    assert (shown["subscription"]["plan"], shown["subscription"]["siteQuantity"]) == ("enterprise", 0)
    assert shown["entitlement"]["limits"]["sites"] == 5


def test_a_change_that_deletes_an_item_is_paid_at_once_or_not_made(stripe_fake: FakeStripe) -> None:
    # Dropping the add-on on the same plan, or moving to a plan without one, deletes the item:
    # sent with error_if_incomplete (a credit here: nothing to pay, so it is made at once).
    subscription_id, _ = subscribed(stripe_fake, card=DECLINES_LATER)
    status, body = change({"plan": "starter", "siteQuantity": 0})
    assert status == 200, body
    (update,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == f"/v1/subscriptions/{subscription_id}"]
    assert update.params["payment_behavior"] == "error_if_incomplete"
    assert items_of(stripe_fake, subscription_id) == [("price_starter_base", 1)]
