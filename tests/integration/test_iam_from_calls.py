"""Least privilege, checked from the code's own calls: each function runs its flows, rare paths
included (a refused older write read back, a quote, a lock, a sync slot given back, an event
returned to the queue), every DynamoDB and SQS call it makes is recorded, and the actions those
calls need must be in that function's policy in template.yaml. A missing action would be an
AccessDenied in production only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import billing_admin_handler
import checkout_handler
import portal_handler
import reconcile_handler
import status_handler
import stripe_webhook_handler
import subscription_handler
import sync_handler
from tenant_billing.aws_clients import dynamodb_client, sqs_client
from tests.conftest import FakeLambdaContext
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.api_events import api_event
from tests.support.flows import WEBHOOK_SECRET, call, subscribe, webhook_status
from tests.support.queue import drain
from tests.support.template import resources_of_type
from tests.support.webhook_events import signed_delivery

pytestmark = pytest.mark.usefixtures("billing")
# What each item of a TransactWriteItems needs (the transaction itself needs no action of its own).
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


@contextmanager
def aws_actions() -> Iterator[set[str]]:
    actions: set[str] = set()

    def record(params: dict[str, Any], event_name: str, **kwargs: Any) -> None:
        service, operation = event_name.split(".")[1], event_name.rsplit(".", 1)[-1]
        if operation == "TransactWriteItems":
            actions.update(f"dynamodb:{TRANSACT_ACTIONS[kind]}" for item in params["TransactItems"] for kind in item)
        else:
            actions.add(f"{service}:{operation}")

    clients: list[tuple[Any, str]] = [(dynamodb_client(), "dynamodb"), (sqs_client(), "sqs")]
    for client, service in clients:
        client.meta.events.register(f"provide-client-params.{service}", record)
    try:
        yield actions
    finally:
        for client, service in clients:
            client.meta.events.unregister(f"provide-client-params.{service}", record)


def allowed(logical_id: str) -> set[str]:
    function = resources_of_type("AWS::Serverless::Function")[logical_id]
    found: set[str] = set()
    for policy in function["Properties"].get("Policies", []):
        for statement in policy["Statement"]:
            action = statement["Action"]
            found.update([action] if isinstance(action, str) else action)
    return found


def api(
    module: Any, method: str, path: str, *, role: str = "admin", body: Any = None, query: dict[str, str] | None = None
) -> Any:
    event = api_event(method, path, role=role, body=body)
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
    return call(module, event)


def skewed(monkeypatch: pytest.MonkeyPatch, seconds: int, action: Callable[[], Any]) -> Any:
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + seconds * 1_000_000_000)
    try:
        return action()
    finally:
        monkeypatch.setattr(time, "time_ns", real)


def test_checkout(stripe_fake: FakeStripe) -> None:
    with aws_actions() as actions:
        assert api(checkout_handler, "POST", "/billing/checkout", body={"plan": "pro"})[0] == 200
        assert api(checkout_handler, "POST", "/billing/checkout", body={"plan": "pro"})[0] == 200
        session_id = next(sid for sid, s in stripe_fake.checkout_sessions.items() if s["status"] == "open")
        stripe_fake.complete_checkout(session_id)  # paid, its webhook not yet here: stored by checkout
        assert api(checkout_handler, "POST", "/billing/checkout", body={"plan": "pro"})[0] == 409
    assert actions <= allowed("BillingCheckoutFunction"), actions


def test_status_portal_and_invoices(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    for module, logical_id, method, path in [
        (status_handler, "BillingStatusFunction", "GET", "/billing/status"),
        (portal_handler, "BillingPortalFunction", "POST", "/billing/portal"),
    ]:
        with aws_actions() as actions:
            assert api(module, method, path, body={} if method == "POST" else None)[0] == 200
        assert actions <= allowed(logical_id), (logical_id, actions)


def test_sync(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenant_billing.errors import TransientStoreError
    from tenant_billing.org_billing_store import DynamoOrgBillingStore

    subscribe(stripe_fake)
    with aws_actions() as actions:
        original = DynamoOrgBillingStore.save_subscription
        failures = [TransientStoreError("throttled")]

        def throttled_once(self: DynamoOrgBillingStore, *args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop()
            return original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoOrgBillingStore, "save_subscription", throttled_once)
        assert api(sync_handler, "POST", "/billing/sync", role="member")[0] == 503  # the slot is given back
        assert api(sync_handler, "POST", "/billing/sync", role="member")[0] == 200
        assert api(sync_handler, "POST", "/billing/sync", role="member")[0] == 200  # inside the window
    assert actions <= allowed("BillingSyncFunction"), actions


def test_subscription_changes(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    with aws_actions() as actions:
        status, quote = api(
            subscription_handler, "GET", "/billing/subscription/preview", query={"plan": "enterprise", "siteQuantity": "4"}
        )
        assert status == 200
        body = {"plan": "enterprise", "siteQuantity": 4, "previewId": quote["previewId"]}
        assert api(subscription_handler, "POST", "/billing/subscription", body=body)[0] == 200
        assert api(subscription_handler, "POST", "/billing/subscription/cancel", body={})[0] == 200
        assert api(subscription_handler, "POST", "/billing/subscription/resume", body={})[0] == 200
        assert api(subscription_handler, "POST", "/billing/subscription/cancel", body={"immediately": True})[0] == 200
    assert actions <= allowed("BillingSubscriptionFunction"), actions


def queue_event(stripe_event: dict[str, Any]) -> None:
    """The webhook alone: the event on the queue."""
    assert call(stripe_webhook_handler, signed_delivery(stripe_event, [WEBHOOK_SECRET]))[1]["outcome"] == "queued"


def test_webhook_queues_and_touches_neither_the_table_nor_stripe(stripe_fake: FakeStripe) -> None:
    events = subscribe(stripe_fake).events
    stripe_fake.reset_requests()
    with aws_actions() as actions:
        queue_event(events[-1])
    assert actions == {"sqs:SendMessage"}
    assert actions <= allowed("StripeWebhookFunction"), actions
    assert stripe_fake.requests == []


def test_consumer_including_a_refused_older_write_returned_to_the_queue(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed = subscribe(stripe_fake)
    subscription_id, events = subscribed.subscription_id, subscribed.events
    queue_event(events[-1])
    with aws_actions() as actions:
        assert skewed(monkeypatch, 5, drain).outcome_of(events[-1]["id"]) == "synced"
    change = stripe_fake.update_subscription(subscription_id, cancel_at_period_end=True)
    queue_event(change[-1])
    with aws_actions() as more:
        # Refused as older, read back, disagrees: returned to the queue with a backoff.
        assert drain().outcome_of(change[-1]["id"]) == "failed"
    actions |= more
    assert "sqs:ChangeMessageVisibility" in actions
    assert actions <= allowed("EventSyncFunction"), actions


def test_reconciliation_with_a_repair_and_a_duplicate(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake).subscription_id  # never delivered: repaired
    customer_id = stripe_fake.subscriptions[subscription_id]["customer"]
    client = make_stripe_client(stripe_fake)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": "price_starter_base", "quantity": 1}],
            "success_url": "https://x.example/ok",
        }
    )
    stripe_fake.complete_checkout(session.id)
    with aws_actions() as actions:
        result = reconcile_handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
        assert (result["repaired"], result["duplicates"]) == (1, 1)
    assert actions <= allowed("BillingReconcileFunction"), actions


def test_operator_commands(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake, deliver_with=webhook_status)
    (deleted,) = [
        event for event in stripe_fake.cancel_subscription(subscribed.subscription_id) if event["type"].endswith(".deleted")
    ]
    with aws_actions() as actions:
        for command in (
            {"command": "show", "orgId": "org_demo"},
            {"command": "replay", "eventId": deleted["id"]},
            {"command": "replay", "eventId": deleted["id"]},  # the duplicate: its marker read alone
            {"command": "resync", "orgId": "org_demo"},
            {"command": "problems"},
        ):
            assert "result" in billing_admin_handler.lambda_handler(command, FakeLambdaContext()), command
    # Exactly what it is granted, beside the secret: nothing missing, nothing to spare.
    assert actions == allowed("BillingAdminFunction") - {"secretsmanager:GetSecretValue"}, actions
