"""Unit tests never touch the network: any socket connection fails the test. The logic's tests
run against the Stripe port in memory and an in-process table."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tenant_billing.catalog import get_catalog
from tenant_billing.customer_store import DynamoCustomerStore
from tenant_billing.org_billing_store import DynamoOrgBillingStore
from tenant_billing.org_sync import sync_org
from tenant_billing.plan_change_store import DynamoPlanChangeStore
from tenant_billing.settings import get_settings
from tenant_billing.stripe_port import SubscriptionItem
from tests.conftest import TABLE_NAME, TEST_PRICES
from tests.support.template import create_table_from_template
from tests.unit.memory_stripe import PERIOD_END, MemoryStripe


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class Stores(DynamoOrgBillingStore, DynamoCustomerStore, DynamoPlanChangeStore):
    """The real stores the logic under test uses (checkout, plan changes, cancel/resume, sync), over one table."""


@pytest.fixture
def repository() -> Iterator[Stores]:
    """The real stores over an in-process (moto) table built from template.yaml."""
    with mock_aws():
        create_table_from_template(boto3.client("dynamodb", region_name="us-east-1"), TABLE_NAME)
        yield Stores(TABLE_NAME)


@pytest.fixture
def stripe() -> MemoryStripe:
    """The Stripe port in memory, holding the catalog's prices at the catalog's amounts."""
    return MemoryStripe({TEST_PRICES[entry.price.name]: entry.price.unit_amount for entry in get_catalog().prices()})


@pytest.fixture
def subscribed(stripe: MemoryStripe, repository: Stores) -> str:
    """org_1 on pro with 2 sites, linked and stored as Stripe has it: the subscription id."""
    customer_id = stripe.create_customer({"organization_id": "org_1"}, "key-org_1")
    claim = repository.claim_customer("org_1", "key-org_1", int(time.time()))
    repository.link_customer("org_1", customer_id, claim.idempotency_key)
    items = (
        SubscriptionItem("si_base", "price_pro_base", 1, PERIOD_END),
        SubscriptionItem("si_site", "price_pro_site", 2, PERIOD_END),
    )
    subscription = stripe.add_subscription(customer_id, items)
    sync_org("org_1", customer_id, stripe, repository, get_settings(), get_catalog())
    stripe.calls.clear()
    return subscription.id
