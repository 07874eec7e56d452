"""The events queue in moto, built from template.yaml's definition, and the consumer run on it the
way the SQS event source mapping runs it: receive up to a batch, invoke the real handler, delete
the messages it did not report as failed. A failed message stays in the queue, invisible for the
backoff the consumer gave it (or the queue's visibility timeout); `return_failed_now` makes the
failed ones visible at once, as if their backoff had passed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import boto3

import event_sync_handler
from tenant_billing import event_sync_logic
from tenant_billing.queue_batch import PartialBatchResponse
from tenant_billing.webhook_logic import Outcome
from tests.conftest import ACCOUNT, DEAD_LETTER_QUEUE_NAME, QUEUE_NAME, QUEUE_URL, FakeLambdaContext
from tests.support.template import create_queues_from_template, resource

BATCH_SIZE = int(resource("EventSyncFunction")["Properties"]["Events"]["StripeEvents"]["Properties"]["BatchSize"])
# A message the consumer failed: its event id (None when the body is not an event) and receipt.
_failed: dict[str, str] = {}


def sqs() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def create_queues() -> str:
    """The test queues (StripeEventsQueue and its dead-letter queue, as template.yaml defines them)."""
    _failed.clear()  # receipts of another test's queue
    names = {"StripeEventsQueue": QUEUE_NAME, "StripeEventsDeadLetterQueue": DEAD_LETTER_QUEUE_NAME}
    url = create_queues_from_template(sqs(), names)["StripeEventsQueue"].url
    assert url == QUEUE_URL, url
    return url


def recreate_queues() -> None:
    """Empty queues, in-flight messages included (moto, like SQS, allows one purge a minute)."""
    client = sqs()
    for name in (QUEUE_NAME, DEAD_LETTER_QUEUE_NAME):
        client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
    create_queues()


def queued_messages(queue_name: str = QUEUE_NAME) -> list[dict[str, Any]]:
    """The visible messages of a queue, received and made visible again at once (a peek)."""
    client = sqs()
    url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: dict[str, dict[str, Any]] = {}
    while True:
        batch = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=5
        ).get("Messages", [])
        if not batch:
            break
        messages |= {message["MessageId"]: message for message in batch}
    for message in messages.values():
        client.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(messages.values())


def send_to_queue(body: str) -> None:
    """A message on the events queue, as the webhook or an EventBridge rule would put it there."""
    sqs().send_message(QueueUrl=QUEUE_URL, MessageBody=body)


def eventbridge_envelope(stripe_event: dict[str, Any]) -> str:
    """The body an EventBridge rule puts on the queue for an event of Stripe's event destination."""
    return json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": stripe_event["type"],
            "source": "aws.partner/stripe.com/ed_test_61SampleDestination",
            "account": "123456789012",
            "time": "2026-12-01T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": stripe_event,
        }
    )


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS event the event source mapping gives the function for these received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE_NAME}",
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }


@dataclass
class ConsumerRun:
    """What one or more consumer invocations did: each processed message's outcome by message id,
    and the ids of the messages the consumer reported failed."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    event_ids: dict[str, str] = field(default_factory=dict)
    batches: int = 0

    def only_outcome(self) -> str:
        """The outcome of the one message this run processed ("failed": it stays queued)."""
        (message_id,) = self.event_ids
        outcome = self.outcomes.get(message_id)
        return outcome.value if outcome is not None else "failed"

    def outcome_of(self, event_id: str) -> str:
        """What the consumer made of the event's last message ("failed": it stays queued)."""
        message_ids = [message_id for message_id, queued_id in self.event_ids.items() if queued_id == event_id]
        if not message_ids:
            return "not_processed"
        outcome = self.outcomes.get(message_ids[-1])
        return outcome.value if outcome is not None else "failed"


@contextmanager
def recording(run: ConsumerRun) -> Iterator[None]:
    """Record each message's outcome as the real consumer returns it."""
    real = event_sync_logic.sync_message

    def recorded(body: str, receive_count: int, receipt_handle: str, *args: Any) -> Outcome:
        outcome = real(body, receive_count, receipt_handle, *args)
        run.outcomes[receipt_handle] = outcome
        return outcome

    with patch("event_sync_handler.sync_message", recorded):
        yield


def invoke_consumer(messages: list[dict[str, Any]], run: ConsumerRun) -> PartialBatchResponse:
    """One invocation on these received messages; the ones it did not report are deleted."""
    with recording(run):
        response: PartialBatchResponse = event_sync_handler.lambda_handler(sqs_event(messages), FakeLambdaContext())
    run.batches += 1
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    client = sqs()
    for message in messages:
        run.event_ids[message["MessageId"]] = message.get("MessageAttributes", {}).get("event_id", {}).get("StringValue", "")
        if message["MessageId"] in failed:
            run.failed.append(message["MessageId"])
            _failed[message["MessageId"]] = message["ReceiptHandle"]
        else:
            _failed.pop(message["MessageId"], None)
            client.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
    # Outcomes were recorded by receipt handle: key them by message id.
    by_receipt = {message["ReceiptHandle"]: message["MessageId"] for message in messages}
    run.outcomes = {by_receipt.get(key, key): outcome for key, outcome in run.outcomes.items()}
    return response


def receive_batch(batch_size: int = BATCH_SIZE) -> list[dict[str, Any]]:
    return list(
        sqs()
        .receive_message(
            QueueUrl=QUEUE_URL, MaxNumberOfMessages=batch_size, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        .get("Messages", [])
    )


def drain(batch_size: int = BATCH_SIZE) -> ConsumerRun:
    """Run the consumer on the queue until no message is visible."""
    run = ConsumerRun()
    while messages := receive_batch(batch_size):
        invoke_consumer(messages, run)
    return run


def return_failed_now() -> int:
    """Make every message the consumer failed visible again at once (its backoff passed)."""
    client = sqs()
    for receipt in _failed.values():
        client.change_message_visibility(QueueUrl=QUEUE_URL, ReceiptHandle=receipt, VisibilityTimeout=0)
    count = len(_failed)
    _failed.clear()
    return count
