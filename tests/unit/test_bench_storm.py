"""The storm benchmark's pure parts: its delivery order, and its stand-in for moto's transaction
backup (only the written items, restored when the transaction fails: still all or nothing)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.bench.storm import DUPLICATE_FRACTION, item_level_transaction_backups, storm_order
from tests.support.template import create_table_from_template

TABLE = "bench-storm-unit"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table_from_template(client, TABLE)
        yield client


def _put(pk: str, value: str, condition: str | None = None) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": TABLE, "Item": {"pk": {"S": pk}, "sk": {"S": "X"}, "v": {"S": value}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _value(client: Any, pk: str) -> str | None:
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "X"}}).get("Item")
    return item["v"]["S"] if item else None


def test_a_failed_transaction_changes_nothing(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("a", "old")])
    with item_level_transaction_backups():
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(
                TransactItems=[_put("a", "new"), _put("b", "new"), _put("c", "new", "attribute_exists(pk)")]
            )
        assert (_value(dynamodb, "a"), _value(dynamodb, "b"), _value(dynamodb, "c")) == ("old", None, None)
        dynamodb.transact_write_items(TransactItems=[_put("a", "new"), _put("b", "new")])
    assert (_value(dynamodb, "a"), _value(dynamodb, "b")) == ("new", "new")


def test_the_storm_order_is_shuffled_with_a_tenth_twice() -> None:
    events = [{"id": f"evt_{n}"} for n in range(500)]
    first = storm_order(events, random.Random(1))
    assert first == storm_order(events, random.Random(1))
    counts = Counter(event["id"] for event in first)
    assert set(counts) == {event["id"] for event in events}
    assert sum(1 for count in counts.values() if count == 2) == round(DUPLICATE_FRACTION * len(events))
    assert [event["id"] for event in first[:20]] != [event["id"] for event in events[:20]]
