"""Unit tests never touch the network: any socket connection fails the test. The logic's tests
run against the Stripe port in memory and an in-process table."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tenant_billing.catalog import get_catalog
from tenant_billing.repository import BillingRepository, get_repository
from tests.conftest import TABLE_NAME, TEST_PRICES
from tests.support.template import create_table_from_template
from tests.unit.memory_stripe import MemoryStripe


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def repository() -> Iterator[BillingRepository]:
    """The real repository over an in-process (moto) table built from template.yaml."""
    with mock_aws():
        create_table_from_template(boto3.client("dynamodb", region_name="us-east-1"), TABLE_NAME)
        yield get_repository()


@pytest.fixture
def stripe() -> MemoryStripe:
    """The Stripe port in memory, holding the catalog's prices at the catalog's amounts."""
    return MemoryStripe({TEST_PRICES[price.name]: price.unit_amount for _, _, price in get_catalog().prices()})
