"""The shared DynamoDB helpers (no network: a stand-in client) and the stored items' codec."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tenant_billing import dynamo
from tenant_billing.dynamo import DynamoTable, translated_errors
from tenant_billing.errors import TransientStoreError
from tenant_billing.item_codec import (
    entitlement_from_item,
    entitlement_to_item,
    subscription_from_item,
    subscription_to_item,
)
from tenant_billing.items import EntitlementRecord, SubscriptionRecord


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")


@pytest.mark.parametrize("code", sorted(dynamo.TRANSIENT_ERROR_CODES))
def test_throttling_and_service_failures_become_retryable(code: str) -> None:
    with pytest.raises(TransientStoreError), translated_errors():
        raise client_error(code)


def test_other_client_errors_pass_unchanged() -> None:
    with pytest.raises(ClientError), translated_errors():
        raise client_error("ValidationException")


class BatchClient:
    """BatchGetItem that leaves `unprocessed` calls' keys unprocessed before answering them."""

    def __init__(self, unprocessed: int) -> None:
        self.unprocessed = unprocessed
        self.calls: list[list[Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems["t"]["Keys"]
        self.calls.append(keys)
        if self.unprocessed:
            self.unprocessed -= 1
            return {"Responses": {"t": []}, "UnprocessedKeys": RequestItems}
        return {"Responses": {"t": [dict(key) for key in keys]}}


def table(client: BatchClient) -> DynamoTable:
    return DynamoTable("t", lambda: client)  # type: ignore[arg-type, return-value]


def test_batch_get_reads_100_keys_a_call_and_retries_unprocessed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenant_billing.dynamo.time.sleep", lambda seconds: None)
    client = BatchClient(unprocessed=1)
    keys = [{"pk": {"S": f"k{number}"}} for number in range(150)]
    assert table(client).batch_get(keys) == keys
    assert [len(call) for call in client.calls] == [100, 100, 50]


def test_batch_get_gives_up_after_its_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenant_billing.dynamo.time.sleep", lambda seconds: None)
    client = BatchClient(unprocessed=10)
    with pytest.raises(TransientStoreError):
        table(client).batch_get([{"pk": {"S": "k"}}], attempts=3)
    assert len(client.calls) == 3


def test_subscription_and_entitlement_items_round_trip() -> None:
    record = SubscriptionRecord(
        org_id="org_a",
        subscription_id="sub_a",
        customer_id="cus_a",
        status="active",
        plan="pro",
        site_quantity=3,
        current_period_end=1_800_000_000,
        cancel_at_period_end=True,
        created=1_700_000_000,
        read_at_ns=123,
        other_live_ids=("sub_b",),
        cancel_at=1_800_000_000,
        pending_plan="enterprise",
        pending_site_quantity=4,
        pending_expires_at=1_750_000_000,
    )
    assert subscription_from_item("org_a", subscription_to_item(record)) == record
    bare = SubscriptionRecord("org_a", "sub_a", "cus_a", "incomplete", None, 0, None, False, 1, 2)
    assert subscription_from_item("org_a", subscription_to_item(bare)) == bare
    entitlement = EntitlementRecord("org_a", "pro", None, ("analytics",), {"sites": 5}, 9)
    assert entitlement_from_item("org_a", entitlement_to_item(entitlement)) == entitlement
