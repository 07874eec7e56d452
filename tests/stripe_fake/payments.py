"""Payments: test cards, payment methods, PaymentIntents, invoice payments, and what a charge does.

Stripe (2026-10-28.endive) creates, when it finalizes an invoice with an amount due, a PaymentIntent
and a default invoice_payment linking the two (`invoice.payments`, includable). Charging the invoice
confirms that PaymentIntent with the subscription's (or the customer's) default payment method; a
decline leaves it `requires_payment_method` with `last_payment_error`, a card that needs 3-D Secure
leaves it `requires_action` with `next_action`, and the invoice stays open in both cases.

What a test card does (https://docs.stripe.com/testing):
- 4242 4242 4242 4242: every charge succeeds;
- 4000 0025 0000 3155: needs authentication for one-time (on-session) payments, but not for
  off-session charges once it was set up for them (Checkout in subscription mode, the portal);
- 4000 0027 6000 3184: needs authentication on every charge, however it was set up;
- 4000 0000 0000 0341: attaching it to a customer succeeds, every charge is declined;
- DECLINE_CARDS (4000 0000 0000 0002, 4000 0000 0000 9995): declined everywhere, so they can never be saved.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from tests.stripe_fake import objects
from tests.stripe_fake.errors import DOC_URL, FakeStripeError
from tests.stripe_fake.objects import DAY, Obj
from tests.stripe_fake.params import apply_metadata
from tests.stripe_fake.store import Charge, Store, previous_attributes

# The Stripe test cards the tests and `make dev` use: number -> (brand, funding) for cards that can be
# saved, decline code for cards that cannot. Any other number is no test card (card_not_supported).
SUCCESS_CARDS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("visa", "credit"),
    "4000002500003155": ("visa", "credit"),  # 3-D Secure unless set up for off-session use
    "4000002760003184": ("visa", "credit"),  # 3-D Secure 2, always
    "4000000000000341": ("visa", "credit"),  # attaches, every charge is declined
}
DECLINE_CARDS: dict[str, str] = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
}
# Cards that attach (and so can be a default payment method) but whose every charge is declined.
CHARGE_DECLINED_CARDS: dict[str, str] = {"4000000000000341": "generic_decline"}
AUTHENTICATION_ALWAYS = frozenset({"4000002760003184"})
AUTHENTICATION_UNLESS_SET_UP = frozenset({"4000002500003155"})

# Decline code -> (error code, message), as Stripe reports card declines.
_DECLINE_ERRORS: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "card_not_supported": ("card_declined", "Your card is not supported."),
}
AUTHENTICATION_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new "
    "PaymentMethod to attempt to fulfill this PaymentIntent again."
)
# Stripe's Smart Retries try a declined invoice again later; the fake only records when.
RETRY_AFTER = 3 * DAY
# A pending update lasts until the trial end or the period end, whichever is first, and at most 23 hours.
PENDING_UPDATE_LIFETIME = 23 * 3600
_DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription cycle",
    "subscription_update": "Subscription update",
}

type Emits = list[tuple[str, Obj, Obj | None]]


class Outcome(NamedTuple):
    """What one charge attempt did: succeeded, declined (with a decline code) or requires_action."""

    status: str
    decline_code: str | None = None


def normalize_card(card_number: str) -> str:
    return "".join(ch for ch in card_number if ch.isdigit())


def card_outcome(card: str, *, set_up: bool) -> Outcome:
    """What charging `card` does; `set_up` says it was saved for off-session use (Checkout, the portal)."""
    if card in DECLINE_CARDS:
        return Outcome("declined", DECLINE_CARDS[card])
    if card in CHARGE_DECLINED_CARDS:
        return Outcome("declined", CHARGE_DECLINED_CARDS[card])
    if card in AUTHENTICATION_ALWAYS or (card in AUTHENTICATION_UNLESS_SET_UP and not set_up):
        return Outcome("requires_action")
    if card in SUCCESS_CARDS:
        return Outcome("succeeded")
    return Outcome("declined", "card_not_supported")


def decline_error(decline_code: str) -> tuple[str, str]:
    """(error code, message) of a card declined with `decline_code`."""
    return _DECLINE_ERRORS.get(decline_code, ("card_declined", "Your card was declined."))


def schedule_cancellation(subscription: Obj, *, at_period_end: bool, now: int) -> None:
    """cancel_at_period_end=true (cancel_at becomes the period end) or false (no cancellation scheduled)."""
    if at_period_end:
        subscription["cancel_at_period_end"] = True
        subscription["cancel_at"] = min(item["current_period_end"] for item in subscription["items"]["data"])
        subscription["canceled_at"] = now
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
    else:
        subscription["cancel_at_period_end"] = False
        subscription["cancel_at"] = None
        subscription["canceled_at"] = None
        subscription["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}


class Payments(Store):
    # --- payment methods ------------------------------------------------------------------------

    def _new_payment_method(self, card: str, *, customer_id: str | None, email: str | None, name: str | None) -> Obj:
        brand, funding = SUCCESS_CARDS.get(card, ("visa", "credit"))
        now = self.now()
        method = objects.payment_method_card(
            self.new_id("pm_"),
            brand=brand,
            funding=funding,
            last4=card[-4:],
            exp_year=datetime.fromtimestamp(now, tz=UTC).year + 3,
            created=now,
            customer_id=customer_id,
            email=email,
            name=name,
        )
        self.payment_methods[method["id"]] = method
        self._pm_cards[method["id"]] = card
        self._register(method["id"])
        return method

    def _default_payment_method(self, subscription: Obj) -> str | None:
        """The payment method charged for the subscription's invoices: its own default, else the customer's."""
        own = subscription.get("default_payment_method")
        if isinstance(own, str):
            return own
        customer = self.customers.get(subscription["customer"]) or {}
        default = (customer.get("invoice_settings") or {}).get("default_payment_method")
        return default if isinstance(default, str) else None

    # --- invoices: finalize, pay, void ----------------------------------------------------------

    @staticmethod
    def _snap(emits: Emits, type_: str, obj: Obj, previous: Obj | None = None) -> None:
        emits.append((type_, copy.deepcopy(obj), previous))

    def _emit_all(self, emits: Emits) -> None:
        for type_, snapshot, previous in emits:
            self._emit(type_, snapshot, previous)

    def _open_invoice(
        self, subscription: Obj, *, billing_reason: str, period: tuple[int, int], charges: list[Charge], emits: Emits
    ) -> Obj:
        """Create and finalize an invoice of `subscription`; one with nothing due is paid at once.

        An amount due gets a PaymentIntent (requires_payment_method) and a default invoice payment;
        the invoice stays open until a payment attempt (see _attempt_payment) or a helper pays it.
        """
        invoice = self._new_invoice(subscription, billing_reason=billing_reason, period=period, charges=charges)
        self._snap(emits, "invoice.created", invoice)
        self._finalize_invoice(invoice)
        if invoice["amount_due"] > 0:
            intent = objects.payment_intent(
                self.new_id("pi_"),
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer_id=invoice["customer"],
                description=_DESCRIPTIONS.get(billing_reason),
                created=self.now(),
                client_secret="",
            )
            intent["client_secret"] = f"{intent['id']}_secret_{self.new_id('', 25)}"
            self.payment_intents[intent["id"]] = intent
            self._register(intent["id"])
            payment = objects.invoice_payment(
                self.new_id("inpay_"),
                invoice_id=invoice["id"],
                amount_requested=invoice["amount_due"],
                currency=invoice["currency"],
                created=self.now(),
                payment_intent_id=intent["id"],
            )
            self.invoice_payments[payment["id"]] = payment
            self._invoice_default_payment[invoice["id"]] = payment["id"]
            self._register(payment["id"])
            self._snap(emits, "payment_intent.created", intent)
        self._snap(emits, "invoice.finalized", invoice)
        if invoice["amount_due"] <= 0:
            self._mark_paid(invoice)
            self._snap(emits, "invoice.paid", invoice)
            self._snap(emits, "invoice.payment_succeeded", invoice)
        return invoice

    def _finalize_invoice(self, invoice: Obj) -> None:
        customer = self.customers[invoice["customer"]]
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        token = "test_" + self.new_id("", 40)
        self._invoice_tokens[token] = invoice["id"]
        invoice["status"] = "open"
        invoice["number"] = f"{customer['invoice_prefix']}-{sequence:04d}"
        invoice["hosted_invoice_url"] = f"{self.invoice_url_base}{token}"
        invoice["invoice_pdf"] = f"{self.invoice_pdf_url_base}{token}/pdf"
        invoice["effective_at"] = self.now()
        invoice["status_transitions"]["finalized_at"] = self.now()
        # The balance is used up (or, for a negative total, credited to the customer) at finalization.
        invoice["ending_balance"] = min(invoice["total"] + invoice["starting_balance"], 0)
        customer["balance"] = invoice["ending_balance"]

    def _mark_paid(self, invoice: Obj, *, count_attempt: bool = True) -> None:
        invoice["status"] = "paid"
        invoice["attempted"] = True
        if invoice["amount_due"] > 0 and count_attempt:
            invoice["attempt_count"] += 1
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["next_payment_attempt"] = None
        invoice["status_transitions"]["paid_at"] = self.now()

    def _invoice_intent(self, invoice: Obj) -> Obj | None:
        payment = self.invoice_payments.get(self._invoice_default_payment.get(invoice["id"], ""))
        return self.payment_intents.get(str(payment["payment"]["payment_intent"])) if payment else None

    def _intent_invoice(self, intent_id: str) -> Obj | None:
        for payment in self.invoice_payments.values():
            if payment["payment"]["payment_intent"] == intent_id:
                return self.invoices.get(str(payment["invoice"]))
        return None

    def _three_d_secure_action(self, intent: Obj) -> Obj:
        query = urlencode(
            {
                "merchant": "acct_fake",
                "payment_intent": intent["id"],
                "payment_intent_client_secret": intent["client_secret"],
                "publishable_key": "pk_test_fake",
            }
        )
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": f"{self.hooks_url_base}3d_secure_2/hosted?{query}",
                "source": self.new_id("payatt_"),
            },
        }

    def _attempt_payment(
        self,
        invoice: Obj,
        emits: Emits,
        *,
        payment_method: str | None,
        off_session: bool,
        set_up: bool = True,
        authenticated: bool = False,
        forced: Outcome | None = None,
    ) -> Outcome:
        """One attempt to pay the open `invoice` with `payment_method` (a pm_ of the fake).

        `set_up`: the card was saved for off-session use; `authenticated`: its holder already passed
        3-D Secure for this payment (Checkout); `forced`: the outcome whatever the card (fail_payment).
        Off-session (Stripe charging on its own) failures send invoice.payment_failed and, for a card
        that needs authentication, invoice.payment_action_required too.
        """
        intent = self._invoice_intent(invoice)
        if intent is None or invoice["status"] != "open":
            raise FakeStripeError(f"Invoice {invoice['id']} has nothing to pay (status {invoice['status']})")
        card = self._pm_cards.get(payment_method or "")
        if forced is not None:
            outcome = forced
        elif card is None:
            outcome = Outcome("declined", None)
        else:
            outcome = card_outcome(card, set_up=set_up)
        if outcome.status == "requires_action" and authenticated:
            outcome = Outcome("succeeded")
        now = self.now()
        intent["payment_method"] = payment_method
        if outcome.status == "succeeded":
            self._settle(invoice, intent, emits, count_attempt=True)
            return outcome
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if outcome.status == "requires_action":
            intent["status"] = "requires_action"
            intent["next_action"] = self._three_d_secure_action(intent)
            intent["last_payment_error"] = None
            invoice["next_payment_attempt"] = None
            self._snap(emits, "payment_intent.requires_action", intent)
            if off_session:
                self._snap(emits, "invoice.payment_failed", invoice)
                self._snap(emits, "invoice.payment_action_required", invoice)
            return outcome
        charge_id = self.new_id("ch_")
        intent["status"] = "requires_payment_method"
        intent["next_action"] = None
        intent["latest_charge"] = charge_id if card is not None else intent["latest_charge"]
        if outcome.decline_code is None:
            intent["last_payment_error"] = None
        else:
            code, message = decline_error(outcome.decline_code)
            intent["last_payment_error"] = {
                "charge": charge_id,
                "code": code,
                "decline_code": outcome.decline_code,
                "doc_url": DOC_URL + code.replace("_", "-"),
                "message": message,
                "payment_method": copy.deepcopy(self.payment_methods.get(payment_method or "")),
                "type": "card_error",
            }
        invoice["next_payment_attempt"] = now + RETRY_AFTER if off_session else invoice["next_payment_attempt"]
        self._snap(emits, "payment_intent.payment_failed", intent)
        self._snap(emits, "invoice.payment_failed", invoice)
        return outcome

    def _settle(self, invoice: Obj, intent: Obj, emits: Emits, *, count_attempt: bool) -> None:
        """The invoice's PaymentIntent succeeded: the payment and the invoice are paid."""
        now = self.now()
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        intent["latest_charge"] = self.new_id("ch_")
        intent["last_payment_error"] = None
        intent["next_action"] = None
        payment = self.invoice_payments[self._invoice_default_payment[invoice["id"]]]
        payment["status"] = "paid"
        payment["amount_paid"] = payment["amount_requested"]
        payment["status_transitions"]["paid_at"] = now
        self._mark_paid(invoice, count_attempt=count_attempt)
        self._snap(emits, "payment_intent.succeeded", intent)
        self._snap(emits, "invoice_payment.paid", payment)
        self._snap(emits, "invoice.paid", invoice)
        self._snap(emits, "invoice.payment_succeeded", invoice)

    def _void_invoice(self, invoice: Obj, emits: Emits) -> None:
        """Void an open invoice: its PaymentIntent is canceled and the customer balance it used comes back."""
        now = self.now()
        invoice["status"] = "void"
        invoice["auto_advance"] = False
        invoice["next_payment_attempt"] = None
        invoice["status_transitions"]["voided_at"] = now
        customer = self.customers.get(invoice["customer"])
        if customer is not None and not customer.get("deleted") and invoice["ending_balance"] is not None:
            customer["balance"] = int(customer.get("balance") or 0) + invoice["starting_balance"] - invoice["ending_balance"]
        intent = self._invoice_intent(invoice)
        if intent is not None and intent["status"] != "succeeded":
            intent["status"] = "canceled"
            intent["canceled_at"] = now
            intent["cancellation_reason"] = "void_invoice"
            intent["next_action"] = None
            payment = self.invoice_payments[self._invoice_default_payment[invoice["id"]]]
            payment["status"] = "canceled"
            payment["status_transitions"]["canceled_at"] = now
            self._snap(emits, "payment_intent.canceled", intent)
        self._snap(emits, "invoice.voided", invoice)

    def _after_invoice_paid(self, invoice: Obj, emits: Emits) -> None:
        """A subscription whose latest invoice got paid: its pending update applies, past_due becomes active."""
        subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        subscription = self.subscriptions.get(str(subscription_id))
        if subscription is None or subscription["latest_invoice"] != invoice["id"]:
            return
        previous = copy.deepcopy(subscription)
        applied = subscription["pending_update"] is not None
        if applied:
            self._apply_pending_update(subscription)
        if subscription["status"] in ("past_due", "unpaid", "incomplete"):
            subscription["status"] = "active"
        if applied:
            self._snap(emits, "customer.subscription.pending_update_applied", subscription)
        changes = previous_attributes(previous, subscription)
        if changes:
            self._snap(emits, "customer.subscription.updated", subscription, changes)

    # --- pending updates ------------------------------------------------------------------------

    def _pending_update(self, subscription: Obj, new: Obj, params: dict[str, Any], *, anchor_changed: bool) -> Obj:
        """The subscription's pending_update for an update (POST /v1/subscriptions/{id} params) not yet paid."""
        now = self.now()
        ends = [now + PENDING_UPDATE_LIFETIME, *(item["current_period_end"] for item in subscription["items"]["data"])]
        if subscription["trial_end"] is not None and subscription["status"] == "trialing":
            ends.append(subscription["trial_end"])
        metadata: dict[str, str] | None = None
        if "metadata" in params:
            # Merged into the subscription's metadata when applied; "" (clear all) unsets every current key.
            metadata = params["metadata"] if params["metadata"] is not None else dict.fromkeys(subscription["metadata"], "")
        return {
            "billing_cycle_anchor": new["billing_cycle_anchor"] if anchor_changed else None,
            "cancel_at_period_end": params.get("cancel_at_period_end"),
            "discount": None,
            "discounts": None,
            "expires_at": min(ends),
            "metadata": metadata,
            "subscription_items": copy.deepcopy(new["items"]["data"]) if "items" in params else None,
            "trial_end": None,
            "trial_from_plan": None,
        }

    def _apply_pending_update(self, subscription: Obj) -> None:
        pending = subscription["pending_update"]
        subscription["pending_update"] = None
        if pending["subscription_items"] is not None:
            subscription["items"]["data"] = copy.deepcopy(pending["subscription_items"])
        if pending["billing_cycle_anchor"] is not None:
            subscription["billing_cycle_anchor"] = pending["billing_cycle_anchor"]
        if pending["metadata"] is not None:
            subscription["metadata"] = apply_metadata(subscription["metadata"], pending["metadata"])
        if pending["cancel_at_period_end"] is not None:
            schedule_cancellation(subscription, at_period_end=pending["cancel_at_period_end"], now=self.now())

    def _expire_pending_update(self, subscription: Obj, emits: Emits) -> None:
        """Discard the pending update: its invoice is voided (customer.subscription.pending_update_expired)."""
        previous = copy.deepcopy(subscription)
        invoice = self.invoices.get(subscription["latest_invoice"] or "")
        if invoice is not None and invoice["status"] == "open":
            self._void_invoice(invoice, emits)
        subscription["pending_update"] = None
        self._snap(emits, "customer.subscription.pending_update_expired", subscription)
        self._snap(emits, "customer.subscription.updated", subscription, previous_attributes(previous, subscription))

    def _expire_due_pending_updates(self, now: int) -> None:
        for subscription in list(self.subscriptions.values()):
            pending = subscription.get("pending_update")
            if pending is not None and now >= pending["expires_at"]:
                emits: Emits = []
                self._expire_pending_update(subscription, emits)
                self._emit_all(emits)
