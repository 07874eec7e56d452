"""What the product asks of Stripe, in its own terms: one method per operation, and the small typed
values they answer with (only the fields the product reads). `stripe_adapter` implements it over
the Stripe SDK; unit tests give it an in-memory one. Importing this module never imports the SDK.

Every method raises the domain errors of `tenant_billing.errors` (BillingMisconfiguredError,
StripeUnavailableError) for Stripe's failures, plus the two exceptions below where the caller decides.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from tenant_billing.records import frozen

if TYPE_CHECKING:
    from tenant_billing.webhook_logic import StripeEvent

# How a change of items is prorated: invoiced and charged at once, or not at all.
ProrationBehavior = Literal["always_invoice", "none"]
# When Stripe applies a change whose invoice is not paid: once paid (a pending update), or never.
PaymentBehavior = Literal["pending_if_incomplete", "error_if_incomplete"]


class PaymentDeclined(Exception):
    """A change with `error_if_incomplete` whose payment failed: Stripe changed nothing."""

    def __init__(self, code: str | None) -> None:
        super().__init__(code)
        self.code = code


class UnknownStartingPoint(Exception):
    """A list's `starting_after` names nothing Stripe can start after."""


@frozen
class SubscriptionItem:
    id: str
    price_id: str
    quantity: int
    # Since API 2025-03-31.basil the billing period lives on the items, not the subscription.
    current_period_end: int | None = None


@frozen
class PendingUpdate:
    """A change Stripe applies only once its invoice is paid."""

    # The pending versions of changed items (same id as the current one) and pending new ones.
    items: tuple[SubscriptionItem, ...] = ()
    expires_at: int | None = None


@frozen
class Invoice:
    id: str
    status: str | None = None
    hosted_invoice_url: str | None = None
    number: str | None = None
    amount_due: int = 0
    amount_paid: int = 0
    total: int = 0
    currency: str = ""
    # What the invoice bills for: its subscription lines' period (not the invoice's own period_start/end).
    service_start: int | None = None
    service_end: int | None = None
    created: int | None = None
    invoice_pdf: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None


@frozen
class Subscription:
    id: str
    customer_id: str
    status: str
    items: tuple[SubscriptionItem, ...] = ()
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    created: int = 0
    pending_update: PendingUpdate | None = None
    # The id whether or not it was expanded; the invoice itself only when it was.
    latest_invoice_id: str | None = None
    latest_invoice: Invoice | None = None
    trial_end: int | None = None
    # Whether Stripe can charge it: a default payment method of its own or of its customer. Known
    # only when the customer was read with it (`find_subscription_with_payment_method`).
    has_payment_method: bool | None = None


@frozen
class Page[T]:
    data: tuple[T, ...]
    has_more: bool


@frozen
class CheckoutSession:
    id: str
    status: str | None
    created: int
    url: str | None = None
    customer_id: str | None = None
    mode: str | None = None
    subscription_id: str | None = None
    client_reference_id: str | None = None
    # The organization its metadata names.
    organization_id: str | None = None


@frozen
class NewCheckoutSession:
    """A subscription Checkout Session for an existing customer; metadata goes on both objects."""

    customer_id: str
    client_reference_id: str
    # (price id, quantity), in order.
    line_items: tuple[tuple[str, int], ...]
    metadata: Mapping[str, str]
    success_url: str
    cancel_url: str
    trial_period_days: int | None = None
    # A card-less trial: Checkout collects no card, and this is what Stripe does at the trial's end
    # when none was added since (trial_settings.end_behavior.missing_payment_method).
    trial_without_payment_method: Literal["cancel", "pause"] | None = None
    allow_promotion_codes: bool = False
    automatic_tax: bool = False


@frozen
class PaymentAttempt:
    """The PaymentIntent of an invoice's payment."""

    status: str | None
    client_secret: str | None


@frozen
class ItemChange:
    """One entry of Stripe's `items` array: update/swap an item (id), add one (no id) or delete."""

    item_id: str | None = None
    price: str | None = None
    quantity: int | None = None
    deleted: bool = False


class StripePort(Hashable, Protocol):
    """Hashable: the prices resolved through a port are cached per port."""

    def create_customer(self, metadata: Mapping[str, str], idempotency_key: str) -> str:
        """The new (or, for a reused key, the same) customer's id."""
        ...

    def list_open_checkout_sessions(self, customer_id: str) -> Sequence[CheckoutSession]: ...

    def close_checkout_session(self, session_id: str) -> str:
        """Expire the session if it is still open; its status afterwards."""
        ...

    def create_checkout_session(self, session: NewCheckoutSession) -> CheckoutSession: ...

    def create_portal_session(self, customer_id: str, return_url: str, configuration_id: str | None) -> str | None:
        """The portal URL."""
        ...

    def list_invoices(self, customer_id: str, limit: int, starting_after: str | None) -> Page[Invoice]: ...

    def list_subscriptions(self, customer_id: str | None, limit: int, starting_after: str | None) -> Page[Subscription]:
        """Newest first, whatever their status; every customer's when `customer_id` is None."""
        ...

    def find_subscription(self, subscription_id: str) -> Subscription | None:
        """None when Stripe has no such subscription for our key."""
        ...

    def find_subscription_with_payment_method(self, subscription_id: str) -> Subscription | None:
        """The subscription with `has_payment_method` known; None when Stripe has no such subscription."""
        ...

    def subscription_with_invoice(self, subscription_id: str) -> Subscription:
        """The subscription with its latest invoice."""
        ...

    def cancel_now(self, subscription_id: str) -> Subscription:
        """Canceled, also when an earlier attempt whose answer was lost canceled it already."""
        ...

    def cancel_at_period_end(self, subscription_id: str) -> Subscription: ...

    def clear_cancellation(self, subscription_id: str) -> Subscription:
        """No cancellation scheduled any more, however it was scheduled."""
        ...

    def change_items(
        self,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        payment_behavior: PaymentBehavior,
        proration_date: int | None,
    ) -> Subscription:
        """The changed subscription with its latest invoice; PaymentDeclined when nothing changed."""
        ...

    def preview_invoice(
        self,
        customer_id: str,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        proration_date: int | None = None,
    ) -> Invoice: ...

    def invoice_payment(self, invoice_id: str) -> PaymentAttempt | None:
        """The PaymentIntent of the invoice's payment attempt, or None when it has none."""
        ...

    def price_ids_by_lookup_key(self, lookup_keys: Sequence[str]) -> Mapping[str, str]:
        """{lookup key: price id} for at most ten lookup keys (unknown ones are left out)."""
        ...

    def retrieve_event(self, event_id: str) -> StripeEvent | None:
        """The event as the Events API has it (what a webhook delivers); None when Stripe has no
        such event for our key (or no longer: it keeps them 30 days)."""
        ...
