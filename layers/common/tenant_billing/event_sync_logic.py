"""The queue's consumer: what a Stripe event does, whichever way it came (the webhook, or
Stripe's EventBridge destination). Dedupe by event id, then sync Stripe's current state (never the
payload's) through the guarded write, at most once per customer per batch.

Per batch: two BatchGetItems read ahead (every event's marker and customer link, then the stored
subscription of each organization a late event concerns); a lone event reads the same alone. A
duplicate then costs nothing more. An event whose change is already in a stored read costs its
marker alone (one PutItem): an earlier event of the batch synced that customer, or the stored
subscription's read started after the event was created (`read_covers_event`). Otherwise the sync:
one Stripe read of the customer's subscriptions (see `org_sync`) and one transaction (subscription +
entitlement + event marker). Under a renewal storm the backlog makes the stored read the usual
answer: about one Stripe read per subscription, whatever the number of its events.

Stripe or the table unavailable: the message returns to the queue after a backoff that grows with
its receive count (metric `EventRetried`); a message that is not a Stripe event is poison (metric
`EventPoison`) and reaches the dead-letter queue after the queue's maxReceiveCount.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from tenant_billing.catalog import Catalog
from tenant_billing.errors import BillingError
from tenant_billing.items import SubscriptionRecord, TrialEndingRecord
from tenant_billing.observability import logger, metrics
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.org_sync import SyncResult, sync_org
from tenant_billing.queued_events import QueuedEventError, read_queued_event
from tenant_billing.repositories import WebhookRepository
from tenant_billing.settings import Settings
from tenant_billing.stripe_objects import read_checkout_session
from tenant_billing.stripe_port import StripePort
from tenant_billing.subscription_store import EVENT_MARKER_TTL_SECONDS, confirm_superseded
from tenant_billing.webhook_event_store import EventLookup
from tenant_billing.webhook_logic import CHECKOUT_COMPLETED, HANDLED_EVENTS, TRIAL_WILL_END, Outcome, StripeEvent, event_target

# A message Stripe's unavailability sent back returns after 30 s, 60 s, ... up to 15 minutes
# (with up to a third less, at random, so a storm's messages do not all return at once).
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 900
# Stripe's `created` is a whole second, and two clocks can differ (Stripe's, and the clock of the
# function that stored the read): a stored read covers an event only when it started at least this
# long after the end of the event's second. Lambda's clocks are synced to well under a second; 10 s
# is an order of magnitude beyond any skew seen, and a storm's backlog is minutes, so it costs little.
CLOCK_SKEW_ALLOWANCE_SECONDS = 10
SYNC_OUTCOMES = {
    SaveOutcome.WRITTEN: Outcome.SYNCED,
    SaveOutcome.DUPLICATE: Outcome.DUPLICATE,
    SaveOutcome.SUPERSEDED: Outcome.SUPERSEDED,
}


class RetryQueue(Protocol):
    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None: ...


class ReadPacer:
    """At most `per_second` syncs a second in this execution environment: each sync starts no
    sooner than 1/per_second after the previous one did."""

    def __init__(
        self, per_second: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.interval = 1.0 / per_second
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


_environment = threading.local()


def read_pacer(per_second: float) -> ReadPacer:
    """One pacer per execution environment (its budget is the invocation's share, see Settings).
    Lambda runs an environment's invocations one at a time on one thread, so per thread is per
    environment, and environments run as threads in one process (the storm benchmark) stay apart."""
    pacer: ReadPacer | None = getattr(_environment, "pacer", None)
    if pacer is None or pacer.interval != 1.0 / per_second:
        pacer = _environment.pacer = ReadPacer(per_second)
    return pacer


def forget_read_pacer() -> None:
    """A fresh pacer on the next read_pacer() in this thread (tests start each from none)."""
    _environment.pacer = None


def retry_delay_seconds(receive_count: int) -> int:
    delay = min(RETRY_BASE_SECONDS * 2 ** max(0, receive_count - 1), RETRY_MAX_SECONDS)
    return int(delay * (1 - random.random() / 3))  # noqa: S311 - jitter, not a secret


def read_covers_event(record: SubscriptionRecord | None, subscription_id: str, event_created: int) -> bool:
    """Is the event's change in the stored read? Stripe creates an event after the change it
    reports, so a read of that subscription that started later saw it (or newer). Only the stored
    subscription's own events: a plan change stores its read-back alone, so the other live ones the
    record names may be older than its read time."""
    if record is None or not event_created or subscription_id != record.subscription_id:
        return False
    return record.read_at_ns >= (event_created + 1 + CLOCK_SKEW_ALLOWANCE_SECONDS) * 1_000_000_000


def _late(event: StripeEvent, now: float) -> bool:
    """Could a stored read cover the event? One that does started at least the allowance after it,
    so none can exist yet for a younger event: a prompt event skips the stored read."""
    return bool(event.created) and now >= event.created + 1 + CLOCK_SKEW_ALLOWANCE_SECONDS


def _claimed_org(event: StripeEvent) -> str | None:
    """The organization a Checkout Session names (client_reference_id, or metadata)."""
    session = read_checkout_session(event.object)
    return session.client_reference_id or session.organization_id


class BatchSync:
    """The events of one batch: one Stripe sync per customer, whatever the number of its events."""

    def __init__(
        self,
        repository: WebhookRepository,
        stripe_factory: Callable[[], StripePort],
        settings: Settings,
        catalog: Catalog,
        pacer: ReadPacer,
    ) -> None:
        self.repository, self.stripe_factory, self.settings, self.catalog = repository, stripe_factory, settings, catalog
        self.pacer = pacer
        self.synced: dict[str, SyncResult] = {}
        self.failed: dict[str, BillingError] = {}
        # Read ahead for the whole batch (see prefetch). A lookup is taken by the first copy of its
        # event; a stored subscription serves each of its organization's events (an older one can
        # only cover fewer events).
        self.lookups: dict[tuple[str, str], EventLookup] = {}
        self.stored: dict[str, SubscriptionRecord | None] = {}

    def prefetch(self, bodies: Iterable[str]) -> None:
        """Two BatchGetItems for the batch instead of one or two per event: the events' markers and
        customer links, then the stored subscription of each organization a late event concerns.
        An optimisation only: whatever goes wrong here (a table error, a body that does not read)
        leaves each event to look itself up, and to fail alone."""
        try:
            self._read_ahead(bodies)
        except Exception as exc:  # never a reason to fail the batch
            self.lookups, self.stored = {}, {}
            logger.warning("batch read-ahead failed; each event reads alone", extra={"error": type(exc).__name__})

    def _read_ahead(self, bodies: Iterable[str]) -> None:
        events: dict[tuple[str, str], StripeEvent] = {}
        for body in bodies:
            try:
                event = read_queued_event(body)
            except QueuedEventError:
                continue
            target = event_target(event) if event.type in HANDLED_EVENTS else None
            if target is not None:
                events[(event.id, target.customer_id)] = event
        if len(events) < 2:
            return
        lookups = self.repository.lookup_events(list(events))
        now = time.time()
        late_orgs = {
            org_id
            for (event_id, _), event in events.items()
            if (org_id := lookups[event_id].org_id) and not lookups[event_id].already_processed and _late(event, now)
        }
        stored = self.repository.get_subscriptions(late_orgs) if late_orgs else {}
        self.lookups = {key: lookups[key[0]] for key in events}
        self.stored = {org_id: stored.get(org_id) for org_id in late_orgs}

    def process(self, event: StripeEvent) -> Outcome:
        log_keys = {"event_id": event.id, "event_type": event.type}
        target = event_target(event) if event.type in HANDLED_EVENTS else None
        if target is None:
            return Outcome.IGNORED
        read_ahead = self.lookups.pop((event.id, target.customer_id), None)
        lookup = read_ahead or self.repository.lookup_event(event.id, target.customer_id)
        if lookup.already_processed:
            metrics.add_metric(name="WebhookDuplicate", unit="Count", value=1)
            return Outcome.DUPLICATE
        org_id = lookup.org_id
        if org_id is None or (event.type == CHECKOUT_COMPLETED and _claimed_org(event) not in (None, org_id)):
            metrics.add_metric(name="WebhookForeignCustomer", unit="Count", value=1)
            logger.warning("event for a customer that is not ours", extra=log_keys)
            return Outcome.NOT_OURS
        expires_at = int(time.time()) + EVENT_MARKER_TTL_SECONDS
        if event.type == TRIAL_WILL_END:
            return self._trial_ending(event, org_id, target.subscription_id, expires_at)
        if (failure := self.failed.get(target.customer_id)) is not None:
            # Stripe or the table failed for this customer in this batch: no second try now.
            raise failure
        earlier = self.synced.get(target.customer_id)
        # Read after this event was queued: this event's state is in it. Only its marker is left.
        covered = earlier is not None and target.subscription_id in earlier.subscription_ids
        if not covered and _late(event, time.time()):
            stored = self.stored[org_id] if org_id in self.stored else self.repository.get_subscriptions([org_id]).get(org_id)
            covered = read_covers_event(stored, target.subscription_id, event.created)
        if covered:
            metrics.add_metric(name="EventCoalesced", unit="Count", value=1)
            return Outcome.SYNCED if self.repository.mark_event(event.id, event.type, expires_at) else Outcome.DUPLICATE
        return self._sync(event, org_id, target.customer_id, target.subscription_id)

    def _trial_ending(self, event: StripeEvent, org_id: str, subscription_id: str, expires_at: int) -> Outcome:
        """Stripe's reminder, three days before a trial ends: a `TrialEnding` notice (once per trial)
        with the days left and whether a card is on file, read from Stripe now rather than from the
        event (a card added since counts). A trial already over or canceled gets no notice."""
        self.pacer.wait()
        subscription = self.stripe_factory().find_subscription_with_payment_method(subscription_id)
        if subscription is not None and subscription.status == "trialing" and subscription.trial_end is not None:
            seconds_left = max(0, subscription.trial_end - int(time.time()))
            notice = TrialEndingRecord(
                org_id=org_id,
                subscription_id=subscription_id,
                trial_end=subscription.trial_end,
                days_left=-(-seconds_left // 86400),
                has_payment_method=bool(subscription.has_payment_method),
                event_id=event.id,
            )
            if self.repository.record_trial_ending(notice):
                metrics.add_metric(name="TrialEnding", unit="Count", value=1)
                logger.info(
                    "trial ends soon",
                    extra={"event_id": event.id, "days_left": notice.days_left, "has_payment_method": notice.has_payment_method},
                )
        return Outcome.RECORDED if self.repository.mark_event(event.id, event.type, expires_at) else Outcome.DUPLICATE

    def _sync(self, event: StripeEvent, org_id: str, customer_id: str, subscription_id: str) -> Outcome:
        self.pacer.wait()
        try:
            result = sync_org(
                org_id,
                customer_id,
                self.stripe_factory(),
                self.repository,
                self.settings,
                self.catalog,
                must_include=subscription_id,
                event_id=event.id,
                event_type=event.type,
            )
            if result.outcome is SaveOutcome.SUPERSEDED and result.state is not None:
                # Done only when the stored read agrees with ours; otherwise the message is retried.
                confirm_superseded(self.repository, result.state)
        except BillingError as exc:
            if exc.retryable:
                self.failed[customer_id] = exc
            raise
        if result.outcome is None:
            metrics.add_metric(name="WebhookForeignCustomer", unit="Count", value=1)
            logger.warning("subscription not found for this customer", extra={"event_id": event.id})
            return Outcome.NOT_OURS
        if result.outcome is not SaveOutcome.DUPLICATE:
            self.synced[customer_id] = result
        return SYNC_OUTCOMES[result.outcome]


def sync_message(body: str, receive_count: int, receipt_handle: str, batch: BatchSync, queue: RetryQueue) -> Outcome:
    """One queued message. Raises when it is to be received again (the batch reports it failed)."""
    try:
        event = read_queued_event(body)
    except QueuedEventError as exc:
        metrics.add_metric(name="EventPoison", unit="Count", value=1)
        logger.error("queued message is not a Stripe event", extra={"reason": str(exc), "receive_count": receive_count})
        raise
    logger.append_keys(event_id=event.id, event_type=event.type)
    try:
        outcome = batch.process(event)
    except BillingError as exc:
        if not exc.retryable:
            logger.error("event failed", extra={"error_code": exc.code, "receive_count": receive_count})
            raise
        delay = retry_delay_seconds(receive_count)
        queue.retry_later(receipt_handle, delay)
        metrics.add_metric(name="EventRetried", unit="Count", value=1)
        logger.warning("event returned to the queue", extra={"error_code": exc.code, "retry_in_seconds": delay})
        raise
    except Exception:
        logger.exception("event failed unexpectedly", extra={"receive_count": receive_count})
        raise
    finally:
        logger.remove_keys(["event_id", "event_type"])
    metrics.add_metric(name=f"Webhook_{outcome.value}", unit="Count", value=1)
    logger.info("event processed", extra={"event_id": event.id, "outcome": outcome.value})
    return outcome
