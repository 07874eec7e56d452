"""The Stripe port over the typed StripeClient: every Stripe call the product makes, the translation
of Stripe's errors into domain errors, the "resource missing means None" rule, and the reading of
Stripe's answers into the port's values (`stripe_objects`). The client is created lazily and cached
per API key. Imported only by the functions that talk to Stripe: the status path never pays for the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, cast

import stripe

if TYPE_CHECKING:
    # TypedDicts, plain dicts at run time: importing them costs ~85 ms of every cold start.
    from stripe.params import (
        InvoiceCreatePreviewParams,
        InvoiceCreatePreviewParamsSubscriptionDetails,
        InvoiceCreatePreviewParamsSubscriptionDetailsItem,
        InvoiceListParams,
        SubscriptionListParams,
        SubscriptionUpdateParams,
        SubscriptionUpdateParamsItem,
    )
    from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
    from stripe.params.checkout import SessionCreateParams, SessionCreateParamsLineItem, SessionCreateParamsSubscriptionData

    from tenant_billing.webhook_logic import StripeEvent

from tenant_billing.errors import BillingMisconfiguredError, BillingNotConfiguredError, StripeUnavailableError
from tenant_billing.observability import logger, metrics, trace_library
from tenant_billing.settings import get_settings
from tenant_billing.stripe_credentials import get_stripe_credentials
from tenant_billing.stripe_objects import (
    read_checkout_session,
    read_invoice,
    read_invoice_payment,
    read_subscription,
    read_subscription_with_payment_method,
)
from tenant_billing.stripe_port import (
    CheckoutSession,
    Invoice,
    ItemChange,
    NewCheckoutSession,
    Page,
    PaymentAttempt,
    PaymentBehavior,
    PaymentDeclined,
    ProrationBehavior,
    Subscription,
    UnknownStartingPoint,
)

# The API version stripe-python 16.1.0 is pinned to. The webhook endpoint in the Stripe
# Dashboard must use the same version, so event payloads have the shapes this code reads.
STRIPE_API_VERSION = "2026-10-28.endive"


def build_http_client() -> stripe.HTTPClient:
    """A bounded timeout (the SDK's default is 80 s, longer than the function's); its calls traced."""
    settings = get_settings()
    trace_library("requests")
    return stripe.RequestsClient(timeout=(2.0, settings.STRIPE_TIMEOUT_SECONDS))


@lru_cache(maxsize=2)
def _adapter_for_key(api_key: str) -> StripeAdapter:
    settings = get_settings()
    client = stripe.StripeClient(
        api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
        # StripeClient retries nothing by default. With retries, connection errors, 409 and 5xx
        # are retried with backoff, reusing the same Idempotency-Key for POSTs.
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=build_http_client(),
    )
    return StripeAdapter(client)


def get_stripe() -> StripeAdapter:
    """The port for the current key (a rotated key gets a new client once the secret cache expires)."""
    credentials = get_stripe_credentials()
    if not credentials.secret_key:
        raise BillingNotConfiguredError("billing is not configured")
    return _adapter_for_key(credentials.secret_key)


@contextmanager
def stripe_errors(operation: str) -> Iterator[None]:
    """Map Stripe's exceptions to domain errors. Stripe's messages are never passed on or logged:
    only the error class, code, param, HTTP status and request id are."""
    try:
        yield
    except stripe.StripeError as exc:
        details = {
            "operation": operation,
            "stripe_error": type(exc).__name__,
            "stripe_code": exc.code,
            "http_status": exc.http_status,
            "request_id": exc.request_id,
            "param": getattr(exc, "param", None),
        }
        if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
            logger.error("Stripe rejected our credentials", extra=details)
            metrics.add_metric(name="StripeMisconfigured", unit="Count", value=1)
            raise BillingMisconfiguredError("billing is misconfigured") from None
        if isinstance(exc, stripe.InvalidRequestError) and not isinstance(exc, stripe.IdempotencyError):
            # Our request was wrong (a deleted price, a setting Stripe refuses): an operator must act.
            logger.error("Stripe rejected a request", extra=details)
            metrics.add_metric(name="StripeMisconfigured", unit="Count", value=1)
            raise BillingMisconfiguredError("billing is misconfigured") from None
        logger.warning("Stripe is unavailable", extra=details)
        metrics.add_metric(name="StripeUnavailable", unit="Count", value=1)
        raise StripeUnavailableError("the payment provider is unavailable, try again") from None


@contextmanager
def _known_starting_point(starting_after: str | None) -> Iterator[None]:
    """A list's `starting_after` that Stripe has nothing for (Stripe names the param) is the
    caller's to handle: UnknownStartingPoint, not a misconfiguration."""
    try:
        yield
    except stripe.InvalidRequestError as exc:
        if starting_after and exc.param == "starting_after":
            raise UnknownStartingPoint(starting_after) from None
        raise


def _item_fields(change: ItemChange) -> dict[str, object]:
    fields: dict[str, object] = {"id": change.item_id} if change.item_id else {}
    if change.deleted:
        return {**fields, "deleted": True}
    if change.price:
        fields["price"] = change.price
    if change.quantity is not None:
        fields["quantity"] = change.quantity
    return fields


def _checkout_session_params(session: NewCheckoutSession) -> SessionCreateParams:
    line_items: list[SessionCreateParamsLineItem] = [
        {"price": price, "quantity": quantity} for price, quantity in session.line_items
    ]
    metadata = dict(session.metadata)
    subscription_data: SessionCreateParamsSubscriptionData = {"metadata": metadata}
    if session.trial_period_days:
        subscription_data["trial_period_days"] = session.trial_period_days
        if session.trial_without_payment_method is not None:
            subscription_data["trial_settings"] = {
                "end_behavior": {"missing_payment_method": session.trial_without_payment_method}
            }
    params: SessionCreateParams = {
        "mode": "subscription",
        "customer": session.customer_id,
        "client_reference_id": session.client_reference_id,
        "line_items": line_items,
        "metadata": metadata,
        "subscription_data": subscription_data,
        "success_url": session.success_url,
        "cancel_url": session.cancel_url,
    }
    if session.trial_without_payment_method is not None:
        # Nothing is due while the trial lasts: Checkout asks for no card.
        params["payment_method_collection"] = "if_required"
    if session.allow_promotion_codes:
        params["allow_promotion_codes"] = True
    if session.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
        # Stripe Tax needs the customer's address; let Checkout store it on the customer.
        params["customer_update"] = {"address": "auto", "name": "auto"}
    return params


class StripeAdapter:
    """`StripePort` over one StripeClient."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    def create_customer(self, metadata: Mapping[str, str], idempotency_key: str) -> str:
        with stripe_errors("customers.create"):
            customer = self.client.v1.customers.create(
                params={"metadata": dict(metadata)}, options={"idempotency_key": idempotency_key}
            )
        return customer.id

    def list_open_checkout_sessions(self, customer_id: str) -> Sequence[CheckoutSession]:
        with stripe_errors("checkout.sessions.list"):
            page = self.client.v1.checkout.sessions.list(params={"customer": customer_id, "status": "open", "limit": 100})
        return [read_checkout_session(session.to_dict()) for session in page.data]

    def close_checkout_session(self, session_id: str) -> str:
        with stripe_errors("checkout.sessions.expire"):
            try:
                return str(self.client.v1.checkout.sessions.expire(session_id).status)
            except stripe.InvalidRequestError:
                # Only an open session can be expired: this one is already expired or complete.
                return str(self.client.v1.checkout.sessions.retrieve(session_id).status)

    def create_checkout_session(self, session: NewCheckoutSession) -> CheckoutSession:
        with stripe_errors("checkout.sessions.create"):
            created = self.client.v1.checkout.sessions.create(params=_checkout_session_params(session))
        return read_checkout_session(created.to_dict())

    def create_portal_session(self, customer_id: str, return_url: str, configuration_id: str | None) -> str | None:
        params: PortalSessionParams = {"customer": customer_id, "return_url": return_url}
        if configuration_id:
            params["configuration"] = configuration_id
        with stripe_errors("billing_portal.sessions.create"):
            session = self.client.v1.billing_portal.sessions.create(params=params)
        return session.url or None

    def list_invoices(self, customer_id: str, limit: int, starting_after: str | None) -> Page[Invoice]:
        params: InvoiceListParams = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        with stripe_errors("invoices.list"), _known_starting_point(starting_after):
            page = self.client.v1.invoices.list(params=params)
        return Page(tuple(read_invoice(invoice.to_dict()) for invoice in page.data), bool(page.has_more))

    def list_subscriptions(self, customer_id: str | None, limit: int, starting_after: str | None) -> Page[Subscription]:
        params: SubscriptionListParams = {"status": "all", "limit": limit}
        if customer_id is not None:
            params = {"customer": customer_id, **params}
        if starting_after:
            params["starting_after"] = starting_after
        with stripe_errors("subscriptions.list"), _known_starting_point(starting_after):
            page = self.client.v1.subscriptions.list(params=params)
        return Page(tuple(read_subscription(subscription.to_dict()) for subscription in page.data), bool(page.has_more))

    def find_subscription(self, subscription_id: str) -> Subscription | None:
        with stripe_errors("subscriptions.retrieve"):
            try:
                return read_subscription(self.client.v1.subscriptions.retrieve(subscription_id).to_dict())
            except stripe.InvalidRequestError as exc:
                if exc.code == "resource_missing":
                    return None
                raise

    def retrieve_event(self, event_id: str) -> StripeEvent | None:
        # Operators only (a replayed event): the webhook reader is not loaded on any request path.
        from tenant_billing.webhook_logic import read_event_document

        with stripe_errors("events.retrieve"):
            try:
                document = self.client.v1.events.retrieve(event_id).to_dict()
            except stripe.InvalidRequestError as exc:
                if exc.code == "resource_missing":
                    return None
                raise
        return read_event_document(document)

    def find_subscription_with_payment_method(self, subscription_id: str) -> Subscription | None:
        with stripe_errors("subscriptions.retrieve"):
            try:
                found = self.client.v1.subscriptions.retrieve(subscription_id, params={"expand": ["customer"]})
            except stripe.InvalidRequestError as exc:
                if exc.code == "resource_missing":
                    return None
                raise
        return read_subscription_with_payment_method(found.to_dict())

    def subscription_with_invoice(self, subscription_id: str) -> Subscription:
        with stripe_errors("subscriptions.retrieve"):
            subscription = self.client.v1.subscriptions.retrieve(subscription_id, params={"expand": ["latest_invoice"]})
        return read_subscription(subscription.to_dict())

    def cancel_now(self, subscription_id: str) -> Subscription:
        with stripe_errors("subscriptions.cancel"):
            try:
                result = self.client.v1.subscriptions.cancel(subscription_id)
            except stripe.InvalidRequestError:
                # A DELETE carries no idempotency key: if an earlier attempt canceled it and its
                # answer was lost, Stripe now refuses. Canceled is what was asked for.
                result = self.client.v1.subscriptions.retrieve(subscription_id)
                if result.status != "canceled":
                    raise
        return read_subscription(result.to_dict())

    def cancel_at_period_end(self, subscription_id: str) -> Subscription:
        with stripe_errors("subscriptions.cancel"):
            result = self.client.v1.subscriptions.update(subscription_id, params={"cancel_at_period_end": True})
        return read_subscription(result.to_dict())

    def clear_cancellation(self, subscription_id: str) -> Subscription:
        # Stripe takes one of the two per request, and clearing `cancel_at` ("") clears both; it is a
        # no-op on a subscription with nothing scheduled.
        with stripe_errors("subscriptions.update"):
            result = read_subscription(self.client.v1.subscriptions.update(subscription_id, params={"cancel_at": ""}).to_dict())
            if not result.cancel_at_period_end:
                return result
            cleared = self.client.v1.subscriptions.update(subscription_id, params={"cancel_at_period_end": False})
        return read_subscription(cleared.to_dict())

    def change_items(
        self,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        payment_behavior: PaymentBehavior,
        proration_date: int | None,
    ) -> Subscription:
        params: SubscriptionUpdateParams = {
            "items": [cast("SubscriptionUpdateParamsItem", _item_fields(change)) for change in changes],
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior,
            # The invoice comes back with the answer; its payment is read only when it did not go through.
            "expand": ["latest_invoice"],
        }
        if proration_date is not None:
            params["proration_date"] = proration_date
        with stripe_errors("subscriptions.update"):
            try:
                updated = self.client.v1.subscriptions.update(subscription_id, params=params)
            except stripe.CardError as exc:
                raise PaymentDeclined(exc.code) from None
        return read_subscription(updated.to_dict())

    def preview_invoice(
        self,
        customer_id: str,
        subscription_id: str,
        changes: Sequence[ItemChange],
        *,
        proration_behavior: ProrationBehavior,
        proration_date: int | None = None,
    ) -> Invoice:
        details: InvoiceCreatePreviewParamsSubscriptionDetails = {
            "items": [cast("InvoiceCreatePreviewParamsSubscriptionDetailsItem", _item_fields(change)) for change in changes],
            "proration_behavior": proration_behavior,
        }
        if proration_date is not None:
            details["proration_date"] = proration_date
        params: InvoiceCreatePreviewParams = {
            "customer": customer_id,
            "subscription": subscription_id,
            "subscription_details": details,
        }
        with stripe_errors("invoices.create_preview"):
            preview = self.client.v1.invoices.create_preview(params=params)
        return read_invoice(preview.to_dict())

    def invoice_payment(self, invoice_id: str) -> PaymentAttempt | None:
        with stripe_errors("invoices.retrieve"):
            invoice = self.client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments.data.payment.payment_intent"]})
        return read_invoice_payment(invoice.to_dict())

    def price_ids_by_lookup_key(self, lookup_keys: Sequence[str]) -> Mapping[str, str]:
        with stripe_errors("prices.list"):
            page = self.client.v1.prices.list(params={"lookup_keys": list(lookup_keys), "limit": 10})
        return {price.lookup_key: price.id for price in page.data if price.lookup_key}
