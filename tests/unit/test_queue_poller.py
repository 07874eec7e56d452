"""`make dev`'s SQS event source mapping (queue_poller) and the emulator's EventBridge delivery,
against an in-process SQS (moto) and a stand-in consumer written to the contract of
`event_sync_handler.lambda_handler`: an SQS batch event in, its partial batch response out,
each message either a queued webhook body (the Stripe event) or the EventBridge event Stripe's
destination emits (its `detail` the Stripe event)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from moto import mock_aws

from functions.local_stack.eventbridge_delivery import LOCAL_EVENT_SOURCE, EventBridgeToQueue
from functions.local_stack.queue_poller import QueuePoller, failed_message_ids
from functions.local_stack.template_model import QueueSource, load_local_stack
from tests.support.template import create_queues_from_template, load_template

PARTIAL = QueueSource(queue="StripeEventsQueue", batch_size=10, report_batch_item_failures=True)


def stripe_event(event_id: str, event_type: str = "customer.subscription.updated") -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": event_type, "data": {"object": {"id": "sub_1"}}}


class StandInConsumer:
    """Reads both envelopes as read_queued_event does; fails the Stripe events named in `failing`."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.seen: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []

    def _record(self, record: SqsRecordModel) -> None:
        body = json.loads(str(record.body))
        event = body["detail"] if "detail-type" in body else body
        self.seen.append(event)
        if event["id"] in self.failing:
            raise ValueError("a failing record")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """FunctionProcess.invoke's reply for a Powertools SQS batch handler (which raises when every record failed)."""
        self.records.extend(event["Records"])
        processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel)
        try:
            return {"response": process_partial_response(event, self._record, processor)}
        except Exception as exc:  # as worker.py reports a handler's failure
            return {"error": type(exc).__name__}


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def make_queue(sqs: Any, *, max_receives: int = 3) -> tuple[str, str, str]:
    """(queue URL, its ARN, its dead-letter queue's URL); failed messages come back at once."""
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "0", "RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_batch_reaches_the_handler_as_lambda_builds_it_and_is_deleted(sqs: Any) -> None:
    url, arn, _ = make_queue(sqs)
    for event_id in ("evt_1", "evt_2"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(stripe_event(event_id)))
    consumer = StandInConsumer()
    poller = QueuePoller(sqs, url, arn, PARTIAL, consumer.invoke, "EventSyncFunction")
    assert poller.poll_once(wait_seconds=0) == 2
    assert [event["id"] for event in consumer.seen] == ["evt_1", "evt_2"]
    record = consumer.records[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageId"] and record["receiptHandle"] and record["md5OfBody"]
    assert depth(sqs, url) == 0
    assert poller.poll_once(wait_seconds=0) == 0


def test_only_the_reported_failures_stay_and_reach_the_dead_letter_queue(sqs: Any) -> None:
    url, arn, dlq_url = make_queue(sqs, max_receives=2)
    for event_id in ("evt_ok", "evt_bad"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(stripe_event(event_id)))
    consumer = StandInConsumer(failing={"evt_bad"})
    poller = QueuePoller(sqs, url, arn, PARTIAL, consumer.invoke, "EventSyncFunction")
    poller.poll_once(wait_seconds=0)
    assert poller.poll_once(wait_seconds=0) == 1  # the failure, received again
    assert consumer.records[-1]["attributes"]["ApproximateReceiveCount"] == "2"
    assert poller.poll_once(wait_seconds=0) == 0  # after maxReceiveCount receives, the redrive policy moved it
    assert [json.loads(message["Body"])["id"] for message in sqs.receive_message(QueueUrl=dlq_url)["Messages"]] == ["evt_bad"]


@pytest.mark.parametrize(
    ("reply", "source", "failed"),
    [
        ({"error": "Exception"}, PARTIAL, {"m1", "m2"}),  # the invocation failed: the whole batch stays
        ({"response": {"batchItemFailures": [{"itemIdentifier": "m2"}]}}, PARTIAL, {"m2"}),
        ({"response": {"batchItemFailures": [{"itemIdentifier": "other"}]}}, PARTIAL, {"m1", "m2"}),
        ({"response": {"batchItemFailures": []}}, PARTIAL, set()),
        ({"response": None}, PARTIAL, set()),
        # Without ReportBatchItemFailures, Lambda ignores the response: a returned invocation is a success.
        ({"response": {"batchItemFailures": [{"itemIdentifier": "m2"}]}}, QueueSource("StripeEventsQueue"), set()),
    ],
)
def test_what_stays_on_the_queue(reply: dict[str, Any], source: QueueSource, failed: set[str]) -> None:
    assert failed_message_ids(reply, ["m1", "m2"], source) == failed


def test_the_emulator_delivers_stripes_eventbridge_event_to_the_queue(sqs: Any) -> None:
    url, arn, _ = make_queue(sqs)
    event = stripe_event("evt_eb", "invoice.paid")
    assert EventBridgeToQueue(sqs, url, arn)(json.dumps(event).encode()) == (200, "sent to the queue")
    consumer = StandInConsumer()
    QueuePoller(sqs, url, arn, PARTIAL, consumer.invoke, "EventSyncFunction").poll_once(wait_seconds=0)
    assert consumer.seen == [event]
    envelope = json.loads(consumer.records[0]["body"])
    assert envelope["version"] == "0"
    assert (envelope["source"], envelope["detail-type"]) == (LOCAL_EVENT_SOURCE, "invoice.paid")
    assert envelope["resources"] == [f"arn:aws:events:us-east-1::event-source/{LOCAL_EVENT_SOURCE}"]
    assert envelope["account"] == arn.split(":")[4]


def test_an_unreachable_queue_is_a_failed_attempt_for_the_emulator_to_retry(sqs: Any) -> None:
    missing = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    send = EventBridgeToQueue(sqs, missing, "arn:aws:sqs:us-east-1:123456789012:missing")
    status, reason = send(json.dumps(stripe_event("evt_1")).encode())
    assert status is None and reason


def test_the_templates_queues_are_created_as_defined(sqs: Any) -> None:
    queues = create_queues_from_template(sqs)
    template_queues = {
        name for name, res in load_template()["Resources"].items() if res["Type"] == "AWS::SQS::Queue" and "Condition" not in res
    }
    assert set(queues) == template_queues and "StripeEventsQueue" in queues
    for name, queue in queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
        assert attributes["QueueArn"] == queue.arn
        for key, value in load_template()["Resources"][name]["Properties"].items():
            if key == "RedrivePolicy":
                assert json.loads(attributes[key])["maxReceiveCount"] == value["maxReceiveCount"]
            elif not isinstance(value, bool):
                assert attributes[key] == str(value)


def test_the_local_stack_knows_the_rules_queue_and_feeds_each_sqs_consumer() -> None:
    mapping = load_template()["Resources"]["EventSyncFunction"]["Properties"]["Events"]["StripeEvents"]["Properties"]
    resources = {"BillingTable": "t", "StripeSecret": "arn:secret", "CommonLayer": "layer", "EntitlementsEventBus": "bus"}
    resources |= {"StripeEventsQueue": "http://sqs/queue", "StripeEventsQueue.Arn": "arn:aws:sqs:us-east-1:1:queue"}
    stack = load_local_stack({"JwtIssuer": "https://issuer", "JwtAudience": "aud", "AppBaseUrl": "http://app"}, resources)
    assert stack.rule_queues == {"StripeEventsRule": "StripeEventsQueue"}
    ((function, source),) = stack.queue_consumers()
    assert function.logical_id == "EventSyncFunction" and function.handler_module == "event_sync_handler"
    assert source == QueueSource("StripeEventsQueue", batch_size=mapping["BatchSize"], report_batch_item_failures=True)
    assert function.environment["EVENTS_QUEUE_URL"] == "http://sqs/queue"
    # Each function counts its remaining time down from its own Timeout, as in Lambda.
    template = load_template()
    for logical_id, spec in stack.functions.items():
        declared = template["Resources"][logical_id]["Properties"].get("Timeout", template["Globals"]["Function"]["Timeout"])
        assert spec.timeout == declared, logical_id
    assert stack.functions["BillingReconcileFunction"].timeout == 900


def test_message_attributes_are_spelled_as_lambda_spells_them(sqs: Any) -> None:
    url, arn, _ = make_queue(sqs)
    attributes = {"stripe_event_type": {"DataType": "String", "StringValue": "invoice.paid"}}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(stripe_event("evt_1")), MessageAttributes=attributes)
    consumer = StandInConsumer()
    QueuePoller(sqs, url, arn, PARTIAL, consumer.invoke, "EventSyncFunction").poll_once(wait_seconds=0)
    records = consumer.records
    assert records[0]["messageAttributes"] == {
        "stripe_event_type": {
            "stringValue": "invoice.paid",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert records[0]["md5OfMessageAttributes"]
    assert depth(sqs, url) == 0
