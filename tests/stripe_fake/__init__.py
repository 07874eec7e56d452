"""A stateful, strict fake of the Stripe API (2026-10-28.endive) for tests and a local emulator.

fake = FakeStripe()
fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
client = make_stripe_client(fake)          # a real stripe.StripeClient, served in-process
session = client.v1.checkout.sessions.create(params={...})
events = fake.complete_checkout(session.id)  # the webhook events, in Stripe's order
"""

from __future__ import annotations

from tests.stripe_fake.constants import API_VERSION, TEST_API_KEY
from tests.stripe_fake.errors import CardDeclined, FakeStripeError, SimulatedConnectionError
from tests.stripe_fake.http_client import CaseInsensitiveHeaders, FakeStripeHTTPClient, make_stripe_client
from tests.stripe_fake.state import FakeStripe, RecordedRequest

__all__ = [
    "API_VERSION",
    "TEST_API_KEY",
    "CardDeclined",
    "CaseInsensitiveHeaders",
    "FakeStripe",
    "FakeStripeError",
    "FakeStripeHTTPClient",
    "RecordedRequest",
    "SimulatedConnectionError",
    "make_stripe_client",
]
