"""The Stripe webhook end to end: the real handler, moto, and the Stripe fake's own events."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest

import checkout_handler
import stripe_webhook_handler
from tenant_billing.catalog import Trial
from tests.stripe_fake import FakeStripe
from tests.support.aws_calls import atomic_dynamodb_requests, count_dynamodb_calls
from tests.support.flows import WEBHOOK_SECRET, call, deliver, ingest, status_of, subscribe
from tests.support.queue import drain, return_failed_now
from tests.support.webhook_events import delivery_body, function_url_event, signed_delivery

Items = Callable[[], list[dict[str, Any]]]
pytestmark = pytest.mark.usefixtures("billing")


def sub_item_period_end(fake: FakeStripe, subscription_id: str) -> str:
    end = max(item["current_period_end"] for item in fake.subscriptions[subscription_id]["items"]["data"])
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))


def test_checkout_then_events_show_the_paid_plan(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    assert status_of()["subscription"] is None
    for stripe_event in events:
        status, body = deliver(stripe_event)
        assert status == 200, body
    state = status_of()
    assert state["subscription"] == {
        "plan": "pro",
        "status": "active",
        "siteQuantity": 3,
        "interval": "month",
        "planVersion": 1,
        "trialEnd": None,
        "currentPeriodEnd": sub_item_period_end(stripe_fake, subscription_id),
        "cancelAtPeriodEnd": False,
        "cancelAt": None,
        "pendingChange": None,
    }
    assert state["entitlement"]["limits"] == {"sites": 5, "pages_per_site": 100, "storage_gb": 10}
    assert "analytics" in state["entitlement"]["features"]


@pytest.mark.parametrize("first", ["checkout.session.completed", "invoice.paid", "customer.subscription.created"])
def test_any_single_event_is_enough_to_grant_access_at_once(stripe_fake: FakeStripe, first: str) -> None:
    events = subscribe(stripe_fake).events
    (stripe_event,) = [event for event in events if event["type"] == first]
    assert deliver(stripe_event) == (200, {"received": True, "outcome": "synced"})
    assert status_of()["entitlement"]["limits"]["sites"] == 5


def test_a_duplicate_costs_one_dynamodb_call_and_no_stripe_call(stripe_fake: FakeStripe) -> None:
    events = subscribe(stripe_fake).events
    assert deliver(events[0])[1]["outcome"] == "synced"
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        assert deliver(events[0]) == (200, {"received": True, "outcome": "duplicate"})
    assert calls == {"BatchGetItem": 1}
    assert stripe_fake.requests == []


def test_an_event_costs_one_stripe_read_and_two_dynamodb_calls(stripe_fake: FakeStripe) -> None:
    events = subscribe(stripe_fake).events
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        assert deliver(events[-1])[1]["outcome"] == "synced"
    assert calls == {"BatchGetItem": 1, "TransactWriteItems": 1}
    # One read: the customer's subscriptions, all of them (see org_sync).
    assert [(request.method, request.path) for request in stripe_fake.requests] == [("GET", "/v1/subscriptions")]


def test_a_stale_payload_cannot_regress_state(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    failed = stripe_fake.fail_payment(subscription_id)
    paid = stripe_fake.pay_latest_invoice(subscription_id)
    for stripe_event in paid + events:
        deliver(stripe_event)
    # The payment_failed payload says past_due, but Stripe now says active: Stripe wins.
    (payment_failed,) = [event for event in failed if event["type"] == "invoice.payment_failed"]
    assert deliver(payment_failed)[0] == 200
    assert status_of()["subscription"]["status"] == "active"


def test_payment_failed_then_paid(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    deliver(events[0])
    for stripe_event in stripe_fake.fail_payment(subscription_id):
        deliver(stripe_event)
    state = status_of()
    assert state["subscription"]["status"] == "past_due"
    assert state["entitlement"]["limits"]["sites"] == 5  # past_due keeps the plan by default
    (paid,) = [event for event in stripe_fake.pay_latest_invoice(subscription_id) if event["type"] == "invoice.paid"]
    assert deliver(paid)[1]["outcome"] == "synced"
    assert status_of()["subscription"]["status"] == "active"


def test_past_due_can_fall_back(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAST_DUE_ENTITLEMENTS", "fallback")
    subscription_id = subscribe(stripe_fake).subscription_id
    (failed,) = [event for event in stripe_fake.fail_payment(subscription_id) if event["type"] == "invoice.payment_failed"]
    deliver(failed)
    state = status_of()
    assert (state["subscription"]["status"], state["entitlement"]["limits"]["sites"]) == ("past_due", 1)


def test_deleted_shows_canceled_and_the_fallback(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    for stripe_event in events:
        deliver(stripe_event)
    (deleted,) = stripe_fake.cancel_subscription(subscription_id)
    assert deleted["type"] == "customer.subscription.deleted"
    assert deliver(deleted)[1]["outcome"] == "synced"
    state = status_of()
    assert state["subscription"]["status"] == "canceled"
    assert state["entitlement"] == {
        "features": ["page_builder", "media_library", "seo_toolkit"],
        "limits": {"sites": 1, "pages_per_site": 25, "storage_gb": 2},
    }


def test_cancel_at_period_end_is_visible(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake).subscription_id
    (updated,) = stripe_fake.update_subscription(subscription_id, cancel_at_period_end=True)
    deliver(updated)
    state = status_of()
    assert state["subscription"]["cancelAtPeriodEnd"] is True
    assert state["subscription"]["status"] == "active"


def test_trial_will_end_is_recorded_without_a_state_change(
    stripe_fake: FakeStripe, table_items: Items, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenant_billing.catalog import get_catalog

    catalog = get_catalog()
    with_trial = replace(catalog, plans={**catalog.plans, "pro": replace(catalog.plans["pro"], trial=Trial(days=14))})
    monkeypatch.setattr(checkout_handler, "get_catalog", lambda: with_trial)
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    for stripe_event in events:
        deliver(stripe_event)
    assert status_of()["subscription"]["status"] == "trialing"
    before = [item for item in table_items() if item["sk"]["S"] in ("SUBSCRIPTION", "ENTITLEMENT")]
    (trial,) = stripe_fake.trial_will_end(subscription_id)
    assert deliver(trial)[1]["outcome"] == "recorded"
    assert deliver(trial)[1]["outcome"] == "duplicate"
    assert [item for item in table_items() if item["sk"]["S"] in ("SUBSCRIPTION", "ENTITLEMENT")] == before


def test_paused_and_resumed(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake).subscription_id
    for stripe_event in stripe_fake.pause(subscription_id):
        deliver(stripe_event)
    assert (status_of()["subscription"]["status"], status_of()["entitlement"]["limits"]["sites"]) == ("paused", 1)
    for stripe_event in stripe_fake.resume(subscription_id):
        deliver(stripe_event)
    assert (status_of()["subscription"]["status"], status_of()["entitlement"]["limits"]["sites"]) == ("active", 5)


def test_an_event_for_a_customer_that_is_not_ours(stripe_fake: FakeStripe, table_items: Items) -> None:
    events = subscribe(stripe_fake).events
    before = table_items()
    foreign = json.loads(json.dumps(events[0]))
    foreign["id"] = "evt_foreign_1"
    foreign["data"]["object"]["customer"] = "cus_someone_else"
    stripe_fake.reset_requests()
    assert deliver(foreign) == (200, {"received": True, "outcome": "not_ours"})
    assert table_items() == before
    assert stripe_fake.requests == []


def test_a_checkout_naming_another_org_is_not_trusted(stripe_fake: FakeStripe, table_items: Items) -> None:
    events = subscribe(stripe_fake).events
    (completed,) = [event for event in events if event["type"] == "checkout.session.completed"]
    completed["data"]["object"]["client_reference_id"] = "org_victim"
    before = table_items()
    assert deliver(completed)[1]["outcome"] == "not_ours"
    assert table_items() == before


@pytest.mark.parametrize("event_type", ["customer.created", "charge.succeeded", "payment_intent.created"])
def test_other_types_are_ignored(event_type: str, table_items: Items) -> None:
    stripe_event = {
        "id": "evt_other",
        "object": "event",
        "type": event_type,
        "data": {"object": {"id": "x", "customer": "cus_1"}},
    }
    assert deliver(stripe_event) == (200, {"received": True, "outcome": "ignored"})
    assert table_items() == []


def test_a_queued_delivery_adds_no_metric_of_ours_an_ignored_one_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Queued deliveries are counted by the queue (the dashboard reads SQS's NumberOfMessagesSent)."""
    queued = {
        "id": "evt_counted",
        "object": "event",
        "type": "invoice.paid",
        "data": {"object": {"id": "in_1", "customer": "cus_1"}},
    }
    ignored = {**queued, "id": "evt_other", "type": "charge.succeeded"}

    def metrics_of(stripe_event: dict[str, Any]) -> list[str]:
        capsys.readouterr()
        assert ingest(stripe_event)[0] == 200
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        return [metric["Name"] for line in lines for block in line["_aws"]["CloudWatchMetrics"] for metric in block["Metrics"]]

    assert metrics_of(queued) == []
    assert metrics_of(ignored) == ["Webhook_ignored"]


def test_only_post(table_items: Items) -> None:
    status, body = call(stripe_webhook_handler, function_url_event(b"", {}, method="GET"))
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")


def sample_event() -> dict[str, Any]:
    return {
        "id": "evt_sample",
        "object": "event",
        "type": "invoice.paid",
        "api_version": "2026-10-28.endive",
        "data": {"object": {}},
    }


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda e: e["headers"].pop("stripe-signature"), "missing_signature"),
        (lambda e: e["headers"].update({"stripe-signature": "t=1,v1="}), "malformed_signature"),
        (
            lambda e: e["headers"].update({"stripe-signature": e["headers"]["stripe-signature"].replace("v1=", "v1=0")}),
            "invalid_signature",
        ),
        (lambda e: e.update(body=json.dumps(json.loads(e["body"]))), "invalid_signature"),
        (lambda e: e.update(body="not base64!", isBase64Encoded=True), "not_a_stripe_event"),
    ],
)
def test_unverified_requests_are_400_and_write_nothing(
    mutate: Callable[[dict[str, Any]], Any], code: str, table_items: Items, capsys: pytest.CaptureFixture[str]
) -> None:
    event = signed_delivery(sample_event(), [WEBHOOK_SECRET])
    mutate(event)
    status, body = call(stripe_webhook_handler, event)
    assert (status, body["error"]["code"]) == (400, code)
    assert table_items() == []
    logs = capsys.readouterr().out
    assert "evt_sample" not in logs and WEBHOOK_SECRET not in logs


# The exact 300 s boundary is tested with a fixed clock in tests/unit; here a margin absorbs a slow machine.
@pytest.mark.parametrize("offset", [-330, 330, -86400])
def test_stale_and_future_timestamps_are_400(offset: int, table_items: Items) -> None:
    status, body = deliver(sample_event(), timestamp=int(time.time()) + offset)
    assert (status, body["error"]["code"]) == (400, "timestamp_out_of_tolerance")
    assert table_items() == []


def test_a_signed_body_that_is_not_an_event_is_400(table_items: Items) -> None:
    status, body = deliver(b'{"object": "customer", "id": "cus_1"}')
    assert (status, body["error"]["code"]) == (400, "not_a_stripe_event")


def test_base64_bodies_and_header_case(stripe_fake: FakeStripe) -> None:
    all_events = subscribe(stripe_fake).events
    wanted = ("customer.subscription.created", "invoice.paid", "checkout.session.completed")
    events = [next(event for event in all_events if event["type"] == name) for name in wanted]
    assert deliver(events[0], base64_body=True)[1]["outcome"] == "synced"
    assert deliver(events[1], header_name="Stripe-Signature")[1]["outcome"] == "synced"
    assert deliver(events[2], header_name="STRIPE-SIGNATURE", base64_body=True)[1]["outcome"] == "synced"


def test_a_rolled_secret(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import reset_caches
    from tests.stripe_fake import TEST_API_KEY

    client = boto3.client("secretsmanager", region_name="us-east-1")
    value = {"STRIPE_SECRET_KEY": TEST_API_KEY, "STRIPE_WEBHOOK_SECRET": f"{WEBHOOK_SECRET}, whsec_the_new_one"}
    monkeypatch.setenv("STRIPE_SECRET_ARN", client.create_secret(Name="rolling", SecretString=json.dumps(value))["ARN"])
    reset_caches()
    events = subscribe(stripe_fake).events
    assert deliver(events[0], secret="whsec_the_new_one")[0] == 200
    assert deliver(events[1], secret=WEBHOOK_SECRET)[0] == 200
    assert deliver(events[2], secret="whsec_neither")[0] == 400


def test_a_dynamodb_failure_mid_event_leaves_nothing_and_the_retry_succeeds(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, table_items: Items
) -> None:
    from botocore.exceptions import ClientError

    from tenant_billing.aws_clients import dynamodb_client

    events = subscribe(stripe_fake).events
    before = table_items()
    client = dynamodb_client()
    real = client.transact_write_items

    def throttled(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "TransactWriteItems")

    monkeypatch.setattr(client, "transact_write_items", throttled)
    # Queued (200): the consumer's write fails, and the message returns to the queue after a backoff.
    assert deliver(events[0]) == (200, {"received": True, "outcome": "failed"})
    assert table_items() == before
    monkeypatch.setattr(client, "transact_write_items", real)
    assert return_failed_now() == 1
    assert drain().outcome_of(events[0]["id"]) == "synced"
    assert status_of()["subscription"]["status"] == "active"


def test_stripe_down_returns_the_event_to_the_queue_and_the_retry_succeeds(stripe_fake: FakeStripe, table_items: Items) -> None:
    events = subscribe(stripe_fake).events
    before = table_items()
    stripe_fake.fail_next(3, status=500, path_prefix="/v1/subscriptions")
    assert deliver(events[0]) == (200, {"received": True, "outcome": "failed"})
    assert table_items() == before
    assert return_failed_now() == 1
    assert drain().outcome_of(events[0]["id"]) == "synced"


def test_concurrent_deliveries_with_duplicates(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    events += stripe_fake.update_subscription(
        subscription_id, items=[{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 7}]
    )
    deliveries = events * 3
    results: list[int] = []
    barrier = threading.Barrier(8)

    def worker(chunk: list[dict[str, Any]]) -> None:
        barrier.wait()
        results.extend(deliver(stripe_event)[0] for stripe_event in chunk)

    threads = [threading.Thread(target=worker, args=(deliveries[n::8],)) for n in range(8)]
    with atomic_dynamodb_requests():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # A conflicting concurrent transaction may answer 503 (Stripe retries it); deliver those again.
    assert set(results) <= {200, 503}
    for stripe_event in events:
        assert deliver(stripe_event)[0] == 200
    state = status_of()
    assert (state["subscription"]["siteQuantity"], state["entitlement"]["limits"]["sites"]) == (7, 9)


def test_delivery_body_is_what_was_signed() -> None:
    raw = delivery_body(sample_event())
    event = signed_delivery(raw, [WEBHOOK_SECRET], base64_body=True)
    assert base64.b64decode(event["body"]) == raw
