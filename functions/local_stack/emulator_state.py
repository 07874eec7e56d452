"""The state behind the Stripe emulator's pages: the fake, its webhooks, and the 3-D Secure challenges.

Every read is a snapshot (a deep copy) taken under the fake's lock, so a page renders consistent
values while other requests and the webhook worker change the fake.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from functions.local_stack.webhook_delivery import DELIVERY_DELAY_SECONDS, WebhookDeliveries
from tests.stripe_fake import FakeStripe
from tests.stripe_fake.objects import Obj

CheckoutView = tuple[Obj, list[Obj], Obj]
PortalView = tuple[Obj, Obj | None, list[Obj]]
InvoiceView = tuple[Obj, Obj | None, Obj | None]


@dataclass(frozen=True)
class CardPayment:
    """What the customer typed on the Checkout page, kept while its 3-D Secure challenge is open."""

    card: str = field(repr=False)
    email: str | None
    name: str | None


class StripeEmulator(WebhookDeliveries):
    """The fake, where its webhooks go (WebhookDeliveries), the emulator's URL and its open challenges."""

    def __init__(
        self,
        fake: FakeStripe,
        *,
        webhook_url: str,
        webhook_secret: str,
        base_url: str,
        delivery_delay: float = DELIVERY_DELAY_SECONDS,
    ) -> None:
        super().__init__(fake, webhook_url=webhook_url, webhook_secret=webhook_secret, delivery_delay=delivery_delay)
        self.base_url = base_url
        self._challenges: dict[str, CardPayment] = {}
        self._challenges_lock = threading.Lock()

    # --- 3-D Secure challenges of Checkout sessions ---------------------------------------------

    def start_challenge(self, session_id: str, payment: CardPayment) -> None:
        with self._challenges_lock:
            self._challenges[session_id] = payment

    def challenge(self, session_id: str) -> CardPayment | None:
        with self._challenges_lock:
            return self._challenges.get(session_id)

    def end_challenge(self, session_id: str) -> CardPayment | None:
        with self._challenges_lock:
            return self._challenges.pop(session_id, None)

    # --- reads ----------------------------------------------------------------------------------

    def checkout_view(self, session_id: str) -> CheckoutView | None:
        """(session, line items, stored subscription_data), or None for an unknown session.

        Sessions past their expires_at are expired first (with their checkout.session.expired event).
        """
        fake = self.fake
        with fake._lock:
            fake._run_clock()
            session = fake.checkout_sessions.get(session_id)
            private = fake._session_private.get(session_id)
            if session is None or private is None:
                return None
            return _copy(session), _copy(private.line_items), _copy(private.subscription_data)

    def portal_view(self, token: str) -> PortalView | None:
        """(portal session, customer, the customer's subscriptions newest first), or None."""
        fake = self.fake
        with fake._lock:
            portal = next(
                (
                    session
                    for session in fake.portal_sessions.values()
                    if session["id"] == token or str(session.get("url") or "").rsplit("/", 1)[-1] == token
                ),
                None,
            )
            if portal is None:
                return None
            customer_id = portal["customer"]
            order = {sub_id: n for n, sub_id in enumerate(fake.subscriptions)}
            subscriptions = [sub for sub in fake.subscriptions.values() if sub["customer"] == customer_id]
            subscriptions.sort(key=lambda sub: (sub["created"], order[sub["id"]]), reverse=True)
            customer = fake.customers.get(customer_id)
            return _copy(portal), _copy(customer) if customer else None, _copy(subscriptions)

    def portal_extras(self, customer_id: str) -> tuple[Obj | None, list[Obj]]:
        """(the card invoices are charged to, the customer's finalized invoices newest first)."""
        fake = self.fake
        with fake._lock:
            customer = fake.customers.get(customer_id) or {}
            method_id = (customer.get("invoice_settings") or {}).get("default_payment_method")
            if not method_id:
                live = [sub for sub in fake.subscriptions.values() if sub["customer"] == customer_id]
                live.sort(key=lambda sub: sub["created"], reverse=True)
                method_id = next((sub["default_payment_method"] for sub in live if sub.get("default_payment_method")), None)
            method = fake.payment_methods.get(str(method_id)) if method_id else None
            invoices = [
                invoice
                for invoice in fake._newest_first(fake.invoices.values())
                if invoice["customer"] == customer_id and invoice["status"] != "draft"
            ]
            return (_copy(method) if method else None), _copy(invoices)

    def invoice_view(self, token: str) -> InvoiceView | None:
        """(invoice, its PaymentIntent, the saved card a Pay button would charge) for a hosted page token."""
        fake = self.fake
        with fake._lock:
            fake._run_clock()
            invoice = fake.invoices.get(fake._invoice_tokens.get(token, ""))
            if invoice is None:
                return None
            intent = fake._invoice_intent(invoice)
            subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            subscription = fake.subscriptions.get(str(subscription_id))
            method_id = fake._default_payment_method(subscription) if subscription is not None else None
            method = fake.payment_methods.get(method_id or "")
            return _copy(invoice), (_copy(intent) if intent else None), (_copy(method) if method else None)

    def intent_view(self, intent_id: str, client_secret: str) -> tuple[Obj, Obj | None] | None:
        """(PaymentIntent, its invoice) when `client_secret` is the PaymentIntent's, else None."""
        fake = self.fake
        with fake._lock:
            intent = fake.payment_intents.get(intent_id)
            if intent is None or not client_secret or intent["client_secret"] != client_secret:
                return None
            invoice = fake._intent_invoice(intent_id)
            return _copy(intent), (_copy(invoice) if invoice else None)

    def product_name(self, price: Obj) -> str:
        with self.fake._lock:
            product = self.fake.products.get(price["product"]) if isinstance(price.get("product"), str) else None
            return str(product["name"]) if product else str(price.get("nickname") or price.get("product") or price["id"])

    def customer_email(self, session: Obj) -> str | None:
        """The email of the session's customer, if it has one."""
        customer_id = session.get("customer")
        if not isinstance(customer_id, str):
            return None
        with self.fake._lock:
            customer = self.fake.customers.get(customer_id)
            return str(customer["email"]) if customer and customer.get("email") else None

    def card_last4(self, intent: Obj) -> str:
        """The last 4 digits of the card a PaymentIntent charges ("" when none)."""
        with self.fake._lock:
            method = self.fake.payment_methods.get(str(intent.get("payment_method") or ""))
            return str(((method or {}).get("card") or {}).get("last4") or "")


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))
