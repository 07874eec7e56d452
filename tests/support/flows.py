"""Whole billing flows, the one set the suites share: through the real handlers for tests that need a
subscribed organization (integration, robustness), and in the Stripe fake alone for its own tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stripe

import checkout_handler
import status_handler
import stripe_webhook_handler
from tests.conftest import FakeLambdaContext
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event, response_json
from tests.support.queue import drain
from tests.support.webhook_events import signed_delivery

WEBHOOK_SECRET = "whsec_test_integration_secret"


def call(module: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = module.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def deliver(stripe_event: dict[str, Any] | bytes, *, secret: str = WEBHOOK_SECRET, **kwargs: Any) -> tuple[int, Any]:
    """The webhook's answer to a signed delivery. An event it queued is then processed at once by the
    consumer on the queue (`drain`), and the answer's outcome is the consumer's: what the event did
    ("failed" when the consumer reported its message failed; the message stays queued)."""
    status, body = call(stripe_webhook_handler, signed_delivery(stripe_event, [secret], **kwargs))
    if status == 200 and body.get("outcome") == "queued":
        event_id = str(json.loads(stripe_event)["id"] if isinstance(stripe_event, bytes) else stripe_event["id"])
        body = {**body, "outcome": drain().outcome_of(event_id)}
    return status, body


def ingest(stripe_event: dict[str, Any]) -> tuple[int, Any]:
    """The webhook alone (the consumer does not run)."""
    return call(stripe_webhook_handler, signed_delivery(stripe_event, [WEBHOOK_SECRET]))


def status_of(org_id: str = "org_demo") -> Any:
    return call(status_handler, api_event("GET", "/billing/status", org_id=org_id, role="member"))[1]


def open_session_id(fake: FakeStripe, org_id: str) -> str:
    """The organization's Checkout Session that can still be paid (there is at most one)."""
    (session_id,) = [
        sid for sid, s in fake.checkout_sessions.items() if s["client_reference_id"] == org_id and s["status"] == "open"
    ]
    return session_id


def items_of(fake: FakeStripe, subscription_id: str) -> list[tuple[str, int]]:
    """The subscription's items in the fake as (price id, quantity), sorted."""
    return sorted((item["price"]["id"], item["quantity"]) for item in fake.subscriptions[subscription_id]["items"]["data"])


def webhook_status(stripe_event: dict[str, Any]) -> int:
    """Deliver one Stripe event with this suite's secret: the webhook's HTTP status."""
    return deliver(stripe_event)[0]


@dataclass(frozen=True)
class Subscribed:
    """An organization that paid in Checkout, and the events Stripe emitted for it."""

    org_id: str
    customer_id: str
    subscription_id: str
    events: list[dict[str, Any]]

    def event(self, event_type: str) -> dict[str, Any]:
        return next(event for event in self.events if event["type"] == event_type)


def subscribe(
    fake: FakeStripe,
    org_id: str = "org_demo",
    plan: str = "pro",
    sites: int = 3,
    *,
    deliver_with: Callable[[dict[str, Any]], int] | None = None,
) -> Subscribed:
    """Checkout through our handler, then pay in the fake; with `deliver_with` (which returns the
    webhook's status, e.g. `webhook_status`), every event Stripe emitted is delivered and answered 200."""
    status, body = call(
        checkout_handler, api_event("POST", "/billing/checkout", org_id=org_id, body={"plan": plan, "siteQuantity": sites})
    )
    assert status == 200, body
    # The session the handler answered with (a completed session no longer has a URL).
    session_id = next(sid for sid, session in fake.checkout_sessions.items() if session["url"] == body["url"])
    events = fake.complete_checkout(session_id)
    session = fake.checkout_sessions[session_id]
    assert (session["client_reference_id"], session["metadata"]["organization_id"]) == (org_id, org_id)
    subscribed = Subscribed(org_id, session["customer"], session["subscription"], events)
    if deliver_with is not None:
        for stripe_event in events:
            assert deliver_with(stripe_event) == 200
    return subscribed


def pay_in_checkout(
    fake: FakeStripe,
    client: stripe.StripeClient,
    session: Mapping[str, Any],
    *,
    customer: Mapping[str, Any],
    card: str = "4242424242424242",
) -> tuple[str, list[dict[str, Any]]]:
    """The fake alone, through the SDK (no handler): a new customer (`customer`'s parameters) pays
    with `card` in a Checkout Session created with `session`: (subscription id, Stripe's events)."""
    # The SDK's typed params (TypedDicts) take any test's parameters, checked by the fake instead.
    customer_params: Any = dict(customer)
    customer_id = client.v1.customers.create(params=customer_params).id
    session_params: Any = {**session, "customer": customer_id}
    checkout = client.v1.checkout.sessions.create(params=session_params)
    events = fake.complete_checkout(checkout.id, card)
    subscription_id: str = events[0]["data"]["object"]["id"]
    return subscription_id, events
