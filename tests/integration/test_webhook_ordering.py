"""Property: whatever order Stripe delivers a subscription's lifecycle events in, with duplicates
and with deliveries interleaved with further changes, the stored state ends equal to Stripe's. End
to end through the queue: each delivery is processed by the consumer at once, then the rest arrives
in a burst (some through Stripe's EventBridge destination) and the consumer takes it in batches."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checkout_handler
from tenant_billing.catalog import get_catalog
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.subscription_sync import synced_state
from tests.conftest import TABLE_NAME, TEST_PRICES, FakeLambdaContext
from tests.integration.conftest import new_stripe_fake, stripe_talks_to
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import ingest, webhook_status
from tests.support.queue import drain, eventbridge_envelope, send_to_queue

PLAN_PRICES = {"pro": ("price_pro_base", "price_pro_site"), "enterprise": ("price_enterprise_base", "price_enterprise_site")}

change_items = st.builds(
    lambda plan, sites: ("items", plan, sites), st.sampled_from(sorted(PLAN_PRICES)), st.integers(min_value=0, max_value=12)
)
operation = st.one_of(
    change_items,
    st.just(("fail_payment",)),
    st.just(("pay",)),
    st.builds(lambda flag: ("cancel_at_period_end", flag), st.booleans()),
    # Deliver one of the events emitted so far (the index is reduced modulo their number).
    st.builds(lambda n: ("deliver", n), st.integers(min_value=0, max_value=1000)),
)


def apply(fake: FakeStripe, subscription_id: str, step: tuple[Any, ...], emitted: list[dict[str, Any]]) -> None:
    sub = fake.subscriptions[subscription_id]
    if sub["status"] == "canceled":
        return
    if step[0] == "items":
        base, site = PLAN_PRICES[step[1]]
        items = [{"price": base, "quantity": 1}] + ([{"price": site, "quantity": step[2]}] if step[2] else [])
        emitted += fake.update_subscription(subscription_id, items=items)
    elif step[0] == "fail_payment" and sub["status"] == "active":
        emitted += fake.fail_payment(subscription_id)
    elif step[0] == "pay" and sub["status"] == "past_due":
        emitted += fake.pay_latest_invoice(subscription_id)
    elif step[0] == "cancel_at_period_end" and bool(sub["cancel_at_period_end"]) != step[1]:
        emitted += fake.update_subscription(subscription_id, cancel_at_period_end=step[1])


@pytest.mark.usefixtures("dynamodb", "stripe_secret")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    steps=st.lists(operation, min_size=1, max_size=12),
    delete_at_end=st.booleans(),
    final_order=st.randoms(use_true_random=False),
    duplicates=st.integers(min_value=0, max_value=6),
    batch_size=st.integers(min_value=1, max_value=10),
)
def test_any_order_with_duplicates_ends_in_stripes_state(
    dynamodb: Any,
    steps: list[tuple[Any, ...]],
    delete_at_end: bool,
    final_order: Any,
    duplicates: int,
    batch_size: int,
) -> None:
    # Each example starts from an empty table and a new Stripe: moto and the fake both copy their
    # whole state on every write (for rollback), which would otherwise grow with every example.
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})
    with stripe_talks_to(new_stripe_fake()) as stripe_fake:
        run_example(stripe_fake, steps, delete_at_end, final_order, duplicates, batch_size)


def run_example(
    stripe_fake: FakeStripe,
    steps: list[tuple[Any, ...]],
    delete_at_end: bool,
    final_order: Any,
    duplicates: int,
    batch_size: int,
) -> None:
    org_id = f"org_{uuid.uuid4().hex[:12]}"
    event = api_event("POST", "/billing/checkout", org_id=org_id, body={"plan": "pro", "siteQuantity": 2})
    assert checkout_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    session_id = next(
        sid
        for sid, session in stripe_fake.checkout_sessions.items()
        if session["client_reference_id"] == org_id and session["status"] == "open"
    )
    emitted = list(stripe_fake.complete_checkout(session_id))
    subscription_id = stripe_fake.checkout_sessions[session_id]["subscription"]
    delivered: set[str] = set()
    for step in steps:
        if step[0] == "deliver":
            chosen = emitted[step[1] % len(emitted)]
            assert webhook_status(chosen) == 200
            delivered.add(chosen["id"])
        else:
            apply(stripe_fake, subscription_id, step, emitted)
    if delete_at_end and stripe_fake.subscriptions[subscription_id]["status"] != "canceled":
        emitted += stripe_fake.cancel_subscription(subscription_id)

    # Stripe delivers everything eventually, in any order, some of it more than once.
    remaining = [stripe_event for stripe_event in emitted if stripe_event["id"] not in delivered]
    remaining += [final_order.choice(emitted) for _ in range(duplicates)]
    final_order.shuffle(remaining)
    for stripe_event in remaining:
        if final_order.random() < 0.3:
            send_to_queue(eventbridge_envelope(stripe_event))
        else:
            assert ingest(stripe_event)[0] == 200
    run = drain(batch_size)
    assert run.failed == []

    expected = synced_state(
        org_id,
        read_subscription(stripe_fake.subscriptions[subscription_id]),
        get_catalog(),
        TEST_PRICES,
        "plan",
        read_at_ns=0,
        now=0,
    )
    stored = get_org_billing_store().get_org_billing(org_id)
    assert stored.subscription is not None and stored.entitlement is not None
    fields = ("subscription_id", "status", "plan", "site_quantity", "current_period_end", "cancel_at_period_end")
    assert {name: getattr(stored.subscription, name) for name in fields} == {
        name: getattr(expected.subscription, name) for name in fields
    }
    assert (stored.entitlement.plan, stored.entitlement.features, stored.entitlement.limits) == (
        expected.entitlement.plan,
        expected.entitlement.features,
        expected.entitlement.limits,
    )
