"""The entitlement reader other Lambdas use: one consistent GetItem per check, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.entitlement_reader import get_entitlements, has_feature, limit
from tenant_billing.entitlements import Entitlement
from tenant_billing.errors import TransientStoreError
from tests.conftest import TABLE_NAME
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.store import store_subscription

STARTER = Entitlement(
    "starter", ("page_builder", "media_library", "seo_toolkit"), {"sites": 1, "pages_per_site": 25, "storage_gb": 2}
)


@pytest.mark.usefixtures("dynamodb")
def test_a_subscribed_organization_reads_its_stored_entitlements_in_one_get_item() -> None:
    store_subscription("org_pro", plan="pro", site_quantity=3)
    with count_dynamodb_calls() as calls:
        entitlement = get_entitlements("org_pro")
    assert calls == {"GetItem": 1}
    assert entitlement.plan == "pro"
    assert entitlement.limits == {"sites": 5, "pages_per_site": 100, "storage_gb": 10}
    with count_dynamodb_calls() as calls:
        assert has_feature("org_pro", "analytics") is True
    assert calls == {"GetItem": 1}
    with count_dynamodb_calls() as calls:
        assert limit("org_pro", "sites") == 5
    assert calls == {"GetItem": 1}
    assert has_feature("org_pro", "white_label") is False
    assert limit("org_pro", "no_such_limit") == 0


@pytest.mark.usefixtures("dynamodb")
def test_an_unknown_organization_gets_the_fallback_plan() -> None:
    with count_dynamodb_calls() as calls:
        assert get_entitlements("org_nobody") == STARTER
    assert calls == {"GetItem": 1}
    assert has_feature("org_nobody", "page_builder") is True
    assert has_feature("org_nobody", "analytics") is False
    assert limit("org_nobody", "sites") == 1
    assert limit("org_nobody", "no_such_limit") == 0


@pytest.mark.usefixtures("dynamodb")
def test_a_canceled_subscription_reads_as_the_fallback() -> None:
    store_subscription("org_gone", plan="enterprise", status="canceled", site_quantity=4)
    assert get_entitlements("org_gone") == STARTER


def test_the_read_is_consistent_and_uses_the_table_given(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="other-table",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store_subscription("org_pro", plan="pro", site_quantity=3)
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        seen.append(params)

    client = cast(Any, dynamodb_client())
    client.meta.events.register("provide-client-params.dynamodb.GetItem", record)
    try:
        assert get_entitlements("org_pro").plan == "pro"
        assert get_entitlements("org_pro", table_name="other-table") == STARTER
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.GetItem", record)
    assert [(params["TableName"], params["ConsistentRead"]) for params in seen] == [(TABLE_NAME, True), ("other-table", True)]


@pytest.fixture
def throttled_get_item(dynamodb: Any) -> Iterator[None]:
    def throttle(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
        return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, HTTPHeaders(), None), error

    client = cast(Any, dynamodb_client())
    client.meta.events.register("before-call.dynamodb.GetItem", throttle)
    yield
    client.meta.events.unregister("before-call.dynamodb.GetItem", throttle)


@pytest.mark.usefixtures("throttled_get_item")
def test_throttling_is_a_transient_store_error() -> None:
    with pytest.raises(TransientStoreError):
        has_feature("org_pro", "analytics")
