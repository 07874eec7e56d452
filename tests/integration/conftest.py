"""Integration tests run the real handlers against moto (DynamoDB table built from template.yaml,
the Stripe secret in Secrets Manager) and the Stripe fake reached through the real SDK."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from moto import mock_aws

from tenant_billing.catalog import Catalog, get_catalog
from tests.conftest import SECRET_NAME, TABLE_NAME, TEST_PRICES, reset_caches
from tests.stripe_fake import TEST_API_KEY, FakeStripe, FakeStripeHTTPClient
from tests.support.flows import WEBHOOK_SECRET
from tests.support.queue import create_queues
from tests.support.template import create_table_from_template


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_queues()
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table_from_template(client, TABLE_NAME)
    return client


@pytest.fixture
def table_items(dynamodb: Any) -> Callable[[], list[dict[str, Any]]]:
    """A function returning every item in the table (to assert what was, or was not, written)."""

    def scan() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
        return items

    return scan


@pytest.fixture
def stripe_secret(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Stripe secret as the template's secret holds it, its ARN in STRIPE_SECRET_ARN."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    value = {"STRIPE_SECRET_KEY": TEST_API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    arn: str = client.create_secret(Name=SECRET_NAME, SecretString=json.dumps(value))["ARN"]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    reset_caches()
    return arn


def add_catalog_prices(fake: FakeStripe, catalog: Catalog, prices: Mapping[str, str]) -> FakeStripe:
    """The catalog's prices in the fake, at the catalog's amounts, under the ids `prices` gives them."""
    for entry in catalog.prices():
        price = entry.price
        if price.name in prices and prices[price.name] not in fake.prices:
            product = price.name.replace("_", " ").title()
            fake.add_price(
                prices[price.name],
                product_name=product,
                unit_amount=price.unit_amount,
                currency=catalog.currency,
                interval=entry.ref.interval,
            )
    return fake


def new_stripe_fake() -> FakeStripe:
    """A Stripe fake holding the catalog's prices."""
    return add_catalog_prices(FakeStripe(), get_catalog(), TEST_PRICES)


@contextmanager
def stripe_talks_to(fake: FakeStripe) -> Iterator[FakeStripe]:
    """Every StripeClient the code builds inside the block sends its requests to `fake`."""
    from tenant_billing import stripe_adapter

    with patch.object(stripe_adapter, "build_http_client", lambda: FakeStripeHTTPClient(fake, sleep=False)):
        stripe_adapter._adapter_for_key.cache_clear()
        try:
            yield fake
        finally:
            stripe_adapter._adapter_for_key.cache_clear()


@pytest.fixture
def stripe_fake() -> Iterator[FakeStripe]:
    with stripe_talks_to(new_stripe_fake()) as fake:
        yield fake


@pytest.fixture
def billing(dynamodb: Any, stripe_secret: str, stripe_fake: FakeStripe) -> FakeStripe:
    """Everything a billing function needs: table, secret and Stripe."""
    return stripe_fake
