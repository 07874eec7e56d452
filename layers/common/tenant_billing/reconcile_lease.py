"""The lease that lets one reconciliation run at a time, held in the reconcile state item."""

from __future__ import annotations

from collections.abc import Callable

from tenant_billing.reconcile_store import ReconcileCheckpoint, ReconcileLeaseStore, SeenPage

NS_PER_MS = 1_000_000


class LeaseLost(Exception):
    """Another run took the lease over: stop at once, write nothing more."""


class ReconcileLease:
    """Taken once, renewed with every stored checkpoint (and halfway through its time at the
    latest), released when the run stops."""

    def __init__(self, store: ReconcileLeaseStore, owner: str, seconds: int, clock_ns: Callable[[], int]) -> None:
        self._store = store
        self._owner = owner
        self._seconds = seconds
        self._clock_ns = clock_ns
        self._renew_at_ns = 0

    def _until_ms(self, now_ns: int) -> int:
        self._renew_at_ns = now_ns + self._seconds * 1_000_000_000 // 2
        return now_ns // NS_PER_MS + self._seconds * 1000

    def acquire(self) -> ReconcileCheckpoint | None:
        """The stored checkpoint, once the lease is ours; None while another run holds it."""
        now_ns = self._clock_ns()
        return self._store.acquire_reconcile_lease(self._owner, now_ns // NS_PER_MS, self._until_ms(now_ns))

    def store(self, checkpoint: ReconcileCheckpoint, seen_page: SeenPage | None, *, release: bool) -> None:
        """Store the checkpoint (and `seen_page`) and renew or release the lease."""
        lease_until = None if release else self._until_ms(self._clock_ns())
        if not self._store.save_reconcile_checkpoint(self._owner, checkpoint, lease_until, seen_page):
            raise LeaseLost

    def renew_if_due(self, checkpoint: ReconcileCheckpoint) -> None:
        if self._clock_ns() >= self._renew_at_ns:
            self.store(checkpoint, None, release=False)
