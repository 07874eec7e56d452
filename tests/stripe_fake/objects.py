"""Builders of Stripe objects in their current (2026-10-28.endive) shapes, and calendar helpers."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from tests.stripe_fake.constants import API_VERSION

type Obj = dict[str, Any]

DAY = 86_400


def add_interval(timestamp: int, interval: str, count: int = 1) -> int:
    """`timestamp` plus `count` intervals, calendar-aware like Stripe (Jan 31 + 1 month = Feb 28/29)."""
    if interval == "day":
        return timestamp + count * DAY
    if interval == "week":
        return timestamp + count * 7 * DAY
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    months = count * (12 if interval == "year" else 1)
    if interval not in ("month", "year"):
        raise ValueError(f"unknown interval {interval!r}")
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def list_object(data: list[Obj], url: str, *, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def product(product_id: str, name: str, created: int, price_id: str | None) -> Obj:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": price_id,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    price_id: str,
    *,
    product_id: str,
    unit_amount: int,
    currency: str,
    interval: str | None,
    interval_count: int,
    active: bool,
    created: int,
    lookup_key: str | None,
    nickname: str | None,
) -> Obj:
    recurring = (
        {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
        if interval is not None
        else None
    )
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": nickname,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if interval is not None else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan_from_price(p: Obj) -> Obj:
    recurring = p["recurring"] or {}
    return {
        "id": p["id"],
        "object": "plan",
        "active": p["active"],
        "amount": p["unit_amount"],
        "amount_decimal": p["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": p["created"],
        "currency": p["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": p["nickname"],
        "product": p["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def customer(customer_id: str, *, created: int, invoice_prefix: str) -> Obj:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def deleted_customer(customer_id: str) -> Obj:
    return {"id": customer_id, "object": "customer", "deleted": True}


def checkout_session(
    session_id: str,
    *,
    created: int,
    expires_at: int,
    mode: str,
    ui_mode: str,
    url: str | None,
    client_secret: str | None,
    params: dict[str, Any],
    customer_id: str | None,
    currency: str | None,
    amount_subtotal: int,
    metadata: dict[str, str],
) -> Obj:
    automatic_tax = params.get("automatic_tax") or {}
    tax_id_collection = params.get("tax_id_collection")
    phone = params.get("phone_number_collection") or {}
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "allowed_payment_method_types": None,
        "amount_subtotal": amount_subtotal,
        "amount_total": amount_subtotal,
        "automatic_tax": {
            "enabled": bool(automatic_tax.get("enabled", False)),
            "liability": {"type": "self"} if automatic_tax.get("enabled") else None,
            "provider": None,
            "status": "requires_location_inputs" if automatic_tax.get("enabled") else None,
        },
        "billing_address_collection": params.get("billing_address_collection"),
        "branding_settings": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": client_secret,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": params.get("customer_creation"),
        "customer_details": (
            {
                "address": None,
                "business_name": None,
                "email": params["customer_email"],
                "individual_name": None,
                "name": None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": None,
            }
            if params.get("customer_email")
            else None
        ),
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "excluded_payment_method_types": None,
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": None,
        "metadata": metadata,
        "mode": mode,
        "name_collection": None,
        "optional_items": None,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": params.get("payment_method_collection", "always"),
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": bool(phone.get("enabled", False))},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": params.get("redirect_on_completion") if ui_mode != "hosted_page" else None,
        "return_url": params.get("return_url"),
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": "disabled",
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "tax_id_collection": (
            {"enabled": tax_id_collection["enabled"], "required": tax_id_collection.get("required", "never")}
            if tax_id_collection
            else {"enabled": False, "required": "never"}
        ),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": url,
        "wallet_options": None,
    }


def checkout_line_item(item_id: str, p: Obj, product_name: str, quantity: int) -> Obj:
    amount = p["unit_amount"] * quantity
    return {
        "id": item_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": p["currency"],
        "description": product_name,
        "metadata": {},
        "price": p,
        "quantity": quantity,
    }


def portal_session(
    session_id: str, *, created: int, customer_id: str, configuration: str, params: dict[str, Any], url: str
) -> Obj:
    return {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": configuration,
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": params.get("locale"),
        "on_behalf_of": None,
        "return_url": params.get("return_url"),
        "url": url,
    }


def subscription_item(item_id: str, *, subscription_id: str, p: Obj, quantity: int, created: int, period: tuple[int, int]) -> Obj:
    return {
        "id": item_id,
        "object": "subscription_item",
        "billed_until": None,
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "current_trial": None,
        "discounts": [],
        "metadata": {},
        "plan": plan_from_price(p),
        "price": p,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    subscription_id: str,
    *,
    customer_id: str,
    created: int,
    currency: str,
    status: str,
    items: list[Obj],
    metadata: dict[str, str],
    description: str | None,
    trial: tuple[int, int] | None,
    billing_cycle_anchor: int,
    default_payment_method: str | None,
    missing_payment_method: str = "create_invoice",
) -> Obj:
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": billing_cycle_anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible", "updated_at": created},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(items, f"/v1/subscription_items?subscription={subscription_id}"),
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": created,
        "status": status,
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial[1] if trial else None,
        "trial_settings": {"end_behavior": {"missing_payment_method": missing_payment_method}},
        "trial_start": trial[0] if trial else None,
    }


def invoice_line(
    line_id: str,
    *,
    invoice_id: str,
    subscription_id: str,
    item: Obj,
    amount: int,
    description: str,
    period: tuple[int, int],
    proration: bool = False,
    invoice_item: str | None = None,
) -> Obj:
    p = item["price"]
    return {
        "id": line_id,
        "object": "line_item",
        "amount": amount,
        "currency": p["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": p["id"], "product": p["product"]},
            "type": "price_details",
            "unit_amount_decimal": p["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "quantity_decimal": str(item["quantity"]),
        "subtotal": amount,
        "taxes": [],
    }


def invoice_item(
    item_id: str,
    *,
    customer_id: str,
    subscription_id: str,
    item: Obj,
    amount: int,
    description: str,
    period: tuple[int, int],
    date: int,
    proration: bool = True,
) -> Obj:
    """An invoice item (ii_...), e.g. a proration left pending for the subscription's next invoice."""
    p = item["price"]
    return {
        "id": item_id,
        "object": "invoiceitem",
        "amount": amount,
        "currency": p["currency"],
        "customer": customer_id,
        "customer_account": None,
        "date": date,
        "description": description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": {
            "subscription_details": {"subscription": subscription_id, "subscription_item": item["id"]},
            "type": "subscription_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pricing": {
            "price_details": {"price": p["id"], "product": p["product"]},
            "type": "price_details",
            "unit_amount_decimal": p["unit_amount_decimal"],
        },
        "proration": proration,
        "proration_details": {"credited_items": None, "discount_amounts": []},
        "quantity": item["quantity"],
        "quantity_decimal": str(item["quantity"]),
        "tax_rates": [],
        "test_clock": None,
    }


def invoice(
    invoice_id: str,
    *,
    customer: Obj,
    subscription: Obj,
    created: int,
    billing_reason: str,
    period: tuple[int, int],
    lines: list[Obj],
) -> Obj:
    total = sum(line["amount"] for line in lines)
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Fake Stripe Test Account",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": subscription["currency"],
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_details": None,
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def payment_method_card(
    pm_id: str,
    *,
    brand: str,
    funding: str,
    last4: str,
    exp_year: int,
    created: int,
    customer_id: str | None,
    email: str | None,
    name: str | None,
) -> Obj:
    """A card PaymentMethod (pm_...). The card number itself is never part of an API object."""
    return {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": "limited",
        "billing_details": {"address": None, "email": email, "name": name, "phone": None},
        "card": {
            "brand": brand,
            "country": "US",
            "exp_month": 12,
            "exp_year": exp_year,
            "funding": funding,
            "last4": last4,
        },
        "created": created,
        "customer": customer_id,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def payment_intent(
    pi_id: str,
    *,
    amount: int,
    currency: str,
    customer_id: str,
    description: str | None,
    created: int,
    client_secret: str,
) -> Obj:
    """The PaymentIntent Stripe creates when it finalizes an invoice with an amount due (status requires_payment_method)."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "allowed_payment_method_types": None,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": client_secret,
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {"installments": None, "mandate_options": None, "network": None, "request_three_d_secure": "automatic"}
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def invoice_payment(
    payment_id: str, *, invoice_id: str, amount_requested: int, currency: str, created: int, payment_intent_id: str
) -> Obj:
    """The default invoice_payment (inpay_...) Stripe creates at finalization: links the invoice to its PaymentIntent."""
    return {
        "id": payment_id,
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": amount_requested,
        "created": created,
        "currency": currency,
        "invoice": invoice_id,
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": payment_intent_id, "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def event(
    event_id: str,
    *,
    type_: str,
    created: int,
    obj: Obj,
    previous_attributes: Obj | None,
    request_id: str | None,
    idempotency_key: str | None,
) -> Obj:
    data: Obj = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "context": None,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }
