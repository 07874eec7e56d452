"""The organization <-> Stripe customer link: the claim to create the customer, both directions
of the link, and the reverse lookup (customer -> organization)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, cast

from tenant_billing.dynamo import UNAVAILABLE, AttributeMap, DynamoTable, number, read_str, string, translated_errors
from tenant_billing.errors import TransientStoreError
from tenant_billing.item_codec import customer_from_item
from tenant_billing.items import SK_CUSTOMER, SK_ORG, CustomerLink, customer_pk, org_pk
from tenant_billing.org_billing_store import query_org_items


class CustomerStore(Protocol):
    def claim_customer(self, org_id: str, idempotency_key: str, now: int) -> CustomerLink: ...

    def replace_stale_claim(self, stale: CustomerLink, idempotency_key: str, now: int) -> CustomerLink: ...

    def link_customer(self, org_id: str, customer_id: str, idempotency_key: str) -> str: ...

    def get_customer_orgs(self, customer_ids: Collection[str]) -> dict[str, str]: ...


class DynamoCustomerStore(DynamoTable):
    def claim_customer(self, org_id: str, idempotency_key: str, now: int) -> CustomerLink:
        """Claim the right to create the org's Stripe customer, or return the existing claim/link."""
        try:
            with translated_errors():
                self.client.put_item(
                    TableName=self.table_name,
                    Item={
                        "pk": string(org_pk(org_id)),
                        "sk": string(SK_CUSTOMER),
                        "idempotency_key": string(idempotency_key),
                        "claimed_at": number(now),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            return customer_from_item(org_id, cast(AttributeMap, exc.response.get("Item") or {}))
        return CustomerLink(org_id=org_id, customer_id="", idempotency_key=idempotency_key, claimed_at=now)

    def replace_stale_claim(self, stale: CustomerLink, idempotency_key: str, now: int) -> CustomerLink:
        """Take over an unfinished claim whose Stripe idempotency key may have expired."""
        try:
            with translated_errors():
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": string(org_pk(stale.org_id)), "sk": string(SK_CUSTOMER)},
                    UpdateExpression="SET idempotency_key = :new, claimed_at = :now",
                    ConditionExpression="idempotency_key = :old AND attribute_not_exists(customer_id)",
                    ExpressionAttributeValues={
                        ":new": string(idempotency_key),
                        ":old": string(stale.idempotency_key),
                        ":now": number(now),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            return customer_from_item(stale.org_id, cast(AttributeMap, exc.response.get("Item") or {}))
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
                    "TableName": self.table_name,
                    "Key": {"pk": string(org_pk(org_id)), "sk": string(SK_CUSTOMER)},
                    "UpdateExpression": "SET customer_id = :cus",
                    "ConditionExpression": "(attribute_not_exists(customer_id) AND idempotency_key = :key) OR customer_id = :cus",
                    "ExpressionAttributeValues": {":cus": string(customer_id), ":key": string(idempotency_key)},
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {"pk": string(customer_pk(customer_id)), "sk": string(SK_ORG), "org_id": string(org_id)},
                    "ConditionExpression": "attribute_not_exists(pk) OR org_id = :org",
                    "ExpressionAttributeValues": {":org": string(org_id)},
                }
            },
        ]
        if self.transact(items) is None:
            return customer_id
        stored = query_org_items(self, org_id).get(SK_CUSTOMER)
        linked = customer_from_item(org_id, stored) if stored else None
        if linked is not None and linked.is_linked:
            return linked.customer_id
        raise TransientStoreError(UNAVAILABLE)

    def get_customer_orgs(self, customer_ids: Collection[str]) -> dict[str, str]:
        """The organization of each Stripe customer that is ours (reverse links); others are absent."""
        keys = [{"pk": string(customer_pk(customer_id)), "sk": string(SK_ORG)} for customer_id in sorted(set(customer_ids))]
        prefix = customer_pk("")
        return {item["pk"]["S"].removeprefix(prefix): read_str(item, "org_id") for item in self.batch_get(keys)}
