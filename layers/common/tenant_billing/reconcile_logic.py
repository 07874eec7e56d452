"""Scheduled reconciliation: heal what a webhook lost beyond Stripe's 3 days of retries.

Phase "stripe" walks every subscription in Stripe (`status=all`, 100 a page, newest first): per
page one BatchGetItem of the customers' reverse links, one of those organizations' subscription
items, and for each organization whose stored state is stale a sync of all its subscriptions
(`sync_org`: one Stripe list and a guarded write). An organization with more than one live
subscription is synced whole and counted (`duplicates`, metric `DuplicateSubscription`) in every
run until an operator resolves it. Phase "table" scans the stored subscription items and reads
from Stripe, one by one, those the first phase did not see: a subscription Stripe no longer has
is counted as orphaned (never deleted).

Safe to run twice at once and idempotent: one run at a time holds a lease in the table (a second
one answers "busy"), every write goes through the repository guard with the time its Stripe read
started (an older read never overwrites a newer state, whoever wrote it), and an in-sync
organization is not written at all. The checkpoint (phase, cursors, counts) is stored with the
lease after every page, so a run that runs out of time, fails or is killed resumes where it stopped.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any

import stripe
from stripe.params import SubscriptionListParams

from tenant_billing.catalog import Catalog
from tenant_billing.entitlements import ENDED_STATUSES, derive_entitlement
from tenant_billing.errors import BillingNotConfiguredError
from tenant_billing.items import EntitlementRecord, SubscriptionRecord
from tenant_billing.observability import logger, metrics
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.org_sync import retrieve_subscription, sync_org
from tenant_billing.reconcile_store import RECONCILE_COUNTERS, ReconcileCheckpoint, SeenPage
from tenant_billing.repositories import ReconcileRepository
from tenant_billing.settings import Settings
from tenant_billing.stripe_gateway import stripe_errors
from tenant_billing.stripe_prices import price_ids
from tenant_billing.subscription_sync import customer_id_of, differs, entitlement_differs, synced_state

PHASE_IDLE = "idle"
PHASE_STRIPE = "stripe"
PHASE_TABLE = "table"
SOURCE = "reconcile"

# Metric name of each counter (the counters are in RECONCILE_COUNTERS; "superseded" is logged only).
METRIC_NAMES = {
    "checked": "ReconcileChecked",
    "repaired": "ReconcileRepaired",
    "not_ours": "ReconcileNotOurs",
    "orphaned": "ReconcileOrphaned",
    "duplicates": "ReconcileDuplicates",
}


class RunOutcome(StrEnum):
    COMPLETED = "completed"
    # Out of time: the checkpoint is stored and the next run resumes from it.
    PAUSED = "paused"
    # Another run holds the lease.
    BUSY = "busy"
    # The lease expired while this run was working and another run took it over.
    PREEMPTED = "preempted"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    # Stop (and store the checkpoint) when less time than this is left in the invocation.
    time_margin_ms: int = 20_000
    # How long the lease lasts without renewal; renewed with every checkpoint.
    lease_seconds: int = 300
    stripe_page_size: int = 100
    # Items the table Scan evaluates per page (most items are not subscriptions).
    scan_page_size: int = 500
    # The "seen in Stripe" pages of a run expire by TTL after this long.
    seen_ttl_seconds: int = 7 * 24 * 3600


DEFAULT_CONFIG = ReconcileConfig()


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    outcome: RunOutcome
    run_id: str
    # The run's counts so far (a run may span several invocations).
    counts: dict[str, int] = field(hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "run_id": self.run_id,
            **{name: self.counts.get(name, 0) for name in RECONCILE_COUNTERS},
        }


class _LeaseLost(Exception):
    """Another run took the lease over: stop at once, write nothing more."""


def needs_sync(stored: SubscriptionRecord | None, fresh: SubscriptionRecord) -> bool:
    """Whether Stripe's `fresh` state of one of an organization's subscriptions shows that what the
    organization has stored is stale (it is then synced whole, see `sync_org`)."""
    if stored is None:
        return True
    if stored.subscription_id == fresh.subscription_id:
        return differs(stored, replace(fresh, other_live_ids=stored.other_live_ids))
    live = fresh.status not in ENDED_STATUSES
    if fresh.subscription_id in stored.other_live_ids:
        # A known duplicate: stale only once it has ended.
        return not live
    if live:
        # A live subscription the organization does not know of: a lost webhook or a new duplicate.
        return True
    return stored.status in ENDED_STATUSES and stored.created < fresh.created


def _add(counts: Mapping[str, int], name: str, value: int = 1) -> dict[str, int]:
    return {**counts, name: counts.get(name, 0) + value}


class _Run:
    def __init__(
        self,
        repository: ReconcileRepository,
        client: stripe.StripeClient,
        settings: Settings,
        catalog: Catalog,
        remaining_ms: Callable[[], int],
        config: ReconcileConfig,
        owner: str,
        checkpoint: ReconcileCheckpoint,
        clock_ns: Callable[[], int],
    ) -> None:
        self.repository = repository
        self.client = client
        self.settings = settings
        self.catalog = catalog
        self.remaining_ms = remaining_ms
        self.config = config
        self.owner = owner
        self.clock_ns = clock_ns
        # What is stored, or about to be: consistent at every step (cursor and counts agree).
        self.checkpoint = checkpoint
        # This invocation's share of the counts (the metrics), and the Stripe ids not yet stored as seen.
        self.invocation: dict[str, int] = {}
        self.pending_seen: list[str] = []
        self.seen: set[str] | None = None
        # Organizations this invocation synced whole: one Stripe list each, however many of their
        # subscriptions the walk meets.
        self.synced: set[str] = set()
        self.lease_renew_at_ns = 0

    # --- bookkeeping ------------------------------------------------------------------------------

    def count(self, name: str) -> None:
        self.checkpoint = replace(self.checkpoint, counts=_add(self.checkpoint.counts, name))
        self.invocation = _add(self.invocation, name)

    def lease_until_ms(self) -> int:
        now_ns = self.clock_ns()
        self.lease_renew_at_ns = now_ns + self.config.lease_seconds * 1_000_000_000 // 2
        return now_ns // 1_000_000 + self.config.lease_seconds * 1000

    def persist(self, *, release: bool = False) -> None:
        """Store the checkpoint (and the pending seen ids) and renew or release the lease."""
        seen_page = None
        checkpoint = self.checkpoint
        if self.pending_seen:
            checkpoint = replace(checkpoint, seen_pages=checkpoint.seen_pages + 1)
            expires_at = int(time.time()) + self.config.seen_ttl_seconds
            seen_page = SeenPage(self.checkpoint.seen_pages, tuple(self.pending_seen), expires_at)
        lease_until = None if release else self.lease_until_ms()
        if not self.repository.save_reconcile_checkpoint(self.owner, checkpoint, lease_until, seen_page):
            raise _LeaseLost
        self.checkpoint = checkpoint
        self.pending_seen = []

    def out_of_time(self) -> bool:
        return self.remaining_ms() < self.config.time_margin_ms

    def renew_if_due(self) -> None:
        if self.clock_ns() >= self.lease_renew_at_ns:
            self.persist()

    def step(self, work: Callable[[], None], *, stripe_cursor: str | None = None, scan_cursor: str | None = None) -> None:
        """Do one subscription's work, then move the cursor past it. A failure part-way leaves the
        checkpoint as it was before (the work is redone on resume and counted once)."""
        saved = (self.checkpoint, self.invocation, len(self.pending_seen))
        try:
            work()
        except BaseException:
            self.checkpoint, self.invocation = saved[0], saved[1]
            del self.pending_seen[saved[2] :]
            raise
        if stripe_cursor is not None:
            self.checkpoint = replace(self.checkpoint, stripe_cursor=stripe_cursor)
        if scan_cursor is not None:
            self.checkpoint = replace(self.checkpoint, scan_cursor=scan_cursor)

    # --- the run ----------------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        self.lease_until_ms()  # the lease was just taken: renew it halfway through
        if self.checkpoint.phase not in (PHASE_STRIPE, PHASE_TABLE):
            self.checkpoint = replace(
                self.checkpoint,
                phase=PHASE_STRIPE,
                # base64url, not a UUID: a UUID's hex can hold 13+ digits in a row (alone or in dashed
                # groups), which log scanners rightly take for a card number.
                run_id=secrets.token_urlsafe(16),
                started_ns=self.clock_ns(),
                stripe_cursor="",
                scan_cursor="",
                seen_pages=0,
                counts=dict.fromkeys(RECONCILE_COUNTERS, 0),
            )
            logger.info("reconciliation started", extra={"run_id": self.checkpoint.run_id})
        else:
            logger.info("reconciliation resumed", extra={"run_id": self.checkpoint.run_id, "phase": self.checkpoint.phase})
        while self.checkpoint.phase == PHASE_STRIPE:
            if self.out_of_time():
                return RunOutcome.PAUSED
            self.stripe_page()
        while self.checkpoint.phase == PHASE_TABLE:
            if self.out_of_time():
                return RunOutcome.PAUSED
            if not self.table_page():
                return RunOutcome.PAUSED
        return RunOutcome.COMPLETED

    def check(
        self,
        org_id: str,
        subscription: Mapping[str, Any],
        stored: dict[str, SubscriptionRecord],
        entitlement: EntitlementRecord | None = None,
    ) -> None:
        """Sync the organization whole if this subscription shows its stored state is stale, if its
        stored entitlement is not what its subscription grants under today's catalog and policy, or
        if it has several live subscriptions (any of them may have changed unseen): once per invocation."""
        record = stored.get(org_id)
        fresh = synced_state(
            org_id, subscription, self.catalog, price_ids(self.settings), self.settings.PAST_DUE_ENTITLEMENTS, 0, 0
        ).subscription
        duplicate = record is not None and bool(record.other_live_ids)
        stale = duplicate or needs_sync(record, fresh) or self.grants_otherwise(record, entitlement)
        if org_id in self.synced or not stale:
            return
        self.synced.add(org_id)
        result = sync_org(
            org_id,
            fresh.customer_id,
            self.client,
            self.repository,
            self.settings,
            self.catalog,
            stored=record,
            stored_entitlement=entitlement,
            skip_unchanged=True,
            event_type=SOURCE,
        )
        if result.state is not None and result.state.subscription.other_live_ids:
            # Counted in every run until an operator resolves it (sync_org logged it, with the ids).
            self.count("duplicates")
        if result.outcome is SaveOutcome.WRITTEN and result.state is not None:
            self.count("repaired")
            stored[org_id] = result.state.subscription
            logger.warning(
                "reconciliation repaired a subscription",
                extra={
                    "org_id": org_id,
                    "subscription_id": result.state.subscription.subscription_id,
                    "status": result.state.subscription.status,
                },
            )
        elif result.outcome is not None:
            # A webhook (or another run) stored a newer read in the meantime: it stands.
            self.count("superseded")

    def grants_otherwise(self, record: SubscriptionRecord | None, entitlement: EntitlementRecord | None) -> bool:
        """Whether the stored entitlement differs from what the stored subscription grants today."""
        if record is None or entitlement is None:
            return False
        derived = derive_entitlement(
            self.catalog, record.plan, record.status, record.site_quantity, self.settings.PAST_DUE_ENTITLEMENTS
        )
        expected = EntitlementRecord(record.org_id, derived.plan, record.status, derived.features, derived.limits)
        return entitlement_differs(entitlement, expected)

    def stripe_page(self) -> None:
        cursor = self.checkpoint.stripe_cursor
        params: SubscriptionListParams = {"status": "all", "limit": self.config.stripe_page_size}
        if cursor:
            params["starting_after"] = cursor
        with stripe_errors("subscriptions.list"):
            try:
                page = self.client.v1.subscriptions.list(params=params)
            except stripe.InvalidRequestError as exc:
                if not (cursor and exc.code == "resource_missing"):
                    raise
                logger.warning("the reconciliation cursor is gone from Stripe; walking Stripe again from the newest")
                self.checkpoint = replace(self.checkpoint, stripe_cursor="")
                return
        subscriptions = [subscription.to_dict() for subscription in page.data]
        links = self.repository.get_customer_orgs({customer_id_of(subscription) for subscription in subscriptions})
        stored = self.repository.get_subscriptions(set(links.values()))
        entitlements = self.repository.get_entitlements(set(stored))

        def check_one(subscription: dict[str, Any]) -> None:
            self.count("checked")
            org_id = links.get(customer_id_of(subscription))
            if org_id is None:
                self.count("not_ours")
                return
            self.pending_seen.append(str(subscription["id"]))
            self.check(org_id, subscription, stored, entitlements.get(org_id))

        for subscription in subscriptions:
            self.step(partial(check_one, subscription), stripe_cursor=str(subscription["id"]))
        if not page.has_more or not subscriptions:
            self.checkpoint = replace(self.checkpoint, phase=PHASE_TABLE, stripe_cursor="", scan_cursor="")
        self.persist()

    def table_page(self) -> bool:
        """One Scan page; False when time ran out part-way (the cursor is after the last item done)."""
        if self.seen is None:
            self.seen = self.repository.reconcile_seen_ids(self.checkpoint.run_id, self.checkpoint.seen_pages)
        page, next_cursor = self.repository.scan_subscriptions(self.checkpoint.scan_cursor, self.config.scan_page_size)
        for scanned in page:
            record = scanned.record
            # Skipped: seen in Stripe by this run, or stored from a Stripe read that began after the run did.
            if record.subscription_id not in self.seen and record.read_at_ns < self.checkpoint.started_ns:
                if self.out_of_time():
                    return False
                self.renew_if_due()
                self.step(partial(self.check_stored, record), scan_cursor=scanned.cursor)
            else:
                self.checkpoint = replace(self.checkpoint, scan_cursor=scanned.cursor)
        if next_cursor:
            self.checkpoint = replace(self.checkpoint, scan_cursor=next_cursor)
            self.persist()
        else:
            self.complete()
        return True

    def check_stored(self, record: SubscriptionRecord) -> None:
        subscription = retrieve_subscription(self.client, record.subscription_id)
        self.count("checked")
        log_keys = {"org_id": record.org_id, "subscription_id": record.subscription_id}
        if subscription is None:
            self.count("orphaned")
            logger.warning("stored subscription does not exist in Stripe", extra=log_keys)
        elif customer_id_of(subscription) != record.customer_id:
            self.count("not_ours")
            logger.warning("stored subscription belongs to another Stripe customer", extra=log_keys)
        else:
            self.check(record.org_id, subscription, {record.org_id: record})

    def complete(self) -> None:
        self.checkpoint = replace(
            ReconcileCheckpoint(),
            counts=self.checkpoint.counts,
            run_id=self.checkpoint.run_id,
            last_run_id=self.checkpoint.run_id,
            last_completed_at=int(time.time()),
        )
        self.persist(release=True)


def reconcile(
    repository: ReconcileRepository,
    stripe_client: Callable[[], stripe.StripeClient],
    settings: Settings,
    catalog: Catalog,
    remaining_ms: Callable[[], int],
    *,
    config: ReconcileConfig = DEFAULT_CONFIG,
    clock_ns: Callable[[], int] = time.time_ns,
) -> ReconcileResult:
    """Run (or resume) reconciliation until it completes, runs out of time or meets another run.

    Transient failures (DynamoDB, Stripe) propagate after the checkpoint is stored and the lease
    released, so the schedule's retry or next run resumes at once.
    """
    try:
        client = stripe_client()
    except BillingNotConfiguredError:
        logger.warning("reconciliation skipped: billing is not configured")
        return ReconcileResult(RunOutcome.NOT_CONFIGURED, "", {})
    owner = secrets.token_urlsafe(16)
    now_ms = clock_ns() // 1_000_000
    checkpoint = repository.acquire_reconcile_lease(owner, now_ms, now_ms + config.lease_seconds * 1000)
    if checkpoint is None:
        logger.info("reconciliation skipped: another run holds the lease")
        return ReconcileResult(RunOutcome.BUSY, "", {})
    run = _Run(repository, client, settings, catalog, remaining_ms, config, owner, checkpoint, clock_ns)
    try:
        outcome = run.execute()
        if outcome is RunOutcome.PAUSED:
            run.persist(release=True)
    except _LeaseLost:
        outcome = RunOutcome.PREEMPTED
    except Exception:
        try:
            run.persist(release=True)
        except Exception:  # the original failure matters more; the lease expires by itself
            logger.warning("could not store the reconciliation checkpoint")
        _report(run, "failed")
        raise
    _report(run, outcome.value)
    counts = {name: run.checkpoint.counts.get(name, 0) for name in RECONCILE_COUNTERS}
    return ReconcileResult(outcome, run.checkpoint.run_id, counts)


def _report(run: _Run, outcome: str) -> None:
    """This invocation's counts as metrics (their sums over invocations are the runs' totals) and
    one log line with the run's counts so far: ids and numbers only, never Stripe objects."""
    for name, metric in METRIC_NAMES.items():
        metrics.add_metric(name=metric, unit="Count", value=run.invocation.get(name, 0))
    logger.info(
        "reconciliation finished" if outcome == RunOutcome.COMPLETED else "reconciliation stopped",
        extra={
            "outcome": outcome,
            "run_id": run.checkpoint.run_id,
            "phase": run.checkpoint.phase,
            **{name: run.checkpoint.counts.get(name, 0) for name in RECONCILE_COUNTERS},
            "this_invocation": {name: run.invocation.get(name, 0) for name in RECONCILE_COUNTERS},
        },
    )
