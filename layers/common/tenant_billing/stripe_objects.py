"""Readers of Stripe objects (as the API returns them, or as a webhook event's `data.object` carries
them) into the port's typed values: one reader per object, and the only code that digs in Stripe's
dicts. Tolerant: a field of the wrong type (even in a signed event) reads as absent. No SDK import,
so the webhook's parsing and the pure logic stay free of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tenant_billing.stripe_port import CheckoutSession, Invoice, PaymentAttempt, PendingUpdate, Subscription, SubscriptionItem


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A field that should be an object; anything else counts as empty."""
    return value if isinstance(value, Mapping) else {}


def id_of(value: Any) -> str | None:
    """An expandable field: an id string, or an expanded object with an id."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _int(value: Any) -> int:
    return _optional_int(value) or 0


def _optional_str(value: Any) -> str | None:
    return str(value) if value else None


def _list_data(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list field (`{"object": "list", "data": [...]}`)."""
    data = as_mapping(value).get("data")
    return [entry for entry in data if isinstance(entry, Mapping)] if isinstance(data, list) else []


def read_item(item: Mapping[str, Any]) -> SubscriptionItem:
    price = item.get("price")
    price_id = price.get("id", "") if isinstance(price, Mapping) else price or ""
    return SubscriptionItem(
        id=str(item.get("id")),
        price_id=str(price_id),
        quantity=_int(item.get("quantity")),
        current_period_end=_optional_int(item.get("current_period_end")),
    )


def _read_pending_update(value: Any) -> PendingUpdate | None:
    pending = as_mapping(value)
    if not pending:
        return None
    listed = pending.get("subscription_items")
    items = [read_item(item) for item in listed if isinstance(item, Mapping)] if isinstance(listed, list) else []
    return PendingUpdate(tuple(items), _optional_int(pending.get("expires_at")))


def _bills_a_subscription_period(line: Mapping[str, Any]) -> bool:
    """A line of a subscription item's own price for a period, not a proration or a one-off item."""
    parent = as_mapping(line.get("parent"))
    details = as_mapping(parent.get("subscription_item_details"))
    return parent.get("type") == "subscription_item_details" and details.get("proration") is False


def _service_period(invoice: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The span its subscription lines bill for; on an invoice without any (prorations only), its lines' span.

    Not the invoice's own period_start/period_end: they bound when invoice items could be added, and a
    renewal's are the period that just ended. `lines` holds the first few lines only, pending prorations
    first: an invoice with more prorations than that falls back to its listed lines' span.
    """
    lines = _list_data(invoice.get("lines"))
    billed = [line for line in lines if _bills_a_subscription_period(line)] or lines
    periods = [as_mapping(line.get("period")) for line in billed]
    starts = [start for period in periods if (start := _optional_int(period.get("start"))) is not None]
    ends = [end for period in periods if (end := _optional_int(period.get("end"))) is not None]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def read_invoice(invoice: Mapping[str, Any]) -> Invoice:
    # Since API 2025-03-31.basil invoices link their subscription through `parent`.
    parent = as_mapping(invoice.get("parent"))
    details = as_mapping(parent.get("subscription_details")) if parent.get("type") == "subscription_details" else {}
    service_start, service_end = _service_period(invoice)
    return Invoice(
        id=id_of(invoice.get("id")) or "",
        status=_optional_str(invoice.get("status")),
        hosted_invoice_url=_optional_str(invoice.get("hosted_invoice_url")),
        number=_optional_str(invoice.get("number")),
        amount_due=_int(invoice.get("amount_due")),
        amount_paid=_int(invoice.get("amount_paid")),
        total=_int(invoice.get("total")),
        currency=str(invoice.get("currency") or ""),
        service_start=service_start,
        service_end=service_end,
        created=_optional_int(invoice.get("created")),
        invoice_pdf=invoice.get("invoice_pdf"),
        customer_id=id_of(invoice.get("customer")),
        subscription_id=id_of(details.get("subscription")),
    )


def read_subscription(subscription: Mapping[str, Any]) -> Subscription:
    latest = subscription.get("latest_invoice")
    return Subscription(
        id=id_of(subscription.get("id")) or "",
        customer_id=id_of(subscription.get("customer")) or "",
        status=str(subscription.get("status") or ""),
        items=tuple(read_item(item) for item in _list_data(subscription.get("items"))),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        cancel_at=_optional_int(subscription.get("cancel_at")),
        created=_int(subscription.get("created")),
        pending_update=_read_pending_update(subscription.get("pending_update")),
        latest_invoice_id=id_of(latest),
        latest_invoice=read_invoice(latest) if isinstance(latest, Mapping) else None,
        trial_end=_optional_int(subscription.get("trial_end")),
    )


def read_subscription_with_payment_method(subscription: Mapping[str, Any]) -> Subscription:
    """A subscription read with its customer expanded: whether Stripe can charge it (its own default
    payment method, else the customer's invoice default or default source)."""
    customer = as_mapping(subscription.get("customer"))
    invoice_settings = as_mapping(customer.get("invoice_settings"))
    sources = (
        subscription.get("default_payment_method"),
        invoice_settings.get("default_payment_method"),
        customer.get("default_source"),
    )
    return replace(read_subscription(subscription), has_payment_method=any(id_of(source) for source in sources))


def read_checkout_session(session: Mapping[str, Any]) -> CheckoutSession:
    metadata = as_mapping(session.get("metadata"))
    return CheckoutSession(
        id=id_of(session.get("id")) or "",
        status=_optional_str(session.get("status")),
        created=_int(session.get("created")),
        url=_optional_str(session.get("url")),
        customer_id=id_of(session.get("customer")),
        mode=_optional_str(session.get("mode")),
        subscription_id=id_of(session.get("subscription")),
        client_reference_id=_optional_str(session.get("client_reference_id")),
        organization_id=_optional_str(metadata.get("organization_id")),
    )


def read_invoice_payment(invoice: Mapping[str, Any]) -> PaymentAttempt | None:
    """The PaymentIntent of an invoice read with `payments.data.payment.payment_intent` expanded."""
    for invoice_payment in _list_data(invoice.get("payments")):
        intent = as_mapping(invoice_payment.get("payment")).get("payment_intent")
        if isinstance(intent, Mapping):
            return PaymentAttempt(_optional_str(intent.get("status")), _optional_str(intent.get("client_secret")))
    return None
