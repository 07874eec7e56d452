"""What an organization may use, for any Lambda that gates a feature: one consistent GetItem.

    from tenant_billing.entitlement_reader import get_entitlements, has_feature, limit

    if not has_feature(org_id, "analytics"): ...
    if site_count >= limit(org_id, "sites"): ...

Each call is one read; to check several things at once, read `get_entitlements(org_id)` once.
The caller's role needs `dynamodb:GetItem` on the table. An organization without an entitlement
item (it never subscribed) gets the catalog's fallback plan, as `GET /billing/status` shows it.
Throttling and DynamoDB-side failures raise `TransientStoreError` (retryable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.catalog import Catalog, get_catalog
from tenant_billing.entitlements import Entitlement, derive_entitlement
from tenant_billing.org_billing_store import DynamoOrgBillingStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def get_entitlements(
    org_id: str,
    *,
    table_name: str | None = None,
    client_factory: Callable[[], DynamoDBClient] = dynamodb_client,
    catalog: Catalog | None = None,
) -> Entitlement:
    """The organization's plan, features and limits (the fallback plan's when none is stored).

    `table_name` defaults to the TABLE_NAME setting.
    """
    if table_name is None:
        from tenant_billing.settings import get_settings

        table_name = get_settings().TABLE_NAME
    record = DynamoOrgBillingStore(table_name, client_factory).get_entitlement(org_id)
    if record is None:
        return derive_entitlement(catalog or get_catalog(), None, None)
    return Entitlement(plan=record.plan, features=record.features, limits=record.limits)


def has_feature(
    org_id: str,
    feature: str,
    *,
    table_name: str | None = None,
    client_factory: Callable[[], DynamoDBClient] = dynamodb_client,
    catalog: Catalog | None = None,
) -> bool:
    return feature in get_entitlements(org_id, table_name=table_name, client_factory=client_factory, catalog=catalog).features


def limit(
    org_id: str,
    name: str,
    *,
    table_name: str | None = None,
    client_factory: Callable[[], DynamoDBClient] = dynamodb_client,
    catalog: Catalog | None = None,
) -> int:
    """The numeric limit `name` (0 when the plan has no such limit: nothing is granted unknowingly)."""
    limits = get_entitlements(org_id, table_name=table_name, client_factory=client_factory, catalog=catalog).limits
    return limits.get(name, 0)
