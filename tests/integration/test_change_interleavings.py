"""Property: any sequence of previews, plan changes (paid, declined, needing 3-D Secure, doubled),
payments and webhook deliveries (any order, duplicated, late) leaves the stored entitlement equal
to what Stripe's paid state grants, and never more than one unpaid change invoice."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import subscription_handler
from tenant_billing.catalog import get_catalog
from tenant_billing.org_billing_store import get_org_billing_store
from tenant_billing.stripe_objects import read_subscription
from tenant_billing.subscription_sync import synced_state
from tests.conftest import TABLE_NAME, TEST_PRICES, FakeLambdaContext
from tests.integration.conftest import new_stripe_fake, stripe_talks_to
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import deliver, subscribe, webhook_status

CARDS = {"pays": "4242424242424242", "declines": "4000000000000341", "authenticates": "4000002760003184"}
selection = st.tuples(st.sampled_from(["pro", "enterprise"]), st.integers(min_value=0, max_value=6))
action = st.one_of(
    st.builds(lambda card: ("card", card), st.sampled_from(sorted(CARDS))),
    st.builds(lambda sel: ("preview", *sel), selection),
    st.builds(lambda sel, quoted: ("change", *sel, quoted), selection, st.booleans()),
    st.builds(lambda sel: ("double", *sel), selection),
    st.builds(lambda ok: ("authenticate", ok), st.booleans()),
    st.just(("pay",)),
    st.builds(lambda n: ("deliver", n), st.integers(min_value=0, max_value=1000)),
)


def call(method: str, path: str, org_id: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    import json

    event = api_event(method, path, org_id=org_id, body=body)
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    response = subscription_handler.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.usefixtures("dynamodb", "stripe_secret")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(actions=[("card", "declines"), ("change", "enterprise", 6, False), ("deliver", 0)], seed=1)
@example(actions=[("card", "authenticates"), ("preview", "enterprise", 2), ("change", "enterprise", 2, True)], seed=2)
@given(actions=st.lists(action, min_size=1, max_size=12), seed=st.integers(min_value=0, max_value=2**16))
def test_any_sequence_grants_exactly_what_stripe_was_paid_for(dynamodb: Any, actions: list[tuple[Any, ...]], seed: int) -> None:
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})
    with stripe_talks_to(new_stripe_fake()) as stripe_fake:
        run_example(stripe_fake, actions, seed)


def run_example(fake: FakeStripe, actions: list[tuple[Any, ...]], seed: int) -> None:
    import random

    org_id = f"org_{uuid.uuid4().hex[:12]}"
    subscription_id = subscribe(fake, org_id=org_id, plan="pro", sites=1, deliver_with=webhook_status).subscription_id
    customer_id = fake.subscriptions[subscription_id]["customer"]
    delivered_upto = len(fake.events)
    previews: dict[tuple[str, int], str] = {}
    for step in actions:
        kind = step[0]
        if kind == "card":
            fake.set_default_card(customer_id, CARDS[step[1]])
        elif kind == "preview":
            status, body = call(
                "GET", "/billing/subscription/preview", org_id, query={"plan": step[1], "siteQuantity": str(step[2])}
            )
            assert status in (200, 400, 409), body
            if status == 200:
                previews[(step[1], step[2])] = body["previewId"]
        elif kind in ("change", "double"):
            wanted: dict[str, Any] = {"plan": step[1], "siteQuantity": step[2]}
            if kind == "change" and step[3] and (step[1], step[2]) in previews:
                wanted["previewId"] = previews[(step[1], step[2])]
            for _ in range(2 if kind == "double" else 1):
                status, answer = call("POST", "/billing/subscription", org_id, body=wanted)
                assert status in (200, 400, 402, 409), answer
                if status >= 400:
                    assert answer["error"]["code"] in {
                        "no_change",
                        "invalid_preview",
                        "payment_failed",
                        "payment_requires_action",
                        "payment_outstanding",
                    }, answer
        elif kind == "authenticate":
            intent = fake.invoice_payment_intent(fake.subscriptions[subscription_id]["latest_invoice"] or "")
            if intent is not None and intent["status"] == "requires_action":
                fake.authenticate_payment(intent["id"], succeed=step[1])
        elif kind == "pay":
            invoice = fake.invoices.get(fake.subscriptions[subscription_id]["latest_invoice"] or "")
            if invoice is not None and invoice["status"] == "open":
                fake.pay_invoice(invoice["id"], CARDS["pays"])
        elif kind == "deliver" and len(fake.events) > 0:
            assert deliver(fake.events[step[1] % len(fake.events)])[0] == 200
        open_change_invoices = [
            i for i in fake.invoices.values() if i["status"] == "open" and i["billing_reason"] == "subscription_update"
        ]
        assert len(open_change_invoices) <= 1, "one upgrade invoiced twice"
        # No renewal happens here: only an unpaid change applied anyway could make it past_due.
        assert fake.subscriptions[subscription_id]["status"] == "active", "a change applied before it was paid"

    # Stripe delivers everything eventually, in any order, some of it more than once.
    order = random.Random(seed)
    remaining = list(fake.events[delivered_upto:]) + [order.choice(fake.events) for _ in range(3)]
    order.shuffle(remaining)
    for stripe_event in remaining:
        assert deliver(stripe_event)[0] == 200
    expected = synced_state(
        org_id, read_subscription(fake.subscriptions[subscription_id]), get_catalog(), TEST_PRICES, "plan", 0, 0
    )
    stored = get_org_billing_store().get_org_billing(org_id)
    assert stored.subscription is not None and stored.entitlement is not None
    assert (stored.entitlement.plan, stored.entitlement.limits) == (expected.entitlement.plan, expected.entitlement.limits)
    assert (stored.subscription.plan, stored.subscription.site_quantity, stored.subscription.pending_plan) == (
        expected.subscription.plan,
        expected.subscription.site_quantity,
        expected.subscription.pending_plan,
    )
