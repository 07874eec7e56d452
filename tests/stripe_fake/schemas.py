"""Request schemas of the endpoints the fake serves (API version 2026-10-28.endive).

Names and enums follow Stripe's OpenAPI spec and stripe-python 16.1.0's typed parameters. Parameters
that exist in the real API but are not implemented here are `Unsupported` (a clear 400), so a typo
is still `parameter_unknown` and a real-but-unimplemented option never passes silently.
"""

from __future__ import annotations

from tests.stripe_fake.params import (
    EXPAND,
    Arr,
    Bool,
    Int,
    Metadata,
    Node,
    Obj,
    Str,
    Unsupported,
    unsupported,
)

# A few of the locales Stripe accepts (Checkout 43, the portal 47): the product sends none, the fake's
# tests use these. Any other value is refused as Stripe refuses a locale it does not have (the
# fake is stricter than Stripe for the real locales left out).
LOCALES = ("auto", "de", "en", "fr")

SUBSCRIPTION_STATUSES = (
    "active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid",
)  # fmt: skip
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
CANCELLATION_FEEDBACK = (
    "customer_service", "low_quality", "missing_features", "other", "switched_service", "too_complex",
    "too_expensive", "unused",
)  # fmt: skip

_LIST_COMMON: dict[str, Node] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "expand": EXPAND,
}

# --- customers ------------------------------------------------------------------------------------

_CUSTOMER_FIELDS: dict[str, Node] = {
    "email": Str(max_length=512, email=True, emptyable=True),
    "name": Str(max_length=256, emptyable=True),
    "description": Str(max_length=5000, emptyable=True),
    "phone": Str(max_length=20, emptyable=True),
    "metadata": Metadata(),
    "preferred_locales": Arr(Str(max_length=5000), emptyable=True),
    "expand": EXPAND,
    **unsupported(
        "address", "balance", "business_name", "cash_balance", "individual_name", "invoice_prefix",
        "invoice_settings", "next_invoice_sequence", "payment_method", "shipping", "source", "tax", "tax_exempt",
    ),
}  # fmt: skip

CUSTOMER_CREATE = Obj(
    {**_CUSTOMER_FIELDS, **unsupported("tax_id_data", "test_clock", "validate")},
)
CUSTOMER_UPDATE = Obj(
    {**_CUSTOMER_FIELDS, **unsupported("default_source", "validate")},
)
RETRIEVE = Obj({"expand": EXPAND})
DELETE = Obj({})

# --- checkout sessions ------------------------------------------------------------------------------

_LINE_ITEM = Obj(
    {
        "price": Str(),
        "quantity": Int(),
        "metadata": Metadata(),
        **unsupported("adjustable_quantity", "price_data", "tax_rates"),
    }
)

_SUBSCRIPTION_DATA = Obj(
    {
        "metadata": Metadata(),
        "trial_period_days": Int(minimum=1, maximum=730),
        "trial_end": Int(),
        "description": Str(max_length=500),
        "trial_settings": Obj(
            {
                "end_behavior": Obj(
                    {"missing_payment_method": Str(enum=("cancel", "create_invoice", "pause"))},
                    required=frozenset({"missing_payment_method"}),
                )
            },
            required=frozenset({"end_behavior"}),
        ),
        **unsupported(
            "application_fee_percent", "billing_cycle_anchor", "billing_cycle_anchor_config", "billing_mode",
            "default_tax_rates", "invoice_settings", "on_behalf_of", "pending_invoice_item_interval",
            "proration_behavior", "transfer_data",
        ),
    }
)  # fmt: skip

CHECKOUT_SESSION_CREATE = Obj(
    {
        "mode": Str(enum=("payment", "setup", "subscription")),
        "line_items": Arr(_LINE_ITEM),
        "customer": Str(),
        "customer_email": Str(email=True),
        "client_reference_id": Str(max_length=200),
        "metadata": Metadata(),
        "subscription_data": _SUBSCRIPTION_DATA,
        "success_url": Str(url=True),
        "cancel_url": Str(url=True),
        "return_url": Str(url=True),
        "allow_promotion_codes": Bool(),
        "automatic_tax": Obj({"enabled": Bool(), "liability": Unsupported()}, required=frozenset({"enabled"})),
        "ui_mode": Str(enum=("elements", "embedded_page", "form", "hosted_page")),
        "expand": EXPAND,
        "locale": Str(enum=LOCALES),
        "billing_address_collection": Str(enum=("auto", "required")),
        "customer_update": Obj(
            {
                "address": Str(enum=("auto", "never")),
                "name": Str(enum=("auto", "never")),
                "shipping": Str(enum=("auto", "never")),
            }
        ),
        "discounts": Arr(Obj({"coupon": Str(), "promotion_code": Str()})),
        "expires_at": Int(),
        "payment_method_collection": Str(enum=("always", "if_required")),
        "redirect_on_completion": Str(enum=("always", "if_required", "never")),
        "tax_id_collection": Obj(
            {"enabled": Bool(), "required": Str(enum=("if_supported", "never"))}, required=frozenset({"enabled"})
        ),
        "phone_number_collection": Obj({"enabled": Bool()}, required=frozenset({"enabled"})),
        "customer_creation": Str(enum=("always", "if_required")),
        "submit_type": Str(enum=("auto", "book", "donate", "pay", "subscribe")),
        "invoice_creation": Unsupported("payment mode only"),
        "payment_intent_data": Unsupported("payment mode only"),
        "setup_intent_data": Unsupported("setup mode only"),
        **unsupported(
            "adaptive_pricing", "after_expiration", "allowed_payment_method_types", "branding_settings",
            "consent_collection", "currency", "custom_fields", "custom_text", "customer_account",
            "excluded_payment_method_types", "integration_identifier", "managed_payments", "name_collection",
            "optional_items", "origin_context", "payment_method_configuration", "payment_method_data",
            "payment_method_options", "permissions", "saved_payment_method_options", "shipping_address_collection",
            "shipping_options", "wallet_options",
        ),
    }
)  # fmt: skip

LINE_ITEMS_LIST = Obj(dict(_LIST_COMMON))
CHECKOUT_SESSION_EXPIRE = Obj({"expand": EXPAND})

# GET /v1/checkout/sessions
CHECKOUT_SESSION_LIST = Obj(
    {
        **_LIST_COMMON,
        "customer": Str(),
        "status": Str(enum=("open", "complete", "expired")),
        "subscription": Str(),
        **unsupported("created", "customer_account", "customer_details", "payment_intent", "payment_link"),
    }
)

# --- billing portal -------------------------------------------------------------------------------

PORTAL_SESSION_CREATE = Obj(
    {
        "customer": Str(),
        "return_url": Str(url=True),
        "configuration": Str(),
        "locale": Str(enum=LOCALES),
        "expand": EXPAND,
        "flow_data": Unsupported("portal deep links are not simulated"),
        **unsupported("after_expiration", "customer_account", "on_behalf_of"),
    }
)

# --- subscriptions --------------------------------------------------------------------------------

_CANCELLATION_DETAILS = Obj(
    {
        "comment": Str(emptyable=True),
        "feedback": Str(enum=CANCELLATION_FEEDBACK, emptyable=True),
        "feedback_option": Unsupported(),
    }
)

_SUBSCRIPTION_ITEM_UPDATE = Obj(
    {
        "id": Str(),
        "price": Str(),
        "quantity": Int(minimum=0),
        "deleted": Bool(),
        # Only matters for metered items, which the fake does not have: accepted, no effect.
        "clear_usage": Bool(),
        "metadata": Metadata(),
        **unsupported("billing_thresholds", "current_trial", "discounts", "plan", "price_data", "tax_rates"),
    }
)

PRORATION_BEHAVIOR = Str(enum=("always_invoice", "create_prorations", "none"))

SUBSCRIPTION_UPDATE = Obj(
    {
        "items": Arr(_SUBSCRIPTION_ITEM_UPDATE),
        "cancel_at_period_end": Bool(),
        "cancel_at": Int(emptyable=True, literals=("max_period_end", "min_period_end")),
        "cancellation_details": _CANCELLATION_DETAILS,
        "proration_behavior": PRORATION_BEHAVIOR,
        "proration_date": Int(),
        "payment_behavior": Str(
            enum=("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
        ),
        "metadata": Metadata(),
        "description": Str(max_length=500, emptyable=True),
        "pause_collection": Obj(
            {
                "behavior": Str(enum=("keep_as_draft", "mark_uncollectible", "void")),
                "resumes_at": Int(),
            },
            required=frozenset({"behavior"}),
            emptyable=True,
        ),
        "expand": EXPAND,
        **unsupported(
            "add_invoice_items", "application_fee_percent", "automatic_tax", "billing_cycle_anchor",
            "billing_schedules", "billing_thresholds", "collection_method", "days_until_due", "default_payment_method",
            "default_source", "default_tax_rates", "discounts", "invoice_settings", "off_session", "on_behalf_of",
            "payment_settings", "pending_invoice_item_interval", "transfer_data", "trial_end",
            "trial_from_plan", "trial_settings",
        ),
    }
)  # fmt: skip

# payment_behavior=pending_if_incomplete takes only what a pending update can hold
# (https://docs.stripe.com/billing/subscriptions/pending-updates-reference, plus metadata since
# 2026-05-27.dahlia, discounts since 2026-05-27.dahlia / 2026-07-29.dahlia and cancel_at_period_end
# since 2026-09-30.endive). Those the fake does not implement are Unsupported above anyway.
PENDING_UPDATE_PARAMS = frozenset(
    {
        "add_invoice_items", "billing_cycle_anchor", "cancel_at_period_end", "discounts", "expand", "items", "metadata",
        "payment_behavior", "proration_behavior", "proration_date", "trial_end", "trial_from_plan",
    }
)  # fmt: skip
PENDING_UPDATE_ITEM_PARAMS = frozenset({"id", "price", "quantity", "deleted", "discounts"})

SUBSCRIPTION_CANCEL = Obj(
    {
        "cancellation_details": _CANCELLATION_DETAILS,
        "invoice_now": Bool(),
        "prorate": Bool(),
        "expand": EXPAND,
    }
)

SUBSCRIPTION_LIST = Obj(
    {
        **_LIST_COMMON,
        "customer": Str(),
        "price": Str(),
        "status": Str(enum=(*SUBSCRIPTION_STATUSES, "all", "ended")),
        **unsupported(
            "automatic_tax", "collection_method", "created", "current_period_end", "current_period_start",
            "customer_account", "plan", "test_clock",
        ),
    }
)  # fmt: skip

# --- products -------------------------------------------------------------------------------------

_PRODUCT_FIELDS: dict[str, Node] = {
    "name": Str(),
    "active": Bool(),
    "metadata": Metadata(),
    "expand": EXPAND,
    **unsupported(
        "description", "images", "marketing_features", "package_dimensions", "shippable", "statement_descriptor",
        "tax_code", "tax_details", "unit_label", "url",
    ),
}  # fmt: skip

# POST /v1/products: `id` is ours to choose (unique among the account's products).
PRODUCT_CREATE = Obj(
    {**_PRODUCT_FIELDS, "id": Str(), **unsupported("default_price_data", "type")},
    required=frozenset({"name"}),
)
# POST /v1/products/{id}
PRODUCT_UPDATE = Obj({**_PRODUCT_FIELDS, **unsupported("default_price")})

# --- prices ---------------------------------------------------------------------------------------

# POST /v1/prices. A price's amount, currency and recurrence cannot be changed afterwards.
PRICE_CREATE = Obj(
    {
        "currency": Str(),
        "unit_amount": Int(minimum=0),
        "product": Str(),
        "recurring": Obj(
            {
                "interval": Str(enum=("day", "month", "week", "year")),
                "interval_count": Int(minimum=1),
                "usage_type": Str(enum=("licensed", "metered")),
                **unsupported("meter", "trial_period_days"),
            },
            required=frozenset({"interval"}),
        ),
        "billing_scheme": Str(enum=("per_unit", "tiered")),
        "lookup_key": Str(max_length=200),
        "transfer_lookup_key": Bool(),
        "active": Bool(),
        "nickname": Str(),
        "metadata": Metadata(),
        "tax_behavior": Str(enum=("exclusive", "inclusive", "unspecified")),
        "expand": EXPAND,
        **unsupported(
            "currency_options", "custom_unit_amount", "product_data", "tiers", "tiers_mode", "transform_quantity",
            "unit_amount_decimal",
        ),
    },
    required=frozenset({"currency"}),
)  # fmt: skip

# GET /v1/prices
PRICE_LIST = Obj(
    {
        **_LIST_COMMON,
        "active": Bool(),
        "lookup_keys": Arr(Str(max_length=200), max_items=10),
        **unsupported("created", "currency", "product", "recurring", "type"),
    }
)

# --- invoices -------------------------------------------------------------------------------------

INVOICE_LIST = Obj(
    {
        **_LIST_COMMON,
        "customer": Str(),
        "subscription": Str(),
        "status": Str(enum=INVOICE_STATUSES),
        **unsupported("collection_method", "created", "customer_account", "due_date"),
    }
)

# POST /v1/invoices/create_preview: previews of changes to an existing subscription.
_PREVIEW_SUBSCRIPTION_DETAILS = Obj(
    {
        "items": Arr(_SUBSCRIPTION_ITEM_UPDATE),
        "proration_behavior": PRORATION_BEHAVIOR,
        "proration_date": Int(),
        "cancel_at_period_end": Bool(),
        "metadata": Metadata(),
        **unsupported(
            "billing_cycle_anchor", "billing_mode", "billing_schedules", "cancel_at", "cancel_now", "default_tax_rates",
            "pause", "resume_at", "start_date", "trial_end",
        ),
    }
)  # fmt: skip

INVOICE_CREATE_PREVIEW = Obj(
    {
        "customer": Str(),
        "subscription": Str(),
        "subscription_details": _PREVIEW_SUBSCRIPTION_DETAILS,
        "expand": EXPAND,
        **unsupported(
            "automatic_tax", "currency", "customer_account", "customer_details", "discounts", "invoice_items", "issuer",
            "on_behalf_of", "preview_mode", "schedule", "schedule_details",
        ),
    }
)  # fmt: skip

# POST /v1/invoices/{id}/void
INVOICE_VOID = Obj({"expand": EXPAND})

# POST /v1/invoices/{id}/pay
INVOICE_PAY = Obj(
    {
        "off_session": Bool(),
        "payment_method": Str(),
        "expand": EXPAND,
        **unsupported("forgive", "mandate", "paid_out_of_band", "source"),
    }
)

# GET /v1/invoice_payments
INVOICE_PAYMENT_LIST = Obj(
    {
        **_LIST_COMMON,
        "invoice": Str(),
        "payment": Obj(
            {"type": Str(enum=("payment_intent", "payment_record")), "payment_intent": Str(), "payment_record": Str()},
            required=frozenset({"type"}),
        ),
        "status": Str(enum=("canceled", "open", "paid")),
        **unsupported("created"),
    }
)

# --- payment intents ------------------------------------------------------------------------------

PAYMENT_INTENT_RETRIEVE = Obj({"client_secret": Str(), "expand": EXPAND})

# --- events ---------------------------------------------------------------------------------------

EVENT_LIST = Obj(
    {
        **_LIST_COMMON,
        "type": Str(),
        "types": Arr(Str(), max_items=20),
        **unsupported("created", "delivery_success"),
    }
)
