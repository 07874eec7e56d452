"""What a plan change keeps between requests: the quote a preview priced (bought once) and the
organization's change lock (one change at a time)."""

from __future__ import annotations

from typing import Protocol

from tenant_billing.dynamo import AttributeMap, DynamoTable, number, read_int, read_str, string, translated_errors
from tenant_billing.items import QUOTE_PREFIX, SK_CHANGE_LOCK, SK_QUOTE, TTL_ATTRIBUTE, org_pk
from tenant_billing.quotes import Quote


class PlanChangeStore(Protocol):
    def save_quote(self, quote: Quote) -> None: ...

    def get_quote(self, preview_id: str) -> Quote | None: ...

    def consume_quote(self, preview_id: str) -> bool: ...

    def acquire_change_lock(self, org_id: str, owner: str, now_ms: int, until_ms: int) -> bool: ...

    def release_change_lock(self, org_id: str, owner: str) -> None: ...


def _quote_key(preview_id: str) -> AttributeMap:
    return {"pk": string(f"{QUOTE_PREFIX}{preview_id}"), "sk": string(SK_QUOTE)}


class DynamoPlanChangeStore(DynamoTable):
    def save_quote(self, quote: Quote) -> None:
        item: AttributeMap = {
            **_quote_key(quote.preview_id),
            "org_id": string(quote.org_id),
            "subscription_id": string(quote.subscription_id),
            "plan": string(quote.plan),
            "site_quantity": number(quote.site_quantity),
            "billing_interval": string(quote.interval),
            "plan_version": number(quote.plan_version),
            "changes_fingerprint": string(quote.changes_fingerprint),
            "proration_date": number(quote.proration_date),
            "amount_due_now": number(quote.amount_due_now),
            "currency": string(quote.currency),
            "items_fingerprint": string(quote.items_fingerprint),
            # Also the TTL attribute: DynamoDB deletes expired quotes (acceptance checks the time itself).
            TTL_ATTRIBUTE: number(quote.expires_at),
        }
        with translated_errors():
            self.client.put_item(TableName=self.table_name, Item=item)

    def get_quote(self, preview_id: str) -> Quote | None:
        with translated_errors():
            response = self.client.get_item(TableName=self.table_name, Key=_quote_key(preview_id), ConsistentRead=True)
        item = response.get("Item")
        if not item:
            return None
        return Quote(
            preview_id=preview_id,
            org_id=read_str(item, "org_id"),
            subscription_id=read_str(item, "subscription_id"),
            plan=read_str(item, "plan"),
            site_quantity=read_int(item, "site_quantity") or 0,
            interval=read_str(item, "billing_interval"),
            plan_version=read_int(item, "plan_version") or 0,
            changes_fingerprint=read_str(item, "changes_fingerprint"),
            proration_date=read_int(item, "proration_date") or 0,
            amount_due_now=read_int(item, "amount_due_now") or 0,
            currency=read_str(item, "currency"),
            items_fingerprint=read_str(item, "items_fingerprint"),
            expires_at=read_int(item, TTL_ATTRIBUTE) or 0,
        )

    def consume_quote(self, preview_id: str) -> bool:
        """A quote buys one change: False when it was consumed already (or never existed)."""
        return self.write_if(self.client.delete_item, Key=_quote_key(preview_id), ConditionExpression="attribute_exists(pk)")

    def acquire_change_lock(self, org_id: str, owner: str, now_ms: int, until_ms: int) -> bool:
        """One plan change of an organization at a time (a double click, two tabs): False while
        another holds the lock. The lock lapses at `until_ms` should its holder die."""
        return self.write_if(
            self.client.put_item,
            Item={
                "pk": string(org_pk(org_id)),
                "sk": string(SK_CHANGE_LOCK),
                "owner": string(owner),
                "until_ms": number(until_ms),
            },
            ConditionExpression="attribute_not_exists(pk) OR until_ms < :now",
            ExpressionAttributeValues={":now": number(now_ms)},
        )

    def release_change_lock(self, org_id: str, owner: str) -> None:
        self.write_if(
            self.client.delete_item,
            Key={"pk": string(org_pk(org_id)), "sk": string(SK_CHANGE_LOCK)},
            ConditionExpression="#owner = :me",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":me": string(owner)},
        )
