"""Stripe events: the types the product handles, how a verified body reads as an event, and
which Stripe customer and subscription an event concerns. Pure: the webhook queues the events
(see `event_queue`), the queue's consumer processes them (`event_sync_logic`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from tenant_billing.records import frozen
from tenant_billing.stripe_objects import read_checkout_session, read_invoice, read_subscription

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        # A change that waited for its payment was applied, or dropped unpaid.
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
    }
)
INVOICE_EVENTS = frozenset(
    {"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.payment_action_required"}
)
CHECKOUT_COMPLETED = "checkout.session.completed"
TRIAL_WILL_END = "customer.subscription.trial_will_end"
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | {CHECKOUT_COMPLETED, TRIAL_WILL_END}


class WebhookPayloadError(Exception):
    """A verified body that is not a Stripe event we can read."""


class Outcome(StrEnum):
    SYNCED = "synced"
    DUPLICATE = "duplicate"
    SUPERSEDED = "superseded"
    IGNORED = "ignored"
    NOT_OURS = "not_ours"
    RECORDED = "recorded"
    # The webhook's answer: the event is on the queue.
    QUEUED = "queued"


@frozen
class StripeEvent:
    id: str
    type: str
    object: Mapping[str, Any]
    # Stripe's `created` (seconds, Stripe's clock); 0 when the event does not say.
    created: int = 0


@frozen
class EventTarget:
    customer_id: str
    subscription_id: str


def parse_event(raw_body: bytes) -> StripeEvent:
    try:
        document = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("the body is not JSON") from None
    return read_event_document(document)


def read_event_document(document: object) -> StripeEvent:
    """A decoded Stripe event object."""
    if not isinstance(document, dict) or document.get("object") != "event":
        raise WebhookPayloadError("the body is not a Stripe event")
    event_id, event_type, data = document.get("id"), document.get("type"), document.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_") and len(event_id) <= 255):
        raise WebhookPayloadError("the event has no valid id")
    if not isinstance(event_type, str) or not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookPayloadError("the event has no type or no data.object")
    created = document.get("created")
    return StripeEvent(event_id, event_type, data["object"], created if type(created) is int and created > 0 else 0)


def event_target(event: StripeEvent) -> EventTarget | None:
    """The Stripe customer and subscription an event concerns; None when it concerns none."""
    customer_id, subscription_id = None, None
    if event.type in SUBSCRIPTION_EVENTS or event.type == TRIAL_WILL_END:
        subscription = read_subscription(event.object)
        customer_id, subscription_id = subscription.customer_id, subscription.id
    elif event.type in INVOICE_EVENTS:
        invoice = read_invoice(event.object)
        customer_id, subscription_id = invoice.customer_id, invoice.subscription_id
    elif event.type == CHECKOUT_COMPLETED:
        session = read_checkout_session(event.object)
        customer_id = session.customer_id
        subscription_id = session.subscription_id if session.mode == "subscription" else None
    if not customer_id or not subscription_id:
        return None
    return EventTarget(customer_id, subscription_id)
