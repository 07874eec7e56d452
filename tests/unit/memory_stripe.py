"""The Stripe port in memory, for unit tests of the logic: the state the product reads, and the
refusals Stripe answers for the calls it models (an unknown price, customer or item, a change of a
canceled subscription, more than ten lookup keys: BillingMisconfiguredError, as the adapter
translates Stripe's 400s). Payments are one setting: `next_payment` decides how the next change's
invoice goes. Not Stripe's emulator: that is the HTTP fake (tests/stripe_fake)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from tenant_billing.errors import BillingMisconfiguredError
from tenant_billing.stripe_port import (
    CheckoutSession,
    Invoice,
    ItemChange,
    NewCheckoutSession,
    Page,
    PaymentAttempt,
    PaymentBehavior,
    PaymentDeclined,
    PendingUpdate,
    ProrationBehavior,
    Subscription,
    SubscriptionItem,
    UnknownStartingPoint,
)
from tenant_billing.webhook_logic import StripeEvent

PERIOD_END = 1_800_000_000
Payment = Literal["succeeded", "requires_action", "declined"]


def _refused(why: str) -> BillingMisconfiguredError:
    return BillingMisconfiguredError(f"Stripe would refuse this: {why}")


class MemoryStripe:
    def __init__(self, amounts: Mapping[str, int], lookup_keys: Mapping[str, str] | None = None) -> None:
        self.amounts = dict(amounts)  # {price id: unit amount}: the prices that exist
        self.lookup_keys = dict(lookup_keys or {})  # {lookup key: price id}
        self.customers: dict[str, str] = {}  # {idempotency key: customer id}
        self.sessions: dict[str, tuple[CheckoutSession, NewCheckoutSession]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.invoices: dict[str, Invoice] = {}
        self.payments: dict[str, PaymentAttempt] = {}
        self.events: dict[str, StripeEvent] = {}
        self.next_payment: Payment = "succeeded"
        self.now = 1_770_000_000
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def _subscription(self, subscription_id: str) -> Subscription:
        if subscription_id not in self.subscriptions:
            raise _refused("no such subscription")
        return self.subscriptions[subscription_id]

    def _live(self, subscription_id: str) -> Subscription:
        subscription = self._subscription(subscription_id)
        if subscription.status in ("canceled", "incomplete_expired"):
            raise _refused("a canceled subscription cannot be updated")
        return subscription

    def _check_prices(self, prices: Sequence[str | None]) -> None:
        if unknown := [price for price in prices if price is not None and price not in self.amounts]:
            raise _refused(f"no such price: {unknown}")

    # --- checkout and portal ---------------------------------------------------------------------

    def create_customer(self, metadata: Mapping[str, str], idempotency_key: str) -> str:
        self.calls.append("customers.create")
        return self.customers.setdefault(idempotency_key, self._id("cus"))

    def list_open_checkout_sessions(self, customer_id: str) -> Sequence[CheckoutSession]:
        self.calls.append("checkout.sessions.list")
        return [s for s, request in self.sessions.values() if s.status == "open" and request.customer_id == customer_id]

    def close_checkout_session(self, session_id: str) -> str:
        self.calls.append("checkout.sessions.expire")
        session, request = self.sessions[session_id]
        if session.status == "open":
            self.sessions[session_id] = (replace(session, status="expired"), request)
        return str(self.sessions[session_id][0].status)

    def create_checkout_session(self, session: NewCheckoutSession) -> CheckoutSession:
        self.calls.append("checkout.sessions.create")
        if session.customer_id not in self.customers.values():
            raise _refused("no such customer")
        self._check_prices([price for price, _ in session.line_items])
        session_id = self._id("cs")
        created = CheckoutSession(session_id, "open", self.now, f"https://checkout.example/{session_id}", session.customer_id)
        self.sessions[session_id] = (created, session)
        return created

    def complete_checkout(self, session_id: str) -> Subscription:
        """The customer pays the session: its subscription, active (or trialing)."""
        session, request = self.sessions[session_id]
        self.sessions[session_id] = (replace(session, status="complete"), request)
        items = tuple(SubscriptionItem(self._id("si"), price, quantity, PERIOD_END) for price, quantity in request.line_items)
        status = "trialing" if request.trial_period_days else "active"
        return self.add_subscription(request.customer_id, items, status=status)

    def add_subscription(self, customer_id: str, items: tuple[SubscriptionItem, ...], **fields: object) -> Subscription:
        """A subscription made outside the product (the Dashboard, an old integration)."""
        self.now += 1
        subscription = Subscription(self._id("sub"), customer_id, "active", items, created=self.now)
        self.subscriptions[subscription.id] = replace(subscription, **fields)  # type: ignore[arg-type]
        return self.subscriptions[subscription.id]

    def create_portal_session(self, customer_id: str, return_url: str, configuration_id: str | None) -> str | None:
        self.calls.append("billing_portal.sessions.create")
        if customer_id not in self.customers.values():
            raise _refused("no such customer")
        return f"https://portal.example/{customer_id}"

    # --- reads --------------------------------------------------------------------------------------

    def list_invoices(self, customer_id: str, limit: int, starting_after: str | None) -> Page[Invoice]:
        self.calls.append("invoices.list")
        mine = [invoice for invoice in reversed(self.invoices.values()) if invoice.customer_id == customer_id]
        return Page(*self._page(mine, limit, starting_after))

    def list_subscriptions(self, customer_id: str | None, limit: int, starting_after: str | None) -> Page[Subscription]:
        self.calls.append("subscriptions.list")
        listed = sorted(self.subscriptions.values(), key=lambda subscription: subscription.created, reverse=True)
        mine = [subscription for subscription in listed if customer_id in (None, subscription.customer_id)]
        return Page(*self._page(mine, limit, starting_after))

    @staticmethod
    def _page[T: (Invoice, Subscription)](rows: list[T], limit: int, starting_after: str | None) -> tuple[tuple[T, ...], bool]:
        ids = [row.id for row in rows]
        if starting_after is not None and starting_after not in ids:
            raise UnknownStartingPoint(starting_after)
        start = ids.index(starting_after) + 1 if starting_after is not None else 0
        return tuple(rows[start : start + limit]), len(rows) > start + limit

    def find_subscription(self, subscription_id: str) -> Subscription | None:
        self.calls.append("subscriptions.retrieve")
        return self.subscriptions.get(subscription_id)

    def find_subscription_with_payment_method(self, subscription_id: str) -> Subscription | None:
        self.calls.append("subscriptions.retrieve")
        found = self.subscriptions.get(subscription_id)
        # In memory every subscription's customer has a card: Checkout took one.
        return replace(found, has_payment_method=True) if found is not None else None

    def retrieve_event(self, event_id: str) -> StripeEvent | None:
        self.calls.append("events.retrieve")
        return self.events.get(event_id)

    def subscription_with_invoice(self, subscription_id: str) -> Subscription:
        self.calls.append("subscriptions.retrieve")
        return self._subscription(subscription_id)

    def invoice_payment(self, invoice_id: str) -> PaymentAttempt | None:
        self.calls.append("invoices.retrieve")
        return self.payments.get(invoice_id)

    def price_ids_by_lookup_key(self, lookup_keys: Sequence[str]) -> Mapping[str, str]:
        self.calls.append("prices.list")
        if len(lookup_keys) > 10:
            raise _refused("at most ten lookup_keys")
        return {key: self.lookup_keys[key] for key in lookup_keys if key in self.lookup_keys}

    # --- changes ------------------------------------------------------------------------------------

    def cancel_now(self, subscription_id: str) -> Subscription:
        self.calls.append("subscriptions.cancel")
        subscription = self._subscription(subscription_id)
        self.subscriptions[subscription_id] = replace(subscription, status="canceled", cancel_at=None)
        return self.subscriptions[subscription_id]

    def cancel_at_period_end(self, subscription_id: str) -> Subscription:
        self.calls.append("subscriptions.update")
        subscription = self._live(subscription_id)
        self.subscriptions[subscription_id] = replace(subscription, cancel_at_period_end=True, cancel_at=PERIOD_END)
        return self.subscriptions[subscription_id]

    def clear_cancellation(self, subscription_id: str) -> Subscription:
        self.calls.append("subscriptions.update")
        subscription = self._live(subscription_id)
        self.subscriptions[subscription_id] = replace(subscription, cancel_at_period_end=False, cancel_at=None)
        return self.subscriptions[subscription_id]

    def _apply(self, items: tuple[SubscriptionItem, ...], changes: Sequence[ItemChange]) -> tuple[SubscriptionItem, ...]:
        by_id = {item.id: item for item in items}
        if unknown := [change.item_id for change in changes if change.item_id and change.item_id not in by_id]:
            raise _refused(f"no such item on the subscription: {unknown}")
        self._check_prices([change.price for change in changes])
        for change in changes:
            if change.deleted:
                by_id.pop(str(change.item_id))
                continue
            old = by_id.get(change.item_id or "") or SubscriptionItem(self._id("si"), "", 1, PERIOD_END)
            quantity = old.quantity if change.quantity is None else change.quantity
            by_id[old.id] = replace(old, price_id=change.price or old.price_id, quantity=quantity)
        return tuple(by_id.values())

    def _amount(self, items: Sequence[SubscriptionItem]) -> int:
        return sum(self.amounts[item.price_id] * item.quantity for item in items)

    def preview_invoice(
        self,
        customer_id: str,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        proration_date: int | None = None,
    ) -> Invoice:
        self.calls.append("invoices.create_preview")
        subscription = self._live(subscription_id)
        after = self._apply(subscription.items, changes)
        due_now = max(self._amount(after) - self._amount(subscription.items), 0)
        amount = 0 if proration_behavior == "none" else due_now
        return Invoice("", "draft", amount_due=amount, total=self._amount(after), currency="usd")

    def change_items(
        self,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        payment_behavior: PaymentBehavior,
        proration_date: int | None,
    ) -> Subscription:
        self.calls.append("subscriptions.update")
        subscription = self._live(subscription_id)
        after = self._apply(subscription.items, changes)
        paid = self.next_payment == "succeeded"
        if not paid and payment_behavior == "error_if_incomplete":
            code = "subscription_payment_intent_requires_action" if self.next_payment == "requires_action" else "card_declined"
            raise PaymentDeclined(code)
        invoice = Invoice(
            self._id("in"),
            "paid" if paid else "open",
            f"https://invoice.example/{subscription_id}",
            amount_due=max(self._amount(after) - self._amount(subscription.items), 0),
            customer_id=subscription.customer_id,
            subscription_id=subscription_id,
        )
        self.invoices[invoice.id] = invoice
        intent_status = {"succeeded": "succeeded", "requires_action": "requires_action"}.get(self.next_payment)
        self.payments[invoice.id] = PaymentAttempt(intent_status or "requires_payment_method", f"pi_secret_{invoice.id}")
        if paid:
            changed = replace(subscription, items=after)
        else:
            changed = replace(subscription, pending_update=PendingUpdate(after, self.now + 23 * 3600))
        self.subscriptions[subscription_id] = replace(changed, latest_invoice_id=invoice.id, latest_invoice=invoice)
        return self.subscriptions[subscription_id]
