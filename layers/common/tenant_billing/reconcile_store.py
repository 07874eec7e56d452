"""Reconciliation's own state: one item holding the lease and the checkpoint, the pages of
subscription ids a run saw in Stripe, and the Scan of the stored subscriptions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import field
from typing import Protocol, cast

from tenant_billing.dynamo import (
    CONDITION_FAILED,
    UNAVAILABLE,
    AttributeMap,
    DynamoTable,
    number,
    read_int,
    read_str,
    string,
    translated_errors,
)
from tenant_billing.errors import TransientStoreError
from tenant_billing.item_codec import subscription_from_item
from tenant_billing.items import SK_SUBSCRIPTION, TTL_ATTRIBUTE, SubscriptionRecord, org_pk
from tenant_billing.records import frozen

RECONCILE_STATE_KEY = ("RECONCILE#state", "STATE")
RECONCILE_SEEN_PREFIX = "RECONCILE#run#"
RECONCILE_COUNTERS = ("checked", "repaired", "not_ours", "orphaned", "duplicates", "superseded")


@frozen
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


@frozen
class SeenPage:
    """One page of subscription ids a run saw in Stripe, stored with the checkpoint that counts it."""

    number: int
    subscription_ids: Sequence[str]
    expires_at: int


@frozen
class ScannedSubscription:
    record: SubscriptionRecord
    # A scan resumed from this cursor continues right after this item.
    cursor: str


class ReconcileLeaseStore(Protocol):
    """The state item alone: the lease and the checkpoint stored under it."""

    def acquire_reconcile_lease(self, owner: str, now_ms: int, lease_until_ms: int) -> ReconcileCheckpoint | None: ...

    def save_reconcile_checkpoint(
        self, owner: str, checkpoint: ReconcileCheckpoint, lease_until_ms: int | None, seen_page: SeenPage | None = None
    ) -> bool: ...


class ReconcileStore(ReconcileLeaseStore, Protocol):
    def reconcile_seen_ids(self, run_id: str, pages: int) -> set[str]: ...

    def scan_subscriptions(self, cursor: str, limit: int) -> tuple[list[ScannedSubscription], str]: ...


def _state_key() -> AttributeMap:
    pk, sk = RECONCILE_STATE_KEY
    return {"pk": string(pk), "sk": string(sk)}


def _seen_key(run_id: str, page: int) -> AttributeMap:
    return {"pk": string(f"{RECONCILE_SEEN_PREFIX}{run_id}"), "sk": string(f"SEEN#{page:08d}")}


def _checkpoint_from_item(item: AttributeMap) -> ReconcileCheckpoint:
    return ReconcileCheckpoint(
        phase=read_str(item, "phase", "idle"),
        run_id=read_str(item, "run_id"),
        started_ns=read_int(item, "started_ns") or 0,
        stripe_cursor=read_str(item, "stripe_cursor"),
        scan_cursor=read_str(item, "scan_cursor"),
        seen_pages=read_int(item, "seen_pages") or 0,
        counts={name: int(value["N"]) for name, value in item.get("counts", {}).get("M", {}).items()},
        last_run_id=read_str(item, "last_run_id"),
        last_completed_at=read_int(item, "last_completed_at") or 0,
    )


def _checkpoint_update(owner: str, checkpoint: ReconcileCheckpoint, lease_until_ms: int | None) -> tuple[str, AttributeMap]:
    """The UpdateExpression storing the checkpoint, renewing the lease (or, for None, releasing it)."""
    values: AttributeMap = {
        ":me": string(owner),
        ":phase": string(checkpoint.phase),
        ":run": string(checkpoint.run_id),
        ":started": number(checkpoint.started_ns),
        ":stripe": string(checkpoint.stripe_cursor),
        ":scan": string(checkpoint.scan_cursor),
        ":pages": number(checkpoint.seen_pages),
        ":counts": {"M": {name: number(value) for name, value in sorted(checkpoint.counts.items())}},
        ":last_run": string(checkpoint.last_run_id),
        ":last_done": number(checkpoint.last_completed_at),
    }
    expression = (
        "SET phase = :phase, run_id = :run, started_ns = :started, stripe_cursor = :stripe, scan_cursor = :scan,"
        " seen_pages = :pages, counts = :counts, last_run_id = :last_run, last_completed_at = :last_done"
    )
    if lease_until_ms is None:
        return expression + " REMOVE lease_owner, lease_until", values
    values[":until"] = number(lease_until_ms)
    return expression + ", lease_until = :until", values


class DynamoReconcileStore(DynamoTable):
    def acquire_reconcile_lease(self, owner: str, now_ms: int, lease_until_ms: int) -> ReconcileCheckpoint | None:
        """Take the reconciliation lease (free, expired or already ours) and read the checkpoint in
        one conditional UpdateItem; None when another run holds it."""
        try:
            with translated_errors():
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=_state_key(),
                    UpdateExpression="SET lease_owner = :me, lease_until = :until",
                    ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me",
                    ExpressionAttributeValues={
                        ":me": string(owner),
                        ":until": number(lease_until_ms),
                        ":now": number(now_ms),
                    },
                    ReturnValues="ALL_NEW",
                )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return _checkpoint_from_item(cast(AttributeMap, response.get("Attributes") or {}))

    def save_reconcile_checkpoint(
        self, owner: str, checkpoint: ReconcileCheckpoint, lease_until_ms: int | None, seen_page: SeenPage | None = None
    ) -> bool:
        """Store the checkpoint while holding the lease: renewed until `lease_until_ms`, or released
        when it is None. `seen_page` is written in the same transaction. False, with nothing
        written, when the lease is no longer ours."""
        expression, values = _checkpoint_update(owner, checkpoint, lease_until_ms)
        update: AttributeMap = {
            "Key": _state_key(),
            "UpdateExpression": expression,
            "ConditionExpression": "lease_owner = :me",
            "ExpressionAttributeValues": values,
        }
        if seen_page is None or not seen_page.subscription_ids:
            return self.write_if(self.client.update_item, **update)
        seen_item: AttributeMap = {
            **_seen_key(checkpoint.run_id, seen_page.number),
            "ids": {"SS": sorted(set(seen_page.subscription_ids))},
            TTL_ATTRIBUTE: number(seen_page.expires_at),
        }
        items: list[AttributeMap] = [
            {"Update": {"TableName": self.table_name, **update}},
            {"Put": {"TableName": self.table_name, "Item": seen_item}},
        ]
        reasons = self.transact(items)
        if reasons is None:
            return True
        if reasons[0] == CONDITION_FAILED:
            return False
        raise TransientStoreError(UNAVAILABLE)

    def reconcile_seen_ids(self, run_id: str, pages: int) -> set[str]:
        """Every subscription id the run recorded as seen in Stripe (its pages 0 .. pages-1)."""
        keys = [_seen_key(run_id, page) for page in range(pages)]
        return {str(value) for item in self.batch_get(keys) for value in item.get("ids", {}).get("SS", [])}

    def scan_subscriptions(self, cursor: str, limit: int) -> tuple[list[ScannedSubscription], str]:
        """One page of a Scan for subscription items, from `cursor` ("" = the start). `limit` bounds
        the items evaluated (not returned). The next cursor is "" when the scan is complete."""
        request: AttributeMap = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": string(SK_SUBSCRIPTION)},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if cursor:
            request["ExclusiveStartKey"] = json.loads(cursor)
        with translated_errors():
            response = self.client.scan(**request)
        prefix = org_pk("")
        page = [
            ScannedSubscription(
                subscription_from_item(item["pk"]["S"].removeprefix(prefix), item),
                json.dumps({"pk": item["pk"], "sk": item["sk"]}, sort_keys=True),
            )
            for item in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return page, json.dumps(last, sort_keys=True) if last else ""
