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
organization is not written at all. Each page's result (cursor and counts together) is stored
with the lease once the page is done, so a run that runs out of time, fails or is killed resumes
after the last page it finished, and counts every subscription once.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from tenant_billing.catalog import Catalog
from tenant_billing.errors import BillingNotConfiguredError
from tenant_billing.items import SubscriptionRecord
from tenant_billing.observability import logger
from tenant_billing.org_billing_store import SaveOutcome
from tenant_billing.reconcile_check import GrantPolicy, OrgToSync, check_stripe_page, org_to_sync
from tenant_billing.reconcile_lease import LeaseLost, ReconcileLease
from tenant_billing.reconcile_result import ReconcileResult, RunOutcome, report
from tenant_billing.reconcile_store import RECONCILE_COUNTERS, ReconcileCheckpoint, SeenPage
from tenant_billing.reconcile_stripe import ReconcileStripe
from tenant_billing.records import frozen
from tenant_billing.repositories import ReconcileRepository
from tenant_billing.settings import Settings
from tenant_billing.stripe_port import StripePort

PHASE_STRIPE = "stripe"
PHASE_TABLE = "table"

# What a page counted (added to the stored counts once the page is stored).
Counts = Counter[str]


def _added(counts: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    return {**counts, **{name: counts.get(name, 0) + value for name, value in more.items()}}


@frozen
class PageResult:
    """One page's work: where the run stands after it, and what it counted."""

    position: ReconcileCheckpoint
    counts: Counts
    seen_ids: tuple[str, ...] = ()
    # Time ran out part-way: `position` is right after the last subscription done.
    paused: bool = False


@dataclass
class _Run:
    repository: ReconcileRepository
    stripe: ReconcileStripe
    settings: Settings
    catalog: Catalog
    remaining_ms: Callable[[], int]
    lease: ReconcileLease
    # The last checkpoint stored: cursor and counts always agree.
    checkpoint: ReconcileCheckpoint
    # This invocation's share of the stored counts (the metrics).
    invocation: dict[str, int] = field(default_factory=dict)
    # Organizations this invocation synced whole: one Stripe list each, however many of their
    # subscriptions the walk meets.
    synced: set[str] = field(default_factory=set)
    # The subscription ids the Stripe walk saw, read once when the table walk begins.
    seen: set[str] | None = None

    def out_of_time(self) -> bool:
        return self.remaining_ms() < self.settings.RECONCILE_TIME_MARGIN_MS

    def policy(self) -> GrantPolicy:
        return GrantPolicy(self.catalog, self.stripe.prices(), self.settings.PAST_DUE_ENTITLEMENTS)

    def commit(self, page: PageResult, *, release: bool) -> None:
        """Store the page's result with the lease (renewed, or released): only then does it count."""
        checkpoint = replace(page.position, counts=_added(self.checkpoint.counts, page.counts))
        seen_page = None
        if page.seen_ids:
            expires_at = int(time.time()) + self.settings.RECONCILE_SEEN_TTL_SECONDS
            seen_page = SeenPage(checkpoint.seen_pages, page.seen_ids, expires_at)
            checkpoint = replace(checkpoint, seen_pages=checkpoint.seen_pages + 1)
        self.lease.store(checkpoint, seen_page, release=release)
        self.checkpoint = checkpoint
        self.invocation = _added(self.invocation, page.counts)

    def sync(self, org: OrgToSync, counts: Counts) -> None:
        """Sync the organization whole (once per invocation) and count what came of it."""
        self.synced.add(org.org_id)
        result = self.stripe.sync_org(org, self.repository)
        if result.state is not None and result.state.subscription.other_live_ids:
            # Counted in every run until an operator resolves it (sync_org logged it, with the ids).
            counts["duplicates"] += 1
        if result.outcome is SaveOutcome.WRITTEN and result.state is not None:
            counts["repaired"] += 1
            logger.warning(
                "reconciliation repaired a subscription",
                extra={
                    "org_id": org.org_id,
                    "subscription_id": result.state.subscription.subscription_id,
                    "status": result.state.subscription.status,
                },
            )
        elif result.outcome is not None:
            # A webhook (or another run) stored a newer read in the meantime: it stands.
            counts["superseded"] += 1


def _stripe_page(run: _Run) -> PageResult:
    """One page of Stripe's subscriptions: each organization it shows stale is synced."""
    page = run.stripe.subscriptions_page(run.checkpoint.stripe_cursor, run.settings.RECONCILE_STRIPE_PAGE_SIZE)
    links = run.repository.get_customer_orgs({subscription.customer_id for subscription in page.data})
    stored = run.repository.get_subscriptions(set(links.values()))
    entitlements = run.repository.get_entitlements(set(stored))
    check = check_stripe_page(page.data, links, stored, entitlements, run.policy, run.synced)
    counts = Counter({"checked": check.checked, "not_ours": check.not_ours})
    for org in check.to_sync:
        run.sync(org, counts)
    if page.has_more and page.data:
        position = replace(run.checkpoint, stripe_cursor=page.data[-1].id)
    else:
        position = replace(run.checkpoint, phase=PHASE_TABLE, stripe_cursor="", scan_cursor="")
    return PageResult(position, counts, check.seen_ids)


def _table_page(run: _Run) -> PageResult:
    """One Scan page: each stored subscription the Stripe walk did not see is read from Stripe."""
    if run.seen is None:
        run.seen = run.repository.reconcile_seen_ids(run.checkpoint.run_id, run.checkpoint.seen_pages)
    page, next_cursor = run.repository.scan_subscriptions(run.checkpoint.scan_cursor, run.settings.RECONCILE_SCAN_PAGE_SIZE)
    counts: Counts = Counter()
    done = run.checkpoint.scan_cursor
    for scanned in page:
        # Skipped: seen in Stripe by this run, or stored from a Stripe read that began after the run did.
        if scanned.record.subscription_id not in run.seen and scanned.record.read_at_ns < run.checkpoint.started_ns:
            if run.out_of_time():
                return PageResult(replace(run.checkpoint, scan_cursor=done), counts, paused=True)
            run.lease.renew_if_due(run.checkpoint)
            _check_stored(run, scanned.record, counts)
        done = scanned.cursor
    if next_cursor:
        return PageResult(replace(run.checkpoint, scan_cursor=next_cursor), counts)
    completed = ReconcileCheckpoint(
        run_id=run.checkpoint.run_id, last_run_id=run.checkpoint.run_id, last_completed_at=int(time.time())
    )
    return PageResult(completed, counts)


def _check_stored(run: _Run, record: SubscriptionRecord, counts: Counts) -> None:
    subscription = run.stripe.subscription(record.subscription_id)
    counts["checked"] += 1
    log_keys = {"org_id": record.org_id, "subscription_id": record.subscription_id}
    if subscription is None:
        counts["orphaned"] += 1
        logger.warning("stored subscription does not exist in Stripe", extra=log_keys)
    elif subscription.customer_id != record.customer_id:
        counts["not_ours"] += 1
        logger.warning("stored subscription belongs to another Stripe customer", extra=log_keys)
    elif record.org_id not in run.synced and (org := org_to_sync(record.org_id, subscription, record, None, run.policy())):
        run.sync(org, counts)


PASSES: dict[str, Callable[[_Run], PageResult]] = {PHASE_STRIPE: _stripe_page, PHASE_TABLE: _table_page}


def _begin(checkpoint: ReconcileCheckpoint, clock_ns: Callable[[], int]) -> ReconcileCheckpoint:
    """The checkpoint to work from: the stored run's, or a new run's."""
    if checkpoint.phase in PASSES:
        logger.info("reconciliation resumed", extra={"run_id": checkpoint.run_id, "phase": checkpoint.phase})
        return checkpoint
    started = replace(
        checkpoint,
        phase=PHASE_STRIPE,
        # base64url, not a UUID: a UUID's hex can hold 13+ digits in a row (alone or in dashed
        # groups), which log scanners rightly take for a card number.
        run_id=secrets.token_urlsafe(16),
        started_ns=clock_ns(),
        stripe_cursor="",
        scan_cursor="",
        seen_pages=0,
        counts=dict.fromkeys(RECONCILE_COUNTERS, 0),
    )
    logger.info("reconciliation started", extra={"run_id": started.run_id})
    return started


def _run_passes(run: _Run) -> RunOutcome:
    """Page after page, phase after phase, until the run completes or time runs out."""
    while pass_page := PASSES.get(run.checkpoint.phase):
        if run.out_of_time():
            run.lease.store(run.checkpoint, None, release=True)
            return RunOutcome.PAUSED
        page = pass_page(run)
        run.commit(page, release=page.paused or page.position.phase not in PASSES)
        if page.paused:
            return RunOutcome.PAUSED
    return RunOutcome.COMPLETED


def reconcile(
    repository: ReconcileRepository,
    stripe_factory: Callable[[], StripePort],
    settings: Settings,
    catalog: Catalog,
    remaining_ms: Callable[[], int],
    *,
    clock_ns: Callable[[], int] = time.time_ns,
) -> ReconcileResult:
    """Run (or resume) reconciliation until it completes, runs out of time or meets another run.

    Transient failures (DynamoDB, Stripe) propagate after the lease is released (the last page
    done stays stored), so the schedule's retry or next run resumes at once.
    """
    try:
        stripe = stripe_factory()
    except BillingNotConfiguredError:
        logger.warning("reconciliation skipped: billing is not configured")
        return ReconcileResult(RunOutcome.NOT_CONFIGURED, "", {})
    lease = ReconcileLease(repository, secrets.token_urlsafe(16), settings.RECONCILE_LEASE_SECONDS, clock_ns)
    checkpoint = lease.acquire()
    if checkpoint is None:
        logger.info("reconciliation skipped: another run holds the lease")
        return ReconcileResult(RunOutcome.BUSY, "", {})
    stripe_reads = ReconcileStripe(stripe, settings, catalog)
    run = _Run(repository, stripe_reads, settings, catalog, remaining_ms, lease, _begin(checkpoint, clock_ns))
    try:
        outcome = _run_passes(run)
    except LeaseLost:
        outcome = RunOutcome.PREEMPTED
    except Exception:
        try:
            lease.store(run.checkpoint, None, release=True)
        except Exception:  # the original failure matters more; the lease expires by itself
            logger.warning("could not store the reconciliation checkpoint")
        report(run.checkpoint, run.invocation, "failed")
        raise
    report(run.checkpoint, run.invocation, outcome.value)
    counts = {name: run.checkpoint.counts.get(name, 0) for name in RECONCILE_COUNTERS}
    return ReconcileResult(outcome, run.checkpoint.run_id, counts)
