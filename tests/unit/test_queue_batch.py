"""The SQS partial batch response: each record handled in order, the failed ones named."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_billing.queue_batch import QueueMessage, partial_batch_response, queue_records, read_message


def _record(message_id: str, body: str = "{}", receive_count: str = "1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1"},
        "eventSource": "aws:sqs",
    }


def test_a_record_is_read_into_its_message() -> None:
    assert read_message(_record("m1", body='{"id": "evt_1"}', receive_count="3")) == QueueMessage(
        message_id="m1", body='{"id": "evt_1"}', receipt_handle="receipt-m1", receive_count=3
    )


def test_the_records_run_in_order_and_the_failed_ones_are_named() -> None:
    handled: list[str] = []

    def handle(message: QueueMessage) -> None:
        handled.append(message.message_id)
        if message.body == "poison":
            raise ValueError("not an event")

    records = [_record("m1"), _record("m2", body="poison"), _record("m3"), _record("m4", body="poison")]
    assert partial_batch_response(records, handle) == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}]}
    assert handled == ["m1", "m2", "m3", "m4"]


def test_every_record_failing_is_a_partial_failure_like_any_other(caplog: pytest.LogCaptureFixture) -> None:
    def fail(message: QueueMessage) -> None:
        raise RecursionError("an error nobody expected")

    response = partial_batch_response([_record("m1"), _record("m2")], fail)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    # Each failure logged with its traceback, whatever the handler itself logged.
    assert [(record.getMessage(), record.exc_info is not None) for record in caplog.records] == [
        ("message left on the queue", True)
    ] * 2
    assert partial_batch_response([], fail) == {"batchItemFailures": []}


def test_an_event_that_is_not_from_a_queue_fails_the_invocation() -> None:
    assert queue_records({"Records": [_record("m1")]}) == [_record("m1")]
    for event in ({}, {"Records": None}, {"Records": {"messageId": "m1"}}):
        with pytest.raises(ValueError, match="not an SQS event"):
            queue_records(event)


def test_an_unreadable_record_fails_alone_and_is_never_handled(caplog: pytest.LogCaptureFixture) -> None:
    handled: list[str] = []
    records = [_record("m1", receive_count="many"), {"messageId": "m2", "body": "{}"}, _record("m3")]
    response = partial_batch_response(records, lambda message: handled.append(message.message_id))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert handled == ["m3"]
    assert [record.getMessage() for record in caplog.records] == ["queue record unreadable"] * 2


def test_a_record_without_a_message_id_fails_the_whole_invocation() -> None:
    # Nothing to name: Lambda receives the whole batch again.
    with pytest.raises(KeyError):
        partial_batch_response([_record("m1"), {"body": "{}"}], lambda message: None)
