"""What customers and Stripe itself do outside our API calls: pay in Checkout, renew, fail, cancel...

Each public method returns the events it emitted (in emission order); they are also in `events`.
Payments follow the customer's card (see payments.py for what each test card does).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.stripe_fake import objects
from tests.stripe_fake.errors import CardDeclined, FakeStripeError, StripeAPIError
from tests.stripe_fake.objects import Obj, add_interval
from tests.stripe_fake.params import apply_metadata, join
from tests.stripe_fake.payments import (
    AUTHENTICATION_FAILURE_MESSAGE,
    CHARGE_DECLINED_CARDS,
    DECLINE_CARDS,
    SUCCESS_CARDS,
    Emits,
    Outcome,
    Payments,
    decline_error,
    normalize_card,
)
from tests.stripe_fake.store import Charge, previous_attributes

__all__ = ["DECLINE_CARDS", "SUCCESS_CARDS", "Lifecycle", "UpdatePlan", "next_period_end", "prorate"]

_ENDED = ("canceled", "incomplete_expired")
# Statuses in which item changes are prorated (a trial bills nothing to prorate).
_PRORATED = ("active", "past_due")
# Statuses of subscriptions that have a next invoice to preview.
_INVOICING = ("active", "past_due", "trialing", "unpaid")
PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
REQUIRES_ACTION_MESSAGE = (
    "Payment for this subscription requires additional user action before it can be completed successfully. "
    "Payment can be completed using the PaymentIntent associated with `subscription.latest_invoice`. "
    "Additional information is available here: https://stripe.com/docs/billing/subscriptions/overview#requires-action"
)
_UNSET: Any = object()


def prorate(amount: int, remaining: int, length: int) -> int:
    """amount * remaining / length, per second as Stripe prorates, rounded half away from zero.

    `remaining` is clamped to 0..length (a proration date outside the period prorates nothing or all).
    """
    if length <= 0:
        return 0
    remaining = max(0, min(remaining, length))
    quotient, remainder = divmod(abs(amount) * remaining, length)
    if 2 * remainder >= length:
        quotient += 1
    return quotient if amount >= 0 else -quotient


def _billing_changed(before: Obj, after: Obj) -> bool:
    return bool(before["price"]["id"] != after["price"]["id"] or before["quantity"] != after["quantity"])


@dataclass
class UpdatePlan:
    """What an item/cancellation change would do, computed without changing anything.

    `charges` are the lines the change itself bills: prorations (proration=True) and, when the
    billing interval changes, the new period's full lines. `immediate` says they are invoiced now.
    """

    new: Obj
    behavior: str
    proration_date: int
    period: tuple[int, int]
    items_changed: bool = False
    interval_changed: bool = False
    charges: list[Charge] = field(default_factory=list)

    @property
    def immediate(self) -> bool:
        return self.items_changed and (self.interval_changed or self.behavior == "always_invoice")


class Lifecycle(Payments):
    # --- Checkout -------------------------------------------------------------------------------

    def complete_checkout(
        self,
        session_id: str,
        card_number: str | None = "4242424242424242",
        *,
        email: str | None = None,
        name: str | None = None,
    ) -> list[Obj]:
        """The customer pays in Checkout (subscription mode): customer (if new), subscription, paid invoice.

        Checkout runs any 3-D Secure challenge itself (treated as passed here) and saves the card as
        the subscription's default payment method, set up for off-session charges. A declined or
        unknown card raises CardDeclined and changes nothing; so does 4000 0000 0000 0341 when the
        first invoice has an amount due (it attaches, but every charge is declined: with a trial, it
        gets through Checkout and the first charge after the trial fails).

        `card_number=None`: the customer gives no card, which Checkout allows only when the session
        was created with payment_method_collection=if_required and nothing is due (a trial): the
        subscription then has no payment method, and its trial ends as trial_settings says.
        """
        with self._collect() as batch:
            session = self.checkout_sessions.get(session_id)
            if session is None:
                raise FakeStripeError(f"No such checkout session: '{session_id}'")
            if session["status"] == "expired":
                raise FakeStripeError(f"Checkout Session {session_id} has expired (expires_at {session['expires_at']})")
            if session["status"] != "open":
                raise FakeStripeError(f"Checkout Session {session_id} is already {session['status']}")
            card_less = card_number is None
            if card_less and not (session["payment_method_collection"] == "if_required" and session["amount_total"] == 0):
                raise FakeStripeError(
                    f"Checkout Session {session_id} collects a payment method: it was created with "
                    f"payment_method_collection={session['payment_method_collection']} and {session['amount_total']} due"
                )
            card = normalize_card(card_number or "4242424242424242")
            if card in DECLINE_CARDS:
                raise CardDeclined(card, DECLINE_CARDS[card])
            if card not in SUCCESS_CARDS:
                raise CardDeclined(card, "card_not_supported")
            if card in CHARGE_DECLINED_CARDS and session["amount_total"] > 0:
                raise CardDeclined(card, CHARGE_DECLINED_CARDS[card])
            customer_id = session["customer"]
            if customer_id is not None and self.customers[customer_id].get("deleted"):
                raise FakeStripeError(f"Customer {customer_id} was deleted")

            private = self._session_private[session_id]
            now = self.now()
            customer_email = session["customer_email"] or email
            if customer_id is None:
                customer = objects.customer(self.new_id("cus_", 14), created=now, invoice_prefix=self._invoice_prefix())
                customer["email"] = customer_email or f"customer.{len(self.customers) + 1}@example.com"
                customer["name"] = name
                self.customers[customer["id"]] = customer
                self._register(customer["id"])
                self._emit("customer.created", customer)
            else:
                customer = self.customers[customer_id]
                updates = private.customer_update
                previous = copy.deepcopy(customer)
                if updates.get("name") == "auto" and name:
                    customer["name"] = name
                if customer != previous:
                    self._emit("customer.updated", customer, previous_attributes(previous, customer))

            payment_method = (
                None
                if card_less
                else self._new_payment_method(card, customer_id=customer["id"], email=customer["email"], name=name)
            )

            subscription_data = private.subscription_data
            subscription_id = self.new_id("sub_")
            first_price = private.line_items[0]["price"]
            interval = first_price["recurring"]["interval"]
            interval_count = first_price["recurring"]["interval_count"]
            trial: tuple[int, int] | None = None
            if "trial_period_days" in subscription_data:
                trial = (now, now + subscription_data["trial_period_days"] * objects.DAY)
            elif "trial_end" in subscription_data:
                trial = (now, subscription_data["trial_end"])
            period = (now, trial[1] if trial else add_interval(now, interval, interval_count))
            items = [
                objects.subscription_item(
                    self.new_id("si_", 14),
                    subscription_id=subscription_id,
                    p=copy.deepcopy(self.prices[line["price"]["id"]]),
                    quantity=line["quantity"],
                    created=now,
                    period=period,
                )
                for line in private.line_items
            ]
            subscription = objects.subscription(
                subscription_id,
                customer_id=customer["id"],
                created=now,
                currency=first_price["currency"],
                status="trialing" if trial else "active",
                items=items,
                metadata=dict(subscription_data.get("metadata") or {}),
                description=subscription_data.get("description"),
                trial=trial,
                billing_cycle_anchor=period[1] if trial else now,
                default_payment_method=payment_method["id"] if payment_method else None,
                missing_payment_method=(subscription_data.get("trial_settings") or {})
                .get("end_behavior", {})
                .get("missing_payment_method", "create_invoice"),
            )
            self.subscriptions[subscription_id] = subscription
            self._register(subscription_id)
            charges = self._full_charges(subscription, period)
            if trial:
                charges = [
                    Charge(item, 0, f"Trial period for {self._product_name(item['price'])}", period, False)
                    for item, *_ in charges
                ]
            emits: Emits = []
            invoice = self._open_invoice(
                subscription, billing_reason="subscription_create", period=(now, now), charges=charges, emits=emits
            )
            if invoice["status"] == "open" and payment_method is not None:
                # On-session, with the challenge (if any) passed on the Checkout page.
                outcome = self._attempt_payment(
                    invoice, emits, payment_method=payment_method["id"], off_session=False, authenticated=True
                )
                assert outcome.status == "succeeded", outcome
            self._emit("customer.subscription.created", subscription)
            self._emit_all(emits)

            session["status"] = "complete"
            session["payment_status"] = "no_payment_required" if invoice["amount_paid"] == 0 else "paid"
            session["customer"] = customer["id"]
            session["customer_details"] = {
                "address": None,
                "business_name": None,
                "email": customer["email"],
                "individual_name": None,
                "name": name,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            session["collected_information"] = {"business_name": None, "individual_name": None, "shipping_details": None}
            session["subscription"] = subscription_id
            session["url"] = None
            self._emit("checkout.session.completed", session)
            return batch

    def expire_checkout(self, session_id: str) -> list[Obj]:
        """Stripe expires an open Checkout Session (as POST /v1/checkout/sessions/{id}/expire does)."""
        with self._collect() as batch:
            session = self.checkout_sessions.get(session_id)
            if session is None:
                raise FakeStripeError(f"No such checkout session: '{session_id}'")
            if session["status"] != "open":
                raise FakeStripeError(f"Checkout Session {session_id} is {session['status']}, not open")
            self._expire_session(session)
            return batch

    # --- subscriptions --------------------------------------------------------------------------

    # --- subscriptions --------------------------------------------------------------------------

    def update_subscription(
        self,
        subscription_id: str,
        *,
        items: list[dict[str, Any]] | None = None,
        cancel_at_period_end: bool | None = None,
        cancel_at: int | str | None = None,
        metadata: dict[str, str] | None = None,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
    ) -> list[Obj]:
        """A change made elsewhere (e.g. the Customer Portal or the Dashboard), with Stripe's default
        payment_behavior (allow_incomplete). `items` ([{"price", "quantity"}]) replaces the set.

        `cancel_at` is a timestamp, "max_period_end" / "min_period_end", or "" to clear a scheduled
        cancellation. The Customer Portal of a subscription in flexible billing mode (as the fake's
        are) schedules "cancel at period end" as cancel_at="max_period_end": cancel_at set,
        cancel_at_period_end false.

        Prorated like POST /v1/subscriptions/{id}: `proration_behavior` create_prorations (pending
        invoice items for the next invoice), always_invoice (an invoice charged now) or none;
        `proration_date` (default now) must lie in the current period.
        """
        if proration_behavior not in PRORATION_BEHAVIORS:
            raise FakeStripeError(f"proration_behavior must be one of {', '.join(PRORATION_BEHAVIORS)}")
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            params: dict[str, Any] = {"proration_behavior": proration_behavior}
            if proration_date is not None:
                params["proration_date"] = proration_date
            if items is not None:
                current = {item["price"]["id"]: item for item in subscription["items"]["data"]}
                wanted = {entry["price"] for entry in items}
                operations: list[dict[str, Any]] = [
                    {"id": item["id"], "deleted": True} for price_id, item in current.items() if price_id not in wanted
                ]
                for entry in items:
                    existing = current.get(entry["price"])
                    quantity = int(entry.get("quantity", 1))
                    if existing is not None:
                        operations.append({"id": existing["id"], "quantity": quantity})
                    else:
                        operations.append({"price": entry["price"], "quantity": quantity})
                params["items"] = operations
            if cancel_at_period_end is not None:
                params["cancel_at_period_end"] = cancel_at_period_end
            if cancel_at is not None:
                params["cancel_at"] = None if cancel_at == "" else cancel_at
            if metadata is not None:
                params["metadata"] = metadata
            try:
                self._apply_subscription_update(subscription, params)
            except StripeAPIError as error:
                raise FakeStripeError(error.message) from error
            return batch

    def renew_subscription(self, subscription_id: str) -> list[Obj]:
        """The current period ends: the renewal invoice is charged to the default card off-session
        (or the subscription ends if set to cancel). A pending update expires first (it never outlives
        the period). If the card declines or needs 3-D Secure the invoice stays open and the
        subscription goes past_due (invoice.payment_failed, and invoice.payment_action_required)."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            if subscription["status"] not in ("active", "trialing"):
                raise FakeStripeError(f"Cannot renew a subscription in status {subscription['status']}")
            emits: Emits = []
            if subscription["pending_update"] is not None:
                self._expire_pending_update(subscription, emits)
            self._emit_all(emits)
            period_end = subscription["items"]["data"][0]["current_period_end"]
            cancel_at = subscription["cancel_at"]
            if subscription["cancel_at_period_end"] or (cancel_at is not None and cancel_at <= period_end):
                self._end_subscription(subscription, ended_at=cancel_at or period_end)
                return batch
            card_less_trial = subscription["status"] == "trialing" and self._default_payment_method(subscription) is None
            if card_less_trial and self._end_trial_without_payment_method(subscription, period_end):
                return batch
            previous = copy.deepcopy(subscription)
            old_period, new_period = self._advance_period(subscription)
            subscription["status"] = "active"
            invoice_emits: Emits = []
            invoice = self._open_invoice(
                subscription,
                billing_reason="subscription_cycle",
                period=old_period,
                charges=self._pending_charges(subscription_id) + self._full_charges(subscription, new_period),
                emits=invoice_emits,
            )
            outcome = Outcome("succeeded")
            if invoice["status"] == "open":
                payment_method = self._default_payment_method(subscription)
                outcome = self._attempt_payment(invoice, invoice_emits, payment_method=payment_method, off_session=True)
            if outcome.status == "succeeded":
                self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
                self._emit_all(invoice_emits)
            else:
                subscription["status"] = "past_due"
                self._emit_all(invoice_emits)
                self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
            return batch

    def fail_payment(self, subscription_id: str) -> list[Obj]:
        """The renewal payment fails whatever the card: an open subscription_cycle invoice and status past_due.

        On a subscription already past_due with an open invoice, records one more failed attempt.
        """
        declined = Outcome("declined", "generic_decline")
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            latest = self.invoices.get(subscription["latest_invoice"] or "")
            emits: Emits = []
            payment_method = self._default_payment_method(subscription)
            if subscription["status"] in ("past_due", "unpaid") and latest is not None and latest["status"] == "open":
                self._attempt_payment(latest, emits, payment_method=payment_method, off_session=True, forced=declined)
                self._emit_all(emits)
                return batch
            if subscription["status"] not in ("active", "trialing"):
                raise FakeStripeError(f"Cannot fail a payment of a subscription in status {subscription['status']}")
            if subscription["pending_update"] is not None:
                self._expire_pending_update(subscription, emits)
                self._emit_all(emits)
                emits = []
            previous = copy.deepcopy(subscription)
            old_period, new_period = self._advance_period(subscription)
            invoice = self._open_invoice(
                subscription,
                billing_reason="subscription_cycle",
                period=old_period,
                charges=self._pending_charges(subscription_id) + self._full_charges(subscription, new_period),
                emits=emits,
            )
            if invoice["status"] == "open":
                self._attempt_payment(invoice, emits, payment_method=payment_method, off_session=True, forced=declined)
                subscription["status"] = "past_due"
            self._emit_all(emits)
            self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
            return batch

    def pay_latest_invoice(self, subscription_id: str) -> list[Obj]:
        """The open latest invoice gets paid, whatever the card (e.g. the customer paid another way):
        a pending update is applied, a past_due subscription is active again."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            invoice = self.invoices.get(subscription["latest_invoice"] or "")
            if invoice is None or invoice["status"] != "open":
                raise FakeStripeError(f"Subscription {subscription_id} has no open latest invoice")
            emits: Emits = []
            intent = self._invoice_intent(invoice)
            if intent is None:
                self._mark_paid(invoice)
                self._snap(emits, "invoice.paid", invoice)
                self._snap(emits, "invoice.payment_succeeded", invoice)
            else:
                intent["payment_method"] = intent["payment_method"] or self._default_payment_method(subscription)
                self._settle(invoice, intent, emits, count_attempt=intent["status"] != "requires_action")
            self._after_invoice_paid(invoice, emits)
            self._emit_all(emits)
            return batch

    # --- the customer's card and payments --------------------------------------------------------

    def set_default_card(self, customer_id: str, card_number: str) -> list[Obj]:
        """The customer saves a new card as the default (the Customer Portal's "update payment method").

        The card is attached (set up for off-session use, any 3-D Secure passed) and becomes the
        customer's invoice_settings.default_payment_method and the default payment method of each
        of their subscriptions that has one. Nothing is charged: open invoices keep their payment
        state (pay them with pay_invoice). Cards that decline on every use raise CardDeclined and
        change nothing; 4000 0000 0000 0341 attaches fine (its charges are what fail).
        """
        with self._collect() as batch:
            customer = self.customers.get(customer_id)
            if customer is None or customer.get("deleted"):
                raise FakeStripeError(f"No such customer: '{customer_id}'")
            card = normalize_card(card_number)
            if card in DECLINE_CARDS:
                raise CardDeclined(card, DECLINE_CARDS[card])
            if card not in SUCCESS_CARDS:
                raise CardDeclined(card, "card_not_supported")
            method = self._new_payment_method(card, customer_id=customer_id, email=customer["email"], name=customer["name"])
            self._emit("payment_method.attached", method)
            previous = copy.deepcopy(customer)
            customer["invoice_settings"]["default_payment_method"] = method["id"]
            self._emit("customer.updated", customer, previous_attributes(previous, customer))
            for subscription in self._newest_first(self.subscriptions.values()):
                if subscription["customer"] != customer_id or subscription["status"] in _ENDED:
                    continue
                if subscription["default_payment_method"] is None:
                    continue
                before = copy.deepcopy(subscription)
                subscription["default_payment_method"] = method["id"]
                self._emit("customer.subscription.updated", subscription, previous_attributes(before, subscription))
            return batch

    def pay_invoice(self, invoice_id: str, card_number: str | None = None) -> list[Obj]:
        """The customer pays an open invoice on its hosted page, on-session: with the saved default
        card (card_number None) or with a card typed in (used for this payment only).

        Succeeded: the invoice is paid; a pending update waiting for it applies, a past_due
        subscription is active again. Declined: the attempt is recorded (payment_intent.payment_failed,
        invoice.payment_failed) and the invoice stays open. Needs 3-D Secure (4000 0027 6000 3184
        always, 4000 0025 0000 3155 when typed in): the PaymentIntent is requires_action until
        authenticate_payment(). Read the outcome with invoice_payment_intent(invoice_id). A number
        that is no test card raises CardDeclined (card_not_supported) and charges nothing.
        """
        with self._collect() as batch:
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                raise FakeStripeError(f"No such invoice: '{invoice_id}'")
            if invoice["status"] != "open" or self._invoice_intent(invoice) is None:
                raise FakeStripeError(f"Invoice {invoice_id} is {invoice['status']}: there is nothing to pay")
            subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            subscription = self.subscriptions.get(str(subscription_id))
            if card_number is None:
                payment_method = self._default_payment_method(subscription) if subscription is not None else None
                if payment_method is None:
                    raise FakeStripeError(f"Invoice {invoice_id}: the customer has no saved card; type one in")
                set_up = True
            else:
                card = normalize_card(card_number)
                if card not in SUCCESS_CARDS and card not in DECLINE_CARDS:
                    raise CardDeclined(card, "card_not_supported")
                customer = self.customers[invoice["customer"]]
                payment_method = self._new_payment_method(card, customer_id=None, email=customer["email"], name=None)["id"]
                set_up = False
            emits: Emits = []
            outcome = self._attempt_payment(invoice, emits, payment_method=payment_method, off_session=False, set_up=set_up)
            if outcome.status == "succeeded":
                self._after_invoice_paid(invoice, emits)
            self._emit_all(emits)
            return batch

    def authenticate_payment(self, payment_intent_id: str, *, succeed: bool = True) -> list[Obj]:
        """The cardholder completes (or fails) the 3-D Secure challenge of a PaymentIntent in
        requires_action: on the hosted invoice page, or in the frontend with Stripe.js and the
        PaymentIntent's client_secret. Completed: as a successful payment (see pay_invoice). Failed:
        requires_payment_method with last_payment_error payment_intent_authentication_failure; the
        invoice stays open."""
        with self._collect() as batch:
            intent = self.payment_intents.get(payment_intent_id)
            if intent is None:
                raise FakeStripeError(f"No such payment_intent: '{payment_intent_id}'")
            if intent["status"] != "requires_action":
                raise FakeStripeError(f"PaymentIntent {payment_intent_id} is {intent['status']}, not requires_action")
            invoice = self._intent_invoice(payment_intent_id)
            assert invoice is not None
            emits: Emits = []
            if succeed:
                self._settle(invoice, intent, emits, count_attempt=False)
                self._after_invoice_paid(invoice, emits)
            else:
                intent["status"] = "requires_payment_method"
                intent["next_action"] = None
                intent["last_payment_error"] = {
                    "code": "payment_intent_authentication_failure",
                    "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                    "message": AUTHENTICATION_FAILURE_MESSAGE,
                    "payment_method": copy.deepcopy(self.payment_methods.get(str(intent["payment_method"]))),
                    "type": "invalid_request_error",
                }
                self._snap(emits, "payment_intent.payment_failed", intent)
                self._snap(emits, "invoice.payment_failed", invoice)
            self._emit_all(emits)
            return batch

    def invoice_payment_intent(self, invoice_id: str) -> Obj | None:
        """A copy of the PaymentIntent of an invoice (None when nothing was due)."""
        with self._lock:
            invoice = self.invoices.get(invoice_id)
            intent = self._invoice_intent(invoice) if invoice is not None else None
            return copy.deepcopy(intent) if intent is not None else None

    def tick(self) -> list[Obj]:
        """Stripe's own clock, now (after advance_clock): Checkout Sessions and pending updates past
        their expires_at expire. Returns those events. Every request and helper does this first too."""
        with self._lock:
            start = len(self.events)
            self._run_clock()
            return self.events[start:]

    def cancel_subscription(self, subscription_id: str) -> list[Obj]:
        """The subscription is canceled immediately (customer.subscription.deleted)."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            if subscription["status"] in _ENDED:
                raise FakeStripeError(f"Subscription {subscription_id} is already {subscription['status']}")
            self._cancel_now(subscription)
            return batch

    def trial_will_end(self, subscription_id: str) -> list[Obj]:
        """Stripe's reminder three days before a trial ends."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            if subscription["status"] != "trialing":
                raise FakeStripeError(f"Subscription {subscription_id} is not trialing")
            self._emit("customer.subscription.trial_will_end", subscription)
            return batch

    def pause(self, subscription_id: str) -> list[Obj]:
        """The subscription enters status paused (customer.subscription.paused, then .updated)."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            if subscription["status"] not in ("active", "trialing", "past_due"):
                raise FakeStripeError(f"Cannot pause a subscription in status {subscription['status']}")
            previous = copy.deepcopy(subscription)
            subscription["status"] = "paused"
            self._emit("customer.subscription.paused", subscription)
            self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
            return batch

    def resume(self, subscription_id: str) -> list[Obj]:
        """A paused subscription resumes: active, with a new period starting now."""
        with self._collect() as batch:
            subscription = self._subscription(subscription_id)
            if subscription["status"] != "paused":
                raise FakeStripeError(f"Subscription {subscription_id} is not paused")
            previous = copy.deepcopy(subscription)
            now = self.now()
            for item in subscription["items"]["data"]:
                recurring = item["price"]["recurring"]
                item["current_period_start"] = now
                item["current_period_end"] = add_interval(now, recurring["interval"], recurring["interval_count"])
            subscription["billing_cycle_anchor"] = now
            subscription["status"] = "active"
            self._emit("customer.subscription.resumed", subscription)
            self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
            return batch

    # --- shared building blocks -----------------------------------------------------------------

    # --- shared building blocks -----------------------------------------------------------------

    def _invoice_prefix(self) -> str:
        return "".join(self._random.choice("0123456789ABCDEF") for _ in range(8))

    def _advance_period(self, subscription: Obj) -> tuple[tuple[int, int], tuple[int, int]]:
        first = subscription["items"]["data"][0]
        old_period = (first["current_period_start"], first["current_period_end"])
        recurring = first["price"]["recurring"]
        new_period = (old_period[1], next_period_end(subscription["billing_cycle_anchor"], old_period[1], recurring))
        for item in subscription["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = new_period
        return old_period, new_period

    def _end_trial_without_payment_method(self, subscription: Obj, trial_end: int) -> bool:
        """A trial ends and no payment method was added: trial_settings.end_behavior decides. cancel:
        the subscription ends at the trial's end; pause: it is paused (nothing invoiced) until resumed;
        create_invoice (Stripe's default): False, the first invoice is made and its payment fails."""
        behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
        if behavior == "cancel":
            self._end_subscription(subscription, ended_at=trial_end)
            return True
        if behavior == "pause":
            previous = copy.deepcopy(subscription)
            subscription["status"] = "paused"
            self._emit("customer.subscription.paused", subscription)
            self._emit("customer.subscription.updated", subscription, previous_attributes(previous, subscription))
            return True
        return False

    def _cancel_now(self, subscription: Obj, *, details: dict[str, Any] | None = None) -> None:
        if subscription.get("pending_update") is not None:
            emits: Emits = []
            self._expire_pending_update(subscription, emits)
            self._emit_all(emits)
        now = self.now()
        if subscription["canceled_at"] is None:
            subscription["canceled_at"] = now
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
        for key, value in (details or {}).items():
            subscription["cancellation_details"][key] = value
        self._end_subscription(subscription, ended_at=now)

    def _end_subscription(self, subscription: Obj, *, ended_at: int) -> None:
        subscription["status"] = "canceled"
        subscription["ended_at"] = ended_at
        if subscription["canceled_at"] is None:
            subscription["canceled_at"] = ended_at
        if subscription["cancellation_details"]["reason"] is None:
            subscription["cancellation_details"]["reason"] = "cancellation_requested"
        self._emit("customer.subscription.deleted", subscription)

    def _apply_subscription_update(self, subscription: Obj, params: dict[str, Any]) -> None:
        """POST /v1/subscriptions/{id} semantics (validated params); emits the events.

        When the change is invoiced now (always_invoice, or a new billing interval) and something is
        due, the invoice is charged off-session to the default card and `payment_behavior` decides:
        allow_incomplete (the default) applies the change whatever the payment did, a failed or
        unauthenticated payment leaves the invoice open and the subscription past_due;
        pending_if_incomplete applies it only if the payment succeeded, else the subscription keeps
        its items and carries a pending_update until that invoice is paid (or the update expires);
        error_if_incomplete answers 402 and applies nothing; default_incomplete applies the change,
        attempts no payment (the PaymentIntent awaits confirmation) and makes the subscription past_due.
        Raises StripeAPIError; the request's rollback undoes whatever was done before.
        """
        now = self.now()
        behavior = params.get("payment_behavior", "allow_incomplete")
        emits: Emits = []
        pending = subscription.get("pending_update")
        if pending is not None and (
            "items" in params
            or (
                "cancel_at_period_end" in params
                and pending["cancel_at_period_end"] is not None
                and pending["cancel_at_period_end"] != params["cancel_at_period_end"]
            )
        ):
            # A later update that conflicts with the pending one expires it (its invoice is voided).
            self._expire_pending_update(subscription, emits)
        plan = self._plan_subscription_update(subscription, params)
        new = plan.new
        invoice_emits: Emits = []
        outcome: Outcome | None = None
        invoice: Obj | None = None
        if plan.immediate and plan.charges:
            # Stripe creates the prorations as invoice items and invoices them at once, with the
            # subscription's other pending items: newest items first, then the subscription lines.
            pending_items = self._pending_charges(subscription["id"])
            created = self._record_invoice_items(new, [c for c in plan.charges if c.proration])
            charges = created + pending_items + [c for c in plan.charges if not c.proration]
            if charges:
                invoice = self._open_invoice(
                    new, billing_reason="subscription_update", period=(now, now), charges=charges, emits=invoice_emits
                )
                if invoice["status"] == "open" and behavior == "default_incomplete":
                    # No attempt: the invoice's PaymentIntent awaits explicit confirmation.
                    new["status"] = "past_due"
                elif invoice["status"] == "open":
                    payment_method = self._default_payment_method(new)
                    outcome = self._attempt_payment(invoice, invoice_emits, payment_method=payment_method, off_session=True)
        elif plan.behavior == "create_prorations":
            self._record_invoice_items(new, plan.charges)
        if outcome is not None and outcome.status != "succeeded" and invoice is not None:
            if behavior == "error_if_incomplete":
                raise self._incomplete_error(outcome)
            if behavior == "pending_if_incomplete":
                stored = copy.deepcopy(subscription)
                stored["latest_invoice"] = invoice["id"]
                stored["pending_update"] = self._pending_update(subscription, new, params, anchor_changed=plan.interval_changed)
                new = stored
            else:
                new["status"] = "past_due"
        self._emit_all(emits)
        changes = previous_attributes(subscription, new)
        if not changes and not invoice_emits:
            return
        self.subscriptions[subscription["id"]] = new
        if changes:
            self._emit("customer.subscription.updated", new, changes)
        self._emit_all(invoice_emits)

    @staticmethod
    def _incomplete_error(outcome: Outcome) -> StripeAPIError:
        """The 402 of payment_behavior=error_if_incomplete when the invoice could not be paid."""
        if outcome.status == "requires_action":
            return StripeAPIError(
                402, REQUIRES_ACTION_MESSAGE, type_="card_error", code="subscription_payment_intent_requires_action"
            )
        if outcome.decline_code is None:
            return StripeAPIError(
                400,
                "This customer has no attached payment source or default payment method. "
                "Please consider adding a default payment method.",
                code="resource_missing",
            )
        code, message = decline_error(outcome.decline_code)
        return StripeAPIError(402, message, type_="card_error", code=code, extra={"decline_code": outcome.decline_code})

    def _plan_subscription_update(self, subscription: Obj, params: dict[str, Any], *, prefix: str = "") -> UpdatePlan:
        """Validate an update (POST /v1/subscriptions/{id} params, or a preview's subscription_details)
        and compute the subscription after it and what it bills. Changes nothing; raises StripeAPIError.
        """
        now = self.now()
        if subscription["status"] in _ENDED:
            allowed = {"metadata", "cancellation_details", "expand"}
            if set(params) - allowed:
                raise StripeAPIError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        if "cancel_at" in params and "cancel_at_period_end" in params:
            # Even cancel_at="" with cancel_at_period_end=false: either alone clears a scheduled cancellation.
            raise StripeAPIError(
                400,
                "Received both cancel_at_period_end and cancel_at parameters. Please pass in only one.",
                code="parameters_exclusive",
                param=join(prefix, "cancel_at"),
            )
        new = copy.deepcopy(subscription)
        old_items = subscription["items"]["data"]
        period = (old_items[0]["current_period_start"], old_items[0]["current_period_end"])
        proration_date = params.get("proration_date", now)
        if "proration_date" in params and not period[0] <= proration_date <= period[1]:
            raise StripeAPIError(
                400,
                f"The proration_date ({proration_date}) must be within the subscription's current billing period "
                f"({period[0]} to {period[1]}).",
                param=join(prefix, "proration_date"),
            )
        plan = UpdatePlan(
            new=new,
            behavior=params.get("proration_behavior", "create_prorations"),
            proration_date=proration_date,
            period=period,
        )
        if "items" in params:
            items = self._updated_items(new, params["items"], period, prefix=join(prefix, "items"))
            intervals = {(i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"]) for i in items}
            old_interval = (old_items[0]["price"]["recurring"]["interval"], old_items[0]["price"]["recurring"]["interval_count"])
            plan.interval_changed = intervals != {old_interval}
            if plan.interval_changed:
                # A new billing interval resets the billing cycle: the new period starts now.
                interval, count = next(iter(intervals))
                period = (now, add_interval(now, interval, count))
                for item in items:
                    item["current_period_start"], item["current_period_end"] = period
                new["billing_cycle_anchor"] = now
                plan.period = period
            new["items"]["data"] = items
        if "cancel_at_period_end" in params:
            if params["cancel_at_period_end"]:
                new["cancel_at_period_end"] = True
                new["cancel_at"] = period[1]
                new["canceled_at"] = now
                new["cancellation_details"]["reason"] = "cancellation_requested"
            else:
                self._clear_cancellation(new)
        if "cancel_at" in params:
            cancel_at = params["cancel_at"]
            if cancel_at is None:
                self._clear_cancellation(new)
            else:
                ends = [item["current_period_end"] for item in new["items"]["data"]]
                if cancel_at == "max_period_end":
                    cancel_at = max(ends)
                elif cancel_at == "min_period_end":
                    cancel_at = min(ends)
                elif cancel_at <= now:
                    raise StripeAPIError(400, "cancel_at must be in the future.", param=join(prefix, "cancel_at"))
                elif cancel_at < max(ends) and plan.behavior != "none":
                    raise StripeAPIError(
                        400,
                        "The Stripe fake does not implement the proration of a cancel_at before the end of the current "
                        "period (Stripe credits the unused time when proration_behavior is not none); it exists in the "
                        "real API. Pass proration_behavior=none, or a cancel_at at the period end (max_period_end), or "
                        "extend tests/stripe_fake.",
                        code="parameter_unsupported_by_fake",
                        param=join(prefix, "cancel_at"),
                    )
                new["cancel_at"] = cancel_at
                new["cancel_at_period_end"] = False
                new["canceled_at"] = now
                new["cancellation_details"]["reason"] = "cancellation_requested"
        if "cancellation_details" in params:
            for key, value in params["cancellation_details"].items():
                new["cancellation_details"][key] = value
        if "metadata" in params:
            new["metadata"] = apply_metadata(new["metadata"], params["metadata"], join(prefix, "metadata"))
        if "description" in params:
            new["description"] = params["description"]
        if "pause_collection" in params:
            pause = params["pause_collection"]
            new["pause_collection"] = (
                None if pause is None else {"behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")}
            )

        plan.items_changed = new["items"]["data"] != old_items and new["status"] in _PRORATED
        if plan.items_changed:
            prorate_now = plan.behavior != "none"
            if plan.interval_changed:
                # Credit for the old interval's unused time (unless none), the new period in full.
                if prorate_now:
                    plan.charges = self._proration_charges(subscription, new, proration_date, remaining=False)
                plan.charges += self._full_charges(new, period)
            elif prorate_now:
                plan.charges = self._proration_charges(subscription, new, proration_date)
        return plan

    def _record_invoice_items(self, subscription: Obj, charges: list[Charge]) -> list[Charge]:
        """Store proration charges as pending invoice items (ii_...); returns the charges linked to them."""
        recorded = []
        for charge in charges:
            invoice_item_id = self.new_id("ii_")
            self.invoice_items[invoice_item_id] = objects.invoice_item(
                invoice_item_id,
                customer_id=subscription["customer"],
                subscription_id=subscription["id"],
                item=charge.item,
                amount=charge.amount,
                description=charge.description,
                period=charge.period,
                date=self.now(),
                proration=charge.proration,
            )
            self._register(invoice_item_id)
            recorded.append(charge._replace(invoice_item=invoice_item_id))
        return recorded

    @staticmethod
    def _clear_cancellation(subscription: Obj) -> None:
        subscription["cancel_at_period_end"] = False
        subscription["cancel_at"] = None
        subscription["canceled_at"] = None
        subscription["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}

    def _updated_items(
        self, subscription: Obj, operations: list[dict[str, Any]], period: tuple[int, int], *, prefix: str = "items"
    ) -> list[Obj]:
        items: list[Obj] = copy.deepcopy(subscription["items"]["data"])
        for index, operation in enumerate(operations):
            param = f"{prefix}[{index}]"
            if "id" in operation:
                position = next((n for n, item in enumerate(items) if item["id"] == operation["id"]), None)
                if position is None:
                    raise self._unknown_item_error(subscription, operation["id"], param=f"{param}[id]")
                if operation.get("deleted"):
                    del items[position]
                    continue
                item = items[position]
                if "price" in operation and operation["price"] != item["price"]["id"]:
                    price = copy.deepcopy(self._price(operation["price"], param=f"{param}[price]"))
                    self._require_recurring(price, param=f"{param}[price]")
                    item["price"] = price
                    item["plan"] = objects.plan_from_price(price)
                    # Stripe: a new price resets the quantity to 1 unless a quantity is given.
                    item["quantity"] = 1
                if "quantity" in operation:
                    item["quantity"] = operation["quantity"]
                if "metadata" in operation:
                    item["metadata"] = apply_metadata(item["metadata"], operation["metadata"], f"{param}[metadata]")
            else:
                if operation.get("deleted"):
                    raise StripeAPIError(400, f"{param}[deleted] can only be used with {param}[id].", param=f"{param}[deleted]")
                if "price" not in operation:
                    raise StripeAPIError(
                        400, f"Missing required param: {param}[price].", code="parameter_missing", param=f"{param}[price]"
                    )
                price = copy.deepcopy(self._price(operation["price"], param=f"{param}[price]"))
                self._require_recurring(price, param=f"{param}[price]")
                item = objects.subscription_item(
                    self.new_id("si_", 14),
                    subscription_id=subscription["id"],
                    p=price,
                    quantity=operation.get("quantity", 1),
                    created=self.now(),
                    period=period,
                )
                item["metadata"] = apply_metadata({}, operation.get("metadata") or {}, f"{param}[metadata]")
                items.append(item)
        if not items:
            raise StripeAPIError(
                400,
                "A subscription must have at least one item: you cannot delete all of its items. "
                f"To end the subscription, cancel it (DELETE /v1/subscriptions/{subscription['id']}).",
                param=prefix,
            )
        if len(items) > 20:
            raise StripeAPIError(400, "A subscription can have at most 20 items.", param=prefix)
        price_ids = [item["price"]["id"] for item in items]
        duplicates = sorted({p for p in price_ids if price_ids.count(p) > 1})
        if duplicates:
            raise StripeAPIError(
                400, f"Cannot add multiple subscription items with the same price: {duplicates[0]}", param=prefix
            )
        for item in items:
            if item["price"]["currency"] != subscription["currency"]:
                raise StripeAPIError(
                    400,
                    f"The price {item['price']['id']} is in {item['price']['currency']} but the subscription "
                    f"is in {subscription['currency']}: all items of a subscription must share one currency.",
                    param=prefix,
                )
        intervals = {(i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"]) for i in items}
        if len(intervals) > 1:
            raise StripeAPIError(
                400, "All prices on a subscription must have the same recurring interval and interval_count.", param=prefix
            )
        return items

    @staticmethod
    def _require_recurring(price: Obj, *, param: str) -> None:
        if price["recurring"] is None:
            raise StripeAPIError(
                400,
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                param=param,
            )

    def _unknown_item_error(self, subscription: Obj, item_id: str, *, param: str) -> StripeAPIError:
        owner = next(
            (
                other["id"]
                for other in self.subscriptions.values()
                if other["id"] != subscription["id"] and any(item["id"] == item_id for item in other["items"]["data"])
            ),
            None,
        )
        if owner is not None:
            return StripeAPIError(
                400,
                f"The subscription item {item_id} does not belong to the subscription {subscription['id']} "
                f"(it is an item of {owner}). Only the subscription's own items can be updated or deleted.",
                param=param,
            )
        return StripeAPIError(400, f"No such subscription item: '{item_id}'", code="resource_missing", param=param)

    def _proration_label(self, item: Obj) -> str:
        name = self._product_name(item["price"])
        return name if item["quantity"] == 1 else f"{item['quantity']} \N{MULTIPLICATION SIGN} {name}"

    def _proration_charges(self, old: Obj, new: Obj, at: int, *, remaining: bool = True) -> list[Charge]:
        """Stripe's per-second prorations of the item changes from `old` to `new` at time `at`.

        Per changed item: a credit for the unused time of the old price * quantity from `at` to the
        item's period end, and a charge for the remaining time of the new price * quantity (unless
        `remaining` is False). Added items get only the charge, deleted ones only the credit; amounts
        are round(unit_amount * quantity * seconds left / seconds in the period). Zero amounts are left out.
        """
        after = datetime.fromtimestamp(at, tz=UTC).strftime("%d %b %Y")
        charges: list[Charge] = []

        def add(item: Obj, sign: int, label: str) -> None:
            start, end = item["current_period_start"], item["current_period_end"]
            amount = sign * prorate(item["price"]["unit_amount"] * item["quantity"], end - at, end - start)
            if amount:
                description = f"{label} time on {self._proration_label(item)} after {after}"
                charges.append(Charge(item, amount, description, (at, end), True))

        new_by_id = {item["id"]: item for item in new["items"]["data"]}
        old_ids = {item["id"] for item in old["items"]["data"]}
        for item in old["items"]["data"]:
            same = new_by_id.get(item["id"])
            if same is not None and not _billing_changed(item, same):
                continue
            add(item, -1, "Unused")
            if same is not None and remaining:
                add(same, 1, "Remaining")
        if remaining:
            for item in new["items"]["data"]:
                if item["id"] not in old_ids:
                    add(item, 1, "Remaining")
        return charges

    def _next_period(self, subscription: Obj) -> tuple[int, int]:
        """The period after the current one (what the next regular invoice bills)."""
        first = subscription["items"]["data"][0]
        end = first["current_period_end"]
        return end, next_period_end(subscription["billing_cycle_anchor"], end, first["price"]["recurring"])

    def _preview_invoice(self, subscription: Obj, params: dict[str, Any], *, prefix: str = "subscription_details") -> Obj:
        """POST /v1/invoices/create_preview for an existing subscription (params: its subscription_details).

        always_invoice (or a new billing interval): the invoice the update would create and charge at
        once. create_prorations / none: the next regular invoice at the period end (pending items,
        the change's prorations, the next period of the new items). Changes nothing.
        """
        if subscription["status"] not in _INVOICING:
            raise self._no_upcoming_invoice(subscription["customer"])
        now = self.now()
        plan = self._plan_subscription_update(subscription, params, prefix=prefix)
        new = plan.new
        pending = self._pending_charges(subscription["id"])
        prorations = [c for c in plan.charges if c.proration]
        if plan.immediate:
            # Nothing billed by the change itself: no invoice would be created (nothing due now).
            charges = prorations + pending + [c for c in plan.charges if not c.proration] if plan.charges else []
            invoice = self._build_invoice(
                new,
                invoice_id=self.new_id("upcoming_in_"),
                billing_reason="upcoming",
                period=(now, now),
                charges=charges,
                line_prefix="il_tmp_",
            )
        else:
            period = (new["items"]["data"][0]["current_period_start"], new["items"]["data"][0]["current_period_end"])
            charges = prorations + pending
            cancel_at = new["cancel_at"]
            if not (new["cancel_at_period_end"] or (cancel_at is not None and cancel_at <= period[1])):
                charges += self._full_charges(new, self._next_period(new))
            if not charges:
                raise self._no_upcoming_invoice(subscription["customer"])
            invoice = self._build_invoice(
                new,
                invoice_id=self.new_id("upcoming_in_"),
                billing_reason="upcoming",
                period=period,
                charges=charges,
                line_prefix="il_tmp_",
            )
            # The invoice Stripe will create when the period ends (finalized about an hour later).
            invoice["created"] = period[1]
            invoice["automatically_finalizes_at"] = invoice["next_payment_attempt"] = period[1] + 3600
        details = invoice["parent"]["subscription_details"]
        details["subscription_proration_date"] = plan.proration_date if "items" in params and plan.behavior != "none" else None
        return invoice

    @staticmethod
    def _no_upcoming_invoice(customer_id: str) -> StripeAPIError:
        return StripeAPIError(404, f"No upcoming invoices for customer: {customer_id}", code="invoice_upcoming_none")


def next_period_end(anchor: int, after: int, recurring: dict[str, Any]) -> int:
    """The first period boundary after `after`, counted from the billing cycle anchor (Jan 31 -> Feb 28 -> Mar 31)."""
    count = 1
    while (end := add_interval(anchor, recurring["interval"], recurring["interval_count"] * count)) <= after:
        count += 1
    return end
