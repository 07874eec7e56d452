"""The reconciliation lease: renewed with every store, halfway through its time at the latest."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tenant_billing.reconcile_lease import LeaseLost, ReconcileLease
from tenant_billing.reconcile_store import ReconcileCheckpoint, SeenPage

CHECKPOINT = ReconcileCheckpoint(phase="stripe", run_id="run_1")


@dataclass
class FakeStore:
    ours: bool = True
    acquired: list[tuple[str, int, int]] = field(default_factory=list)
    saved: list[tuple[ReconcileCheckpoint, int | None, SeenPage | None]] = field(default_factory=list)

    def acquire_reconcile_lease(self, owner: str, now_ms: int, lease_until_ms: int) -> ReconcileCheckpoint | None:
        self.acquired.append((owner, now_ms, lease_until_ms))
        return CHECKPOINT if self.ours else None

    def save_reconcile_checkpoint(
        self, owner: str, checkpoint: ReconcileCheckpoint, lease_until_ms: int | None, seen_page: SeenPage | None = None
    ) -> bool:
        self.saved.append((checkpoint, lease_until_ms, seen_page))
        return self.ours


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ns = now_ms * 1_000_000

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: int) -> None:
        self.now_ns += seconds * 1_000_000_000


def test_acquire_asks_for_the_lease_for_its_length() -> None:
    store, clock = FakeStore(), Clock(1_000_000)
    assert ReconcileLease(store, "me", 300, clock).acquire() == CHECKPOINT
    assert store.acquired == [("me", 1_000_000, 1_300_000)]


def test_store_renews_or_releases() -> None:
    store, clock = FakeStore(), Clock(1_000_000)
    lease = ReconcileLease(store, "me", 300, clock)
    page = SeenPage(0, ("sub_a",), 99)
    lease.store(CHECKPOINT, page, release=False)
    lease.store(CHECKPOINT, None, release=True)
    assert store.saved == [(CHECKPOINT, 1_300_000, page), (CHECKPOINT, None, None)]


def test_renewal_is_due_halfway_through_the_lease() -> None:
    store, clock = FakeStore(), Clock(1_000_000)
    lease = ReconcileLease(store, "me", 300, clock)
    lease.acquire()
    clock.advance(149)
    lease.renew_if_due(CHECKPOINT)
    assert store.saved == []
    clock.advance(1)
    lease.renew_if_due(CHECKPOINT)
    assert store.saved == [(CHECKPOINT, 1_450_000, None)]


def test_a_lease_another_run_took_over_stops_the_run() -> None:
    lease = ReconcileLease(FakeStore(ours=False), "me", 300, Clock(0))
    assert lease.acquire() is None
    with pytest.raises(LeaseLost):
        lease.store(CHECKPOINT, None, release=True)
