"""What a reconciliation invocation answers and reports (metrics and one log line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import Any

from tenant_billing.observability import logger, metrics
from tenant_billing.reconcile_store import RECONCILE_COUNTERS, ReconcileCheckpoint
from tenant_billing.records import frozen

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


@frozen
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


def report(checkpoint: ReconcileCheckpoint, invocation: Mapping[str, int], outcome: str) -> None:
    """This invocation's counts as metrics (their sums over invocations are the runs' totals) and
    one log line with the run's counts so far: ids and numbers only, never Stripe objects."""
    for name, metric in METRIC_NAMES.items():
        metrics.add_metric(name=metric, unit="Count", value=invocation.get(name, 0))
    logger.info(
        "reconciliation finished" if outcome == RunOutcome.COMPLETED else "reconciliation stopped",
        extra={
            "outcome": outcome,
            "run_id": checkpoint.run_id,
            "phase": checkpoint.phase,
            **{name: checkpoint.counts.get(name, 0) for name in RECONCILE_COUNTERS},
            "this_invocation": {name: invocation.get(name, 0) for name in RECONCILE_COUNTERS},
        },
    )
