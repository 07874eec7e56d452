"""Property: any interleaving of checkouts (two tabs, retries), payments in any tab, expirations,
syncs and webhook deliveries (any order, duplicated, late) ends with at most one charged live
subscription per organization, and the stored state equal to Stripe's."""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import checkout_handler
import sync_handler
from tenant_billing.catalog import get_catalog
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.subscription_sync import choose_subscription, differs, synced_state
from tests.conftest import TABLE_NAME, TEST_PRICES, FakeLambdaContext
from tests.integration.conftest import new_stripe_fake, stripe_talks_to
from tests.stripe_fake import FakeStripe, FakeStripeError
from tests.support.api_events import api_event
from tests.support.flows import webhook_status

ORGS = ("a", "b")
action = st.one_of(
    # A checkout for an organization (a new tab, a double click, a retry after a timeout).
    st.builds(lambda org, plan: ("checkout", org, plan), st.sampled_from(ORGS), st.sampled_from(["pro", "enterprise"])),
    # The customer pays in one of the tabs opened so far (the index is reduced modulo their number).
    st.builds(lambda n: ("pay", n), st.integers(min_value=0, max_value=1000)),
    # Stripe expires one of the sessions by itself (24 hours passed for it).
    st.builds(lambda n: ("expire", n), st.integers(min_value=0, max_value=1000)),
    st.builds(lambda org: ("sync", org), st.sampled_from(ORGS)),
    # Deliver one of the events emitted so far.
    st.builds(lambda n: ("deliver", n), st.integers(min_value=0, max_value=1000)),
)


@pytest.mark.usefixtures("dynamodb", "stripe_secret")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Two tabs, both paid; a tab paid before its webhook, then another checkout and its payment.
@example(
    actions=[("checkout", "a", "pro"), ("checkout", "a", "pro"), ("pay", 0), ("pay", 1)],
    final_order=random.Random(1),
    duplicates=0,
)
@example(
    actions=[("checkout", "a", "pro"), ("pay", 0), ("checkout", "a", "enterprise"), ("pay", 1)],
    final_order=random.Random(2),
    duplicates=1,
)
@given(
    actions=st.lists(action, min_size=1, max_size=14),
    final_order=st.randoms(use_true_random=False),
    duplicates=st.integers(min_value=0, max_value=6),
)
def test_any_interleaving_ends_with_one_charged_subscription_and_stripes_state(
    dynamodb: Any, actions: list[tuple[Any, ...]], final_order: Any, duplicates: int
) -> None:
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})
    with stripe_talks_to(new_stripe_fake()) as stripe_fake:
        run_example(stripe_fake, actions, final_order, duplicates)


def run_example(stripe_fake: FakeStripe, actions: list[tuple[Any, ...]], final_order: Any, duplicates: int) -> None:
    run = uuid.uuid4().hex[:8]
    orgs = {name: f"org_{name}_{run}" for name in ORGS}
    tabs: list[str] = []  # every Checkout URL handed out, as its session id
    emitted: list[dict[str, Any]] = []
    delivered: set[str] = set()
    for step in actions:
        kind = step[0]
        if kind == "checkout":
            event = api_event("POST", "/billing/checkout", org_id=orgs[step[1]], body={"plan": step[2], "siteQuantity": 1})
            response = checkout_handler.lambda_handler(event, FakeLambdaContext())
            assert response["statusCode"] in (200, 409), response
            if response["statusCode"] == 200:
                url = json.loads(response["body"])["url"]
                tabs.append(next(sid for sid, s in stripe_fake.checkout_sessions.items() if s["url"] == url))
        elif kind == "pay" and tabs:
            # An expired or already paid session: Stripe refuses, nothing is charged.
            with contextlib.suppress(FakeStripeError):
                emitted += stripe_fake.complete_checkout(tabs[step[1] % len(tabs)])
        elif kind == "expire" and tabs:
            session_id = tabs[step[1] % len(tabs)]
            if stripe_fake.checkout_sessions[session_id]["status"] == "open":
                emitted += stripe_fake.expire_checkout(session_id)
        elif kind == "sync":
            event = api_event("POST", "/billing/sync", org_id=orgs[step[1]], role="member")
            assert sync_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
        elif kind == "deliver" and emitted:
            chosen = emitted[step[1] % len(emitted)]
            assert webhook_status(chosen) == 200
            delivered.add(chosen["id"])

    # Money: whatever the customer did, each organization pays for at most one subscription.
    for org_id in orgs.values():
        customers = {s["customer"] for s in stripe_fake.checkout_sessions.values() if s["client_reference_id"] == org_id}
        # Anything not ended (nor an unpaid first invoice) bills the customer.
        billing = [s for s in stripe_fake.subscriptions.values() if s["customer"] in customers]
        charged = [s for s in billing if s["status"] not in ("canceled", "incomplete_expired", "incomplete")]
        assert len(charged) <= 1, (org_id, [s["id"] for s in charged])
        assert len(customers) <= 1

    # Stripe delivers everything eventually, in any order, some of it more than once.
    remaining = [e for e in emitted if e["id"] not in delivered]
    remaining += [final_order.choice(emitted) for _ in range(duplicates if emitted else 0)]
    final_order.shuffle(remaining)
    for stripe_event in remaining:
        assert webhook_status(stripe_event) == 200
    for org_id in orgs.values():
        assert_stored_equals_stripe(stripe_fake, org_id)


def assert_stored_equals_stripe(stripe_fake: FakeStripe, org_id: str) -> None:
    stored = get_org_billing_store().get_org_billing(org_id)
    customer_id = stored.customer.customer_id if stored.customer else None
    subscriptions = [read_subscription(s) for s in stripe_fake.subscriptions.values() if s["customer"] == customer_id]
    choice = choose_subscription(subscriptions, get_catalog(), TEST_PRICES, "plan")
    if choice is None:
        assert stored.subscription is None
        return
    expected = synced_state(org_id, choice.chosen, get_catalog(), TEST_PRICES, "plan", 0, 0, choice.other_live_ids)
    assert stored.subscription is not None and stored.entitlement is not None
    assert not differs(stored.subscription, expected.subscription), (stored.subscription, expected.subscription)
    assert (stored.entitlement.plan, stored.entitlement.limits) == (expected.entitlement.plan, expected.entitlement.limits)
