"""Stripe webhook processing: which organization and subscription an event concerns, whether it
already took effect, and the sync of Stripe's current state (never the payload's) into the table.

Per event: one BatchGetItem (event marker + customer link), one Stripe read (the customer's
subscriptions, see `org_sync`), one transaction (subscription + entitlement + event marker). A
duplicate costs the BatchGetItem alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tenant_billing.catalog import Catalog
from tenant_billing.observability import logger, metrics
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.org_sync import sync_org
from tenant_billing.repositories import WebhookRepository
from tenant_billing.settings import Settings
from tenant_billing.stripe_objects import read_checkout_session, read_invoice, read_subscription
from tenant_billing.stripe_port import StripePort
from tenant_billing.subscription_store import EVENT_MARKER_TTL_SECONDS, confirm_superseded

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


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    object: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EventTarget:
    customer_id: str
    subscription_id: str


def parse_event(raw_body: bytes) -> StripeEvent:
    try:
        document = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("the body is not JSON") from None
    if not isinstance(document, dict) or document.get("object") != "event":
        raise WebhookPayloadError("the body is not a Stripe event")
    event_id, event_type, data = document.get("id"), document.get("type"), document.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_") and len(event_id) <= 255):
        raise WebhookPayloadError("the event has no valid id")
    if not isinstance(event_type, str) or not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookPayloadError("the event has no type or no data.object")
    return StripeEvent(event_id, event_type, data["object"])


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


def _claimed_org(event: StripeEvent) -> str | None:
    """The organization a Checkout Session names (client_reference_id, or metadata)."""
    session = read_checkout_session(event.object)
    return session.client_reference_id or session.organization_id


def process_event(
    event: StripeEvent,
    repository: WebhookRepository,
    stripe_factory: Callable[[], StripePort],
    settings: Settings,
    catalog: Catalog,
) -> Outcome:
    log_keys = {"event_id": event.id, "event_type": event.type}
    if event.type not in HANDLED_EVENTS:
        return Outcome.IGNORED
    target = event_target(event)
    if target is None:
        return Outcome.IGNORED
    lookup = repository.lookup_event(event.id, target.customer_id)
    if lookup.already_processed:
        metrics.add_metric(name="WebhookDuplicate", unit="Count", value=1)
        return Outcome.DUPLICATE
    org_id = lookup.org_id
    if org_id is None or (event.type == CHECKOUT_COMPLETED and _claimed_org(event) not in (None, org_id)):
        metrics.add_metric(name="WebhookForeignCustomer", unit="Count", value=1)
        logger.warning("event for a customer that is not ours", extra=log_keys)
        return Outcome.NOT_OURS
    logger.append_keys(org_id=org_id)
    expires_at = int(time.time()) + EVENT_MARKER_TTL_SECONDS
    if event.type == TRIAL_WILL_END:
        if repository.mark_event(event.id, event.type, expires_at):
            metrics.add_metric(name="TrialWillEnd", unit="Count", value=1)
            logger.info("trial ends soon", extra={**log_keys, "trial_end": read_subscription(event.object).trial_end})
            return Outcome.RECORDED
        return Outcome.DUPLICATE
    result = sync_org(
        org_id,
        target.customer_id,
        stripe_factory(),
        repository,
        settings,
        catalog,
        must_include=target.subscription_id,
        event_id=event.id,
        event_type=event.type,
    )
    if result.outcome is None:
        metrics.add_metric(name="WebhookForeignCustomer", unit="Count", value=1)
        logger.warning("subscription not found for this customer", extra=log_keys)
        return Outcome.NOT_OURS
    if result.outcome is SaveOutcome.SUPERSEDED and result.state is not None:
        # Acknowledged only when the stored read agrees with ours; otherwise 503 and Stripe retries.
        confirm_superseded(repository, result.state)
    return {
        SaveOutcome.WRITTEN: Outcome.SYNCED,
        SaveOutcome.DUPLICATE: Outcome.DUPLICATE,
        SaveOutcome.SUPERSEDED: Outcome.SUPERSEDED,
    }[result.outcome]
