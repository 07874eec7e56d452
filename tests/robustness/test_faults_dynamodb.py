"""DynamoDB faults at the client boundary, for every endpoint and every call it makes.

Contract: a transient failure answers a retryable 503 `temporarily_unavailable` (browsers retry 5xx;
a webhook event's message returns to the queue with a backoff), nothing is half-written (no org
linked to a customer without the reverse item, no subscription without its entitlement and event
marker), and the retried request succeeds with exactly one Stripe customer per organization."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tenant_billing.aws_clients import dynamodb_client
from tests.robustness.aws_faults import (
    AwsError,
    AwsFaultInjector,
    Fault,
    Respond,
    connect_timeout,
    connection_refused,
    read_timeout,
    transaction_canceled,
    unprocessed_batch_get,
)
from tests.robustness.support import (
    ORG_A,
    Items,
    assert_links_consistent,
    assert_queued_for_retry,
    by_key,
    call_checkout,
    call_portal,
    call_status,
    changed_keys,
    deliver,
    delivery_status,
    fresh_id,
    linked_customer,
    retry_queued,
)
from tests.stripe_fake import FakeStripe
from tests.support.flows import Subscribed, subscribe

TRANSIENT: dict[str, Fault] = {
    "ProvisionedThroughputExceeded": AwsError("ProvisionedThroughputExceededException"),
    "Throttling": AwsError("ThrottlingException"),
    "InternalServerError": AwsError("InternalServerError", status=500),
    "connect-timeout": connect_timeout,
    "read-timeout": read_timeout,
    "connection-refused": connection_refused,
}
# The cheaper subset for the endpoints whose every call is covered by the full set elsewhere.
THROTTLES = {name: TRANSIENT[name] for name in ("ProvisionedThroughputExceeded", "Throttling", "connect-timeout")}
CLAIM_KEY = (f"ORG#{ORG_A}", "CUSTOMER")


def assert_transient(reply: Any) -> None:
    assert (reply.status, reply.code) == (503, "temporarily_unavailable"), reply
    assert reply.retryable


# --- GET /billing/status: one Query ------------------------------------------------------------


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_status_query_fault_is_a_retryable_503(
    fault: Fault, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    subscribe(stripe_fake, ORG_A, deliver_with=delivery_status)
    before = table_items()
    aws_faults.fail(dynamodb_client(), "Query", fault)
    assert_transient(call_status())
    assert table_items() == before
    retry = call_status()
    assert retry.status == 200 and retry.body["subscription"]["plan"] == "pro"
    assert aws_faults.fired == {"Query": 1}


# --- POST /billing/checkout: Query, claim (PutItem), link (TransactWriteItems) ------------------


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("operation", ["Query", "PutItem", "TransactWriteItems"])
@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_checkout_fault_leaves_no_half_link_and_the_retry_reuses_the_customer(
    operation: str, fault: Fault, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    before = table_items()
    aws_faults.fail(dynamodb_client(), operation, fault)
    assert_transient(call_checkout({"plan": "pro", "siteQuantity": 2}))
    after = table_items()
    assert_links_consistent(after)
    if operation == "TransactWriteItems":
        # Failed after the claim and the Stripe customer: only the (unlinked) claim is stored.
        assert changed_keys(before, after) == {CLAIM_KEY}
        assert "customer_id" not in by_key(after)[CLAIM_KEY]
        assert len(stripe_fake.customers) == 1
    else:
        assert after == before
        assert stripe_fake.requests == []
    retry = call_checkout({"plan": "pro", "siteQuantity": 2})
    assert retry.status == 200, retry
    final = table_items()
    assert_links_consistent(final)
    (customer_id,) = stripe_fake.customers
    assert linked_customer(final, ORG_A) == customer_id
    (session,) = stripe_fake.checkout_sessions.values()
    assert session["customer"] == customer_id
    assert aws_faults.fired == {operation: 1}


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("operation", ["PutItem", "TransactWriteItems"])
def test_checkout_write_applied_but_response_lost(
    operation: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    aws_faults.lose_response(dynamodb_client(), operation)
    assert_transient(call_checkout({"plan": "pro"}))
    assert_links_consistent(table_items())
    retry = call_checkout({"plan": "pro"})
    assert retry.status == 200, retry
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id
    assert_links_consistent(table_items())
    assert aws_faults.fired == {operation: 1}


@pytest.mark.usefixtures("billing")
def test_checkout_link_transaction_conflict_is_a_retryable_503(
    aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    """A TransactionConflict (another transaction on the same items in flight) is transient: the
    repository retries it twice itself; a conflict that outlasts those retries is a 503."""
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", transaction_canceled("TransactionConflict", "None"), times=3)
    reply = call_checkout({"plan": "pro"})
    after = table_items()
    assert_links_consistent(after)
    assert "customer_id" not in by_key(after)[CLAIM_KEY]
    assert_transient(reply)
    retry = call_checkout({"plan": "pro"})
    assert retry.status == 200
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id


@pytest.mark.usefixtures("billing")
def test_a_short_link_conflict_is_absorbed_by_the_repository_retry(
    aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", transaction_canceled("TransactionConflict", "None"), times=2)
    assert call_checkout({"plan": "pro"}).status == 200
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id


@pytest.mark.usefixtures("billing")
def test_checkout_link_condition_failure_is_a_5xx_without_half_link(
    aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    """The link's condition failing means the claim changed hands (a stale claim was taken over):
    nothing may be half-written, the caller must be told to retry, and the retry succeeds."""
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", transaction_canceled("ConditionalCheckFailed", "None"))
    reply = call_checkout({"plan": "pro"})
    assert reply.retryable, reply
    assert_links_consistent(table_items())
    assert call_checkout({"plan": "pro"}).status == 200
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id


# --- POST /billing/portal: one Query -------------------------------------------------------------


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", THROTTLES.values(), ids=THROTTLES.keys())
def test_portal_query_fault_is_a_retryable_503(
    fault: Fault, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    assert call_checkout({"plan": "pro"}).status == 200
    before = table_items()
    stripe_fake.reset_requests()
    aws_faults.fail(dynamodb_client(), "Query", fault)
    assert_transient(call_portal())
    assert table_items() == before
    assert stripe_fake.requests == [] and stripe_fake.portal_sessions == {}
    assert call_portal().status == 200
    (session,) = stripe_fake.portal_sessions.values()
    assert session["customer"] == linked_customer(before, ORG_A)


# --- the webhook: BatchGetItem, TransactWriteItems (sync), PutItem (trial_will_end) --------------


def new_subscription(fake: FakeStripe) -> tuple[Subscribed, dict[str, Any]]:
    tenant = subscribe(fake, ORG_A)
    return tenant, tenant.event("customer.subscription.created")


def assert_synced_pro() -> None:
    body = call_status().body
    assert (body["subscription"]["plan"], body["subscription"]["status"], body["entitlement"]["limits"]["sites"]) == (
        "pro",
        "active",
        5,
    )


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("operation", ["BatchGetItem", "TransactWriteItems"])
@pytest.mark.parametrize("fault", THROTTLES.values(), ids=THROTTLES.keys())
def test_webhook_fault_returns_the_event_to_the_queue_with_nothing_written_and_the_retry_succeeds(
    operation: str, fault: Fault, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    _, stripe_event = new_subscription(stripe_fake)
    before = table_items()
    aws_faults.fail(dynamodb_client(), operation, fault)
    assert_queued_for_retry(deliver(stripe_event))
    assert table_items() == before
    assert retry_queued(stripe_event).outcome == "synced"
    assert_synced_pro()
    assert aws_faults.fired == {operation: 1}


@pytest.mark.usefixtures("billing")
def test_webhook_sync_applied_but_response_lost_is_a_duplicate_on_retry(
    aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    _, stripe_event = new_subscription(stripe_fake)
    before = table_items()
    aws_faults.lose_response(dynamodb_client(), "TransactWriteItems")
    assert_queued_for_retry(deliver(stripe_event))
    written = table_items()
    # All or nothing: the subscription, its entitlement and the event marker together.
    assert {key[1] for key in changed_keys(before, written)} == {"SUBSCRIPTION", "ENTITLEMENT", "EVENT"}
    assert retry_queued(stripe_event).outcome == "duplicate"
    assert table_items() == written
    assert_synced_pro()


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("times", "first"), [(2, "synced"), (3, "failed")])
def test_webhook_unprocessed_batch_keys(
    times: int, first: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    _, stripe_event = new_subscription(stripe_fake)
    before = table_items()
    aws_faults.fail(dynamodb_client(), "BatchGetItem", Respond(unprocessed_batch_get), times=times)
    reply = deliver(stripe_event)
    assert reply.outcome == first
    if first == "failed":
        assert table_items() == before
        reply = retry_queued(stripe_event)
    assert reply.outcome == "synced"
    assert_synced_pro()


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(("times", "first"), [(2, "synced"), (3, "failed")])
def test_webhook_transaction_conflicts_are_retried_then_returned_to_the_queue(
    times: int, first: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    _, stripe_event = new_subscription(stripe_fake)
    before = table_items()
    conflict = transaction_canceled("TransactionConflict", "None", "None")
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", conflict, times=times)
    reply = deliver(stripe_event)
    assert reply.outcome == first
    if first == "failed":
        assert table_items() == before
        reply = retry_queued(stripe_event)
    assert reply.outcome == "synced"
    assert_synced_pro()


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    ("reasons", "outcome"),
    [(("ConditionalCheckFailed", "None", "None"), "superseded"), (("None", "None", "ConditionalCheckFailed"), "duplicate")],
)
def test_webhook_condition_failures_mean_superseded_or_duplicate_and_write_nothing(
    reasons: tuple[str, ...], outcome: str, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    """A failed guard on the marker means another delivery took effect: done (the message is deleted).
    A failed guard on the subscription means a read stamped later is stored: done only when it agrees
    with ours, otherwise the message returns to the queue (its clock may have run ahead). Nothing is written."""
    _, stripe_event = new_subscription(stripe_fake)
    before = table_items()
    aws_faults.fail(dynamodb_client(), "TransactWriteItems", transaction_canceled(*reasons))
    reply = deliver(stripe_event)
    if outcome == "superseded":
        # Nothing of this subscription is stored, so the stored state cannot agree with our read.
        assert_queued_for_retry(reply)
    else:
        assert (reply.status, reply.outcome) == (200, outcome)
    assert table_items() == before


def trial_will_end_event(tenant: Subscribed) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": fresh_id("evt_trial_"),
        "object": "event",
        "type": "customer.subscription.trial_will_end",
        "api_version": "2026-10-28.endive",
        "created": now,
        "data": {
            "object": {"id": tenant.subscription_id, "object": "subscription", "customer": tenant.customer_id, "trial_end": now}
        },
    }


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", THROTTLES.values(), ids=THROTTLES.keys())
def test_webhook_trial_marker_fault_returns_the_event_to_the_queue_then_recorded_once(
    fault: Fault, aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    tenant = subscribe(stripe_fake, ORG_A, deliver_with=delivery_status)
    stripe_event = trial_will_end_event(tenant)
    before = table_items()
    aws_faults.fail(dynamodb_client(), "PutItem", fault)
    assert_queued_for_retry(deliver(stripe_event))
    assert table_items() == before
    assert retry_queued(stripe_event).outcome == "recorded"
    assert changed_keys(before, table_items()) == {(f"EVENT#{stripe_event['id']}", "EVENT")}
    assert deliver(stripe_event).outcome == "duplicate"


@pytest.mark.usefixtures("billing")
def test_webhook_trial_marker_condition_failure_is_a_duplicate(
    aws_faults: AwsFaultInjector, stripe_fake: FakeStripe, table_items: Items
) -> None:
    tenant = subscribe(stripe_fake, ORG_A, deliver_with=delivery_status)
    stripe_event = trial_will_end_event(tenant)
    before = table_items()
    aws_faults.fail(dynamodb_client(), "PutItem", AwsError("ConditionalCheckFailedException"))
    assert deliver(stripe_event).outcome == "duplicate"
    assert table_items() == before
