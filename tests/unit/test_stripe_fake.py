"""The Stripe fake, exercised through a real stripe.StripeClient (in-process HTTP, no sockets)."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import stripe

from tests.stripe_fake import (
    API_VERSION,
    TEST_API_KEY,
    CardDeclined,
    FakeStripe,
    FakeStripeError,
    FakeStripeHTTPClient,
    make_stripe_client,
)
from tests.support.clock import ManualClock
from tests.support.flows import pay_in_checkout

# 2026-01-31 00:00:00 UTC: one month later is Feb 28 (Stripe clamps to the month's last day).
START = int(datetime(2026, 1, 31, tzinfo=UTC).timestamp())
FEB_28 = int(datetime(2026, 2, 28, tzinfo=UTC).timestamp())
MAR_31 = int(datetime(2026, 3, 31, tzinfo=UTC).timestamp())
DAY = 86_400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> FakeStripe:
    fake = FakeStripe(clock=clock, seed=1234)
    fake.add_price("price_starter_base", product_name="Starter", unit_amount=2900)
    fake.add_price("price_pro_base", product_name="Pro", unit_amount=7900)
    fake.add_price("price_pro_site", product_name="Pro site", unit_amount=1900)
    fake.add_price("price_pro_yearly", product_name="Pro yearly", unit_amount=79000, interval="year")
    fake.add_price("price_retired", product_name="Legacy", unit_amount=1000, active=False)
    fake.add_price("price_setup_fee", product_name="Setup fee", unit_amount=5000, interval=None)
    fake.add_price("price_pro_eur", product_name="Pro EUR", unit_amount=7500, currency="eur")
    return fake


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return make_stripe_client(fake)


def state_of(fake: FakeStripe) -> str:
    """Everything a rejected request must leave unchanged."""
    return json.dumps(
        {
            "customers": fake.customers,
            "checkout_sessions": fake.checkout_sessions,
            "portal_sessions": fake.portal_sessions,
            "subscriptions": fake.subscriptions,
            "invoices": fake.invoices,
            "prices": fake.prices,
            "events": fake.events,
        },
        sort_keys=True,
    )


def session_params(**overrides: Any) -> Any:
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 2}],
        "success_url": "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/billing",
        "client_reference_id": "org_demo",
        "metadata": {"org_id": "org_demo", "source": "session"},
        "subscription_data": {"metadata": {"org_id": "org_demo"}},
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


NEW_CUSTOMER = {"email": "owner@example.com", "metadata": {"org_id": "org_demo"}}


def new_customer(client: stripe.StripeClient, **params: Any) -> stripe.Customer:
    full: Any = {**NEW_CUSTOMER, **params}
    return client.v1.customers.create(params=full)


def subscribed(fake: FakeStripe, client: stripe.StripeClient, **overrides: Any) -> tuple[str, list[dict[str, Any]]]:
    """A customer who completed Checkout; returns the subscription id and the completion events."""
    return pay_in_checkout(fake, client, session_params(**overrides), customer=NEW_CUSTOMER)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


# An invoice created, finalized (with its PaymentIntent) and paid at once.
PAID_INVOICE = [
    "invoice.created",
    "payment_intent.created",
    "invoice.finalized",
    "payment_intent.succeeded",
    "invoice_payment.paid",
    "invoice.paid",
    "invoice.payment_succeeded",
]
# An invoice with nothing due: no PaymentIntent, paid at finalization.
FREE_INVOICE = ["invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]


# --- authentication, API version, HTTP surface -------------------------------------------------


def test_wrong_api_key_is_an_authentication_error_and_changes_nothing(fake: FakeStripe) -> None:
    before = state_of(fake)
    bad = make_stripe_client(fake, api_key="sk_test_wrong_key_1234")
    with pytest.raises(stripe.AuthenticationError) as raised:
        bad.v1.customers.create(params={"email": "a@example.com"})
    assert raised.value.http_status == 401
    message = raised.value.user_message or ""
    assert message.startswith("Invalid API Key provided: sk_test_")
    assert message.endswith("1234")
    assert "wrong_key" not in message
    assert state_of(fake) == before
    assert [r.status for r in fake.requests] == [401]


def test_missing_authorization_header_is_401(fake: FakeStripe) -> None:
    status, _, body = fake.handle("GET", "/v1/subscriptions", "", b"", {})
    assert status == 401
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_bearer_and_basic_auth_are_accepted(fake: FakeStripe) -> None:
    import base64

    basic = base64.b64encode(f"{TEST_API_KEY}:".encode()).decode()
    assert fake.handle("GET", "/v1/subscriptions", "", b"", {"Authorization": f"Basic {basic}"})[0] == 200
    assert fake.handle("GET", "/v1/subscriptions", "", b"", {"Authorization": f"Bearer {TEST_API_KEY}"})[0] == 200


def test_other_api_keys_can_be_configured(clock: ManualClock) -> None:
    fake = FakeStripe(api_keys=["sk_test_other"], clock=clock)
    assert make_stripe_client(fake, api_key="sk_test_other").v1.customers.create().object == "customer"
    with pytest.raises(stripe.AuthenticationError):
        make_stripe_client(fake).v1.customers.create()


def test_only_the_endive_api_version_is_spoken(fake: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.create(params={"email": "a@example.com"}, options={"stripe_version": "2025-03-31.basil"})
    assert raised.value.http_status == 400
    assert fake.customers == {}
    # Without the header the account default (endive) applies.
    auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
    assert fake.handle("POST", "/v1/customers", "", b"email=a%40example.com", auth)[0] == 200


def test_response_headers(fake: FakeStripe) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}", "Idempotency-Key": "key-1", "Stripe-Version": API_VERSION}
    status, response_headers, body = fake.handle("POST", "/v1/customers", "", b"name=Ada", headers)
    assert status == 200
    assert response_headers["request-id"].startswith("req_")
    assert response_headers["stripe-version"] == API_VERSION
    assert response_headers["idempotency-key"] == "key-1"
    assert json.loads(body)["name"] == "Ada"


def test_unrecognized_url_is_404(fake: FakeStripe) -> None:
    status, _, body = fake.handle("GET", "/v1/charges", "", b"", {"Authorization": f"Bearer {TEST_API_KEY}"})
    assert status == 404
    assert "Unrecognized request URL (GET: /v1/charges)" in json.loads(body)["error"]["message"]


def test_requests_are_recorded_with_decoded_nested_params(fake: FakeStripe, client: stripe.StripeClient) -> None:
    client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "checkout-1"})
    [request] = fake.requests
    assert (request.method, request.path, request.status, request.idempotency_key) == (
        "POST",
        "/v1/checkout/sessions",
        200,
        "checkout-1",
    )
    assert request.params["line_items"] == [
        {"price": "price_pro_base", "quantity": "1"},
        {"price": "price_pro_site", "quantity": "2"},
    ]
    assert request.params["subscription_data"] == {"metadata": {"org_id": "org_demo"}}
    fake.reset_requests()
    assert fake.requests == []


def test_form_decoding_accepts_empty_bracket_arrays(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
    status, _, body = fake.handle("GET", f"/v1/customers/{customer.id}", "expand[]=test_clock", b"", auth)
    assert status == 200
    assert json.loads(body)["id"] == customer.id


# --- customers -----------------------------------------------------------------------------------


def test_create_and_retrieve_customer(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        params={
            "email": "owner@example.com",
            "name": "Org Demo",
            "description": "tenant",
            "phone": "+15555550100",
            "preferred_locales": ["en", "fr"],
            "metadata": {"org_id": "org_demo"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.created == START
    assert customer.livemode is False
    assert customer["metadata"].to_dict() == {"org_id": "org_demo"}
    assert customer.preferred_locales == ["en", "fr"]
    again = client.v1.customers.retrieve(customer.id)
    assert again.to_dict() == customer.to_dict()
    assert types(fake.events) == ["customer.created"]
    assert fake.events[0]["request"]["id"] == fake.requests[0].request_id


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        pytest.param({"emial": "a@example.com"}, "parameter_unknown", "emial", id="unknown"),
        pytest.param({"email": "not-an-email"}, "email_invalid", "email", id="email"),
        pytest.param({"name": "n" * 257}, "string_length_exceeds_maximum", "name", id="name-length"),
        pytest.param({"phone": "1" * 21}, "string_length_exceeds_maximum", "phone", id="phone-length"),
        pytest.param({"metadata": {f"k{n}": "v" for n in range(51)}}, None, "metadata", id="metadata-51-keys"),
        pytest.param({"metadata": {"k" * 41: "v"}}, None, f"metadata[{'k' * 41}]", id="metadata-key-length"),
        pytest.param({"metadata": {"k": "v" * 501}}, None, "metadata[k]", id="metadata-value-length"),
        pytest.param({"metadata": {"a[b": "v"}}, None, "metadata", id="metadata-key-bracket"),
        pytest.param({"metadata": {"a": {"b": "c"}}}, None, "metadata[a]", id="metadata-nested"),
        pytest.param({"metadata": "x"}, None, "metadata", id="metadata-not-hash"),
        pytest.param({"preferred_locales": "en"}, None, "preferred_locales", id="array-not-array"),
        pytest.param({"address": {"country": "US"}}, "parameter_unsupported_by_fake", "address", id="real-unsupported"),
        pytest.param({"expand": ["subscriptions_x"]}, None, None, id="expand-unknown"),
    ],
)
def test_customer_create_rejections(
    fake: FakeStripe, client: stripe.StripeClient, params: Any, code: str | None, param: str | None
) -> None:
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.create(params=params)
    assert raised.value.http_status == 400
    assert raised.value.code == code
    assert raised.value.param == param
    assert state_of(fake) == before


def test_metadata_key_with_closing_bracket_is_rejected(fake: FakeStripe) -> None:
    auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
    status, _, body = fake.handle("POST", "/v1/customers", "", b"metadata[a]b]=v", auth)
    assert status == 400
    assert "'[' or ']'" in json.loads(body)["error"]["message"]
    assert fake.customers == {}


def test_retrieve_missing_customer_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.retrieve("cus_missing")
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (404, "resource_missing", "id")
    assert "No such customer: 'cus_missing'" in str(raised.value)


def test_update_customer_metadata_and_previous_attributes(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"metadata": {"a": "1", "b": "2"}})
    updated = client.v1.customers.update(customer.id, params={"metadata": {"a": "", "c": "3"}, "name": "New"})
    assert updated["metadata"].to_dict() == {"b": "2", "c": "3"}
    event = fake.events[-1]
    assert event["type"] == "customer.updated"
    assert event["data"]["previous_attributes"] == {"metadata": {"a": "1", "c": None}, "name": None}
    cleared = client.v1.customers.update(customer.id, params={"metadata": ""})
    assert cleared["metadata"].to_dict() == {}


def test_deleted_customer(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client)
    customer_id = fake.subscriptions[subscription_id]["customer"]
    deleted = client.v1.customers.delete(customer_id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(customer_id).to_dict() == {"id": customer_id, "object": "customer", "deleted": True}
    assert fake.subscriptions[subscription_id]["status"] == "canceled"
    assert types(fake.events)[-2:] == ["customer.subscription.deleted", "customer.deleted"]
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(customer=customer_id))
    assert (raised.value.code, raised.value.param) == ("resource_missing", "customer")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing_portal.sessions.create(params={"customer": customer_id})
    assert state_of(fake) == before


# --- checkout sessions ---------------------------------------------------------------------------


def test_create_checkout_session_shape(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    session = client.v1.checkout.sessions.create(params=session_params(customer=customer.id, allow_promotion_codes=True))
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"https://checkout.stripe.com/c/pay/{session.id}"
    assert (session.status, session.payment_status, session.mode, session.ui_mode) == (
        "open",
        "unpaid",
        "subscription",
        "hosted_page",
    )
    assert session.customer == customer.id
    assert session.client_reference_id == "org_demo"
    assert session["metadata"].to_dict() == {"org_id": "org_demo", "source": "session"}
    assert session.subscription is None
    assert session.created == START
    assert session.expires_at == START + DAY
    assert session.success_url == "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
    assert session.cancel_url == "https://app.example.com/billing"
    assert session.livemode is False
    assert session.allow_promotion_codes is True
    assert (session.currency, session.amount_total) == ("usd", 7900 + 2 * 1900)
    assert session.to_dict() == fake.checkout_sessions[session.id]
    assert "line_items" not in session
    fetched = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items", "customer"]})
    assert [(item["price"]["id"], item["quantity"]) for item in fetched["line_items"]["data"]] == [
        ("price_pro_base", 1),
        ("price_pro_site", 2),
    ]
    assert fetched["customer"]["email"] == "owner@example.com"
    listed = client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 1})
    assert [item["price"]["id"] for item in listed.data] == ["price_pro_base"]
    assert listed.has_more is True


def test_checkout_and_portal_url_bases_are_configurable(clock: ManualClock) -> None:
    fake = FakeStripe(
        clock=clock, checkout_url_base="http://localhost:12111/checkout/", portal_url_base="http://localhost:12111/portal/"
    )
    fake.add_price("price_a", product_name="A", unit_amount=100)
    client = make_stripe_client(fake)
    session = client.v1.checkout.sessions.create(
        params=session_params(line_items=[{"price": "price_a", "quantity": 1}], customer_email="a@example.com")
    )
    assert session.url == f"http://localhost:12111/checkout/{session.id}"
    assert session.customer_email == "a@example.com"
    portal = client.v1.billing_portal.sessions.create(params={"customer": new_customer(client).id})
    assert portal.url.startswith("http://localhost:12111/portal/")


def test_embedded_checkout_has_a_client_secret_and_no_url(client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            ui_mode="embedded_page",
            success_url=None,
            cancel_url=None,
            return_url="https://app.example.com/billing/return?session_id={CHECKOUT_SESSION_ID}",
        )
    )
    assert session.url is None
    assert str(session.client_secret).startswith(f"{session.id}_secret_")


BAD_CHECKOUT_PARAMS = [
    pytest.param({"payment_method_types": ["card"]}, "parameter_unknown", "payment_method_types", id="payment_method_types"),
    pytest.param(
        {"subscription_data": {"metadata": {"a": "b"}, "foo": "x"}},
        "parameter_unknown",
        "subscription_data[foo]",
        id="nested-unknown",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": 1, "qty": 2}]},
        "parameter_unknown",
        "line_items[0][qty]",
        id="line-unknown",
    ),
    pytest.param({"mode": None}, "parameter_missing", "mode", id="mode-missing"),
    pytest.param({"mode": "subscriptions"}, None, "mode", id="mode-enum"),
    pytest.param({"mode": "payment"}, "parameter_unsupported_by_fake", "mode", id="mode-payment"),
    pytest.param({"line_items": None}, "parameter_missing", "line_items", id="line-items-missing"),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": "one"}]},
        "parameter_invalid_integer",
        "line_items[0][quantity]",
        id="quantity-not-int",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": "1.5"}]},
        "parameter_invalid_integer",
        "line_items[0][quantity]",
        id="quantity-float",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": 0}]},
        "parameter_invalid_integer",
        "line_items[0][quantity]",
        id="quantity-zero",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base"}]}, "parameter_missing", "line_items[0][quantity]", id="quantity-missing"
    ),
    pytest.param({"line_items": [{"quantity": 1}]}, "parameter_missing", "line_items[0][price]", id="price-missing"),
    pytest.param(
        {"line_items": [{"price": "", "quantity": 1}]}, "parameter_invalid_empty", "line_items[0][price]", id="price-empty"
    ),
    pytest.param(
        {"line_items": [{"price": "price_nope", "quantity": 1}]}, "resource_missing", "line_items[0][price]", id="price-unknown"
    ),
    pytest.param({"line_items": [{"price": "price_retired", "quantity": 1}]}, None, "line_items[0][price]", id="price-inactive"),
    pytest.param({"line_items": [{"price": "price_setup_fee", "quantity": 1}]}, None, "line_items", id="price-one-time"),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_eur", "quantity": 1}]},
        None,
        "line_items",
        id="currencies",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_yearly", "quantity": 1}]},
        None,
        "line_items",
        id="intervals",
    ),
    pytest.param(
        {"line_items": [{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_base", "quantity": 2}]},
        None,
        "line_items[1][price]",
        id="duplicate-price",
    ),
    pytest.param(
        {"line_items": [{"price": f"price_{n}", "quantity": 1} for n in range(21)]}, None, "line_items", id="21-line-items"
    ),
    pytest.param({"line_items": "price_pro_base"}, None, "line_items", id="line-items-not-array"),
    pytest.param({"customer": "cus_nope"}, "resource_missing", "customer", id="customer-unknown"),
    pytest.param(
        {"customer": "cus_x", "customer_email": "a@example.com"},
        "parameters_exclusive",
        "customer_email",
        id="customer-xor-email",
    ),
    pytest.param({"customer_email": "nope"}, "email_invalid", "customer_email", id="customer-email"),
    pytest.param({"customer_update": {"address": "auto"}}, None, "customer_update", id="customer-update-without-customer"),
    pytest.param(
        {"client_reference_id": "x" * 201}, "string_length_exceeds_maximum", "client_reference_id", id="client-reference-length"
    ),
    pytest.param(
        {"subscription_data": {"trial_period_days": 0}},
        "parameter_invalid_integer",
        "subscription_data[trial_period_days]",
        id="trial-zero",
    ),
    pytest.param(
        {"subscription_data": {"trial_period_days": "7d"}},
        "parameter_invalid_integer",
        "subscription_data[trial_period_days]",
        id="trial-not-int",
    ),
    pytest.param(
        {"subscription_data": {"trial_period_days": 7, "trial_end": START + 10 * DAY}},
        "parameters_exclusive",
        "subscription_data[trial_period_days]",
        id="trial-exclusive",
    ),
    pytest.param({"success_url": "app.example.com/success"}, "url_invalid", "success_url", id="success-url"),
    pytest.param({"cancel_url": "ftp://example.com/cancel"}, "url_invalid", "cancel_url", id="cancel-url"),
    pytest.param({"success_url": None}, "parameter_missing", "success_url", id="success-url-missing"),
    pytest.param({"allow_promotion_codes": "yes"}, None, "allow_promotion_codes", id="bool-yes"),
    pytest.param({"allow_promotion_codes": "True"}, None, "allow_promotion_codes", id="bool-capitalized"),
    pytest.param({"automatic_tax": {"enabled": "1"}}, None, "automatic_tax[enabled]", id="bool-one"),
    pytest.param(
        {"automatic_tax": {"liability": {"type": "self"}}},
        "parameter_unsupported_by_fake",
        "automatic_tax[liability]",
        id="automatic-tax-liability",
    ),
    pytest.param(
        {"allow_promotion_codes": True, "discounts": [{"coupon": "SAVE"}]},
        "parameters_exclusive",
        "discounts",
        id="discounts-and-promotion-codes",
    ),
    pytest.param({"discounts": [{"coupon": "SAVE"}]}, "resource_missing", "discounts[0][coupon]", id="coupon-unknown"),
    pytest.param({"ui_mode": "hosted"}, None, "ui_mode", id="ui-mode-pre-dahlia"),
    pytest.param({"ui_mode": "embedded_page"}, None, "success_url", id="embedded-success-url"),
    pytest.param(
        {"ui_mode": "embedded_page", "success_url": None, "cancel_url": None},
        "parameter_missing",
        "return_url",
        id="embedded-return-url",
    ),
    pytest.param({"return_url": "https://app.example.com/r"}, None, "return_url", id="hosted-return-url"),
    pytest.param({"locale": "xx"}, None, "locale", id="locale"),
    pytest.param({"billing_address_collection": "always"}, None, "billing_address_collection", id="billing-address-enum"),
    pytest.param({"customer_creation": "always"}, None, "customer_creation", id="customer-creation-payment-only"),
    pytest.param({"metadata": {f"k{n}": "v" for n in range(51)}}, None, "metadata", id="metadata-keys"),
    pytest.param(
        {"subscription_data": {"metadata": {"k": "v" * 501}}}, None, "subscription_data[metadata][k]", id="sub-metadata-value"
    ),
    pytest.param({"expires_at": START + 2 * DAY}, None, "expires_at", id="expires-at-too-late"),
    pytest.param({"expires_at": START + 60}, None, "expires_at", id="expires-at-too-soon"),
    pytest.param({"expand": ["subscriptions"]}, None, None, id="expand-unknown"),
    pytest.param(
        {"invoice_creation": {"enabled": True}}, "parameter_unsupported_by_fake", "invoice_creation", id="invoice-creation"
    ),
]


@pytest.mark.parametrize(("overrides", "code", "param"), BAD_CHECKOUT_PARAMS)
def test_checkout_session_rejections(
    fake: FakeStripe, client: stripe.StripeClient, overrides: Any, code: str | None, param: str | None
) -> None:
    if overrides.get("customer") == "cus_x":
        overrides = {**overrides, "customer": new_customer(client).id}
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(**overrides))
    assert raised.value.http_status == 400
    assert (raised.value.code, raised.value.param) == (code, param), raised.value.user_message
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert state_of(fake) == before


def test_automatic_tax_needs_an_address_source_for_existing_customers(client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(customer=customer.id, automatic_tax={"enabled": True}))
    assert raised.value.param == "automatic_tax[enabled]"
    session = client.v1.checkout.sessions.create(
        params=session_params(
            customer=customer.id, automatic_tax={"enabled": True}, customer_update={"address": "auto", "name": "auto"}
        )
    )
    assert session.automatic_tax.enabled is True


def test_checkout_accepts_the_supported_options(client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            customer_email="owner@example.com",
            locale="fr",
            billing_address_collection="required",
            expires_at=START + 3600,
            tax_id_collection={"enabled": True},
            payment_method_collection="if_required",
            subscription_data={"metadata": {"org_id": "org_demo"}, "trial_period_days": 14, "description": "Pro"},
            expand=["line_items"],
        )
    )
    assert (session.locale, session.billing_address_collection, session.expires_at) == ("fr", "required", START + 3600)
    assert session.amount_total == 0  # trial: nothing due today
    assert len(session["line_items"]["data"]) == 2


def test_checkout_session_expires_after_24_hours(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    clock.advance(DAY - 1)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    clock.advance(1)
    expired = client.v1.checkout.sessions.retrieve(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert types(fake.events) == ["checkout.session.expired"]
    assert fake.events[0]["request"] == {"id": None, "idempotency_key": None}
    with pytest.raises(FakeStripeError, match="expired"):
        fake.complete_checkout(session.id)
    assert fake.subscriptions == {}


def test_expire_checkout_session_endpoint(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    assert client.v1.checkout.sessions.expire(session.id).status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert types(fake.events) == ["checkout.session.expired"]


def test_list_checkout_sessions_by_customer_and_status(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    other = new_customer(client)
    first = client.v1.checkout.sessions.create(params=session_params(customer=customer.id))
    second = client.v1.checkout.sessions.create(params=session_params(customer=customer.id))
    client.v1.checkout.sessions.create(params=session_params(customer=other.id))
    client.v1.checkout.sessions.expire(first.id)
    listed = client.v1.checkout.sessions.list(params={"customer": customer.id, "status": "open"})
    assert [session.id for session in listed.data] == [second.id]
    everything = client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert [session.id for session in everything.data] == [second.id, first.id]  # newest first
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.list(params=cast(Any, {"status": "paid"}))


def test_retrieve_missing_checkout_session_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


# --- billing portal ------------------------------------------------------------------------------


def test_create_portal_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://app.example.com/billing", "locale": "de"}
    )
    assert portal.id.startswith("bps_")
    assert portal.object == "billing_portal.session"
    assert portal.url.startswith("https://billing.stripe.com/p/session/test_")
    assert (portal.customer, portal.return_url, portal.locale, portal.livemode) == (
        customer.id,
        "https://app.example.com/billing",
        "de",
        False,
    )
    assert str(portal.configuration).startswith("bpc_")
    assert fake.portal_sessions[portal.id] == portal.to_dict()
    fake.add_portal_configuration("bpc_custom")
    assert (
        client.v1.billing_portal.sessions.create(params={"customer": customer.id, "configuration": "bpc_custom"}).configuration
        == "bpc_custom"
    )


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        pytest.param({}, "parameter_missing", "customer", id="customer-missing"),
        pytest.param({"customer": "cus_nope"}, "resource_missing", "customer", id="customer-unknown"),
        pytest.param({"configuration": "bpc_nope"}, "resource_missing", "configuration", id="configuration-unknown"),
        pytest.param({"return_url": "not a url"}, "url_invalid", "return_url", id="return-url"),
        pytest.param({"locale": "klingon"}, None, "locale", id="locale"),
        pytest.param({"returnurl": "https://x.example"}, "parameter_unknown", "returnurl", id="unknown"),
        pytest.param(
            {"flow_data": {"type": "subscription_cancel", "subscription_cancel": {"subscription": "sub_1"}}},
            "parameter_unsupported_by_fake",
            "flow_data",
            id="flow-data",
        ),
    ],
)
def test_portal_session_rejections(
    fake: FakeStripe, client: stripe.StripeClient, params: Any, code: str | None, param: str
) -> None:
    customer = new_customer(client)
    if "customer" not in params and param != "customer":
        params = {"customer": customer.id, **params}
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.billing_portal.sessions.create(params=params)
    assert (raised.value.code, raised.value.param) == (code, param)
    assert state_of(fake) == before


def test_portal_without_default_configuration(clock: ManualClock) -> None:
    fake = FakeStripe(clock=clock, default_portal_configuration=False)
    client = make_stripe_client(fake)
    customer = new_customer(client)
    with pytest.raises(stripe.InvalidRequestError, match="default configuration has not been created"):
        client.v1.billing_portal.sessions.create(params={"customer": customer.id})
    fake.add_portal_configuration("bpc_1")
    assert client.v1.billing_portal.sessions.create(params={"customer": customer.id, "configuration": "bpc_1"})


# --- idempotency ---------------------------------------------------------------------------------


def test_idempotent_replay(fake: FakeStripe, client: stripe.StripeClient) -> None:
    params: Any = {"email": "owner@example.com", "metadata": {"org_id": "org_demo"}}
    first = client.v1.customers.create(params=params, options={"idempotency_key": "create-org_demo"})
    second = client.v1.customers.create(params=params, options={"idempotency_key": "create-org_demo"})
    assert second.to_dict() == first.to_dict()
    assert len(fake.customers) == 1
    assert len(fake.events) == 1
    assert [(r.status, r.replayed) for r in fake.requests] == [(200, False), (200, True)]
    auth = {"Authorization": f"Bearer {TEST_API_KEY}", "Idempotency-Key": "create-org_demo"}
    body = b"email=owner%40example.com&metadata[org_id]=org_demo"
    status, headers, payload = fake.handle("POST", "/v1/customers", "", body, auth)
    assert (status, headers["idempotent-replayed"]) == (200, "true")
    assert json.loads(payload)["id"] == first.id


def test_idempotency_key_with_other_parameters_is_an_idempotency_error(fake: FakeStripe, client: stripe.StripeClient) -> None:
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    before = state_of(fake)
    with pytest.raises(stripe.IdempotencyError) as raised:
        client.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "k"})
    assert raised.value.http_status == 400
    assert (raised.value.user_message or "").startswith(
        "Keys for idempotent requests can only be used with the same parameters they were first used with"
    )
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "k"})
    assert state_of(fake) == before


def test_idempotency_keys_expire_after_24_hours(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    first = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    clock.advance(DAY - 1)
    assert client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"}).id == first.id
    clock.advance(1)
    later = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    assert later.id != first.id
    assert len(fake.customers) == 2


def test_validation_errors_are_not_saved_for_the_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"email": "broken"}, options={"idempotency_key": "k"})
    fixed = client.v1.customers.create(params={"email": "ok@example.com"}, options={"idempotency_key": "k"})
    assert fixed.email == "ok@example.com"


def test_errors_after_execution_began_are_replayed(fake: FakeStripe, client: stripe.StripeClient) -> None:
    params = session_params(customer="cus_later")
    with pytest.raises(stripe.InvalidRequestError) as first:
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k"})
    with pytest.raises(stripe.InvalidRequestError) as second:
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k"})
    assert second.value.json_body == first.value.json_body
    assert fake.requests[-1].replayed is True


def test_concurrent_requests_are_serialized(fake: FakeStripe, client: stripe.StripeClient) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def create(key: str) -> None:
        try:
            customer = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": key})
            results.append(customer.id)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=create, args=("same",)) for _ in range(8)]
    threads += [threading.Thread(target=create, args=(f"own-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 16
    assert len(fake.customers) == 9  # one for the shared key, eight for the others
    assert len(fake.requests) == 16


# --- faults and retries --------------------------------------------------------------------------


def test_500_is_retried_with_the_same_idempotency_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(1, status=500)
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    assert customer.email == "a@example.com"
    assert [(r.status, r.fault) for r in fake.requests] == [(500, "status_500"), (200, None)]
    assert fake.requests[0].idempotency_key == fake.requests[1].idempotency_key is not None
    assert len(fake.customers) == 1


def test_persistent_500_raises_api_error_and_changes_nothing(fake: FakeStripe, client: stripe.StripeClient) -> None:
    before = state_of(fake)
    fake.fail_next(3, status=500)
    with pytest.raises(stripe.APIError) as raised:
        client.v1.checkout.sessions.create(params=session_params())
    assert raised.value.http_status == 500
    assert raised.value.json_body["error"]["type"] == "api_error"  # type: ignore[index]
    assert len(fake.requests) == 3
    assert state_of(fake) == before


def test_no_retries_without_max_network_retries(fake: FakeStripe) -> None:
    client = make_stripe_client(fake, max_network_retries=0)
    fake.fail_next(1, status=503)
    with pytest.raises(stripe.APIError):
        client.v1.customers.create()
    assert client.v1.customers.create().object == "customer"
    assert [r.status for r in fake.requests] == [503, 200]


def test_connection_error_is_retried(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(1, connection_error=True)
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    assert customer.object == "customer"
    assert [(r.status, r.fault) for r in fake.requests] == [(None, "connection_error"), (200, None)]


def test_connection_error_without_retries_raises_and_changes_nothing(fake: FakeStripe) -> None:
    client = make_stripe_client(fake, max_network_retries=0)
    before = state_of(fake)
    fake.fail_next(1, connection_error=True)
    with pytest.raises(stripe.APIConnectionError) as raised:
        client.v1.customers.create(params={"email": "a@example.com"})
    assert raised.value.should_retry is True
    assert state_of(fake) == before


def test_lost_response_is_recovered_by_the_idempotent_retry(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(1, lose_response=True)
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    assert list(fake.customers) == [customer.id]
    assert [(r.status, r.fault, r.replayed) for r in fake.requests] == [(200, "response_lost", False), (200, None, True)]


def test_rate_limit(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(1, status=429)
    with pytest.raises(stripe.RateLimitError) as raised:
        client.v1.customers.create()
    assert raised.value.json_body["error"]["code"] == "rate_limit"  # type: ignore[index]
    assert len(fake.requests) == 1  # a 429 without Stripe-Should-Retry is not retried
    fake.fail_next(1, status=429, should_retry=True)
    assert client.v1.customers.create().object == "customer"
    assert [r.status for r in fake.requests] == [429, 429, 200]
    assert fake.customers


def test_should_retry_false_stops_retries_and_409_is_retried(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(1, status=500, should_retry=False)
    with pytest.raises(stripe.APIError) as raised:
        client.v1.customers.create()
    assert (raised.value.headers or {})["stripe-should-retry"] == "false"
    fake.fail_next(1, status=409)
    assert client.v1.customers.create().object == "customer"
    assert [r.status for r in fake.requests] == [500, 409, 200]


def test_faults_can_target_a_path(fake: FakeStripe, client: stripe.StripeClient) -> None:
    client_without_retries = make_stripe_client(fake, max_network_retries=0)
    fake.fail_next(1, status=500, path_prefix="/v1/checkout/")
    customer = client_without_retries.v1.customers.create()
    with pytest.raises(stripe.APIError):
        client_without_retries.v1.checkout.sessions.create(params=session_params(customer=customer.id))
    assert client_without_retries.v1.checkout.sessions.create(params=session_params(customer=customer.id))


def test_sleeping_client_uses_real_backoff(fake: FakeStripe) -> None:
    assert FakeStripeHTTPClient(fake)._sleep_time_seconds(1) == 0
    assert FakeStripeHTTPClient(fake, sleep=True)._sleep_time_seconds(1) >= 0.5


def test_async_client_calls(fake: FakeStripe, client: stripe.StripeClient) -> None:
    async def run() -> str:
        fake.fail_next(1, connection_error=True)
        customer = await client.v1.customers.create_async(params={"email": "a@example.com"})
        return customer.id

    assert asyncio.run(run()) in fake.customers


# --- lifecycle -----------------------------------------------------------------------------------


def test_complete_checkout_creates_a_paid_subscription(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    session = client.v1.checkout.sessions.create(params=session_params(customer=customer.id))
    events = fake.complete_checkout(session.id)
    assert types(events) == ["customer.subscription.created", *PAID_INVOICE, "checkout.session.completed"]
    assert fake.events[-9:] == events
    for event in events:
        assert event["id"].startswith("evt_")
        assert (event["object"], event["api_version"], event["livemode"], event["pending_webhooks"]) == (
            "event",
            API_VERSION,
            False,
            1,
        )
        assert event["request"] == {"id": None, "idempotency_key": None}
        assert event["created"] == START

    subscription = events[0]["data"]["object"]
    assert subscription["object"] == "subscription"
    assert subscription["id"].startswith("sub_")
    assert (subscription["status"], subscription["customer"], subscription["currency"]) == ("active", customer.id, "usd")
    assert "current_period_start" not in subscription
    assert "current_period_end" not in subscription
    assert subscription["metadata"] == {"org_id": "org_demo"}  # from subscription_data only, not session metadata
    assert (subscription["collection_method"], subscription["pause_collection"], subscription["cancel_at_period_end"]) == (
        "charge_automatically",
        None,
        False,
    )
    items = subscription["items"]["data"]
    assert [(i["price"]["id"], i["quantity"]) for i in items] == [("price_pro_base", 1), ("price_pro_site", 2)]
    for item in items:
        assert item["id"].startswith("si_")
        assert item["object"] == "subscription_item"
        assert item["subscription"] == subscription["id"]
        assert (item["current_period_start"], item["current_period_end"]) == (START, FEB_28)
        assert item["price"]["recurring"]["interval"] == "month"

    created, finalized, paid, succeeded = (events[n]["data"]["object"] for n in (1, 3, 6, 7))
    assert (created["status"], finalized["status"], paid["status"]) == ("draft", "open", "paid")
    assert created["number"] is None
    assert finalized["number"].endswith("-0001")
    assert paid == succeeded
    assert subscription["latest_invoice"] == paid["id"]
    assert paid["billing_reason"] == "subscription_create"
    assert (paid["amount_due"], paid["amount_paid"], paid["amount_remaining"]) == (11700, 11700, 0)
    assert paid["parent"] == {
        "type": "subscription_details",
        "subscription_details": {"subscription": subscription["id"], "metadata": {"org_id": "org_demo"}},
        "quote_details": None,
    }
    for removed in ("subscription", "paid", "charge", "payment_intent"):
        assert removed not in paid
    for includable in ("payments", "confirmation_secret"):  # only when expanded
        assert includable not in paid
    intent = events[2]["data"]["object"]
    assert (intent["object"], intent["status"], intent["amount"]) == ("payment_intent", "requires_payment_method", 11700)
    assert events[4]["data"]["object"]["status"] == "succeeded"
    invoice_payment = events[5]["data"]["object"]
    assert (invoice_payment["invoice"], invoice_payment["status"], invoice_payment["amount_paid"]) == (paid["id"], "paid", 11700)
    assert invoice_payment["payment"] == {"type": "payment_intent", "payment_intent": intent["id"]}
    assert [line["parent"]["subscription_item_details"]["subscription_item"] for line in paid["lines"]["data"]] == [
        i["id"] for i in items
    ]
    assert paid["lines"]["data"][0]["period"] == {"start": START, "end": FEB_28}

    completed = events[-1]["data"]["object"]
    assert (completed["status"], completed["payment_status"], completed["subscription"]) == (
        "complete",
        "paid",
        subscription["id"],
    )
    assert completed["metadata"] == {"org_id": "org_demo", "source": "session"}
    assert completed["client_reference_id"] == "org_demo"

    # The API shows the same state.
    fetched = client.v1.subscriptions.retrieve(subscription["id"], params={"expand": ["latest_invoice", "customer"]})
    assert fetched["latest_invoice"]["status"] == "paid"
    assert fetched["customer"]["id"] == customer.id
    assert fetched["items"].data[0].current_period_end == FEB_28
    session_now = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert session_now["subscription"]["id"] == subscription["id"]
    invoices = client.v1.invoices.list(params={"subscription": subscription["id"]})
    assert [invoice.id for invoice in invoices.data] == [paid["id"]]
    assert invoices.url == "/v1/invoices"
    with pytest.raises(FakeStripeError, match="already complete"):
        fake.complete_checkout(session.id)


def test_complete_checkout_with_customer_email_creates_the_customer_first(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(customer_email="new@example.com"))
    events = fake.complete_checkout(session.id, name="Ada")
    assert types(events)[:2] == ["customer.created", "customer.subscription.created"]
    customer = events[0]["data"]["object"]
    assert (customer["email"], customer["name"]) == ("new@example.com", "Ada")
    assert events[-1]["data"]["object"]["customer"] == customer["id"]
    assert fake.subscriptions[events[1]["data"]["object"]["id"]]["customer"] == customer["id"]


def test_yearly_subscription_period(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client, line_items=[{"price": "price_pro_yearly", "quantity": 1}])
    item = fake.subscriptions[subscription_id]["items"]["data"][0]
    assert item["current_period_end"] == int(datetime(2027, 1, 31, tzinfo=UTC).timestamp())


def test_trial_subscription(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, events = subscribed(
        fake, client, subscription_data={"trial_period_days": 14, "metadata": {"org_id": "org_demo"}}
    )
    subscription = fake.subscriptions[subscription_id]
    assert subscription["status"] == "trialing"
    assert (subscription["trial_start"], subscription["trial_end"]) == (START, START + 14 * DAY)
    assert subscription["items"]["data"][0]["current_period_end"] == START + 14 * DAY
    assert types(events) == ["customer.subscription.created", *FREE_INVOICE, "checkout.session.completed"]
    invoice = events[-2]["data"]["object"]
    assert (invoice["amount_due"], invoice["status"]) == (0, "paid")
    expanded: Any = client.v1.invoices.retrieve(invoice["id"], params={"expand": ["payments"]})
    assert expanded.payments.data == []
    assert events[-1]["data"]["object"]["payment_status"] == "no_payment_required"
    assert types(fake.trial_will_end(subscription_id)) == ["customer.subscription.trial_will_end"]
    renewal = fake.renew_subscription(subscription_id)
    assert types(renewal) == ["customer.subscription.updated", *PAID_INVOICE]
    assert renewal[0]["data"]["previous_attributes"]["status"] == "trialing"
    assert renewal[-1]["data"]["object"]["amount_paid"] == 11700


@pytest.mark.parametrize("card", ["4000000000000002", "4000 0000 0000 9995", "1234123412341234"])
def test_declined_card_changes_nothing(fake: FakeStripe, client: stripe.StripeClient, card: str) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(customer_email="a@example.com"))
    before = state_of(fake)
    with pytest.raises(CardDeclined):
        fake.complete_checkout(session.id, card_number=card)
    assert state_of(fake) == before
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert types(fake.complete_checkout(session.id))[-1] == "checkout.session.completed"


def test_update_subscription_emits_previous_attributes(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client)
    before = copy.deepcopy(fake.subscriptions[subscription_id])
    [event] = fake.update_subscription(
        subscription_id, items=[{"price": "price_pro_base", "quantity": 1}, {"price": "price_pro_site", "quantity": 5}]
    )
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["previous_attributes"] == {"items": before["items"]}
    items = event["data"]["object"]["items"]["data"]
    assert [i["quantity"] for i in items] == [1, 5]
    assert [i["id"] for i in items] == [i["id"] for i in before["items"]["data"]]

    [cancel] = fake.update_subscription(subscription_id, cancel_at_period_end=True)
    assert cancel["data"]["previous_attributes"] == {
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"reason": None},
    }
    assert cancel["data"]["object"]["cancel_at"] == FEB_28
    assert fake.update_subscription(subscription_id, cancel_at_period_end=True) == []  # nothing changed
    ended = fake.renew_subscription(subscription_id)
    assert types(ended) == ["customer.subscription.deleted"]
    assert ended[0]["data"]["object"]["ended_at"] == FEB_28

    with pytest.raises(FakeStripeError):
        fake.update_subscription(subscription_id, items=[{"price": "price_starter_base", "quantity": 1}])


def test_switching_plans_replaces_items(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client)
    [event] = fake.update_subscription(subscription_id, items=[{"price": "price_starter_base", "quantity": 1}])
    assert [i["price"]["id"] for i in event["data"]["object"]["items"]["data"]] == ["price_starter_base"]
    with pytest.raises(FakeStripeError, match="currency"):
        fake.update_subscription(subscription_id, items=[{"price": "price_pro_eur", "quantity": 1}])


def test_api_subscription_update(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, _ = subscribed(fake, client)
    site_item = fake.subscriptions[subscription_id]["items"]["data"][1]["id"]
    clock.advance(14 * DAY)
    updated = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": site_item, "quantity": 4}],
            "proration_behavior": "always_invoice",
            "metadata": {"plan": "pro"},
        },
        options={"idempotency_key": "upgrade-1"},
    )
    assert updated["items"].data[1].quantity == 4
    assert updated.metadata.to_dict() == {"org_id": "org_demo", "plan": "pro"}
    new_events = fake.events[-8:]
    assert types(new_events) == ["customer.subscription.updated", *PAID_INVOICE]
    assert new_events[0]["request"] == {"id": fake.requests[-1].request_id, "idempotency_key": "upgrade-1"}
    previous = new_events[0]["data"]["previous_attributes"]
    assert set(previous) == {"items", "latest_invoice", "metadata"}
    assert previous["metadata"] == {"plan": None}
    invoice = new_events[-1]["data"]["object"]
    assert invoice["billing_reason"] == "subscription_update"
    assert 0 < invoice["amount_paid"] < 2 * 1900
    assert all(line["parent"]["subscription_item_details"]["proration"] for line in invoice["lines"]["data"])

    # Adding an item and deleting one.
    added = client.v1.subscriptions.update(
        subscription_id, params={"items": [{"id": site_item, "deleted": True}, {"price": "price_starter_base"}]}
    )
    assert [(i.price.id, i.quantity) for i in added["items"].data] == [("price_pro_base", 1), ("price_starter_base", 1)]
    assert added["items"].data[1].current_period_end == FEB_28


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        pytest.param({"items": [{"id": "si_nope", "quantity": 2}]}, "resource_missing", "items[0][id]", id="item-unknown"),
        pytest.param({"items": [{"id": "si_x", "qty": 2}]}, "parameter_unknown", "items[0][qty]", id="item-param"),
        pytest.param(
            {"items": [{"id": "si_x", "quantity": -1}]}, "parameter_invalid_integer", "items[0][quantity]", id="quantity"
        ),
        pytest.param({"items": [{"quantity": 2}]}, "parameter_missing", "items[0][price]", id="price-missing"),
        pytest.param({"items": [{"price": "price_pro_base"}]}, None, "items", id="duplicate-price"),
        pytest.param({"items": [{"price": "price_retired"}]}, None, "items[0][price]", id="inactive-price"),
        pytest.param({"items": [{"price": "price_pro_yearly"}]}, None, "items", id="mixed-intervals"),
        pytest.param({"items": [{"price": "price_setup_fee"}]}, None, "items[0][price]", id="one-time-price"),
        pytest.param({"cancel_at_period_end": "maybe"}, None, "cancel_at_period_end", id="bool"),
        pytest.param(
            {"cancel_at_period_end": True, "cancel_at": START + DAY}, "parameters_exclusive", "cancel_at", id="cancel-both"
        ),
        pytest.param({"proration_behavior": "sometimes"}, None, "proration_behavior", id="proration-enum"),
        pytest.param({"trial_end": "now"}, "parameter_unsupported_by_fake", "trial_end", id="unsupported"),
        pytest.param({"current_period_end": START}, "parameter_unknown", "current_period_end", id="basil-removed-field"),
    ],
)
def test_api_subscription_update_rejections(
    fake: FakeStripe, client: stripe.StripeClient, params: Any, code: str | None, param: str
) -> None:
    subscription_id, _ = subscribed(fake, client)
    for item in params.get("items", []):
        if item.get("id") == "si_x":
            item["id"] = fake.subscriptions[subscription_id]["items"]["data"][0]["id"]
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(subscription_id, params=params)
    assert (raised.value.code, raised.value.param) == (code, param), raised.value.user_message
    assert state_of(fake) == before


def test_cancel_at_and_cancel_at_period_end(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, _ = subscribed(fake, client)

    def update(**params: Any) -> tuple[bool, int | None, int | None]:
        updated = client.v1.subscriptions.update(subscription_id, params=cast(Any, params))
        return updated.cancel_at_period_end, updated.cancel_at, updated.canceled_at

    # cancel_at_period_end=true also sets cancel_at (the period end); either parameter alone clears both.
    assert update(cancel_at_period_end=True) == (True, FEB_28, START)
    assert update(cancel_at="") == (False, None, None)
    assert update(cancel_at_period_end=True) == (True, FEB_28, START)
    assert update(cancel_at_period_end=False) == (False, None, None)
    # A cancellation at the period end as cancel_at (the Dashboard; the portal in flexible billing mode).
    assert update(cancel_at="max_period_end") == (False, FEB_28, START)
    assert update(cancel_at_period_end=False) == (False, None, None)
    [portal] = fake.update_subscription(subscription_id, cancel_at="max_period_end")
    assert portal["data"]["object"]["cancel_at"] == FEB_28
    assert portal["data"]["object"]["cancel_at_period_end"] is False
    assert fake.update_subscription(subscription_id, cancel_at="")[0]["data"]["object"]["cancel_at"] is None
    # Both in one request are refused, even to clear (Stripe: "Received both ... Please pass in only one.").
    with pytest.raises(stripe.InvalidRequestError, match="Received both cancel_at_period_end and cancel_at") as raised:
        update(cancel_at="", cancel_at_period_end=False)
    assert raised.value.param == "cancel_at"
    # Before the period end Stripe prorates the unused time; the fake only takes that without prorations.
    with pytest.raises(stripe.InvalidRequestError) as unsupported:
        update(cancel_at=START + 10 * DAY)
    assert unsupported.value.code == "parameter_unsupported_by_fake"
    assert update(cancel_at=START + 10 * DAY, proration_behavior="none") == (False, START + 10 * DAY, START)
    with pytest.raises(stripe.InvalidRequestError, match="future"):
        update(cancel_at=START - 1, proration_behavior="none")
    ended = fake.renew_subscription(subscription_id)
    assert types(ended) == ["customer.subscription.deleted"]
    assert ended[0]["data"]["object"]["ended_at"] == START + 10 * DAY


def test_api_cancel_subscription(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client)
    canceled = client.v1.subscriptions.cancel(
        subscription_id, params={"cancellation_details": {"comment": "too pricey", "feedback": "too_expensive"}}
    )
    assert (canceled.status, canceled.canceled_at, canceled.ended_at) == ("canceled", START, START)
    assert canceled["cancellation_details"]["feedback"] == "too_expensive"
    assert types(fake.events)[-1] == "customer.subscription.deleted"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(subscription_id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(subscription_id, params={"cancel_at_period_end": False})
    assert client.v1.subscriptions.update(subscription_id, params={"metadata": {"note": "x"}}).metadata["note"] == "x"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.retrieve("sub_nope")
    assert raised.value.http_status == 404


def test_failed_payment_and_recovery(fake: FakeStripe, client: stripe.StripeClient) -> None:
    subscription_id, _ = subscribed(fake, client)
    failed = fake.fail_payment(subscription_id)
    assert types(failed) == [
        "invoice.created",
        "payment_intent.created",
        "invoice.finalized",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    invoice = failed[4]["data"]["object"]
    assert (invoice["billing_reason"], invoice["status"], invoice["attempt_count"], invoice["amount_remaining"]) == (
        "subscription_cycle",
        "open",
        1,
        11700,
    )
    assert (invoice["period_start"], invoice["period_end"]) == (START, FEB_28)
    assert invoice["lines"]["data"][0]["period"] == {"start": FEB_28, "end": MAR_31}
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription_id
    updated = failed[-1]["data"]
    assert updated["object"]["status"] == "past_due"
    assert updated["previous_attributes"]["status"] == "active"
    assert updated["object"]["items"]["data"][0]["current_period_start"] == FEB_28
    assert failed[3]["data"]["object"]["last_payment_error"]["decline_code"] == "generic_decline"
    assert types(fake.fail_payment(subscription_id)) == ["payment_intent.payment_failed", "invoice.payment_failed"]
    assert fake.invoices[invoice["id"]]["attempt_count"] == 2

    recovered = fake.pay_latest_invoice(subscription_id)
    assert types(recovered) == [
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert recovered[-1]["data"]["previous_attributes"] == {"status": "past_due"}
    assert fake.subscriptions[subscription_id]["status"] == "active"
    with pytest.raises(FakeStripeError):
        fake.pay_latest_invoice(subscription_id)


def test_cancel_pause_resume(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    subscription_id, _ = subscribed(fake, client)
    paused = fake.pause(subscription_id)
    assert types(paused) == ["customer.subscription.paused", "customer.subscription.updated"]
    assert paused[-1]["data"]["previous_attributes"] == {"status": "active"}
    clock.advance(40 * DAY)
    resumed = fake.resume(subscription_id)
    assert types(resumed) == ["customer.subscription.resumed", "customer.subscription.updated"]
    assert resumed[-1]["data"]["object"]["items"]["data"][0]["current_period_start"] == START + 40 * DAY
    [deleted] = fake.cancel_subscription(subscription_id)
    assert deleted["type"] == "customer.subscription.deleted"
    assert (deleted["data"]["object"]["status"], deleted["data"]["object"]["ended_at"]) == ("canceled", START + 40 * DAY)
    assert "previous_attributes" not in deleted["data"]
    with pytest.raises(FakeStripeError):
        fake.cancel_subscription(subscription_id)
    with pytest.raises(FakeStripeError):
        fake.trial_will_end(subscription_id)


def test_subscription_and_invoice_lists(fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock) -> None:
    first_id, _ = subscribed(fake, client)
    customer_id = fake.subscriptions[first_id]["customer"]
    clock.advance(60)
    session = client.v1.checkout.sessions.create(
        params=session_params(customer=customer_id, line_items=[{"price": "price_starter_base", "quantity": 1}])
    )
    second_id = fake.complete_checkout(session.id)[0]["data"]["object"]["id"]
    other_id, _ = subscribed(fake, client)

    listed = client.v1.subscriptions.list(params={"customer": customer_id})
    assert [s.id for s in listed.data] == [second_id, first_id]
    raw_list: Any = listed
    assert (raw_list["object"], listed.has_more, listed.url) == ("list", False, "/v1/subscriptions")
    page = client.v1.subscriptions.list(params={"customer": customer_id, "limit": 1})
    assert ([s.id for s in page.data], page.has_more) == ([second_id], True)
    rest = client.v1.subscriptions.list(params={"customer": customer_id, "limit": 1, "starting_after": second_id})
    assert ([s.id for s in rest.data], rest.has_more) == ([first_id], False)
    assert other_id in [s.id for s in client.v1.subscriptions.list().data]

    fake.cancel_subscription(first_id)
    assert [s.id for s in client.v1.subscriptions.list(params={"customer": customer_id}).data] == [second_id]
    all_statuses = client.v1.subscriptions.list(params={"customer": customer_id, "status": "all"})
    assert [s.id for s in all_statuses.data] == [second_id, first_id]
    canceled = client.v1.subscriptions.list(params={"status": "canceled", "expand": ["data.customer"]})
    assert [(s.id, s["customer"]["id"]) for s in canceled.data] == [(first_id, customer_id)]
    by_price = client.v1.subscriptions.list(params={"price": "price_starter_base"})
    assert [s.id for s in by_price.data] == [second_id]

    invoices = client.v1.invoices.list(params={"customer": customer_id})
    assert [i["parent"]["subscription_details"]["subscription"] for i in invoices.data] == [second_id, first_id]
    assert client.v1.invoices.list(params={"status": "open"}).data == []
    invoice = client.v1.invoices.retrieve(invoices.data[0].id, params={"expand": ["parent.subscription_details.subscription"]})
    assert invoice["parent"]["subscription_details"]["subscription"]["id"] == second_id
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.retrieve("in_nope")
    assert raised.value.http_status == 404


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        pytest.param({"limit": 0}, "parameter_invalid_integer", "limit", id="limit-zero"),
        pytest.param({"limit": 101}, "parameter_invalid_integer", "limit", id="limit-101"),
        pytest.param({"limit": "ten"}, "parameter_invalid_integer", "limit", id="limit-text"),
        pytest.param({"status": "cancelled"}, None, "status", id="status-enum"),
        pytest.param({"starting_after": "sub_nope"}, "resource_missing", "starting_after", id="cursor"),
        pytest.param({"current_period_end": {"gt": 1}}, "parameter_unsupported_by_fake", "current_period_end", id="unsupported"),
        pytest.param({"expand": ["customer"]}, None, None, id="expand-without-data"),
    ],
)
def test_subscription_list_rejections(client: stripe.StripeClient, params: Any, code: str | None, param: str | None) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.list(params=params)
    assert (raised.value.code, raised.value.param) == (code, param)


def test_events_api(fake: FakeStripe, client: stripe.StripeClient) -> None:
    _, events = subscribed(fake, client)
    fetched = client.v1.events.retrieve(events[0]["id"])
    assert fetched.last_response is not None
    assert json.loads(fetched.last_response.body) == events[0]
    listed = client.v1.events.list(params={"type": "invoice.*"})
    assert [e.type for e in listed.data] == list(reversed([t for t in types(events) if t.startswith("invoice.")]))
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve("evt_nope")


def test_prices_and_products_can_be_read(fake: FakeStripe, client: stripe.StripeClient) -> None:
    price = client.v1.prices.retrieve("price_pro_base", params={"expand": ["product"]})
    assert (price.unit_amount, price.currency, price["recurring"]["interval"], price["product"]["name"]) == (
        7900,
        "usd",
        "month",
        "Pro",
    )
    assert client.v1.prices.retrieve("price_setup_fee").type == "one_time"


def test_advance_clock(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.advance_clock(3600)
    assert client.v1.customers.create().created == START + 3600


def test_prices_are_listed_by_lookup_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.add_price("price_team_base", product_name="Team", unit_amount=4900, lookup_key="team_monthly")
    fake.add_price("price_team_old", product_name="Team", unit_amount=3900, lookup_key="team_2025", active=False)
    listed = client.v1.prices.list(params={"lookup_keys": ["team_monthly", "team_2025", "nobody_has_this"]})
    assert sorted(price.id for price in listed.data) == ["price_team_base", "price_team_old"]
    active = client.v1.prices.list(params={"lookup_keys": ["team_monthly", "team_2025"], "active": True})
    assert [price.id for price in active.data] == ["price_team_base"]
    assert client.v1.prices.list(params={"lookup_keys": ["nobody_has_this"]}).data == []
    with pytest.raises(ValueError, match="lookup key"):
        fake.add_price("price_team_other", product_name="Team", unit_amount=1, lookup_key="team_monthly")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"lookup_keys": [f"key{n}" for n in range(11)]}, "lookup_keys", id="more-than-ten"),
        pytest.param({"lookup_key": "team_monthly"}, "lookup_key", id="unknown"),
        pytest.param({"product": "prod_x"}, "product", id="unsupported"),
        pytest.param({"lookup_keys": "team_monthly"}, "lookup_keys", id="not-a-list"),
    ],
)
def test_the_price_list_refuses_what_stripe_refuses(client: stripe.StripeClient, params: Any, param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.list(params=params)
    assert raised.value.param == param
