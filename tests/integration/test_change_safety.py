"""Plan changes as an attacker and as a new user would try them: server-issued quotes, roles,
double clicks, scheduled cancellations however set, clocks seconds apart, and reconciliation of
what is stored. Each attack goes through the real handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import checkout_handler
import reconcile_handler
import subscription_handler
from tests.conftest import TABLE_NAME, FakeLambdaContext
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.api_events import api_event
from tests.support.aws_calls import atomic_dynamodb_requests
from tests.support.flows import call, deliver, status_of, subscribe, webhook_status
from tests.support.queue import drain, return_failed_now

pytestmark = pytest.mark.usefixtures("billing")


def request(method: str, path: str, *, body: Any = None, role: str = "admin", org_id: str = "org_demo", query: str = "") -> Any:
    event = api_event(method, path, org_id=org_id, role=role, body=body)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return call(subscription_handler, event)


def preview(query: str = "plan=enterprise&siteQuantity=4", org_id: str = "org_demo") -> Any:
    status, body = request("GET", "/billing/subscription/preview", query=query, org_id=org_id)
    assert status == 200, body
    return body


def stripe_writes(fake: FakeStripe) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method in ("POST", "DELETE")]


# --- server-issued quotes ---------------------------------------------------------------------------


def test_the_preview_issues_a_quote_the_change_names(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    quote = preview()
    assert quote["previewId"] and quote["expiresAt"]
    status, body = request(
        "POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 4, "previewId": quote["previewId"]}
    )
    assert (status, body["subscription"]["plan"]) == (200, "enterprise")
    # Spent: the subscription it priced has changed, so it cannot buy anything again.
    status, body = request(
        "POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 3, "previewId": quote["previewId"]}
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_preview", "previewId")


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("other plan", {"plan": "pro", "siteQuantity": 4}),
        ("other quantity", {"plan": "enterprise", "siteQuantity": 40}),
        ("unknown id", {"plan": "enterprise", "siteQuantity": 4, "previewId": "A" * 22}),
        ("malformed id", {"plan": "enterprise", "siteQuantity": 4, "previewId": "../../QUOTE#x"}),
    ],
)
def test_a_mismatching_or_unknown_preview_is_refused_before_stripe(
    stripe_fake: FakeStripe, case: str, change: dict[str, Any]
) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    quote = preview()
    stripe_fake.reset_requests()
    body = {"previewId": quote["previewId"], **change}
    status, answer = request("POST", "/billing/subscription", body=body)
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_preview", "previewId"), case
    assert stripe_fake.requests == []


def test_another_organizations_preview_is_refused(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    subscribe(stripe_fake, org_id="org_other", sites=3, deliver_with=webhook_status)
    theirs = preview(org_id="org_other")
    stripe_fake.reset_requests()
    body = {"plan": "enterprise", "siteQuantity": 4, "previewId": theirs["previewId"]}
    status, answer = request("POST", "/billing/subscription", body=body)
    assert (status, answer["error"]["code"]) == (400, "invalid_preview")
    assert stripe_fake.requests == []


def test_an_expired_preview_is_refused(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    quote = preview()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 601)
    stripe_fake.reset_requests()
    body = {"plan": "enterprise", "siteQuantity": 4, "previewId": quote["previewId"]}
    status, answer = request("POST", "/billing/subscription", body=body)
    assert (status, answer["error"]["code"]) == (400, "invalid_preview")
    assert stripe_fake.requests == []


def test_a_preview_of_a_subscription_changed_since_is_refused_and_nothing_changes(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    quote = preview()
    # Changed elsewhere (the portal) and not yet delivered: the quote no longer prices this subscription.
    stripe_fake.update_subscription(subscription_id, items=[{"price": "price_pro_base", "quantity": 1}])
    stripe_fake.reset_requests()
    body = {"plan": "enterprise", "siteQuantity": 4, "previewId": quote["previewId"]}
    status, answer = request("POST", "/billing/subscription", body=body)
    assert (status, answer["error"]["code"]) == (400, "invalid_preview")
    assert stripe_writes(stripe_fake) == []


def test_the_attack_from_the_issue_mints_no_credit(stripe_fake: FakeStripe) -> None:
    # An upgrade dated +60 s and a downgrade dated -3500 s: client dates are not taken at all.
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    stripe_fake.reset_requests()
    now = int(time.time())
    for body in (
        {"plan": "enterprise", "siteQuantity": 4, "prorationDate": now + 60},
        {"plan": "pro", "prorationDate": now - 3500},
    ):
        status, answer = request("POST", "/billing/subscription", body=body)
        assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "unknown_field", "prorationDate")
    assert stripe_writes(stripe_fake) == []


# --- one validation code per field ----------------------------------------------------------------


def test_site_quantity_out_of_range_has_one_code_everywhere(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    answers = [
        request("GET", "/billing/subscription/preview", query="plan=pro&siteQuantity=-1"),
        request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": -1}),
        call(
            checkout_handler, api_event("POST", "/billing/checkout", org_id="org_new", body={"plan": "pro", "siteQuantity": -1})
        ),
    ]
    assert {(status, body["error"]["code"], body["error"]["field"]) for status, body in answers} == {
        (400, "invalid_site_quantity", "siteQuantity")
    }


# --- roles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["not admin", "read-only admin", "admin viewer"])
def test_a_role_that_only_contains_admin_is_not_a_billing_admin(stripe_fake: FakeStripe, role: str) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    stripe_fake.reset_requests()
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise"}, role=role)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert stripe_fake.requests == []


# --- double clicks -----------------------------------------------------------------------------------


def test_two_identical_changes_in_flight_charge_once_and_answer_clearly(stripe_fake: FakeStripe, capsys: Any) -> None:
    subscription_id = subscribe(stripe_fake, sites=0, deliver_with=webhook_status).subscription_id
    barrier = threading.Barrier(2)
    results: list[tuple[int, Any]] = []

    def press() -> None:
        barrier.wait()
        results.append(request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 2}))

    threads = [threading.Thread(target=press) for _ in range(2)]
    with atomic_dynamodb_requests():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    codes = sorted((status, body.get("error", {}).get("code")) for status, body in results)
    assert codes in ([(200, None), (409, "change_in_progress")], [(200, None), (400, "no_change")]), codes
    site_items = [i for i in stripe_fake.subscriptions[subscription_id]["items"]["data"] if i["price"]["id"] == "price_pro_site"]
    assert [item["quantity"] for item in site_items] == [2]
    charged = [invoice for invoice in stripe_fake.invoices.values() if invoice["billing_reason"] == "subscription_update"]
    assert len(charged) == 1
    out = capsys.readouterr().out
    assert "billing_misconfigured" not in out and "StripeMisconfigured" not in out


def test_a_change_lock_left_by_a_crashed_change_lapses(stripe_fake: FakeStripe, dynamodb: Any) -> None:
    subscribe(stripe_fake, sites=0, deliver_with=webhook_status)
    lock = {"pk": {"S": "ORG#org_demo"}, "sk": {"S": "CHANGE_LOCK"}, "owner": {"S": "dead"}, "until_ms": {"N": "1"}}
    dynamodb.put_item(TableName=TABLE_NAME, Item=lock)
    assert request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 2})[0] == 200
    remaining = dynamodb.get_item(TableName=TABLE_NAME, Key={"pk": lock["pk"], "sk": lock["sk"]})
    assert "Item" not in remaining  # released


# --- cancel_at however it was set ------------------------------------------------------------------


def test_a_cancel_at_set_elsewhere_shows_and_resumes(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    client = make_stripe_client(stripe_fake)
    cancel_at = stripe_fake.now() + 10 * 86400
    # Set in the Dashboard without proration (a prorated early end credits the rest of the period).
    client.v1.subscriptions.update(subscription_id, params={"cancel_at": cancel_at, "proration_behavior": "none"})
    for event in stripe_fake.events_of_type("customer.subscription.updated")[-1:]:
        assert deliver(event)[0] == 200
    subscription = status_of()["subscription"]
    assert subscription["cancelAt"] is not None
    status, body = request("POST", "/billing/subscription/resume", body={})
    assert status == 200, body
    stripe_state = stripe_fake.subscriptions[subscription_id]
    assert (stripe_state["cancel_at"], stripe_state["cancel_at_period_end"]) == (None, False)
    assert (body["subscription"]["cancelAt"], body["subscription"]["cancelAtPeriodEnd"]) == (None, False)


def test_cancel_at_period_end_shows_its_date_and_resumes(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    status, body = request("POST", "/billing/subscription/cancel", body={})
    assert status == 200 and body["subscription"]["cancelAtPeriodEnd"] is True
    status, body = request("POST", "/billing/subscription/resume", body={})
    stripe_state = stripe_fake.subscriptions[subscription_id]
    assert (stripe_state["cancel_at"], stripe_state["cancel_at_period_end"]) == (None, False)
    assert (body["subscription"]["cancelAt"], body["subscription"]["cancelAtPeriodEnd"]) == (None, False)


# --- order without trusting clocks --------------------------------------------------------------


@pytest.mark.parametrize("skew_seconds", [5, -5])
def test_a_skewed_clock_never_leaves_the_table_stale(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, skew_seconds: int
) -> None:
    subscribed = subscribe(stripe_fake, sites=3)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    real = time.time_ns

    def on_clock(offset: int, action: Callable[[], Any]) -> Any:
        monkeypatch.setattr(time, "time_ns", lambda: real() + offset * 1_000_000_000)
        try:
            return action()
        finally:
            monkeypatch.setattr(time, "time_ns", real)

    # One instance (its clock `skew_seconds` off, ahead or behind) and one on time; the later
    # read must end in the table whichever clock stamped which read.
    ahead, on_time = (skew_seconds, 0) if skew_seconds > 0 else (0, skew_seconds)
    assert on_clock(ahead, lambda: deliver(events[-1]))[0] == 200
    change = stripe_fake.update_subscription(subscription_id, cancel_at_period_end=True)
    # The newer read carries the older stamp: refused by the guard, it disagrees with what is
    # stored, so the event is not done: its message returns to the queue (before: "superseded",
    # the table left stale).
    assert on_clock(on_time, lambda: deliver(change[-1])) == (200, {"received": True, "outcome": "failed"})
    assert status_of()["subscription"]["cancelAtPeriodEnd"] is False
    # The queue's retry, after the backoff: by then every clock is past the stale stamp.
    assert return_failed_now() == 1
    assert on_clock(6, drain).outcome_of(change[-1]["id"]) == "synced"
    assert status_of()["subscription"]["cancelAtPeriodEnd"] is True


# --- reconciliation compares what it stores ---------------------------------------------------


def test_reconciliation_repairs_an_entitlement_the_policy_no_longer_grants(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription_id = subscribe(stripe_fake, plan="enterprise", sites=4, deliver_with=webhook_status).subscription_id
    for event in stripe_fake.fail_payment(subscription_id):
        assert deliver(event)[0] == 200
    assert status_of()["entitlement"]["limits"]["sites"] == 9  # past_due keeps its plan by default
    from tests.conftest import reset_caches

    monkeypatch.setenv("PAST_DUE_ENTITLEMENTS", "fallback")
    reset_caches()
    result = reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
    assert result["repaired"] == 1
    status = status_of()
    assert (status["subscription"]["status"], status["entitlement"]["limits"]["sites"]) == ("past_due", 1)
    assert reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))["repaired"] == 0


# --- a quote buys one change, and a credit is never backdated ------------------------------------


def balance(fake: FakeStripe, subscription_id: str) -> int:
    return int(fake.customers[fake.subscriptions[subscription_id]["customer"]]["balance"])


def test_a_downgrade_quote_cannot_be_replayed_after_an_upgrade(stripe_fake: FakeStripe) -> None:
    # Enterprise -> Pro and back keeps the item ids: the same items again, but not the same quote.
    subscribe(stripe_fake, plan="enterprise", sites=4, deliver_with=webhook_status)
    quote = preview("plan=pro&siteQuantity=4")
    body = {"plan": "pro", "siteQuantity": 4, "previewId": quote["previewId"]}
    assert request("POST", "/billing/subscription", body=body)[0] == 200
    assert request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 4})[0] == 200
    stripe_fake.advance_clock(300)
    status, answer = request("POST", "/billing/subscription", body=body)
    assert (status, answer["error"]["code"]) == (400, "invalid_preview")


def test_a_quote_redeemed_late_does_not_backdate_a_credit(stripe_fake: FakeStripe) -> None:
    # Preview a downgrade, keep Enterprise for ~10 minutes, then redeem and upgrade again: each
    # cycle used to credit the minutes of Enterprise the customer had.
    subscription_id = subscribe(stripe_fake, plan="enterprise", sites=4, deliver_with=webhook_status).subscription_id
    start = balance(stripe_fake, subscription_id)
    for _ in range(3):
        quote = preview("plan=pro&siteQuantity=4")
        stripe_fake.advance_clock(590)
        body = {"plan": "pro", "siteQuantity": 4, "previewId": quote["previewId"]}
        assert request("POST", "/billing/subscription", body=body)[0] == 200
        assert request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 4})[0] == 200
    updates = [i for i in stripe_fake.invoices.values() if i["billing_reason"] == "subscription_update"]
    credit_gained = start - balance(stripe_fake, subscription_id)
    assert sum(invoice["amount_paid"] for invoice in updates) >= credit_gained
    downgrades = [
        r for r in stripe_fake.requests if r.method == "POST" and r.params.get("items") and "proration_date" in r.params
    ]
    assert downgrades == []  # credits are prorated at the moment of the change


def test_resume_asks_stripe_when_the_cancellations_webhook_is_late(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    client = make_stripe_client(stripe_fake)
    client.v1.subscriptions.update(subscription_id, params={"cancel_at": "max_period_end", "proration_behavior": "none"})
    # Not delivered: the table still shows nothing scheduled.
    status, body = request("POST", "/billing/subscription/resume", body={})
    assert status == 200, body
    assert (stripe_fake.subscriptions[subscription_id]["cancel_at"], body["subscription"]["cancelAt"]) == (None, None)
