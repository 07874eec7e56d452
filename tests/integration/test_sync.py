"""POST /billing/sync: the paid plan on the first render of the page Checkout returns to, webhook or
no webhook, at most one Stripe read per organization per 5 seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import status_handler
import sync_handler
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.aws_calls import count_dynamodb_calls
from tests.support.flows import call, deliver, subscribe

pytestmark = pytest.mark.usefixtures("billing")
Items = Callable[[], list[dict[str, Any]]]


def sync(org_id: str = "org_demo", role: str = "member", **kwargs: Any) -> tuple[int, Any]:
    return call(sync_handler, api_event("POST", "/billing/sync", org_id=org_id, role=role, **kwargs))


def status(org_id: str = "org_demo") -> Any:
    return call(status_handler, api_event("GET", "/billing/status", org_id=org_id, role="member"))[1]


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the clock the sync window is measured by (the handler's time.time_ns) forward."""
    shift = int(seconds * 1e9)
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + shift)


def test_a_member_sees_the_paid_plan_before_any_webhook(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, plan="pro", sites=3)  # paid in Stripe; no webhook delivered
    assert status()["subscription"] is None
    code, body = sync()
    assert code == 200
    assert (body["subscription"]["plan"], body["subscription"]["status"], body["subscription"]["siteQuantity"]) == (
        "pro",
        "active",
        3,
    )
    assert body["entitlement"]["limits"]["sites"] == 5
    assert status() == body  # stored, and the same body as GET /billing/status


def test_it_changes_nothing_in_stripe(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake)
    stripe_fake.reset_requests()
    assert sync()[0] == 200
    assert [(r.method, r.path) for r in stripe_fake.requests] == [("GET", "/v1/subscriptions")]


def test_one_stripe_read_per_organization_per_five_seconds(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    subscribe(stripe_fake)
    assert sync()[0] == 200
    stripe_fake.reset_requests()
    with count_dynamodb_calls() as calls:
        for _ in range(5):  # reloads, two tabs
            code, body = sync()
            assert code == 200 and body["subscription"]["plan"] == "pro"
    assert stripe_fake.requests == []
    assert calls == {"Query": 5, "PutItem": 5}  # each refused by the window's condition
    # Another organization has its own window.
    subscribe(stripe_fake, org_id="org_other")
    stripe_fake.reset_requests()
    assert sync(org_id="org_other")[1]["subscription"]["plan"] == "pro"
    assert len(stripe_fake.requests) == 1
    later(monkeypatch, 5.0)
    stripe_fake.reset_requests()
    assert sync()[0] == 200
    assert len(stripe_fake.requests) == 1


def test_inside_the_window_it_answers_what_is_stored(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake).subscription_id
    assert sync()[1]["subscription"]["cancelAtPeriodEnd"] is False
    stripe_fake.update_subscription(subscription_id, cancel_at_period_end=True)  # webhook not yet here
    assert sync()[1]["subscription"]["cancelAtPeriodEnd"] is False


def test_a_webhook_that_lands_later_changes_nothing_more(stripe_fake: FakeStripe, table_items: Items) -> None:
    events = subscribe(stripe_fake).events
    body = sync()[1]
    for stripe_event in events:
        assert deliver(stripe_event)[0] == 200
    assert status() == body


def test_without_a_customer_no_stripe_call(stripe_fake: FakeStripe) -> None:
    code, body = sync(org_id="org_new")
    assert (code, body["subscription"], body["hasStripeCustomer"]) == (200, None, False)
    assert stripe_fake.requests == []


def test_stripe_down_is_502_and_reloads_add_no_stripe_reads(
    stripe_fake: FakeStripe, table_items: Items, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(stripe_fake)
    stripe_fake.fail_next(1, status=429)  # the SDK does not retry a 429 Stripe does not ask to retry
    code, body = sync()
    assert (code, body["error"]["code"]) == (502, "stripe_unavailable")
    assert not [item for item in table_items() if item["sk"]["S"] == "SUBSCRIPTION"]
    # While Stripe is rate-limiting, reloads inside the window answer what is stored.
    stripe_fake.reset_requests()
    assert sync()[1]["subscription"] is None
    assert stripe_fake.requests == []
    later(monkeypatch, 5.0)
    code, body = sync()
    assert (code, body["subscription"]["plan"]) == (200, "pro")


def test_a_storage_failure_gives_the_window_back(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenant_billing.errors import TransientStoreError
    from tenant_billing.org_billing_store import DynamoOrgBillingStore

    subscribe(stripe_fake)
    original = DynamoOrgBillingStore.save_subscription
    failures = [TransientStoreError("throttled")]

    def throttled_once(self: DynamoOrgBillingStore, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoOrgBillingStore, "save_subscription", throttled_once)
    code, body = sync()
    assert (code, body["error"]["code"]) == (503, "temporarily_unavailable")
    code, body = sync()  # at once: the failed sync gave its slot back
    assert (code, body["subscription"]["plan"]) == (200, "pro")


@pytest.mark.parametrize(("kwargs", "code"), [({"org_id": None}, 401), ({"body": {"force": True}}, 400), ({"body": [1]}, 400)])
def test_bad_requests_change_nothing(stripe_fake: FakeStripe, table_items: Items, kwargs: dict[str, Any], code: int) -> None:
    subscribe(stripe_fake)
    before = table_items()
    stripe_fake.reset_requests()
    assert sync(**kwargs)[0] == code
    assert stripe_fake.requests == []
    assert table_items() == before
