"""Integration tests run the real handlers against moto, with the table built from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import TABLE_NAME
from tests.support.template import create_table_from_template


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table_from_template(client, TABLE_NAME)
    return client


@pytest.fixture
def table_items(dynamodb: Any) -> Any:
    """A function returning every item in the table (to assert what was, or was not, written)."""

    def scan() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
        return items

    return scan
