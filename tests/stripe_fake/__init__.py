"""A stateful, strict fake of the Stripe API (2026-10-28.endive) for tests and a local emulator.

fake = FakeStripe()
fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
client = make_stripe_client(fake)          # a real stripe.StripeClient, served in-process
session = client.v1.checkout.sessions.create(params={...})
events = fake.complete_checkout(session.id)  # the webhook events, in Stripe's order

Payments follow the customer's card (payments.py): 4242 4242 4242 4242 pays; 4000 0025 0000 3155
pays off-session once set up (Checkout, the portal); 4000 0027 6000 3184 always needs 3-D Secure
(requires_action); 4000 0000 0000 0341 attaches but every charge is declined. Helpers:
set_default_card (the portal's "update payment method"), pay_invoice (the hosted invoice page),
authenticate_payment (a 3-D Secure challenge), renew_subscription / fail_payment /
pay_latest_invoice, invoice_payment_intent, and tick (Stripe's clock: expiring sessions and pending
updates). POST /v1/subscriptions/{id} honours payment_behavior (allow_incomplete, the default;
pending_if_incomplete; error_if_incomplete; default_incomplete).
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
