"""The Stripe fake's catalog writes: products created with an id of our choosing and renamed,
prices created with a lookup key (unique across every price, archived ones included, unless
`transfer_lookup_key` moves it), all through a real stripe.StripeClient served in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import stripe

from tests.stripe_fake import FakeStripe, make_stripe_client
from tests.support.clock import ManualClock

START = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def pro_price(**changes: Any) -> Any:
    """The params of a monthly Pro price; a change to None leaves that param out."""
    params = {
        "product": "plan_pro_base",
        "currency": "usd",
        "unit_amount": 7900,
        "recurring": {"interval": "month"},
        "lookup_key": "pro_base",
    } | changes
    return {name: value for name, value in params.items() if value is not None}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> FakeStripe:
    return FakeStripe(clock=clock, seed=99)


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return make_stripe_client(fake)


@pytest.fixture
def pro(client: stripe.StripeClient) -> stripe.Product:
    return client.v1.products.create(params={"id": "plan_pro_base", "name": "Pro", "metadata": {"catalog_plan": "pro"}})


def state_of(fake: FakeStripe) -> str:
    """What a rejected request must leave unchanged."""
    return json.dumps({"products": fake.products, "prices": fake.prices, "events": fake.events}, sort_keys=True)


def event_types(fake: FakeStripe) -> list[str]:
    return [event["type"] for event in fake.events]


# --- products -------------------------------------------------------------------------------------


def test_a_product_gets_the_id_it_is_created_with(fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product) -> None:
    assert (pro.id, pro.name, pro.active, pro.type) == ("plan_pro_base", "Pro", True, "service")
    assert pro.metadata.to_dict() == {"catalog_plan": "pro"}
    assert (pro.created, pro.updated, pro.default_price) == (START, START, None)
    assert client.v1.products.retrieve("plan_pro_base").name == "Pro"
    assert event_types(fake) == ["product.created"]


def test_a_product_without_an_id_gets_one_of_stripes(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Pro", "active": False})
    assert product.id.startswith("prod_")
    assert product.active is False


def test_a_product_id_already_taken_is_refused(fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product) -> None:
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.products.create(params={"id": "plan_pro_base", "name": "Another Pro"})
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, "resource_already_exists", "id")
    assert raised.value.user_message == "Product already exists."
    assert state_of(fake) == before


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        pytest.param({"id": "plan_x"}, "name", "parameter_missing", id="no-name"),
        pytest.param({"name": ""}, "name", "parameter_invalid_empty", id="empty-name"),
        pytest.param(
            {"name": "Pro", "images": ["https://example.com/a.png"]}, "images", "parameter_unsupported_by_fake", id="unsupported"
        ),
        pytest.param({"name": "Pro", "colour": "red"}, "colour", "parameter_unknown", id="unknown"),
    ],
)
def test_the_product_create_refuses_what_stripe_refuses(
    fake: FakeStripe, client: stripe.StripeClient, params: Any, param: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.products.create(params=params)
    assert (raised.value.param, raised.value.code) == (param, code)
    assert fake.products == {}


def test_a_product_is_renamed_and_reactivated_in_place(
    fake: FakeStripe, client: stripe.StripeClient, clock: ManualClock, pro: stripe.Product
) -> None:
    clock.advance(60)
    updated = client.v1.products.update(
        "plan_pro_base", params={"name": "Professional", "active": False, "metadata": {"catalog_kind": "base"}}
    )
    assert (updated.name, updated.active, updated.updated) == ("Professional", False, START + 60)
    # Metadata is merged key by key, as Stripe does.
    assert updated.metadata.to_dict() == {"catalog_plan": "pro", "catalog_kind": "base"}
    assert fake.products["plan_pro_base"]["name"] == "Professional"
    (event,) = fake.events_of_type("product.updated")
    assert event["data"]["previous_attributes"] == {
        "active": True,
        "metadata": {"catalog_kind": None},
        "name": "Pro",
        "updated": START,
    }
    assert client.v1.products.update("plan_pro_base", params={"active": True}).active is True


def test_a_product_update_refuses_what_stripe_refuses(fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product) -> None:
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.products.update("plan_nobody", params={"name": "X"})
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as empty:
        client.v1.products.update("plan_pro_base", params={"name": ""})
    assert (empty.value.param, empty.value.code) == ("name", "parameter_invalid_empty")
    with pytest.raises(stripe.InvalidRequestError) as renamed_id:
        client.v1.products.update("plan_pro_base", params=cast(Any, {"id": "plan_other"}))
    assert renamed_id.value.code == "parameter_unknown"
    assert state_of(fake) == before


# --- prices ---------------------------------------------------------------------------------------


def test_a_recurring_price_takes_stripes_defaults(fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product) -> None:
    price = client.v1.prices.create(params=pro_price(metadata={"catalog_price": "pro_base"}))
    assert price.id.startswith("price_")
    assert (price.product, price.currency, price.unit_amount) == ("plan_pro_base", "usd", 7900)
    assert (price.type, price.billing_scheme, price.active, price.lookup_key) == ("recurring", "per_unit", True, "pro_base")
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count, price.recurring.usage_type) == ("month", 1, "licensed")
    assert (price.metadata.to_dict(), price.tax_behavior, price.nickname) == ({"catalog_price": "pro_base"}, "unspecified", None)
    assert client.v1.prices.retrieve(price.id).lookup_key == "pro_base"
    assert event_types(fake) == ["product.created", "price.created"]


def test_a_price_without_recurring_is_one_time(client: stripe.StripeClient, pro: stripe.Product) -> None:
    price = client.v1.prices.create(params={"product": "plan_pro_base", "currency": "usd", "unit_amount": 5000})
    assert (price.type, price.recurring, price.lookup_key) == ("one_time", None, None)


def test_a_lookup_key_another_price_holds_is_refused(fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product) -> None:
    first = client.v1.prices.create(params=pro_price())
    before = state_of(fake)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.create(params=pro_price(unit_amount=8900))
    assert (raised.value.http_status, raised.value.param) == (400, "lookup_key")
    assert raised.value.user_message == f"A price (`{first.id}`) already uses that lookup key."
    assert state_of(fake) == before


def test_an_archived_price_still_holds_its_lookup_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.add_price("price_old_team", product_name="Team", unit_amount=3900, lookup_key="team_base", active=False)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.create(params=pro_price(product=fake.prices["price_old_team"]["product"], lookup_key="team_base"))
    assert "price_old_team" in (raised.value.user_message or "")


def test_transfer_lookup_key_moves_the_key_and_leaves_the_old_price_active(
    fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product
) -> None:
    old = client.v1.prices.create(params=pro_price())
    new = client.v1.prices.create(params=pro_price(unit_amount=8900, transfer_lookup_key=True))
    assert new.lookup_key == "pro_base"
    assert (fake.prices[old.id]["lookup_key"], fake.prices[old.id]["active"], fake.prices[old.id]["unit_amount"]) == (
        None,
        True,
        7900,
    )
    listed = client.v1.prices.list(params={"lookup_keys": ["pro_base"]})
    assert [price.id for price in listed.data] == [new.id]
    (moved,) = fake.events_of_type("price.updated")
    assert (moved["data"]["object"]["id"], moved["data"]["previous_attributes"]) == (old.id, {"lookup_key": "pro_base"})


def test_transfer_lookup_key_with_a_free_key_just_sets_it(client: stripe.StripeClient, pro: stripe.Product) -> None:
    price = client.v1.prices.create(params=pro_price(transfer_lookup_key=True))
    assert price.lookup_key == "pro_base"


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        pytest.param({"currency": None}, "currency", "parameter_missing", id="no-currency"),
        pytest.param({"currency": "dollars"}, "currency", None, id="not-a-currency"),
        pytest.param({"product": None}, "product", "parameter_missing", id="no-product"),
        pytest.param({"product": "plan_nobody"}, "product", "resource_missing", id="unknown-product"),
        pytest.param({"unit_amount": None}, "unit_amount", "parameter_missing", id="no-amount"),
        pytest.param({"unit_amount": -1}, "unit_amount", "parameter_invalid_integer", id="negative-amount"),
        pytest.param({"recurring": {"interval": "fortnight"}}, "recurring[interval]", None, id="unknown-interval"),
        pytest.param({"recurring": {"interval_count": 1}}, "recurring[interval]", "parameter_missing", id="no-interval"),
        pytest.param(
            {"recurring": {"interval": "month", "interval_count": 37}}, "recurring[interval_count]", None, id="over-3-years"
        ),
        pytest.param(
            {"recurring": {"interval": "day", "interval_count": 1096}}, "recurring[interval_count]", None, id="days-over-3-years"
        ),
        pytest.param({"lookup_key": "k" * 201}, "lookup_key", "string_length_exceeds_maximum", id="long-lookup-key"),
        pytest.param({"tiers": [{"up_to": "inf", "unit_amount": 1}]}, "tiers", "parameter_unsupported_by_fake", id="tiers"),
        pytest.param({"billing_scheme": "tiered"}, "billing_scheme", "parameter_unsupported_by_fake", id="tiered"),
        pytest.param(
            {"recurring": {"interval": "month", "usage_type": "metered"}},
            "recurring[usage_type]",
            "parameter_unsupported_by_fake",
            id="metered",
        ),
        pytest.param({"unit_amount_decimal": "79.5"}, "unit_amount_decimal", "parameter_unsupported_by_fake", id="decimal"),
    ],
)
def test_the_price_create_refuses_what_stripe_refuses(
    fake: FakeStripe, client: stripe.StripeClient, pro: stripe.Product, changes: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.create(params=pro_price(**changes))
    assert (raised.value.http_status, raised.value.param, raised.value.code) == (400, param, code)
    assert fake.prices == {}
