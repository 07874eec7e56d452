"""Stripe faults (the fake's fail_next) on every Stripe call of every endpoint.

Contract: a blip the SDK's retries absorb (one 5xx, a 429 that Stripe marks retryable, resets, a
lost response replayed through the same Idempotency-Key) is invisible to the caller; an outage is a
retryable 502 `stripe_unavailable` (for a webhook event, its message returns to the queue); nothing
is half-written; the caller's retry succeeds; and an organization never gets a second Stripe
customer, even when Stripe created one whose response was lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.robustness.counts import FAULTS, count
from tests.robustness.support import (
    ORG_A,
    Items,
    Reply,
    assert_links_consistent,
    assert_queued_for_retry,
    by_key,
    call_checkout,
    call_portal,
    call_status,
    changed_keys,
    deliver,
    linked_customer,
    retry_queued,
    stripe_fault_count,
)
from tests.stripe_fake import FakeStripe
from tests.support.flows import subscribe


@dataclass(frozen=True)
class StripeFault:
    count: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    # True when the SDK's own retries (2, the product's setting) cannot get past it.
    outage: bool = True

    @property
    def reached_stripe(self) -> bool:
        """Stripe executed the request (the response was lost on the way back)."""
        return bool(self.kwargs.get("lose_response"))


STRIPE_FAULTS = {
    "500-x3": StripeFault(3, {"status": 500}),
    "503-x3": StripeFault(3, {"status": 503}),
    "429": StripeFault(1, {"status": 429}),
    "connection-reset-x3": StripeFault(3, {"connection_error": True}),
    "response-lost-x3": StripeFault(3, {"lose_response": True}),
    "500-once": StripeFault(1, {"status": 500}, outage=False),
    "429-should-retry": StripeFault(1, {"status": 429, "should_retry": True}, outage=False),
    "connection-reset-x2": StripeFault(2, {"connection_error": True}, outage=False),
    "response-lost-once": StripeFault(1, {"lose_response": True}, outage=False),
}
ids = list(STRIPE_FAULTS)
faults = list(STRIPE_FAULTS.values())


def inject(fake: FakeStripe, fault: StripeFault, path_prefix: str, call: Any, *, queued: bool = False) -> Reply:
    """Make the call with the fault armed; every injected failure must have fired during it. A
    `queued` call is a webhook delivery: an outage returns its message to the queue instead."""
    first = len(fake.requests)
    fake.fail_next(fault.count, path_prefix=path_prefix, **fault.kwargs)
    reply: Reply = call()
    fired = stripe_fault_count(fake, first)
    count(FAULTS, fired)
    assert fired == fault.count, f"{fired} of {fault.count} injected faults fired"
    if fault.outage and queued:
        assert_queued_for_retry(reply)
    elif fault.outage:
        assert (reply.status, reply.code) == (502, "stripe_unavailable"), reply
        assert reply.retryable
        assert "stripe" not in reply.body["error"]["message"].lower()
    else:
        assert reply.status == 200, reply
    return reply


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", faults, ids=ids)
def test_checkout_customer_creation(fault: StripeFault, stripe_fake: FakeStripe, table_items: Items) -> None:
    inject(stripe_fake, fault, "/v1/customers", lambda: call_checkout({"plan": "pro", "siteQuantity": 1}))
    items = table_items()
    assert_links_consistent(items)
    if fault.outage:
        # Only the claim (with its idempotency key) is stored; Stripe has the customer only if it
        # executed a request whose response was lost.
        assert set(by_key(items)) == {(f"ORG#{ORG_A}", "CUSTOMER")}
        assert len(stripe_fake.customers) == (1 if fault.reached_stripe else 0)
        assert stripe_fake.checkout_sessions == {}
        assert call_checkout({"plan": "pro", "siteQuantity": 1}).status == 200
    (customer_id,) = stripe_fake.customers
    assert linked_customer(table_items(), ORG_A) == customer_id
    assert_links_consistent(table_items())
    (session,) = stripe_fake.checkout_sessions.values()
    assert session["customer"] == customer_id


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", faults, ids=ids)
def test_checkout_session_creation(fault: StripeFault, stripe_fake: FakeStripe, table_items: Items) -> None:
    inject(stripe_fake, fault, "/v1/checkout/sessions", lambda: call_checkout({"plan": "enterprise", "siteQuantity": 4}))
    items = table_items()
    assert_links_consistent(items)
    (customer_id,) = stripe_fake.customers
    assert linked_customer(items, ORG_A) == customer_id
    if fault.outage:
        assert len(stripe_fake.checkout_sessions) == (1 if fault.reached_stripe else 0)
        assert call_checkout({"plan": "enterprise", "siteQuantity": 4}).status == 200
        # The retry adds only its own session, recorded as the organization's open one. A session
        # whose answer was lost was never recorded nor handed out: nobody has its URL.
        recorded = [item["session_id"]["S"] for item in table_items() if item["sk"]["S"] == "CHECKOUT"]
        assert [item for item in table_items() if item["sk"]["S"] != "CHECKOUT"] == items
        assert recorded == [list(stripe_fake.checkout_sessions)[-1]]
    assert list(stripe_fake.customers) == [customer_id]
    assert {session["customer"] for session in stripe_fake.checkout_sessions.values()} == {customer_id}


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", faults, ids=ids)
def test_portal_session_creation(fault: StripeFault, stripe_fake: FakeStripe, table_items: Items) -> None:
    assert call_checkout({"plan": "pro"}).status == 200
    before = table_items()
    inject(stripe_fake, fault, "/v1/billing_portal", call_portal)
    assert table_items() == before
    if fault.outage:
        assert call_portal().status == 200
    assert {session["customer"] for session in stripe_fake.portal_sessions.values()} == {linked_customer(before, ORG_A)}


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("fault", faults, ids=ids)
def test_webhook_subscription_read(fault: StripeFault, stripe_fake: FakeStripe, table_items: Items) -> None:
    tenant = subscribe(stripe_fake, ORG_A)
    stripe_event = tenant.event("checkout.session.completed")
    before = table_items()
    reply = inject(stripe_fake, fault, "/v1/subscriptions", lambda: deliver(stripe_event), queued=True)
    if fault.outage:
        assert table_items() == before
        reply = retry_queued(stripe_event)
    assert reply.outcome == "synced"
    assert {key[1] for key in changed_keys(before, table_items())} == {"SUBSCRIPTION", "ENTITLEMENT", "EVENT"}
    assert call_status().body["subscription"]["status"] == "active"


@pytest.mark.usefixtures("billing")
def test_status_never_calls_stripe(stripe_fake: FakeStripe) -> None:
    stripe_fake.fail_next(100, status=500)
    assert call_status().status == 200
    assert stripe_fake.requests == []
