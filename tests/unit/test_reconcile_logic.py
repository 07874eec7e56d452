"""The pure parts of reconciliation: when what an organization stored is stale."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenant_billing.items import SubscriptionRecord
from tenant_billing.reconcile_check import needs_sync
from tenant_billing.reconcile_result import ReconcileResult, RunOutcome

STORED = SubscriptionRecord(
    org_id="org_a",
    subscription_id="sub_a",
    customer_id="cus_a",
    status="active",
    plan="pro",
    site_quantity=3,
    current_period_end=1_800_000_000,
    cancel_at_period_end=False,
    created=1_700_000_000,
    read_at_ns=1,
)


def test_nothing_stored_needs_a_sync() -> None:
    assert needs_sync(None, STORED)


def test_the_same_state_read_later_needs_none() -> None:
    # Only Stripe's state counts: a newer read time, or fields we do not compare, change nothing.
    assert not needs_sync(STORED, replace(STORED, read_at_ns=99, prices_known=False))


@pytest.mark.parametrize(
    "change",
    [
        {"status": "past_due"},
        {"plan": "enterprise"},
        {"plan": None},
        {"site_quantity": 4},
        {"current_period_end": 1_800_086_400},
        {"current_period_end": None},
        {"cancel_at_period_end": True},
    ],
)
def test_any_compared_field_that_differs_needs_a_sync(change: dict[str, object]) -> None:
    assert needs_sync(STORED, replace(STORED, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stored_status", "other_status", "other_created", "expected"),
    [
        ("active", "active", 1_700_000_001, True),  # a newer live subscription
        ("active", "active", 1_699_999_999, True),  # an older live one: a duplicate to detect
        ("active", "canceled", 1_700_000_001, False),  # an ended one never replaces a live one
        ("canceled", "active", 1_600_000_000, True),  # a live one replaces an ended one
        ("canceled", "canceled", 1_699_999_999, False),
        ("canceled", "incomplete_expired", 1_700_000_001, True),
    ],
)
def test_another_subscription_of_the_org_follows_the_guards_precedence(
    stored_status: str, other_status: str, other_created: int, expected: bool
) -> None:
    stored = replace(STORED, status=stored_status)
    other = replace(STORED, subscription_id="sub_b", status=other_status, created=other_created)
    assert needs_sync(stored, other) is expected


def test_a_known_duplicate_needs_a_sync_only_once_it_ended() -> None:
    stored = replace(STORED, other_live_ids=("sub_b",))
    other = replace(STORED, subscription_id="sub_b", created=1_600_000_000)
    assert not needs_sync(stored, other)
    assert needs_sync(stored, replace(other, status="canceled"))
    # The stored one's own fields are compared without the duplicate list (a single read has none).
    assert not needs_sync(stored, replace(stored, other_live_ids=()))


def test_the_result_names_every_counter() -> None:
    result = ReconcileResult(RunOutcome.PAUSED, "run_1", {"checked": 4, "repaired": 1})
    assert result.as_dict() == {
        "outcome": "paused",
        "run_id": "run_1",
        "checked": 4,
        "repaired": 1,
        "not_ours": 0,
        "orphaned": 0,
        "duplicates": 0,
        "superseded": 0,
    }
