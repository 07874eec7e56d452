"""The operators' function through its real handler: show an organization beside Stripe, re-sync it,
replay one event (once), list the subscriptions that need a person; bad commands change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import billing_admin_handler
import checkout_handler
from tests.conftest import FakeLambdaContext
from tests.integration.test_one_subscription import subscribe_behind_our_back
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, status_of, subscribe, webhook_status

pytestmark = pytest.mark.usefixtures("billing")
Items = Callable[[], list[dict[str, Any]]]


def admin(**command: Any) -> dict[str, Any]:
    answer: dict[str, Any] = billing_admin_handler.lambda_handler(command, FakeLambdaContext())
    return answer


def result(**command: Any) -> Any:
    answer = admin(**command)
    assert "result" in answer, answer
    return answer["result"]


def test_show_puts_the_stored_billing_beside_stripes(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    shown = result(command="show", orgId="org_demo")
    assert shown["customer_id"] == subscribed.customer_id
    assert shown["stored"]["subscription"]["subscription_id"] == subscribed.subscription_id
    assert shown["stored"]["entitlement"]["plan"] == "pro"
    (in_stripe,) = shown["stripe"]["subscriptions"]
    assert (in_stripe["subscription_id"], in_stripe["status"]) == (subscribed.subscription_id, "active")
    assert shown["differences"] == []


def test_a_change_the_webhook_never_delivered_shows_and_a_resync_repairs_it(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    stripe_fake.cancel_subscription(subscribed.subscription_id)  # its events are lost
    (difference,) = result(command="show", orgId="org_demo")["differences"]
    assert "'active' in the table but 'canceled' in Stripe" in difference
    assert status_of()["subscription"]["status"] == "active"
    repaired = result(command="resync", orgId="org_demo")
    assert repaired["outcome"] == "written"
    assert repaired["subscription"]["status"] == "canceled"
    assert status_of()["subscription"]["status"] == "canceled"
    assert repaired["entitlement"]["plan"] == "starter"  # the fallback
    assert result(command="show", orgId="org_demo")["differences"] == []


def test_replay_processes_a_lost_event_once(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    (deleted,) = [
        event for event in stripe_fake.cancel_subscription(subscribed.subscription_id) if event["type"].endswith(".deleted")
    ]
    first = result(command="replay", eventId=deleted["id"])
    assert (first["event_id"], first["type"], first["outcome"]) == (deleted["id"], "customer.subscription.deleted", "synced")
    assert status_of()["subscription"]["status"] == "canceled"
    assert result(command="replay", eventId=deleted["id"])["outcome"] == "duplicate"
    # The webhook's own delivery of it, arriving late, changes nothing either.
    assert deliver(deleted)[1]["outcome"] == "duplicate"


def test_replay_refuses_what_is_not_a_stripe_event_of_this_account(table_items: Items) -> None:
    before = table_items()
    assert admin(command="replay", eventId="evt_doesnotexist")["error"]["code"] == "event_not_found"
    assert admin(command="replay", eventId="sub_123")["error"] == {
        "code": "invalid_field",
        "message": "eventId: a Stripe event id (evt_...)",
        "field": "eventId",
        "retryable": False,
    }
    assert table_items() == before


def test_problems_lists_duplicates_and_unknown_prices(stripe_fake: FakeStripe) -> None:
    pro = subscribe(stripe_fake, org_id="org_dup", plan="pro", sites=3, deliver_with=webhook_status)
    for event in subscribe_behind_our_back(stripe_fake, pro.customer_id, "price_enterprise_base"):
        assert deliver(event)[0] == 200
    # An organization that started Checkout (its customer is linked) but was subscribed by an old
    # integration, on a price the catalog does not have.
    status, _ = call(
        checkout_handler, api_event("POST", "/billing/checkout", org_id="org_odd", body={"plan": "pro", "siteQuantity": 1})
    )
    assert status == 200
    odd_customer = next(s["customer"] for s in stripe_fake.checkout_sessions.values() if s["client_reference_id"] == "org_odd")
    stripe_fake.add_price("price_legacy_plan", product_name="Legacy", unit_amount=4900)
    for event in subscribe_behind_our_back(stripe_fake, odd_customer, "price_legacy_plan"):
        assert deliver(event)[0] == 200
    subscribe(stripe_fake, org_id="org_fine", plan="pro", sites=1, deliver_with=webhook_status)
    problems = {problem["org_id"]: problem for problem in result(command="problems")}
    assert set(problems) == {"org_dup", "org_odd"}
    assert problems["org_dup"]["problems"] == ["duplicate"] and len(problems["org_dup"]["other_live_ids"]) == 1
    assert problems["org_odd"]["problems"] == ["unknown_price"]


@pytest.mark.parametrize(
    ("command", "code", "field"),
    [
        ({}, "missing_field", "command"),
        ({"command": "drop_table"}, "invalid_field", "command"),
        ({"command": "show"}, "missing_field", "orgId"),
        ({"command": "resync", "orgId": "org demo; --"}, "invalid_field", "orgId"),
        ({"command": "show", "orgId": 7}, "invalid_field", "orgId"),
        ({"command": "show", "orgId": "org_demo", "apiKey": "sk_live_x"}, "unknown_field", "apiKey"),
        ({"command": "resync", "orgId": "org_nobody"}, "not_linked", "orgId"),
    ],
)
def test_a_bad_command_is_refused_with_its_code_and_field_and_changes_nothing(
    stripe_fake: FakeStripe, table_items: Items, command: dict[str, Any], code: str, field: str
) -> None:
    subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    before, requests = table_items(), len(stripe_fake.requests)
    error = admin(**command)["error"]
    assert (error["code"], error["field"], error["retryable"]) == (code, field, False)
    assert table_items() == before
    assert len(stripe_fake.requests) == requests


def test_stripe_down_is_a_retryable_error_and_writes_nothing(stripe_fake: FakeStripe, table_items: Items) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    stripe_fake.cancel_subscription(subscribed.subscription_id)
    before = table_items()
    stripe_fake.fail_next(10, status=500)
    error = admin(command="resync", orgId="org_demo")["error"]
    assert (error["code"], error["retryable"]) == ("stripe_unavailable", True)
    assert table_items() == before


def test_replay_of_a_handled_event_it_cannot_read_is_an_error_not_a_success(stripe_fake: FakeStripe, table_items: Items) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    # The Events API renders an event in the API version of its creation: before 2025-03-31.basil an
    # invoice named its subscription at the top level, not under parent.subscription_details.
    invoice = {
        "id": "in_legacy",
        "object": "invoice",
        "customer": subscribed.customer_id,
        "subscription": subscribed.subscription_id,
    }
    legacy = stripe_fake._emit("invoice.paid", invoice)
    before = table_items()
    error = admin(command="replay", eventId=legacy["id"])["error"]
    assert (error["code"], error["field"], error["retryable"]) == ("event_unreadable", "eventId", False)
    assert "resync its organization" in error["message"]
    assert table_items() == before
