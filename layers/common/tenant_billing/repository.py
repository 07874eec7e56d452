"""The single-table repository: every DynamoDB call the functions make goes through here.

Handlers and logic depend on the `BillingRepository` protocol, never on boto3, so logic can be
tested against another implementation and the table layout stays in one place (see `items`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.errors import TransientStoreError
from tenant_billing.items import (
    QUOTE_PREFIX,
    SK_CHANGE_LOCK,
    SK_CHECKOUT,
    SK_CUSTOMER,
    SK_ENTITLEMENT,
    SK_EVENT,
    SK_ORG,
    SK_QUOTE,
    SK_SUBSCRIPTION,
    SK_SYNC,
    TTL_ATTRIBUTE,
    CheckoutRecord,
    CustomerLink,
    EntitlementRecord,
    OrgBilling,
    SubscriptionRecord,
    customer_pk,
    event_pk,
    org_pk,
)
from tenant_billing.quotes import Quote

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Error codes that mean "try again later": nothing was written, the caller gets a retryable 5xx.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)

AttributeMap = dict[str, Any]


class SaveOutcome(Enum):
    WRITTEN = "written"
    # A newer read of Stripe is already stored (or, for a write of one subscription's read-back,
    # the organization's stored subscription is another one).
    SUPERSEDED = "superseded"
    # The event marker already existed: another delivery of the same event took effect.
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class EventLookup:
    already_processed: bool
    # The organization the event's Stripe customer belongs to; None when it is not ours.
    org_id: str | None


# --- reconciliation state (see reconcile_logic) --------------------------------------------------

RECONCILE_STATE_KEY = ("RECONCILE#state", "STATE")
RECONCILE_SEEN_PREFIX = "RECONCILE#run#"
RECONCILE_COUNTERS = ("checked", "repaired", "not_ours", "orphaned", "duplicates", "superseded")


@dataclass(frozen=True, slots=True)
class ReconcileCheckpoint:
    """Where the reconciliation run stands, stored in one item together with its lease."""

    # "idle" between runs, then "stripe" (walking Stripe's subscriptions), then "table" (the Scan).
    phase: str = "idle"
    run_id: str = ""
    # When the run began (ns): a stored read that started later is newer than anything the run saw.
    started_ns: int = 0
    # The last Stripe subscription done (the list's starting_after); empty: from the newest.
    stripe_cursor: str = ""
    # The Scan's ExclusiveStartKey as JSON (opaque to callers); empty: from the start.
    scan_cursor: str = ""
    # How many pages of "seen in Stripe" subscription ids the run stored (RECONCILE#run#<run id>).
    seen_pages: int = 0
    counts: dict[str, int] = field(default_factory=dict, hash=False)
    last_run_id: str = ""
    last_completed_at: int = 0


@dataclass(frozen=True, slots=True)
class ScannedSubscription:
    record: SubscriptionRecord
    # A scan resumed from this cursor continues right after this item.
    cursor: str


class BillingRepository(Protocol):
    def get_org_billing(self, org_id: str) -> OrgBilling: ...

    def claim_customer(self, org_id: str, idempotency_key: str, now: int) -> CustomerLink: ...

    def replace_stale_claim(self, stale: CustomerLink, idempotency_key: str, now: int) -> CustomerLink: ...

    def link_customer(self, org_id: str, customer_id: str, idempotency_key: str) -> str: ...

    def lookup_event(self, event_id: str, customer_id: str | None) -> EventLookup: ...

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

    def save_quote(self, quote: Quote) -> None: ...

    def get_quote(self, preview_id: str) -> Quote | None: ...

    def consume_quote(self, preview_id: str) -> bool: ...

    def acquire_change_lock(self, org_id: str, owner: str, now_ms: int, until_ms: int) -> bool: ...

    def release_change_lock(self, org_id: str, owner: str) -> None: ...

    def release_sync(self, org_id: str, claimed_ms: int) -> None: ...

    def mark_event(self, event_id: str, event_type: str, expires_at: int) -> bool: ...

    def get_customer_orgs(self, customer_ids: Collection[str]) -> dict[str, str]: ...

    def get_subscriptions(self, org_ids: Collection[str]) -> dict[str, SubscriptionRecord]: ...

    def get_entitlements(self, org_ids: Collection[str]) -> dict[str, EntitlementRecord]: ...

    def scan_subscriptions(self, cursor: str, limit: int) -> tuple[list[ScannedSubscription], str]: ...

    def acquire_reconcile_lease(self, owner: str, now_ms: int, lease_until_ms: int) -> ReconcileCheckpoint | None: ...

    def save_reconcile_checkpoint(
        self,
        owner: str,
        checkpoint: ReconcileCheckpoint,
        lease_until_ms: int | None,
        seen_page: tuple[int, Sequence[str], int] | None = None,
    ) -> bool: ...

    def reconcile_seen_ids(self, run_id: str, pages: int) -> set[str]: ...


# --- attribute (de)serialization -------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _str(item: AttributeMap, name: str, default: str = "") -> str:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else default


def _int(item: AttributeMap, name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None


def _bool(item: AttributeMap, name: str) -> bool:
    value = item.get(name)
    return bool(value and value.get("BOOL"))


def _customer_from_item(org_id: str, item: AttributeMap) -> CustomerLink:
    return CustomerLink(
        org_id=org_id,
        customer_id=_str(item, "customer_id"),
        idempotency_key=_str(item, "idempotency_key"),
        claimed_at=_int(item, "claimed_at") or 0,
    )


def _subscription_to_item(record: SubscriptionRecord) -> AttributeMap:
    item: AttributeMap = {
        "pk": _s(org_pk(record.org_id)),
        "sk": _s(SK_SUBSCRIPTION),
        "subscription_id": _s(record.subscription_id),
        "customer_id": _s(record.customer_id),
        "status": _s(record.status),
        "site_quantity": _n(record.site_quantity),
        "cancel_at_period_end": {"BOOL": record.cancel_at_period_end},
        "sub_created": _n(record.created),
        "read_at_ns": _n(record.read_at_ns),
        "prices_known": {"BOOL": record.prices_known},
        "other_live_ids": {"L": [_s(other) for other in record.other_live_ids]},
        "pending_site_quantity": _n(record.pending_site_quantity),
    }
    optional = {
        "plan": record.plan and _s(record.plan),
        "pending_plan": record.pending_plan and _s(record.pending_plan),
        "cancel_at": record.cancel_at is not None and _n(record.cancel_at),
        "pending_expires_at": record.pending_expires_at is not None and _n(record.pending_expires_at),
    }
    item.update({name: value for name, value in optional.items() if value})
    if record.current_period_end is not None:
        item["current_period_end"] = _n(record.current_period_end)
    return item


def _subscription_from_item(org_id: str, item: AttributeMap) -> SubscriptionRecord:
    plan = _str(item, "plan")
    return SubscriptionRecord(
        org_id=org_id,
        subscription_id=_str(item, "subscription_id"),
        customer_id=_str(item, "customer_id"),
        status=_str(item, "status"),
        plan=plan or None,
        site_quantity=_int(item, "site_quantity") or 0,
        current_period_end=_int(item, "current_period_end"),
        cancel_at_period_end=_bool(item, "cancel_at_period_end"),
        created=_int(item, "sub_created") or 0,
        read_at_ns=_int(item, "read_at_ns") or 0,
        prices_known=_bool(item, "prices_known"),
        other_live_ids=tuple(str(value["S"]) for value in item.get("other_live_ids", {}).get("L", [])),
        cancel_at=_int(item, "cancel_at"),
        pending_plan=_str(item, "pending_plan") or None,
        pending_site_quantity=_int(item, "pending_site_quantity") or 0,
        pending_expires_at=_int(item, "pending_expires_at"),
    )


def _entitlement_to_item(record: EntitlementRecord) -> AttributeMap:
    item: AttributeMap = {
        "pk": _s(org_pk(record.org_id)),
        "sk": _s(SK_ENTITLEMENT),
        "plan": _s(record.plan),
        "features": {"L": [_s(feature) for feature in record.features]},
        "limits": {"M": {name: _n(value) for name, value in record.limits.items()}},
        "updated_at": _n(record.updated_at),
    }
    if record.status is not None:
        item["status"] = _s(record.status)
    return item


def _entitlement_from_item(org_id: str, item: AttributeMap) -> EntitlementRecord:
    return EntitlementRecord(
        org_id=org_id,
        plan=_str(item, "plan"),
        status=_str(item, "status") or None,
        features=tuple(str(value["S"]) for value in item.get("features", {}).get("L", [])),
        limits={name: int(value["N"]) for name, value in item.get("limits", {}).get("M", {}).items()},
        updated_at=_int(item, "updated_at") or 0,
    )


def _subscription_guard(record: SubscriptionRecord, whole_org: bool) -> tuple[str, AttributeMap]:
    """The condition under which `record` may replace the stored subscription item.

    Only a later Stripe read wins, so an out-of-order or slow read never regresses state. A
    `whole_org` record was chosen from all of the customer's subscriptions (see
    subscription_choice), so it may replace any stored one; a record read back from a change of one
    subscription may only update that same subscription, never switch the organization to it.
    """
    values: AttributeMap = {":read": _n(record.read_at_ns)}
    if whole_org:
        return "attribute_not_exists(pk) OR read_at_ns < :read", values
    # Nor over a duplicate a whole-organization read recorded meanwhile (the caller then syncs).
    values[":sid"] = _s(record.subscription_id)
    values[":none"] = _n(0)
    return (
        "attribute_not_exists(pk) OR (subscription_id = :sid AND read_at_ns < :read AND size(other_live_ids) = :none)",
        values,
    )


# --- the DynamoDB implementation --------------------------------------------------------------


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Throttling, timeouts and DynamoDB-side failures become TransientStoreError (a retryable 503)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in TRANSIENT_ERROR_CODES:
            raise TransientStoreError("billing storage is temporarily unavailable, try again") from exc
        raise
    except (ConnectionError, HTTPClientError) as exc:
        raise TransientStoreError("billing storage is temporarily unavailable, try again") from exc


class DynamoBillingRepository:
    """`BillingRepository` over one DynamoDB table (boto3's low-level client: no resource layer)."""

    def __init__(self, table_name: str, client_factory: Callable[[], DynamoDBClient] = dynamodb_client) -> None:
        self._table = table_name
        self._client_factory = client_factory

    @property
    def _client(self) -> DynamoDBClient:
        return self._client_factory()

    def _transact(self, items: list[AttributeMap]) -> list[str] | None:
        """TransactWriteItems with short retries of TransactionConflict (another transaction on the
        same items in flight). None when written; the cancellation reasons when a condition failed,
        for the caller to interpret; TransientStoreError for anything else."""
        for attempt in range(3):
            try:
                with _translated_errors():
                    self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return None
            except self._client.exceptions.TransactionCanceledException as exc:
                reasons = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    return reasons
                if "TransactionConflict" in reasons and attempt < 2:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise TransientStoreError("billing storage is temporarily unavailable, try again") from exc
        raise TransientStoreError("billing storage is temporarily unavailable, try again")

    def get_org_billing(self, org_id: str) -> OrgBilling:
        # One Query reads the whole organization partition (customer, subscription, entitlement).
        # Consistent: a status call right after a webhook must see what the webhook wrote.
        with _translated_errors():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(org_pk(org_id))},
                ConsistentRead=True,
            )
        by_sk = {item["sk"]["S"]: item for item in response.get("Items", [])}
        customer = by_sk.get(SK_CUSTOMER)
        subscription = by_sk.get(SK_SUBSCRIPTION)
        entitlement = by_sk.get(SK_ENTITLEMENT)
        checkout = by_sk.get(SK_CHECKOUT)
        return OrgBilling(
            customer=_customer_from_item(org_id, customer) if customer else None,
            subscription=_subscription_from_item(org_id, subscription) if subscription else None,
            entitlement=_entitlement_from_item(org_id, entitlement) if entitlement else None,
            checkout=CheckoutRecord(org_id, _str(checkout, "session_id")) if checkout else None,
        )

    def claim_customer(self, org_id: str, idempotency_key: str, now: int) -> CustomerLink:
        """Claim the right to create the org's Stripe customer, or return the existing claim/link."""
        try:
            with _translated_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "pk": _s(org_pk(org_id)),
                        "sk": _s(SK_CUSTOMER),
                        "idempotency_key": _s(idempotency_key),
                        "claimed_at": _n(now),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            return _customer_from_item(org_id, cast(AttributeMap, exc.response.get("Item") or {}))
        return CustomerLink(org_id=org_id, customer_id="", idempotency_key=idempotency_key, claimed_at=now)

    def replace_stale_claim(self, stale: CustomerLink, idempotency_key: str, now: int) -> CustomerLink:
        """Take over an unfinished claim whose Stripe idempotency key may have expired."""
        try:
            with _translated_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": _s(org_pk(stale.org_id)), "sk": _s(SK_CUSTOMER)},
                    UpdateExpression="SET idempotency_key = :new, claimed_at = :now",
                    ConditionExpression="idempotency_key = :old AND attribute_not_exists(customer_id)",
                    ExpressionAttributeValues={":new": _s(idempotency_key), ":old": _s(stale.idempotency_key), ":now": _n(now)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            return _customer_from_item(stale.org_id, cast(AttributeMap, exc.response.get("Item") or {}))
        return CustomerLink(org_id=stale.org_id, customer_id="", idempotency_key=idempotency_key, claimed_at=now)

    def link_customer(self, org_id: str, customer_id: str, idempotency_key: str) -> str:
        """Write both directions of the org <-> customer link atomically; return the linked id.

        Idempotent: a concurrent caller that created (through the same idempotency key) the same
        customer passes the conditions too. If the org is already linked to another customer
        (a stale claim was taken over meanwhile), that link stands and its id is returned.
        """
        items: list[AttributeMap] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": _s(org_pk(org_id)), "sk": _s(SK_CUSTOMER)},
                    "UpdateExpression": "SET customer_id = :cus",
                    "ConditionExpression": "(attribute_not_exists(customer_id) AND idempotency_key = :key) OR customer_id = :cus",
                    "ExpressionAttributeValues": {":cus": _s(customer_id), ":key": _s(idempotency_key)},
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {"pk": _s(customer_pk(customer_id)), "sk": _s(SK_ORG), "org_id": _s(org_id)},
                    "ConditionExpression": "attribute_not_exists(pk) OR org_id = :org",
                    "ExpressionAttributeValues": {":org": _s(org_id)},
                }
            },
        ]
        if self._transact(items) is None:
            return customer_id
        linked = self.get_org_billing(org_id).customer
        if linked is not None and linked.is_linked:
            return linked.customer_id
        raise TransientStoreError("billing storage is temporarily unavailable, try again")

    def lookup_event(self, event_id: str, customer_id: str | None) -> EventLookup:
        """One BatchGetItem: has this event taken effect, and which org owns its customer?"""
        keys: list[AttributeMap] = [{"pk": _s(event_pk(event_id)), "sk": _s(SK_EVENT)}]
        if customer_id:
            keys.append({"pk": _s(customer_pk(customer_id)), "sk": _s(SK_ORG)})
        # Three attempts: Stripe is waiting on this webhook; a 503 makes it retry later.
        found = self._batch_get(keys, attempts=3)
        seen = any(item["sk"]["S"] == SK_EVENT for item in found)
        org_id = next((_str(item, "org_id") for item in found if item["sk"]["S"] == SK_ORG), None)
        return EventLookup(already_processed=seen, org_id=org_id or None)

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
                    "TableName": self._table,
                    "Item": _subscription_to_item(record),
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            {"Put": {"TableName": self._table, "Item": _entitlement_to_item(entitlement)}},
        ]
        if event_id is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._event_item(event_id, event_type, event_expires_at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        reasons = self._transact(items)
        if reasons is None:
            return SaveOutcome.WRITTEN
        if len(reasons) == 3 and reasons[2] == "ConditionalCheckFailed":
            return SaveOutcome.DUPLICATE
        if reasons[0] == "ConditionalCheckFailed":
            return SaveOutcome.SUPERSEDED
        raise TransientStoreError("billing storage is temporarily unavailable, try again")

    def record_checkout_session(self, org_id: str, session_id: str, replaces: str | None) -> bool:
        """Make `session_id` the organization's one open Checkout Session, if the stored one is
        still `replaces` (None: no session stored yet). False when a concurrent checkout recorded
        another session first: the caller must then expire its own."""
        item: AttributeMap = {"pk": _s(org_pk(org_id)), "sk": _s(SK_CHECKOUT), "session_id": _s(session_id)}
        request: AttributeMap = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        if replaces is not None:
            request["ConditionExpression"] = "session_id = :previous"
            request["ExpressionAttributeValues"] = {":previous": _s(replaces)}
        try:
            with _translated_errors():
                self._client.put_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim_sync(self, org_id: str, now_ms: int, window_ms: int) -> bool:
        """Take the organization's on-demand sync slot: False when a sync read Stripe less than
        `window_ms` ago (the caller answers with what is stored)."""
        try:
            with _translated_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item={"pk": _s(org_pk(org_id)), "sk": _s(SK_SYNC), "synced_at_ms": _n(now_ms)},
                    ConditionExpression="attribute_not_exists(pk) OR synced_at_ms <= :cutoff",
                    ExpressionAttributeValues={":cutoff": _n(now_ms - window_ms)},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def save_quote(self, quote: Quote) -> None:
        item: AttributeMap = {
            "pk": _s(f"{QUOTE_PREFIX}{quote.preview_id}"),
            "sk": _s(SK_QUOTE),
            "org_id": _s(quote.org_id),
            "subscription_id": _s(quote.subscription_id),
            "plan": _s(quote.plan),
            "site_quantity": _n(quote.site_quantity),
            "proration_date": _n(quote.proration_date),
            "amount_due_now": _n(quote.amount_due_now),
            "currency": _s(quote.currency),
            "items_fingerprint": _s(quote.items_fingerprint),
            # Also the TTL attribute: DynamoDB deletes expired quotes (acceptance checks the time itself).
            TTL_ATTRIBUTE: _n(quote.expires_at),
        }
        with _translated_errors():
            self._client.put_item(TableName=self._table, Item=item)

    def get_quote(self, preview_id: str) -> Quote | None:
        with _translated_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": _s(f"{QUOTE_PREFIX}{preview_id}"), "sk": _s(SK_QUOTE)},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if not item:
            return None
        return Quote(
            preview_id=preview_id,
            org_id=_str(item, "org_id"),
            subscription_id=_str(item, "subscription_id"),
            plan=_str(item, "plan"),
            site_quantity=_int(item, "site_quantity") or 0,
            proration_date=_int(item, "proration_date") or 0,
            amount_due_now=_int(item, "amount_due_now") or 0,
            currency=_str(item, "currency"),
            items_fingerprint=_str(item, "items_fingerprint"),
            expires_at=_int(item, TTL_ATTRIBUTE) or 0,
        )

    def consume_quote(self, preview_id: str) -> bool:
        """A quote buys one change: False when it was consumed already (or never existed)."""
        try:
            with _translated_errors():
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": _s(f"{QUOTE_PREFIX}{preview_id}"), "sk": _s(SK_QUOTE)},
                    ConditionExpression="attribute_exists(pk)",
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def acquire_change_lock(self, org_id: str, owner: str, now_ms: int, until_ms: int) -> bool:
        """One plan change of an organization at a time (a double click, two tabs): False while
        another holds the lock. The lock lapses at `until_ms` should its holder die."""
        try:
            with _translated_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item={"pk": _s(org_pk(org_id)), "sk": _s(SK_CHANGE_LOCK), "owner": _s(owner), "until_ms": _n(until_ms)},
                    ConditionExpression="attribute_not_exists(pk) OR until_ms < :now",
                    ExpressionAttributeValues={":now": _n(now_ms)},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_change_lock(self, org_id: str, owner: str) -> None:
        try:
            with _translated_errors():
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": _s(org_pk(org_id)), "sk": _s(SK_CHANGE_LOCK)},
                    ConditionExpression="#owner = :me",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":me": _s(owner)},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return

    def release_sync(self, org_id: str, claimed_ms: int) -> None:
        """Give the slot back after a failed Stripe read, so the caller's retry reads Stripe again."""
        try:
            with _translated_errors():
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": _s(org_pk(org_id)), "sk": _s(SK_SYNC)},
                    ConditionExpression="synced_at_ms = :mine",
                    ExpressionAttributeValues={":mine": _n(claimed_ms)},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return

    def mark_event(self, event_id: str, event_type: str, expires_at: int) -> bool:
        """Record an event that changes no state; False when it was already recorded."""
        try:
            with _translated_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=self._event_item(event_id, event_type, expires_at),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def _event_item(event_id: str, event_type: str, expires_at: int) -> AttributeMap:
        return {
            "pk": _s(event_pk(event_id)),
            "sk": _s(SK_EVENT),
            "event_type": _s(event_type),
            "processed_at": _n(int(time.time())),
            TTL_ATTRIBUTE: _n(expires_at),
        }

    # --- reconciliation -------------------------------------------------------------------------

    def _batch_get(self, keys: list[AttributeMap], attempts: int = 5) -> list[AttributeMap]:
        """Consistent BatchGetItem of any number of keys (100 a call), unprocessed keys retried."""
        found: list[AttributeMap] = []
        for start in range(0, len(keys), 100):
            request: AttributeMap = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            for attempt in range(attempts):
                with _translated_errors():
                    response = self._client.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(self._table, []))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientStoreError("billing storage is temporarily unavailable, try again")
        return found

    def get_customer_orgs(self, customer_ids: Collection[str]) -> dict[str, str]:
        """The organization of each Stripe customer that is ours (reverse links); others are absent."""
        keys = [{"pk": _s(customer_pk(customer_id)), "sk": _s(SK_ORG)} for customer_id in sorted(set(customer_ids))]
        prefix = customer_pk("")
        return {item["pk"]["S"].removeprefix(prefix): _str(item, "org_id") for item in self._batch_get(keys)}

    def get_subscriptions(self, org_ids: Collection[str]) -> dict[str, SubscriptionRecord]:
        """The stored subscription item of each organization that has one."""
        keys = [{"pk": _s(org_pk(org_id)), "sk": _s(SK_SUBSCRIPTION)} for org_id in sorted(set(org_ids))]
        prefix = org_pk("")
        records: dict[str, SubscriptionRecord] = {}
        for item in self._batch_get(keys):
            org_id = item["pk"]["S"].removeprefix(prefix)
            records[org_id] = _subscription_from_item(org_id, item)
        return records

    def get_entitlements(self, org_ids: Collection[str]) -> dict[str, EntitlementRecord]:
        """The stored entitlement item of each organization that has one."""
        keys = [{"pk": _s(org_pk(org_id)), "sk": _s(SK_ENTITLEMENT)} for org_id in sorted(set(org_ids))]
        prefix = org_pk("")
        return {
            (org_id := item["pk"]["S"].removeprefix(prefix)): _entitlement_from_item(org_id, item)
            for item in self._batch_get(keys)
        }

    def scan_subscriptions(self, cursor: str, limit: int) -> tuple[list[ScannedSubscription], str]:
        """One page of a Scan for subscription items, from `cursor` ("" = the start). `limit` bounds
        the items evaluated (not returned). The next cursor is "" when the scan is complete."""
        request: AttributeMap = {
            "TableName": self._table,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": _s(SK_SUBSCRIPTION)},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if cursor:
            request["ExclusiveStartKey"] = json.loads(cursor)
        with _translated_errors():
            response = self._client.scan(**request)
        prefix = org_pk("")
        page = [
            ScannedSubscription(
                _subscription_from_item(item["pk"]["S"].removeprefix(prefix), item),
                json.dumps({"pk": item["pk"], "sk": item["sk"]}, sort_keys=True),
            )
            for item in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return page, json.dumps(last, sort_keys=True) if last else ""

    def acquire_reconcile_lease(self, owner: str, now_ms: int, lease_until_ms: int) -> ReconcileCheckpoint | None:
        """Take the reconciliation lease (free, expired or already ours) and read the checkpoint in
        one conditional UpdateItem; None when another run holds it."""
        try:
            with _translated_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=self._reconcile_state_key(),
                    UpdateExpression="SET lease_owner = :me, lease_until = :until",
                    ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me",
                    ExpressionAttributeValues={":me": _s(owner), ":until": _n(lease_until_ms), ":now": _n(now_ms)},
                    ReturnValues="ALL_NEW",
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        item = cast(AttributeMap, response.get("Attributes") or {})
        counts = {name: int(value["N"]) for name, value in item.get("counts", {}).get("M", {}).items()}
        return ReconcileCheckpoint(
            phase=_str(item, "phase", "idle"),
            run_id=_str(item, "run_id"),
            started_ns=_int(item, "started_ns") or 0,
            stripe_cursor=_str(item, "stripe_cursor"),
            scan_cursor=_str(item, "scan_cursor"),
            seen_pages=_int(item, "seen_pages") or 0,
            counts=counts,
            last_run_id=_str(item, "last_run_id"),
            last_completed_at=_int(item, "last_completed_at") or 0,
        )

    def save_reconcile_checkpoint(
        self,
        owner: str,
        checkpoint: ReconcileCheckpoint,
        lease_until_ms: int | None,
        seen_page: tuple[int, Sequence[str], int] | None = None,
    ) -> bool:
        """Store the checkpoint while holding the lease: renewed until `lease_until_ms`, or released
        when it is None. `seen_page` (number, subscription ids, expires_at) is written in the same
        transaction. False, with nothing written, when the lease is no longer ours."""
        values: AttributeMap = {
            ":me": _s(owner),
            ":phase": _s(checkpoint.phase),
            ":run": _s(checkpoint.run_id),
            ":started": _n(checkpoint.started_ns),
            ":stripe": _s(checkpoint.stripe_cursor),
            ":scan": _s(checkpoint.scan_cursor),
            ":pages": _n(checkpoint.seen_pages),
            ":counts": {"M": {name: _n(value) for name, value in sorted(checkpoint.counts.items())}},
            ":last_run": _s(checkpoint.last_run_id),
            ":last_done": _n(checkpoint.last_completed_at),
        }
        expression = (
            "SET phase = :phase, run_id = :run, started_ns = :started, stripe_cursor = :stripe, scan_cursor = :scan,"
            " seen_pages = :pages, counts = :counts, last_run_id = :last_run, last_completed_at = :last_done"
        )
        if lease_until_ms is None:
            expression += " REMOVE lease_owner, lease_until"
        else:
            expression += ", lease_until = :until"
            values[":until"] = _n(lease_until_ms)
        update: AttributeMap = {
            "TableName": self._table,
            "Key": self._reconcile_state_key(),
            "UpdateExpression": expression,
            "ConditionExpression": "lease_owner = :me",
            "ExpressionAttributeValues": values,
        }
        if seen_page is None or not seen_page[1]:
            try:
                with _translated_errors():
                    self._client.update_item(**update)
            except self._client.exceptions.ConditionalCheckFailedException:
                return False
            return True
        number, subscription_ids, expires_at = seen_page
        seen_item: AttributeMap = {
            "pk": _s(f"{RECONCILE_SEEN_PREFIX}{checkpoint.run_id}"),
            "sk": _s(f"SEEN#{number:08d}"),
            "ids": {"SS": sorted(set(subscription_ids))},
            TTL_ATTRIBUTE: _n(expires_at),
        }
        items: list[AttributeMap] = [{"Update": update}, {"Put": {"TableName": self._table, "Item": seen_item}}]
        reasons = self._transact(items)
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            return False
        raise TransientStoreError("billing storage is temporarily unavailable, try again")

    def reconcile_seen_ids(self, run_id: str, pages: int) -> set[str]:
        """Every subscription id the run recorded as seen in Stripe (its pages 0 .. pages-1)."""
        pk = _s(f"{RECONCILE_SEEN_PREFIX}{run_id}")
        keys = [{"pk": pk, "sk": _s(f"SEEN#{number:08d}")} for number in range(pages)]
        return {str(value) for item in self._batch_get(keys) for value in item.get("ids", {}).get("SS", [])}

    @staticmethod
    def _reconcile_state_key() -> AttributeMap:
        pk, sk = RECONCILE_STATE_KEY
        return {"pk": _s(pk), "sk": _s(sk)}


@cache
def get_repository() -> DynamoBillingRepository:
    """The repository over this environment's table, one per execution environment."""
    from tenant_billing.settings import get_settings

    return DynamoBillingRepository(get_settings().TABLE_NAME)
