"""Whole billing flows through the real handlers, for tests that need a subscribed organization."""

from __future__ import annotations

from typing import Any

import checkout_handler
import status_handler
import stripe_webhook_handler
from tests.conftest import FakeLambdaContext
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event, response_json
from tests.support.webhook_events import signed_delivery

WEBHOOK_SECRET = "whsec_test_integration_secret"


def call(module: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = module.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def deliver(stripe_event: dict[str, Any] | bytes, *, secret: str = WEBHOOK_SECRET, **kwargs: Any) -> tuple[int, Any]:
    return call(stripe_webhook_handler, signed_delivery(stripe_event, [secret], **kwargs))


def status_of(org_id: str = "org_demo") -> Any:
    return call(status_handler, api_event("GET", "/billing/status", org_id=org_id, role="member"))[1]


def open_session_id(fake: FakeStripe, org_id: str) -> str:
    """The organization's Checkout Session that can still be paid (there is at most one)."""
    (session_id,) = [
        sid for sid, s in fake.checkout_sessions.items() if s["client_reference_id"] == org_id and s["status"] == "open"
    ]
    return session_id


def subscribe(
    fake: FakeStripe, org_id: str = "org_demo", plan: str = "pro", sites: int = 3, *, deliver_events: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """Checkout through our handler, then pay in the fake: (subscription id, Stripe's events)."""
    status, body = call(
        checkout_handler, api_event("POST", "/billing/checkout", org_id=org_id, body={"plan": plan, "siteQuantity": sites})
    )
    assert status == 200, body
    session_id = next(
        sid
        for sid, session in fake.checkout_sessions.items()
        if session["client_reference_id"] == org_id and session["status"] == "open"
    )
    events = fake.complete_checkout(session_id)
    if deliver_events:
        for stripe_event in events:
            assert deliver(stripe_event)[0] == 200
    return fake.checkout_sessions[session_id]["subscription"], events
