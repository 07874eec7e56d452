"""Webhook event dedupe: the marker of each event that took effect (it expires by TTL)."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Protocol

from tenant_billing.dynamo import AttributeMap, DynamoTable, number, read_str, string
from tenant_billing.item_codec import trial_ending_to_item
from tenant_billing.items import SK_EVENT, SK_ORG, TTL_ATTRIBUTE, TrialEndingRecord, customer_pk, event_pk
from tenant_billing.records import frozen


@frozen
class EventLookup:
    already_processed: bool
    # The organization the event's Stripe customer belongs to; None when it is not ours.
    org_id: str | None


class WebhookEventStore(Protocol):
    def lookup_event(self, event_id: str, customer_id: str | None) -> EventLookup: ...

    def lookup_events(self, events: Collection[tuple[str, str]]) -> dict[str, EventLookup]: ...

    def mark_event(self, event_id: str, event_type: str, expires_at: int) -> bool: ...

    def record_trial_ending(self, notice: TrialEndingRecord) -> bool: ...


def event_marker_item(event_id: str, event_type: str, expires_at: int) -> AttributeMap:
    """The marker item; also written in the same transaction as the state an event changed."""
    return {
        "pk": string(event_pk(event_id)),
        "sk": string(SK_EVENT),
        "event_type": string(event_type),
        "processed_at": number(int(time.time())),
        TTL_ATTRIBUTE: number(expires_at),
    }


class DynamoWebhookEventStore(DynamoTable):
    def lookup_event(self, event_id: str, customer_id: str | None) -> EventLookup:
        """One BatchGetItem: has this event taken effect, and which org owns its customer?"""
        keys: list[AttributeMap] = [{"pk": string(event_pk(event_id)), "sk": string(SK_EVENT)}]
        if customer_id:
            keys.append({"pk": string(customer_pk(customer_id)), "sk": string(SK_ORG)})
        # Three attempts: a failure returns the message to the queue.
        found = self.batch_get(keys, attempts=3)
        seen = any(item["sk"]["S"] == SK_EVENT for item in found)
        org_id = next((read_str(item, "org_id") for item in found if item["sk"]["S"] == SK_ORG), None)
        return EventLookup(already_processed=seen, org_id=org_id or None)

    def lookup_events(self, events: Collection[tuple[str, str]]) -> dict[str, EventLookup]:
        """The same for many (event id, customer id) pairs in one BatchGetItem (100 keys a call):
        {event id: its lookup}."""
        wanted = {(event_pk(event_id), SK_EVENT) for event_id, _ in events}
        wanted |= {(customer_pk(customer_id), SK_ORG) for _, customer_id in events}
        # Sorted: the same keys in the same order for the same batch (BatchGetItem refuses duplicates).
        keys: list[AttributeMap] = [{"pk": string(pk), "sk": string(sk)} for pk, sk in sorted(wanted)]
        found = self.batch_get(keys, attempts=3)
        seen = {item["pk"]["S"] for item in found if item["sk"]["S"] == SK_EVENT}
        orgs = {item["pk"]["S"]: read_str(item, "org_id") for item in found if item["sk"]["S"] == SK_ORG}
        return {
            event_id: EventLookup(event_pk(event_id) in seen, orgs.get(customer_pk(customer_id)) or None)
            for event_id, customer_id in events
        }

    def record_trial_ending(self, notice: TrialEndingRecord) -> bool:
        """Store a trial's end notice once per trial (the stream publishes it); False when one was
        stored already, by this event or another about the same trial end."""
        return self.write_if(
            self.client.put_item, Item=trial_ending_to_item(notice), ConditionExpression="attribute_not_exists(pk)"
        )

    def mark_event(self, event_id: str, event_type: str, expires_at: int) -> bool:
        """Record an event that changes no state; False when it was already recorded."""
        return self.write_if(
            self.client.put_item,
            Item=event_marker_item(event_id, event_type, expires_at),
            ConditionExpression="attribute_not_exists(pk)",
        )
