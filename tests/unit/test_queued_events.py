"""The two envelopes of a queued Stripe event (the webhook's body, an EventBridge event from
Stripe's event destination), and what the consumer's pacing and backoff promise."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tenant_billing.event_sync_logic import (
    CLOCK_SKEW_ALLOWANCE_SECONDS,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    ReadPacer,
    read_covers_event,
    read_pacer,
    retry_delay_seconds,
)
from tenant_billing.items import SubscriptionRecord
from tenant_billing.queued_events import QueuedEventError, read_queued_event
from tenant_billing.settings import Settings

STRIPE_EVENT: dict[str, Any] = {
    "id": "evt_1QueuedEvent",
    "object": "event",
    "api_version": "2026-10-28.endive",
    "created": 1796126809,
    "type": "invoice.paid",
    "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_1"}},
}


def envelope(detail: Any, **changes: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "invoice.paid",
            "source": "aws.partner/stripe.com/ed_test_61SampleDestination",
            "account": "123456789012",
            "time": "2026-12-01T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
            **changes,
        }
    )


def test_the_webhooks_body_is_the_stripe_event() -> None:
    event = read_queued_event(json.dumps(STRIPE_EVENT, indent=2))
    assert (event.id, event.type, event.object["customer"]) == ("evt_1QueuedEvent", "invoice.paid", "cus_1")


def test_an_eventbridge_event_carries_the_stripe_event_in_its_detail() -> None:
    event = read_queued_event(envelope(STRIPE_EVENT))
    assert (event.id, event.type, event.object["customer"]) == ("evt_1QueuedEvent", "invoice.paid", "cus_1")


def test_a_stripe_event_with_an_eventbridge_looking_field_is_still_the_event() -> None:
    assert read_queued_event(json.dumps({**STRIPE_EVENT, "detail-type": "x", "detail": {}})).id == "evt_1QueuedEvent"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"object": "customer", "id": "cus_1"}),
        json.dumps({**STRIPE_EVENT, "id": "not_an_event_id"}),
        envelope(STRIPE_EVENT, source="aws.events"),
        envelope(STRIPE_EVENT, **{"detail-type": "invoice.payment_failed"}),
        envelope("not an object"),
        envelope({**STRIPE_EVENT, "object": "invoice"}),
        json.dumps({"detail": STRIPE_EVENT}),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "not-an-event",
        "bad-event-id",
        "not-from-stripe",
        "detail-type-disagrees",
        "detail-not-an-object",
        "detail-not-an-event",
        "no-detail-type",
    ],
)
def test_anything_else_is_poison(body: str) -> None:
    with pytest.raises(QueuedEventError):
        read_queued_event(body)


def test_the_pacer_spaces_syncs_by_the_invocations_share_of_the_budget() -> None:
    settings = Settings.from_environ({"TABLE_NAME": "billing", "STRIPE_READS_PER_SECOND": "20", "CONSUMER_CONCURRENCY": "2"})
    assert settings.consumer_reads_per_second == 10
    now, slept = [100.0], []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = ReadPacer(settings.consumer_reads_per_second, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    # 5 syncs take 0.4 s at least: 10 a second, so 2 invocations at once make 20 at most.
    assert slept == [0.1, 0.1, 0.1, 0.1]
    now[0] += 5
    pacer.wait()
    assert len(slept) == 4  # after a pause, no wait


def test_the_backoff_grows_with_the_receive_count_and_is_capped() -> None:
    for receive_count in range(1, 12):
        delay = retry_delay_seconds(receive_count)
        ceiling = min(RETRY_BASE_SECONDS * 2 ** (receive_count - 1), RETRY_MAX_SECONDS)
        assert ceiling * 2 / 3 - 1 <= delay <= ceiling
    assert retry_delay_seconds(30) <= RETRY_MAX_SECONDS


def test_the_event_keeps_stripes_created_in_either_envelope() -> None:
    assert read_queued_event(json.dumps(STRIPE_EVENT)).created == STRIPE_EVENT["created"]
    assert read_queued_event(envelope(STRIPE_EVENT)).created == STRIPE_EVENT["created"]


@pytest.mark.parametrize("created", [None, "1796126809", -5, 0, 1.5, True])
def test_an_event_without_a_usable_created_says_0(created: Any) -> None:
    assert read_queued_event(json.dumps({**STRIPE_EVENT, "created": created})).created == 0


def _record(read_at_s: float, subscription_id: str = "sub_1", others: tuple[str, ...] = ()) -> SubscriptionRecord:
    return SubscriptionRecord(
        "org_1", subscription_id, "cus_1", "active", "pro", 1, None, False, 1, int(read_at_s * 1e9), other_live_ids=others
    )


@pytest.mark.parametrize(
    ("record", "subscription_id", "created", "covers"),
    [
        (_record(1_000), "sub_1", 1_000 - 1 - CLOCK_SKEW_ALLOWANCE_SECONDS, True),
        (_record(1_000), "sub_1", 1_000 - CLOCK_SKEW_ALLOWANCE_SECONDS, False),
        (_record(1_000 - 0.001), "sub_1", 1_000 - 1 - CLOCK_SKEW_ALLOWANCE_SECONDS, False),
        (_record(1_000), "sub_1", 1_000, False),
        (_record(1_000), "sub_1", 2_000, False),
        (_record(1_000), "sub_2", 10, False),
        (_record(1_000, others=("sub_2",)), "sub_2", 10, False),
        (_record(1_000), "sub_1", 0, False),
        (None, "sub_1", 10, False),
    ],
    ids=[
        "read-after",
        "within-allowance",
        "a-ns-short",
        "same-second",
        "event-newer",
        "other-sub",
        "other-live",
        "no-created",
        "no-record",
    ],
)
def test_a_stored_read_covers_an_event_only_when_it_started_after_it(
    record: SubscriptionRecord | None, subscription_id: str, created: int, covers: bool
) -> None:
    assert read_covers_event(record, subscription_id, created) is covers


def test_each_execution_environment_has_its_own_pacer() -> None:
    """Per thread: Lambda runs an environment's invocations on one thread, and the storm benchmark's
    concurrent environments are threads of one process, each with its share of the budget."""
    mine = read_pacer(5.0)
    assert read_pacer(5.0) is mine and read_pacer(10.0).interval == 0.1
    other: list[ReadPacer] = []
    thread = threading.Thread(target=lambda: other.append(read_pacer(10.0)))
    thread.start()
    thread.join()
    assert other[0] is not read_pacer(10.0)
