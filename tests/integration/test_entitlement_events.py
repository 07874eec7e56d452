"""EntitlementsChanged events: DynamoDB stream records built from entitlement items the real
repository wrote, through the real handler, to moto's EventBridge; a rule on the bus delivers to
an SQS queue, from which the tests read what was published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

import entitlement_events_handler
from tenant_billing.aws_clients import events_client
from tenant_billing.settings import get_settings
from tests.conftest import TABLE_NAME, FakeLambdaContext
from tests.support.store import store_subscription

BUS_NAME = "billing-entitlements"
SOURCE = "saas.billing"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE_NAME}/stream/2026-01-01T00:00:00.000"
CHANGED_AT = 1773273600  # 2026-03-12T00:00:00Z
STARTER_FEATURES = ["page_builder", "media_library", "seo_toolkit"]
STARTER_LIMITS = {"sites": 1, "pages_per_site": 25, "storage_gb": 2}
PRO_FEATURES = ["page_builder", "media_library", "seo_toolkit", "analytics", "form_builder", "blog_engine"]


@dataclass
class StreamContext(FakeLambdaContext):
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture(autouse=True)
def _fresh_events_client() -> Iterator[None]:
    events_client.cache_clear()
    yield
    events_client.cache_clear()


@pytest.fixture
def queue_url(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bus named by EVENT_BUS_NAME, a rule for EntitlementsChanged on it, an SQS queue as its target."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS_NAME)
    get_settings.cache_clear()
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS_NAME)
    url: str = sqs.create_queue(QueueName="entitlement-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [SOURCE], "detail-type": ["EntitlementsChanged", "TrialEnding"]}
    events.put_rule(Name="entitlements", EventBusName=BUS_NAME, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="entitlements", EventBusName=BUS_NAME, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def published(queue_url: str) -> list[dict[str, Any]]:
    """Every event delivered to the queue so far (each read once)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    events: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return events


def entitlement_image(dynamodb: Any, org_id: str) -> dict[str, Any]:
    """The ENTITLEMENT item as stored: what the stream carries as NewImage / OldImage."""
    key = {"pk": {"S": f"ORG#{org_id}"}, "sk": {"S": "ENTITLEMENT"}}
    item: dict[str, Any] = dynamodb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)["Item"]
    return item


def stream_record(
    event_name: str,
    *,
    keys: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    sequence: int,
) -> dict[str, Any]:
    image = new or old
    assert image is not None
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": CHANGED_AT,
        "Keys": keys or {"pk": image["pk"], "sk": image["sk"]},
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": 256,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        data["NewImage"] = new
    if old is not None:
        data["OldImage"] = old
    return {
        "eventID": f"evt-{sequence:04d}-c4ca4238a0b923820dcc509a6f75849b",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": data,
        "eventSourceARN": STREAM_ARN,
    }


def invoke(*records: dict[str, Any], context: StreamContext | None = None) -> dict[str, Any]:
    response: dict[str, Any] = entitlement_events_handler.lambda_handler({"Records": list(records)}, context or StreamContext())
    return response


def change(dynamodb: Any, org_id: str, before: dict[str, Any], after: dict[str, Any], sequence: int) -> dict[str, Any]:
    """Store `before`, then `after`, and return the MODIFY record the stream would carry."""
    customer_id = f"cus_{org_id}"
    store_subscription(org_id, customer_id=customer_id, **before)
    old = entitlement_image(dynamodb, org_id)
    store_subscription(org_id, customer_id=customer_id, **after)
    return stream_record("MODIFY", new=entitlement_image(dynamodb, org_id), old=old, sequence=sequence)


class PutEventsSpy:
    """Counts PutEvents calls (botocore's before-call hook) and makes chosen ones fail before they
    reach moto, as a failed entry or as an error response."""

    def __init__(self, failures: dict[int, tuple[int, dict[str, Any]]] | None = None) -> None:
        self.calls = 0
        self.failures = failures or {}

    def __call__(self, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.calls in self.failures:
            status, parsed = self.failures[self.calls]
            return AWSResponse("https://events.us-east-1.amazonaws.com/", status, HTTPHeaders(), None), parsed
        return None


@pytest.fixture
def put_events_spy() -> Iterator[PutEventsSpy]:
    spy = PutEventsSpy()
    client = cast(Any, events_client())
    client.meta.events.register("before-call.eventbridge.PutEvents", spy)
    yield spy
    client.meta.events.unregister("before-call.eventbridge.PutEvents", spy)


FAILED_ENTRY = (200, {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]})
THROTTLED = (400, {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}})
SERVER_ERROR = (500, {"Error": {"Code": "InternalException", "Message": "internal error"}})


def test_an_upgrade_publishes_one_event_with_the_old_and_new_plan(
    dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy
) -> None:
    record = change(dynamodb, "org_up", {"plan": "starter", "site_quantity": 0}, {"plan": "pro", "site_quantity": 3}, 1)
    assert invoke(record) == {"batchItemFailures": []}
    (event,) = published(queue_url)
    assert put_events_spy.calls == 1
    assert (event["source"], event["detail-type"]) == (SOURCE, "EntitlementsChanged")
    assert event["detail"] == {
        "organizationId": "org_up",
        "oldPlan": "starter",
        "newPlan": "pro",
        "oldStatus": "active",
        "status": "active",
        "features": PRO_FEATURES,
        "limits": {"sites": 5, "pages_per_site": 100, "storage_gb": 10},
        "changeId": record["eventID"],
        "changedAt": "2026-03-12T00:00:00Z",
    }


def test_a_rewrite_of_identical_entitlements_publishes_nothing(
    dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy
) -> None:
    store_subscription("org_same", plan="pro", site_quantity=3)
    old = entitlement_image(dynamodb, "org_same")
    old["updated_at"] = {"N": str(int(old["updated_at"]["N"]) - 3600)}
    store_subscription("org_same", plan="pro", site_quantity=3)
    new = entitlement_image(dynamodb, "org_same")
    assert new != old
    assert invoke(stream_record("MODIFY", new=new, old=old, sequence=1)) == {"batchItemFailures": []}
    assert published(queue_url) == []
    assert put_events_spy.calls == 0


def test_a_new_entitlement_item_publishes_with_no_old_plan(dynamodb: Any, queue_url: str) -> None:
    store_subscription("org_new", plan="enterprise", site_quantity=2)
    record = stream_record("INSERT", new=entitlement_image(dynamodb, "org_new"), sequence=7)
    assert invoke(record) == {"batchItemFailures": []}
    (event,) = published(queue_url)
    assert event["detail"]["oldPlan"] is None
    assert event["detail"]["oldStatus"] is None
    assert (event["detail"]["newPlan"], event["detail"]["status"]) == ("enterprise", "active")
    assert event["detail"]["changeId"] == record["eventID"]


def test_a_canceled_subscription_publishes_the_fallback_entitlements(dynamodb: Any, queue_url: str) -> None:
    record = change(
        dynamodb, "org_gone", {"plan": "pro", "status": "active"}, {"plan": "pro", "status": "canceled", "site_quantity": 3}, 3
    )
    assert invoke(record) == {"batchItemFailures": []}
    (event,) = published(queue_url)
    detail = event["detail"]
    assert (detail["oldPlan"], detail["newPlan"]) == ("pro", "starter")
    assert (detail["oldStatus"], detail["status"]) == ("active", "canceled")
    assert (detail["features"], detail["limits"]) == (STARTER_FEATURES, STARTER_LIMITS)


def test_a_status_change_with_the_same_plan_is_a_change(dynamodb: Any, queue_url: str) -> None:
    record = change(dynamodb, "org_due", {"plan": "pro", "status": "active"}, {"plan": "pro", "status": "past_due"}, 4)
    invoke(record)
    (event,) = published(queue_url)
    assert (event["detail"]["oldStatus"], event["detail"]["status"], event["detail"]["newPlan"]) == ("active", "past_due", "pro")


def test_removals_and_other_items_are_ignored(dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy) -> None:
    store_subscription("org_misc", plan="pro")
    image = entitlement_image(dynamodb, "org_misc")
    subscription = dynamodb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": "ORG#org_misc"}, "sk": {"S": "SUBSCRIPTION"}}, ConsistentRead=True
    )["Item"]
    records = [
        stream_record("REMOVE", old=image, sequence=1),
        stream_record("INSERT", new=subscription, sequence=2),
        stream_record("MODIFY", new=subscription, old={**subscription, "status": {"S": "trialing"}}, sequence=3),
    ]
    assert invoke(*records) == {"batchItemFailures": []}
    assert published(queue_url) == []
    assert put_events_spy.calls == 0


@pytest.mark.parametrize("failure", [FAILED_ENTRY, THROTTLED, SERVER_ERROR], ids=["failed-entry", "throttled", "5xx"])
def test_a_failed_publish_is_retried_from_that_record_and_nothing_is_sent_twice(
    dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy, failure: tuple[int, dict[str, Any]]
) -> None:
    records = [
        change(dynamodb, f"org_{n}", {"plan": "starter", "site_quantity": 0}, {"plan": "pro", "site_quantity": n}, n)
        for n in (1, 2, 3)
    ]
    put_events_spy.failures = {2: failure}
    answer = invoke(*records)
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    assert put_events_spy.calls == 2
    first = published(queue_url)
    assert [event["detail"]["organizationId"] for event in first] == ["org_1"]

    # Lambda checkpoints before the reported record and sends the batch again from it.
    assert invoke(*records[1:]) == {"batchItemFailures": []}
    retried = published(queue_url)
    assert [event["detail"]["organizationId"] for event in retried] == ["org_2", "org_3"]
    change_ids = [event["detail"]["changeId"] for event in first + retried]
    assert change_ids == [record["eventID"] for record in records]
    assert put_events_spy.calls == 4


def test_unchanged_records_before_a_failure_are_not_reported(dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy) -> None:
    store_subscription("org_same", plan="pro")
    same = entitlement_image(dynamodb, "org_same")
    changed = change(dynamodb, "org_up", {"plan": "starter"}, {"plan": "enterprise"}, 2)
    put_events_spy.failures = {1: THROTTLED}
    answer = invoke(stream_record("MODIFY", new=same, old=same, sequence=1), changed)
    assert answer == {"batchItemFailures": [{"itemIdentifier": changed["dynamodb"]["SequenceNumber"]}]}
    assert published(queue_url) == []


def test_with_too_little_time_left_the_rest_of_the_batch_is_retried_unsent(
    dynamodb: Any, queue_url: str, put_events_spy: PutEventsSpy
) -> None:
    record = change(dynamodb, "org_late", {"plan": "starter"}, {"plan": "pro"}, 5)
    answer = invoke(record, context=StreamContext(remaining_ms=5_000))
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert put_events_spy.calls == 0
    assert published(queue_url) == []


def test_an_unreadable_image_is_reported_not_skipped(dynamodb: Any, queue_url: str) -> None:
    good = change(dynamodb, "org_ok", {"plan": "starter"}, {"plan": "pro"}, 1)
    no_plan = {"pk": {"S": "ORG#org_bad"}, "sk": {"S": "ENTITLEMENT"}, "features": {"S": "x"}}
    broken = stream_record("MODIFY", new=no_plan, sequence=2)
    answer = invoke(good, broken)
    assert answer == {"batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]}
    assert [event["detail"]["organizationId"] for event in published(queue_url)] == ["org_ok"]


def test_events_go_to_the_configured_bus_only(dynamodb: Any, queue_url: str) -> None:
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    default_url = sqs.create_queue(QueueName="default-bus")["QueueUrl"]
    default_arn = sqs.get_queue_attributes(QueueUrl=default_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-billing", EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="all-billing", Targets=[{"Id": "queue", "Arn": default_arn}])
    invoke(change(dynamodb, "org_bus", {"plan": "starter"}, {"plan": "pro"}, 1))
    assert len(published(queue_url)) == 1
    assert published(default_url) == []
