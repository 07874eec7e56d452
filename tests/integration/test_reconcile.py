"""Scheduled reconciliation end to end: the real handler, moto, and the Stripe fake through the SDK."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import reconcile_handler
from tenant_billing.aws_clients import dynamodb_client
from tenant_billing.errors import StripeUnavailableError
from tenant_billing.reconcile_store import ReconcileCheckpoint
from tenant_billing.repositories import DynamoReconcileRepository, get_reconcile_repository
from tenant_billing.settings import get_settings
from tests.conftest import FakeLambdaContext, reset_caches
from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.flows import deliver, status_of, subscribe, webhook_status
from tests.support.store import store_subscription

Items = Callable[[], list[dict[str, Any]]]
pytestmark = pytest.mark.usefixtures("billing")

SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-21T03:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/billing-reconcile"],
    "detail": {},
}


@dataclass
class TimedContext(FakeLambdaContext):
    """A Lambda context whose remaining time follows `budget` (then stays at its last value)."""

    budget: list[int] = field(default_factory=lambda: [600_000])

    def get_remaining_time_in_millis(self) -> int:
        return self.budget.pop(0) if len(self.budget) > 1 else self.budget[0]


@pytest.fixture(autouse=True)
def short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    # FakeLambdaContext has 10 s left: below the production margin of 20 s.
    reconcile_settings(monkeypatch, RECONCILE_TIME_MARGIN_MS=1_000)


def reconcile_settings(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    """Set reconciliation's settings (environment variables) and forget the cached settings."""
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    get_settings.cache_clear()


def run(context: FakeLambdaContext | None = None) -> dict[str, Any]:
    result: dict[str, Any] = reconcile_handler.lambda_handler(dict(SCHEDULED_EVENT), context or FakeLambdaContext())
    return result


def counts(result: dict[str, Any]) -> tuple[Any, ...]:
    """(outcome, checked, repaired, not_ours, orphaned, superseded)"""
    return tuple(result[name] for name in ("outcome", "checked", "repaired", "not_ours", "orphaned", "superseded"))


@contextmanager
def subscription_writes() -> Iterator[Counter[str]]:
    """How often each organization's subscription item was written (TransactWriteItems Puts)."""
    writes: Counter[str] = Counter()

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        for action in params.get("TransactItems", []):
            item = action.get("Put", {}).get("Item", {})
            if item.get("sk", {}).get("S") == "SUBSCRIPTION":
                writes[item["pk"]["S"]] += 1

    client = dynamodb_client()
    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    try:
        yield writes
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", record)


def billing_items(table_items: Items) -> list[dict[str, Any]]:
    """Everything but reconciliation's own bookkeeping (checkpoint, seen pages)."""
    return sorted(
        (item for item in table_items() if not item["pk"]["S"].startswith("RECONCILE#")),
        key=lambda item: (item["pk"]["S"], item["sk"]["S"]),
    )


def paid_subscriptions(fake: FakeStripe, count: int, *, prefix: str = "org", link_every: int = 1) -> list[tuple[str, str]]:
    """`count` paid subscriptions made in Stripe directly (no checkout handler, no webhook); every
    `link_every`-th customer (0: none) is linked to its organization: [(org id, subscription id)] of those."""
    client = make_stripe_client(fake)
    repository = get_reconcile_repository()
    made = []
    for number in range(count):
        org_id = f"{prefix}_{number:03d}"
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 2}],
                "success_url": "https://app.example.com/done",
                "client_reference_id": org_id,
            }
        )
        fake.complete_checkout(session.id)
        customer_id, subscription_id = (
            fake.checkout_sessions[session.id]["customer"],
            fake.checkout_sessions[session.id]["subscription"],
        )
        if link_every and number % link_every == 0:
            claim = repository.claim_customer(org_id, f"key-{org_id}", int(time.time()))
            repository.link_customer(org_id, customer_id, claim.idempotency_key)
            made.append((org_id, subscription_id))
    return made


def state_item() -> dict[str, Any]:
    item: dict[str, Any] = (
        dynamodb_client()
        .get_item(TableName="billing-test", Key={"pk": {"S": "RECONCILE#state"}, "sk": {"S": "STATE"}}, ConsistentRead=True)
        .get("Item", {})
    )
    return item


def stripe_calls(fake: FakeStripe) -> Counter[str]:
    """Stripe subscription reads: the walk's pages ("list"), the syncs of one organization's
    customer ("customer"), and single subscriptions ("retrieve")."""

    def kind(request: Any) -> str:
        if request.path != "/v1/subscriptions":
            return "retrieve"
        return "customer" if "customer" in request.params else "list"

    return Counter(kind(request) for request in fake.requests if request.path.startswith("/v1/subscriptions"))


# --- repairs ----------------------------------------------------------------------------------


def test_a_checkout_whose_webhooks_were_all_lost_is_repaired(stripe_fake: FakeStripe, capsys: pytest.CaptureFixture[str]) -> None:
    subscribe(stripe_fake)
    assert status_of()["subscription"] is None
    capsys.readouterr()
    result = run()
    assert counts(result) == ("completed", 1, 1, 0, 0, 0)
    state = status_of()
    assert state["subscription"]["plan"] == "pro"
    assert (state["subscription"]["status"], state["subscription"]["siteQuantity"]) == ("active", 3)
    assert state["entitlement"]["limits"]["sites"] == 5
    # The metrics of the run, in CloudWatch's embedded format.
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (blob,) = [blob for blob in emitted if "ReconcileRepaired" in blob]
    names = ("ReconcileChecked", "ReconcileRepaired", "ReconcileNotOurs", "ReconcileOrphaned")
    assert [blob[name] for name in names] == [[1], [1], [0], [0]]


def test_a_lost_payment_failure_is_repaired(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, deliver_with=webhook_status).subscription_id
    stripe_fake.fail_payment(subscription_id)  # invoice.payment_failed etc. never delivered
    assert status_of()["subscription"]["status"] == "active"
    with subscription_writes() as writes:
        result = run()
    assert (result["repaired"], result["checked"]) == (1, 1)
    assert writes == {"ORG#org_demo": 1}
    assert status_of()["subscription"]["status"] == "past_due"


def test_an_in_sync_organization_is_not_written(stripe_fake: FakeStripe, table_items: Items) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    before = billing_items(table_items)
    stripe_fake.reset_requests()
    with subscription_writes() as writes, count_dynamodb_calls() as calls:
        result = run()
    assert counts(result) == ("completed", 1, 0, 0, 0, 0)
    assert writes == {}
    assert billing_items(table_items) == before
    # Lease, links, subscriptions, entitlements, seen page + checkpoint, seen ids, scan, release.
    assert calls == {"UpdateItem": 2, "BatchGetItem": 4, "TransactWriteItems": 1, "Scan": 1}
    assert stripe_calls(stripe_fake) == {"list": 1}


def test_a_customer_that_is_not_ours_writes_nothing(stripe_fake: FakeStripe, table_items: Items) -> None:
    paid_subscriptions(stripe_fake, 1, prefix="other_app", link_every=0)
    before = billing_items(table_items)
    result = run()
    assert counts(result) == ("completed", 1, 0, 1, 0, 0)
    assert billing_items(table_items) == before


def test_a_subscription_stripe_does_not_have_is_orphaned_and_kept(stripe_fake: FakeStripe, table_items: Items) -> None:
    store_subscription("org_gone", subscription_id="sub_not_in_this_account", customer_id="cus_gone")
    before = billing_items(table_items)
    result = run()
    assert counts(result) == ("completed", 1, 0, 0, 1, 0)
    assert billing_items(table_items) == before
    assert stripe_calls(stripe_fake) == {"list": 1, "retrieve": 1}


def test_a_stored_subscription_stripe_did_not_list_is_read_and_repaired(stripe_fake: FakeStripe, dynamodb: Any) -> None:
    # The reverse link is gone, so the Stripe walk cannot place it; the table walk reads it by id.
    ((org_id, subscription_id),) = paid_subscriptions(stripe_fake, 1)
    customer_id = stripe_fake.subscriptions[subscription_id]["customer"]
    store_subscription(org_id, subscription_id=subscription_id, customer_id=customer_id, status="past_due", site_quantity=2)
    dynamodb.delete_item(TableName="billing-test", Key={"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "ORG"}})
    result = run()
    assert counts(result) == ("completed", 2, 1, 1, 0, 0)
    assert get_reconcile_repository().get_org_billing(org_id).subscription.status == "active"  # type: ignore[union-attr]


# --- scale, idempotency, resumption ------------------------------------------------------------


def test_more_than_one_page_of_subscriptions_and_a_second_run_repairs_nothing(stripe_fake: FakeStripe) -> None:
    # 120 subscriptions in Stripe, one customer in 8 ours (moto copies the whole table for every
    # transaction, so the repairs are kept few; the pages are full either way).
    made = paid_subscriptions(stripe_fake, 120, link_every=8)
    stripe_fake.reset_requests()
    with subscription_writes() as writes:
        result = run()
    assert counts(result) == ("completed", 120, 15, 105, 0, 0)
    assert writes == {f"ORG#{org_id}": 1 for org_id, _ in made}
    # Two pages of 100, one read of each repaired organization's subscriptions (it is synced
    # whole); the table walk reads nothing back from Stripe one by one.
    assert stripe_calls(stripe_fake) == {"list": 2, "customer": 15}
    pages = [request for request in stripe_fake.requests if "customer" not in request.params]
    assert [request.params.get("starting_after") is None for request in pages] == [True, False]
    assert [request.params["limit"] for request in pages] == ["100", "100"]
    assert get_reconcile_repository().get_org_billing("org_112").entitlement.limits["sites"] == 4  # type: ignore[union-attr]

    with subscription_writes() as writes:
        again = run()
    assert counts(again) == ("completed", 120, 0, 105, 0, 0)
    assert writes == {}
    assert again["run_id"] != result["run_id"]


def test_out_of_time_pauses_and_the_next_run_resumes_repairing_each_once(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconcile_settings(monkeypatch, RECONCILE_STRIPE_PAGE_SIZE=4)
    made = paid_subscriptions(stripe_fake, 10)
    with subscription_writes() as writes:
        # Time for one page, then the margin is reached.
        first = run(TimedContext(budget=[60_000, 500]))
        assert counts(first) == ("paused", 4, 4, 0, 0, 0)
        assert "lease_owner" not in state_item()  # released: the next run need not wait
        assert state_item()["phase"]["S"] == "stripe"
        second = run(TimedContext(budget=[60_000, 500]))
        assert (second["outcome"], second["checked"], second["repaired"]) == ("paused", 8, 8)
        last = run()
    assert second["run_id"] == first["run_id"] == last["run_id"]
    assert counts(last) == ("completed", 10, 10, 0, 0, 0)
    assert writes == {f"ORG#{org_id}": 1 for org_id, _ in made}
    assert state_item()["phase"]["S"] == "idle"


def test_out_of_time_in_the_table_walk_resumes_after_the_last_subscription_done(stripe_fake: FakeStripe) -> None:
    for number in range(3):
        store_subscription(f"org_old_{number}", subscription_id=f"sub_gone_{number}", customer_id=f"cus_gone_{number}")
    stripe_fake.reset_requests()
    # Enough for the Stripe page, the scan and one read by id; then out of time.
    first = run(TimedContext(budget=[60_000, 60_000, 60_000, 500]))
    assert (first["outcome"], first["orphaned"]) == ("paused", 1)
    last = run()
    assert (last["outcome"], last["orphaned"], last["checked"]) == ("completed", 3, 3)
    retrieved = [request.path for request in stripe_fake.requests if request.path.startswith("/v1/subscriptions/")]
    assert sorted(retrieved) == [f"/v1/subscriptions/sub_gone_{number}" for number in range(3)]


def test_a_transient_failure_keeps_the_progress_and_the_next_run_resumes(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconcile_settings(monkeypatch, RECONCILE_STRIPE_PAGE_SIZE=2)
    made = paid_subscriptions(stripe_fake, 5)
    original = DynamoReconcileRepository.get_subscriptions
    pages = 0

    def then_stripe_fails(self: DynamoReconcileRepository, org_ids: Any) -> Any:
        nonlocal pages
        pages += 1
        if pages == 3:  # the first two pages' writes are made, then Stripe fails during the third page
            stripe_fake.fail_next(3, status=500, path_prefix="/v1/subscriptions")
        return original(self, org_ids)

    monkeypatch.setattr(DynamoReconcileRepository, "get_subscriptions", then_stripe_fails)
    with subscription_writes() as writes:
        with pytest.raises(StripeUnavailableError):
            run()
        state = state_item()
        assert "lease_owner" not in state
        assert (state["phase"]["S"], state["counts"]["M"]["repaired"]["N"]) == ("stripe", "4")
        result = run()
    assert counts(result) == ("completed", 5, 5, 0, 0, 0)
    assert writes == {f"ORG#{org_id}": 1 for org_id, _ in made}


def test_without_a_stripe_key_it_does_nothing(monkeypatch: pytest.MonkeyPatch, table_items: Items) -> None:
    monkeypatch.setenv("STRIPE_SECRET_ARN", "")
    reset_caches()
    assert run()["outcome"] == "not_configured"
    assert table_items() == []


# --- concurrency ----------------------------------------------------------------------------------


def test_two_runs_at_once_the_second_is_busy(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    paid_subscriptions(stripe_fake, 2)
    original = DynamoReconcileRepository.get_customer_orgs
    concurrent: list[dict[str, Any]] = []

    def with_a_second_run(self: DynamoReconcileRepository, customer_ids: Any) -> Any:
        if not concurrent:
            concurrent.append(run())  # the schedule fires again while the first run is mid-page
        return original(self, customer_ids)

    monkeypatch.setattr(DynamoReconcileRepository, "get_customer_orgs", with_a_second_run)
    with subscription_writes() as writes:
        result = run()
    assert concurrent[0]["outcome"] == "busy"
    assert (concurrent[0]["checked"], concurrent[0]["repaired"]) == (0, 0)
    assert (result["outcome"], result["repaired"]) == ("completed", 2)
    assert sum(writes.values()) == 2


def test_an_expired_lease_is_taken_over_and_its_run_resumed(stripe_fake: FakeStripe) -> None:
    paid_subscriptions(stripe_fake, 3)
    repository = get_reconcile_repository()
    now_ms = time.time_ns() // 1_000_000
    # A run that died holding the lease, part-way through the Stripe walk.
    assert repository.acquire_reconcile_lease("dead-run", now_ms, now_ms + 60_000) is not None
    checkpoint = ReconcileCheckpoint(phase="stripe", run_id="run-that-died", started_ns=time.time_ns(), counts={"checked": 0})
    assert repository.save_reconcile_checkpoint("dead-run", checkpoint, now_ms + 60_000)
    assert run()["outcome"] == "busy"  # not expired yet

    assert repository.save_reconcile_checkpoint("dead-run", checkpoint, now_ms - 1)  # now it is
    result = run()
    assert (result["outcome"], result["run_id"], result["repaired"]) == ("completed", "run-that-died", 3)
    # The old holder, should it wake up, can no longer write.
    assert not repository.save_reconcile_checkpoint("dead-run", checkpoint, now_ms + 60_000)


def test_a_stale_read_never_overwrites_what_a_webhook_stored_meanwhile(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed = subscribe(stripe_fake)  # nothing delivered: the org looks out of date
    subscription_id, events = subscribed.subscription_id, subscribed.events
    original = DynamoReconcileRepository.save_subscription

    def webhook_lands_meanwhile(self: DynamoReconcileRepository, record: Any, *args: Any, **kwargs: Any) -> Any:
        # After reconciliation read the organization from Stripe, before it writes: the customer
        # schedules a cancellation and the (late) webhooks arrive, storing Stripe's newer state.
        if args[2] == "reconcile" and not stripe_fake.subscriptions[subscription_id]["cancel_at_period_end"]:
            for stripe_event in [*events, *stripe_fake.update_subscription(subscription_id, cancel_at_period_end=True)]:
                assert deliver(stripe_event)[0] == 200
        return original(self, record, *args, **kwargs)

    monkeypatch.setattr(DynamoReconcileRepository, "save_subscription", webhook_lands_meanwhile)
    result = run()
    assert (result["repaired"], result["superseded"]) == (0, 1)
    assert status_of()["subscription"]["cancelAtPeriodEnd"] is True
    assert run()["repaired"] == 0
