"""The organization's billing items: its subscription and entitlement (written together, under
the guard that only a later Stripe read wins), its open Checkout Session and its sync slot."""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from functools import cache
from typing import Protocol

from tenant_billing.dynamo import UNAVAILABLE, AttributeMap, DynamoTable, number, read_str, string, translated_errors
from tenant_billing.errors import TransientStoreError
from tenant_billing.item_codec import (
    customer_from_item,
    entitlement_from_item,
    entitlement_to_item,
    subscription_from_item,
    subscription_to_item,
)
from tenant_billing.items import (
    SK_CHECKOUT,
    SK_CUSTOMER,
    SK_ENTITLEMENT,
    SK_SUBSCRIPTION,
    SK_SYNC,
    CheckoutRecord,
    EntitlementRecord,
    OrgBilling,
    SubscriptionRecord,
    org_pk,
)
from tenant_billing.webhook_event_store import event_marker_item


class SaveOutcome(Enum):
    WRITTEN = "written"
    # A newer read of Stripe is already stored (or, for a write of one subscription's read-back,
    # the organization's stored subscription is another one).
    SUPERSEDED = "superseded"
    # The event marker already existed: another delivery of the same event took effect.
    DUPLICATE = "duplicate"


class OrgBillingStore(Protocol):
    def get_org_billing(self, org_id: str) -> OrgBilling: ...

    def save_subscription(
        self,
        record: SubscriptionRecord,
        entitlement: EntitlementRecord,
        event_id: str | None,
        event_type: str,
        event_expires_at: int,
        *,
        whole_org: bool,
    ) -> SaveOutcome: ...

    def record_checkout_session(self, org_id: str, session_id: str, replaces: str | None) -> bool: ...

    def claim_sync(self, org_id: str, now_ms: int, window_ms: int) -> bool: ...

    def release_sync(self, org_id: str, claimed_ms: int) -> None: ...


class OrgBillingBatchReader(Protocol):
    """Many organizations' items at once (reconciliation)."""

    def get_subscriptions(self, org_ids: Collection[str]) -> dict[str, SubscriptionRecord]: ...

    def get_entitlements(self, org_ids: Collection[str]) -> dict[str, EntitlementRecord]: ...


def query_org_items(table: DynamoTable, org_id: str) -> dict[str, AttributeMap]:
    """Every item of the organization's partition by sort key, in one consistent Query (a read
    right after a webhook must see what the webhook wrote)."""
    with translated_errors():
        response = table.client.query(
            TableName=table.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(org_pk(org_id))},
            ConsistentRead=True,
        )
    return {item["sk"]["S"]: item for item in response.get("Items", [])}


def _subscription_guard(record: SubscriptionRecord, whole_org: bool) -> tuple[str, AttributeMap]:
    """The condition under which `record` may replace the stored subscription item.

    Only a later Stripe read wins, so an out-of-order or slow read never regresses state. A
    `whole_org` record was chosen from all of the customer's subscriptions (see
    subscription_choice), so it may replace any stored one; a record read back from a change of one
    subscription may only update that same subscription, never switch the organization to it.
    """
    values: AttributeMap = {":read": number(record.read_at_ns)}
    if whole_org:
        return "attribute_not_exists(pk) OR read_at_ns < :read", values
    # Nor over a duplicate a whole-organization read recorded meanwhile (the caller then syncs).
    values[":sid"] = string(record.subscription_id)
    values[":none"] = number(0)
    return (
        "attribute_not_exists(pk) OR (subscription_id = :sid AND read_at_ns < :read AND size(other_live_ids) = :none)",
        values,
    )


class DynamoOrgBillingStore(DynamoTable):
    def get_org_billing(self, org_id: str) -> OrgBilling:
        by_sk = query_org_items(self, org_id)
        customer = by_sk.get(SK_CUSTOMER)
        subscription = by_sk.get(SK_SUBSCRIPTION)
        entitlement = by_sk.get(SK_ENTITLEMENT)
        checkout = by_sk.get(SK_CHECKOUT)
        return OrgBilling(
            customer=customer_from_item(org_id, customer) if customer else None,
            subscription=subscription_from_item(org_id, subscription) if subscription else None,
            entitlement=entitlement_from_item(org_id, entitlement) if entitlement else None,
            checkout=CheckoutRecord(org_id, read_str(checkout, "session_id")) if checkout else None,
        )

    def get_entitlement(self, org_id: str) -> EntitlementRecord | None:
        """The stored entitlement item alone, in one consistent GetItem (a feature check right
        after the webhook stored a change must see it)."""
        with translated_errors():
            response = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": string(org_pk(org_id)), "sk": string(SK_ENTITLEMENT)},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return entitlement_from_item(org_id, item) if item else None

    def save_subscription(
        self,
        record: SubscriptionRecord,
        entitlement: EntitlementRecord,
        event_id: str | None,
        event_type: str,
        event_expires_at: int,
        *,
        whole_org: bool,
    ) -> SaveOutcome:
        """Subscription, entitlement and the event marker in one transaction: all or nothing.

        Without an event id (a sync, or a change our API just made and read back from Stripe),
        only the subscription and the entitlement are written, under the same guard.
        """
        condition, values = _subscription_guard(record, whole_org)
        items: list[AttributeMap] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": subscription_to_item(record),
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            {"Put": {"TableName": self.table_name, "Item": entitlement_to_item(entitlement)}},
        ]
        if event_id is not None:
            marker = event_marker_item(event_id, event_type, event_expires_at)
            items.append(
                {"Put": {"TableName": self.table_name, "Item": marker, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        reasons = self.transact(items)
        if reasons is None:
            return SaveOutcome.WRITTEN
        if len(reasons) == 3 and reasons[2] == "ConditionalCheckFailed":
            return SaveOutcome.DUPLICATE
        if reasons[0] == "ConditionalCheckFailed":
            return SaveOutcome.SUPERSEDED
        raise TransientStoreError(UNAVAILABLE)

    def record_checkout_session(self, org_id: str, session_id: str, replaces: str | None) -> bool:
        """Make `session_id` the organization's one open Checkout Session, if the stored one is
        still `replaces` (None: no session stored yet). False when a concurrent checkout recorded
        another session first: the caller must then expire its own."""
        item: AttributeMap = {"pk": string(org_pk(org_id)), "sk": string(SK_CHECKOUT), "session_id": string(session_id)}
        if replaces is None:
            return self.write_if(self.client.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return self.write_if(
            self.client.put_item,
            Item=item,
            ConditionExpression="session_id = :previous",
            ExpressionAttributeValues={":previous": string(replaces)},
        )

    def claim_sync(self, org_id: str, now_ms: int, window_ms: int) -> bool:
        """Take the organization's on-demand sync slot: False when a sync read Stripe less than
        `window_ms` ago (the caller answers with what is stored)."""
        return self.write_if(
            self.client.put_item,
            Item={"pk": string(org_pk(org_id)), "sk": string(SK_SYNC), "synced_at_ms": number(now_ms)},
            ConditionExpression="attribute_not_exists(pk) OR synced_at_ms <= :cutoff",
            ExpressionAttributeValues={":cutoff": number(now_ms - window_ms)},
        )

    def release_sync(self, org_id: str, claimed_ms: int) -> None:
        """Give the slot back after a failed Stripe read, so the caller's retry reads Stripe again."""
        self.write_if(
            self.client.delete_item,
            Key={"pk": string(org_pk(org_id)), "sk": string(SK_SYNC)},
            ConditionExpression="synced_at_ms = :mine",
            ExpressionAttributeValues={":mine": number(claimed_ms)},
        )

    def get_subscriptions(self, org_ids: Collection[str]) -> dict[str, SubscriptionRecord]:
        """The stored subscription item of each organization that has one."""
        return {
            org_id: subscription_from_item(org_id, item)
            for org_id, item in self._batch_get_org_items(org_ids, SK_SUBSCRIPTION).items()
        }

    def get_entitlements(self, org_ids: Collection[str]) -> dict[str, EntitlementRecord]:
        """The stored entitlement item of each organization that has one."""
        return {
            org_id: entitlement_from_item(org_id, item)
            for org_id, item in self._batch_get_org_items(org_ids, SK_ENTITLEMENT).items()
        }

    def _batch_get_org_items(self, org_ids: Collection[str], sk: str) -> dict[str, AttributeMap]:
        keys = [{"pk": string(org_pk(org_id)), "sk": string(sk)} for org_id in sorted(set(org_ids))]
        prefix = org_pk("")
        return {item["pk"]["S"].removeprefix(prefix): item for item in self.batch_get(keys)}


@cache
def get_org_billing_store() -> DynamoOrgBillingStore:
    """The store over this environment's table, one per execution environment."""
    from tenant_billing.settings import get_settings

    return DynamoOrgBillingStore(get_settings().TABLE_NAME)
