"""The webhook's queue and its consumer, attacked through the real handlers (moto's SQS built from
template.yaml, the Stripe fake): the queue down at ingest, a consumer crashing mid-batch, a Stripe
429 storm, a poison message, and the same event twice, across batches and across envelopes (the
webhook's and EventBridge's)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import stripe_webhook_handler
from tenant_billing import event_sync_logic
from tenant_billing.aws_clients import sqs_client
from tenant_billing.errors import TransientStoreError
from tenant_billing.event_sync_logic import CLOCK_SKEW_ALLOWANCE_SECONDS
from tenant_billing.org_billing_store import DynamoOrgBillingStore
from tenant_billing.webhook_event_store import DynamoWebhookEventStore
from tenant_billing.webhook_logic import HANDLED_EVENTS
from tests.conftest import DEAD_LETTER_QUEUE_NAME, TABLE_NAME
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.flows import WEBHOOK_SECRET, call, ingest, status_of, subscribe
from tests.support.logscan import LogCapture
from tests.support.queue import (
    ConsumerRun,
    drain,
    eventbridge_envelope,
    invoke_consumer,
    queued_messages,
    receive_batch,
    return_failed_now,
    send_to_queue,
    sqs,
)
from tests.support.template import resource
from tests.support.webhook_events import signed_delivery

Items = Callable[[], list[dict[str, Any]]]
pytestmark = pytest.mark.usefixtures("billing")
MAX_RECEIVES = resource("StripeEventsQueue")["Properties"]["RedrivePolicy"]["maxReceiveCount"]


def stripe_list_reads(fake: FakeStripe) -> int:
    return sum(1 for request in fake.requests if (request.method, request.path) == ("GET", "/v1/subscriptions"))


def not_visible() -> int:
    url = sqs().get_queue_url(QueueName="billing-events-test")["QueueUrl"]
    attributes = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.parametrize(
    "failure",
    [
        ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage"),
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendMessage"),
        EndpointConnectionError(endpoint_url="https://sqs.invalid"),
    ],
    ids=["unavailable", "throttled", "unreachable"],
)
def test_the_queue_down_at_ingest_is_a_503_with_nothing_written_and_no_stripe_call(
    failure: Exception, stripe_fake: FakeStripe, table_items: Items, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = subscribe(stripe_fake).events
    before = table_items()
    stripe_fake.reset_requests()

    def down(**kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(sqs_client(), "send_message", down)
    status, body = ingest(events[0])
    assert (status, body["error"]["code"]) == (503, "temporarily_unavailable")
    assert table_items() == before
    assert stripe_fake.requests == []
    monkeypatch.undo()
    assert queued_messages() == []


def test_ingest_queues_the_body_exactly_as_received_and_ignores_other_types(stripe_fake: FakeStripe) -> None:
    events = subscribe(stripe_fake).events
    event = signed_delivery(events[0], [WEBHOOK_SECRET])
    assert call(stripe_webhook_handler, event) == (200, {"received": True, "outcome": "queued"})
    (message,) = queued_messages()
    assert message["Body"] == event["body"]
    assert message["MessageAttributes"]["event_id"]["StringValue"] == events[0]["id"]
    other = {"id": "evt_other_type", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    assert ingest(other) == (200, {"received": True, "outcome": "ignored"})
    assert len(queued_messages()) == 1


def test_a_batch_reads_stripe_once_per_customer(stripe_fake: FakeStripe) -> None:
    tenants = [subscribe(stripe_fake, org_id) for org_id in ("org_one", "org_two")]
    events = [stripe_event for tenant in tenants for stripe_event in tenant.events if stripe_event["type"] in HANDLED_EVENTS]
    assert len(events) >= 6
    for stripe_event in events:
        assert ingest(stripe_event)[1]["outcome"] == "queued"
    stripe_fake.reset_requests()
    run = ConsumerRun()
    invoke_consumer(receive_batch(len(events)), run)
    assert run.failed == []
    assert stripe_list_reads(stripe_fake) == 2
    assert sorted(outcome.value for outcome in run.outcomes.values()) == ["synced"] * len(events)
    for tenant in tenants:
        assert status_of(tenant.org_id)["subscription"]["plan"] == "pro"
    # Every event's marker is written: a redelivery of any of them is a duplicate.
    for stripe_event in events:
        assert ingest(stripe_event)[1]["outcome"] == "queued"
    assert set(drain().outcomes.values()) == {"duplicate"}


def test_a_consumer_crash_mid_batch_returns_only_the_failed_messages(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy, crashing = subscribe(stripe_fake, "org_healthy"), subscribe(stripe_fake, "org_crashing")
    for stripe_event in healthy.events + crashing.events:
        ingest(stripe_event)
    assert len(queued_messages()) <= 10
    from tenant_billing.org_sync import sync_org as real

    def crash(org_id: str, customer_id: str, *args: Any, **kwargs: Any) -> Any:
        if customer_id == crashing.customer_id:
            raise RuntimeError("the consumer crashed")
        return real(org_id, customer_id, *args, **kwargs)

    monkeypatch.setattr(event_sync_logic, "sync_org", crash)
    messages = receive_batch(10)
    run = ConsumerRun()
    response = invoke_consumer(messages, run)
    crashed = {m["MessageId"] for m in messages if m["MessageAttributes"]["event_id"]["StringValue"] in _ids(crashing.events)}
    assert {failure["itemIdentifier"] for failure in response["batchItemFailures"]} == crashed
    assert status_of("org_healthy")["subscription"]["plan"] == "pro"
    assert status_of("org_crashing")["subscription"] is None
    # Only the failed messages are left; once the consumer is fixed they take effect.
    monkeypatch.setattr(event_sync_logic, "sync_org", real)
    assert return_failed_now() == len(crashed)
    assert set(drain().outcomes.values()) == {"synced"}
    assert status_of("org_crashing")["subscription"]["plan"] == "pro"


def _ids(events: list[dict[str, Any]]) -> set[str]:
    return {stripe_event["id"] for stripe_event in events}


def test_a_stripe_429_storm_returns_every_message_with_a_backoff_and_loses_none(
    stripe_fake: FakeStripe, log_capture: LogCapture
) -> None:
    tenants = [subscribe(stripe_fake, f"org_storm_{n}") for n in range(3)]
    events = [stripe_event for tenant in tenants for stripe_event in tenant.events if stripe_event["type"] in HANDLED_EVENTS]
    for stripe_event in events:
        ingest(stripe_event)
    stripe_fake.reset_requests()
    stripe_fake.fail_next(1000, status=429, path_prefix="/v1/subscriptions")
    run = drain()
    assert sorted(run.failed) == sorted(run.event_ids) and len(run.failed) == len(events)
    # One attempt per customer per batch: the customer's other events do not hammer Stripe.
    assert stripe_list_reads(stripe_fake) <= len(tenants) * run.batches
    # Not lost, not dead-lettered: invisible for their backoff, then received again.
    assert queued_messages() == [] and not_visible() == len(events)
    assert queued_messages(DEAD_LETTER_QUEUE_NAME) == []
    assert '"EventRetried"' in log_capture.text()
    stripe_fake.clear_faults()
    assert return_failed_now() == len(events)
    assert set(drain().outcomes.values()) <= {"synced"}
    for tenant in tenants:
        assert status_of(tenant.org_id)["subscription"]["status"] == "active"


def test_a_poison_message_reaches_the_dead_letter_queue_and_the_rest_is_processed(
    stripe_fake: FakeStripe, log_capture: LogCapture
) -> None:
    events = subscribe(stripe_fake).events
    send_to_queue("{not json")
    ingest(events[0])
    first = drain()
    assert sorted(outcome.value for outcome in first.outcomes.values()) == ["synced"]
    assert len(first.failed) == 1
    assert status_of()["subscription"]["plan"] == "pro"
    assert '"EventPoison"' in log_capture.text()
    for _ in range(MAX_RECEIVES):
        return_failed_now()
        drain()
    assert queued_messages() == []
    (dead,) = queued_messages(DEAD_LETTER_QUEUE_NAME)
    assert dead["Body"] == "{not json"


@pytest.mark.parametrize("batch_size", [1, 10], ids=["across-batches", "one-batch"])
def test_the_same_event_by_webhook_and_by_eventbridge_takes_effect_once(
    batch_size: int, stripe_fake: FakeStripe, table_items: Items
) -> None:
    events = subscribe(stripe_fake).events
    ingest(events[0])
    send_to_queue(eventbridge_envelope(events[0]))
    ingest(events[0])  # and Stripe's own redelivery
    stripe_fake.reset_requests()
    run = drain(batch_size)
    assert sorted(outcome.value for outcome in run.outcomes.values()) == ["duplicate", "duplicate", "synced"]
    assert stripe_list_reads(stripe_fake) == 1
    assert [item["pk"]["S"] for item in table_items() if item["sk"]["S"] == "EVENT"] == [f"EVENT#{events[0]['id']}"]
    assert status_of()["subscription"]["plan"] == "pro"


def test_an_eventbridge_event_alone_is_synced(stripe_fake: FakeStripe) -> None:
    events = subscribe(stripe_fake).events
    send_to_queue(eventbridge_envelope(events[-1]))
    assert drain().only_outcome() == "synced"
    assert status_of()["subscription"]["plan"] == "pro"


def _stored_read_second(table_items: Items) -> int:
    (item,) = [item for item in table_items() if item["sk"]["S"] == "SUBSCRIPTION"]
    return int(item["read_at_ns"]["N"]) // 1_000_000_000


def test_a_late_event_whose_change_a_stored_read_saw_costs_no_stripe_read(stripe_fake: FakeStripe, table_items: Items) -> None:
    handled = [e for e in subscribe(stripe_fake).events if e["type"] in HANDLED_EVENTS]
    first, *late = handled
    assert late
    ingest(first)
    assert drain().only_outcome() == "synced"
    read_second = _stored_read_second(table_items)
    stripe_fake.reset_requests()
    # Stripe's retries of the others, created well before the stored read started.
    for stripe_event in late:
        ingest({**stripe_event, "created": read_second - 60})
    run = drain()
    assert sorted(outcome.value for outcome in run.outcomes.values()) == ["synced"] * len(late)
    assert stripe_list_reads(stripe_fake) == 0
    # Their markers are written: another delivery is a duplicate.
    ingest({**late[0], "created": read_second - 60})
    assert drain().only_outcome() == "duplicate"


def _age_stored_read(dynamodb: Any, org_id: str, seconds: int) -> int:
    """Make the organization's stored read `seconds` old, as if made then: its second."""
    read_ns = time.time_ns() - seconds * 1_000_000_000
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"ORG#{org_id}"}, "sk": {"S": "SUBSCRIPTION"}},
        UpdateExpression="SET read_at_ns = :read",
        ExpressionAttributeValues={":read": {"N": str(read_ns)}},
    )
    return read_ns // 1_000_000_000


def test_a_late_event_of_a_change_after_the_stored_read_is_read_from_stripe(stripe_fake: FakeStripe, dynamodb: Any) -> None:
    tenant = subscribe(stripe_fake)
    ingest(tenant.events[-1])
    drain()
    read_second = _age_stored_read(dynamodb, tenant.org_id, 120)
    make_stripe_client(stripe_fake).v1.subscriptions.update(tenant.subscription_id, {"cancel_at_period_end": True})
    (updated,) = stripe_fake.events_of_type("customer.subscription.updated")[-1:]
    stripe_fake.reset_requests()
    # Delivered a minute late (so the stored subscription is looked at), but created after its read.
    ingest({**updated, "created": read_second + 60})
    assert drain().only_outcome() == "synced"
    assert stripe_list_reads(stripe_fake) == 1
    assert status_of()["subscription"]["cancelAtPeriodEnd"] is True


@pytest.mark.parametrize(
    ("seconds_before_the_read", "reads"),
    [(CLOCK_SKEW_ALLOWANCE_SECONDS, 1), (CLOCK_SKEW_ALLOWANCE_SECONDS + 1, 0)],
    ids=["within-the-allowance", "beyond-it"],
)
def test_an_event_within_the_clock_allowance_of_the_stored_read_is_read_again(
    seconds_before_the_read: int, reads: int, stripe_fake: FakeStripe, dynamodb: Any
) -> None:
    tenant = subscribe(stripe_fake)
    ingest(tenant.events[0])
    drain()
    read_second = _age_stored_read(dynamodb, tenant.org_id, 120)
    stripe_fake.reset_requests()
    ingest({**tenant.events[-1], "created": read_second - seconds_before_the_read})
    assert drain().only_outcome() == "synced"
    assert stripe_list_reads(stripe_fake) == reads


def test_a_late_batch_reads_the_table_twice_ahead_and_stripe_not_at_all(stripe_fake: FakeStripe, table_items: Items) -> None:
    """A storm's backlog: every organization already synced after its events were created. The
    batch reads its markers and links, then the stored subscriptions, in two calls; each event then
    writes its marker alone."""
    tenants = [subscribe(stripe_fake, org_id) for org_id in ("org_a", "org_b", "org_c")]
    for tenant in tenants:
        ingest(tenant.events[0])
    drain()
    oldest_read = min(
        int(item["read_at_ns"]["N"]) // 1_000_000_000 for item in table_items() if item["sk"]["S"] == "SUBSCRIPTION"
    )
    late = [{**e, "created": oldest_read - 60} for t in tenants for e in t.events[1:] if e["type"] in HANDLED_EVENTS]
    assert len(late) >= 6
    for stripe_event in late:
        ingest(stripe_event)
    stripe_fake.reset_requests()
    run = ConsumerRun()
    with count_dynamodb_calls() as calls:
        invoke_consumer(receive_batch(len(late)), run)
    assert sorted(outcome.value for outcome in run.outcomes.values()) == ["synced"] * len(late)
    assert calls == {"BatchGetItem": 2, "PutItem": len(late)}
    assert stripe_list_reads(stripe_fake) == 0


@pytest.mark.parametrize(
    ("store", "method", "failure"),
    [
        (DynamoWebhookEventStore, "lookup_events", TransientStoreError("temporarily_unavailable")),
        (DynamoOrgBillingStore, "get_subscriptions", RuntimeError("not a BillingError")),
    ],
    ids=["lookups-throttled", "stored-read-crashes"],
)
def test_a_failed_read_ahead_leaves_each_event_to_read_alone(
    store: type, method: str, failure: Exception, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = [subscribe(stripe_fake, org_id) for org_id in ("org_a", "org_b")]
    for tenant in tenants:
        for stripe_event in tenant.events:
            # Late, so the read-ahead reads the stored subscriptions too.
            ingest({**stripe_event, "created": stripe_event["created"] - 600})
    real = getattr(store, method)
    attempts: list[int] = []

    def fails_once(*args: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise failure
        return real(*args)

    monkeypatch.setattr(store, method, fails_once)
    run = drain()
    assert attempts and run.failed == [] and set(run.outcomes.values()) == {"synced"}
    for tenant in tenants:
        assert status_of(tenant.org_id)["subscription"]["plan"] == "pro"
