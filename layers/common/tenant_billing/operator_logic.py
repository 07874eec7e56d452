"""What an operator can do without writing code (the admin function, `python -m functions.admin`):
see one organization's stored billing beside Stripe's, re-sync it, replay one Stripe event, and
list the organizations whose subscriptions need a person (a duplicate, or a price the catalog does
not know). Reconciliation is the reconcile function itself, invoked as it is.

Every write goes through the paths the product already uses: a re-sync is the guarded write of
`org_sync` (an older read never overwrites a newer one), a replay is the queue consumer's
processing of that event (deduplicated by its id, so replaying an event that took effect changes
nothing). Answers are JSON-ready dicts of ids, states and numbers: never a Stripe object, a URL or
a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import field
from typing import Any, Protocol

from tenant_billing.catalog import Catalog
from tenant_billing.entitlements import ENDED_STATUSES
from tenant_billing.errors import BillingError, InvalidRequestError
from tenant_billing.event_sync_logic import BatchSync
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.org_billing_store import OrgBillingStore, SaveOutcome
from tenant_billing.org_sync import read_customer_subscriptions, sync_org
from tenant_billing.reconcile_store import ScannedSubscription
from tenant_billing.records import frozen, record_fields
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort, Subscription
from tenant_billing.subscription_store import confirm_superseded
from tenant_billing.subscription_sync import current_period_end
from tenant_billing.webhook_logic import HANDLED_EVENTS, Outcome
from tenant_billing.wire import api

# Subscription items read per Scan page when listing problems.
PROBLEM_SCAN_PAGE = 500


COMMANDS = ("show", "resync", "replay", "problems")


@frozen(kw_only=True)
class OperatorCommand:
    """The admin function's event (read strictly, as API bodies are)."""

    command: str = field(metadata=api(description=" | ".join(COMMANDS), max_length=16))
    org_id: str | None = field(default=None, metadata=api("orgId", max_length=128))
    event_id: str | None = field(default=None, metadata=api("eventId", max_length=255))


class SubscriptionScanner(Protocol):
    def scan_subscriptions(self, cursor: str, limit: int) -> tuple[list[ScannedSubscription], str]: ...


class NotLinkedError(BillingError, status_code=404, code="not_linked"):
    """The organization has no Stripe customer: there is nothing in Stripe to compare or sync."""


class EventNotFoundError(BillingError, status_code=404, code="event_not_found"):
    """Stripe has no such event for this account (the Events API keeps them 30 days)."""


class EventUnreadableError(BillingError, status_code=422, code="event_unreadable"):
    """A handled event type whose object names no customer we can read: the Events API renders an
    event in the API version of its creation, which may predate the shapes we read."""


def record_view(record: SubscriptionRecord | EntitlementRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {field.name: _plain(getattr(record, field.name)) for field in record_fields(type(record))}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def stripe_view(subscription: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": subscription.id,
        "status": subscription.status,
        "items": [{"price_id": item.price_id, "quantity": item.quantity} for item in subscription.items],
        "current_period_end": current_period_end(subscription.items),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "cancel_at": subscription.cancel_at,
        "created": subscription.created,
        "pending_update": subscription.pending_update is not None,
    }


def differences(stored: SubscriptionRecord | None, in_stripe: list[Subscription]) -> list[str]:
    """What an operator should look at: where the table and Stripe disagree."""
    found = []
    live = [subscription for subscription in in_stripe if subscription.status not in ENDED_STATUSES]
    by_id = {subscription.id: subscription for subscription in in_stripe}
    if stored is None:
        if live:
            found.append(f"Stripe has {len(live)} live subscription(s) the table does not: {', '.join(s.id for s in live)}")
        return found
    current = by_id.get(stored.subscription_id)
    if current is None:
        found.append(f"the stored subscription {stored.subscription_id} is not among the customer's in Stripe")
    elif current.status != stored.status:
        found.append(f"{stored.subscription_id} is {stored.status!r} in the table but {current.status!r} in Stripe")
    elif current.cancel_at_period_end != stored.cancel_at_period_end:
        found.append(f"{stored.subscription_id}: cancel_at_period_end differs (table {stored.cancel_at_period_end})")
    others = [subscription.id for subscription in live if subscription.id != stored.subscription_id]
    if others:
        found.append(f"the customer has other live subscriptions: {', '.join(others)} (one may be a double charge)")
    if not stored.prices_known:
        found.append("a price of the stored subscription is not in the catalog or StripePrices")
    return found


def show_org(org_id: str, store: OrgBillingStore, stripe_factory: Callable[[], StripePort]) -> dict[str, Any]:
    """The organization's stored billing and its Stripe customer's subscriptions, side by side."""
    billing = store.get_org_billing(org_id)
    customer_id = billing.customer.customer_id if billing.customer is not None and billing.customer.is_linked else None
    answer: dict[str, Any] = {
        "org_id": org_id,
        "customer_id": customer_id,
        "stored": {"subscription": record_view(billing.subscription), "entitlement": record_view(billing.entitlement)},
        "stripe": None,
        "differences": [],
    }
    if customer_id is None:
        return answer
    in_stripe = read_customer_subscriptions(stripe_factory(), customer_id)
    answer["stripe"] = {"subscriptions": [stripe_view(subscription) for subscription in in_stripe]}
    answer["differences"] = differences(billing.subscription, in_stripe)
    return answer


def resync_org(
    org_id: str, store: OrgBillingStore, stripe_factory: Callable[[], StripePort], settings: Settings, catalog: Catalog
) -> dict[str, Any]:
    """Read the organization's subscriptions from Stripe now and store them (the guarded write)."""
    billing = store.get_org_billing(org_id)
    customer = billing.customer
    if customer is None or not customer.is_linked:
        raise NotLinkedError(f"{org_id} has no Stripe customer", field="orgId")
    result = sync_org(org_id, customer.customer_id, stripe_factory(), store, settings, catalog, stored=billing.subscription)
    if result.outcome is SaveOutcome.SUPERSEDED and result.state is not None:
        # A newer read was stored meanwhile: done when it agrees with ours (else a retryable error).
        confirm_superseded(store, result.state)
    after = store.get_org_billing(org_id)
    return {
        "org_id": org_id,
        "outcome": result.outcome.value if result.outcome is not None else "no_subscription",
        "subscription": record_view(after.subscription),
        "entitlement": record_view(after.entitlement),
    }


def replay_event(event_id: str, stripe: StripePort, batch: BatchSync) -> dict[str, Any]:
    """Fetch the event from Stripe's Events API and process it as the queue's consumer does."""
    if not event_id.startswith("evt_") or len(event_id) > 255:
        raise InvalidRequestError("eventId: a Stripe event id (evt_...)", field="eventId", code="invalid_field")
    event = stripe.retrieve_event(event_id)
    if event is None:
        raise EventNotFoundError(f"Stripe has no event {event_id} for this account", field="eventId")
    outcome = batch.process(event)
    if outcome is Outcome.IGNORED and event.type in HANDLED_EVENTS:
        raise EventUnreadableError(
            f"{event.id} ({event.type}) names no customer in a shape this version reads: resync its organization instead",
            field="eventId",
        )
    return {"event_id": event.id, "type": event.type, "outcome": outcome.value}


def subscription_problems(store: SubscriptionScanner) -> list[dict[str, Any]]:
    """Every stored subscription with a duplicate live subscription or a price the catalog does not know."""
    return [
        {
            "org_id": record.org_id,
            "subscription_id": record.subscription_id,
            "status": record.status,
            "problems": [
                *(["duplicate"] if record.other_live_ids else []),
                *(["unknown_price"] if not record.prices_known else []),
            ],
            "other_live_ids": list(record.other_live_ids),
        }
        for record in _stored_subscriptions(store)
        if record.other_live_ids or not record.prices_known
    ]


def _stored_subscriptions(store: SubscriptionScanner) -> Iterator[SubscriptionRecord]:
    cursor = ""
    while True:
        page, cursor = store.scan_subscriptions(cursor, PROBLEM_SCAN_PAGE)
        yield from (scanned.record for scanned in page)
        if not cursor:
            return
