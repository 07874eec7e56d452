"""The catalog bootstrap command against the Stripe fake: the command line over real HTTP
(`--api-base`, as against `make dev`'s emulator), the logic through an in-process StripeClient.
Every test starts from an empty Stripe account."""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import stripe

from functions.admin.catalog_bootstrap import bootstrap_catalog, main
from tenant_billing import catalog as catalog_module
from tenant_billing.catalog import Catalog, get_catalog
from tenant_billing.settings import Settings, parse_prices
from tenant_billing.stripe_adapter import StripeAdapter
from tenant_billing.stripe_prices import price_ids
from tests.stripe_fake import TEST_API_KEY, FakeStripe, make_stripe_client
from tests.stripe_fake.server import serve_in_thread

LIVE_KEY = "sk_live_bootstrap_0123456789"


class Run(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def stripe_prices(self) -> str:
        """The StripePrices value: the output's last line."""
        return self.out.splitlines()[-1]


@pytest.fixture
def fake() -> FakeStripe:
    return FakeStripe(api_keys=(TEST_API_KEY, LIVE_KEY))


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return make_stripe_client(fake)


@pytest.fixture
def base_url(fake: FakeStripe) -> Iterator[str]:
    """The fake served over HTTP on 127.0.0.1, as `make dev` serves its emulator."""
    server, url = serve_in_thread(fake)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def run(*argv: str, key: str | None = TEST_API_KEY) -> Run:
        if key is None:
            monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        else:
            monkeypatch.setenv("STRIPE_SECRET_KEY", key)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


@pytest.fixture
def edit_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Callable[[dict[str, Any]], object]], Catalog]:
    """plans.json as an operator would edit it: the change applied to a copy the code then loads."""

    def edit(change: Callable[[dict[str, Any]], object]) -> Catalog:
        doc = json.loads(catalog_module.CATALOG_PATH.read_text())
        change(doc)
        path = tmp_path / "plans.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
        get_catalog.cache_clear()
        return get_catalog()

    return edit


def product_id(plan_id: str, kind: str) -> str:
    return f"plan_{plan_id}_{kind}"


def holder_of(fake: FakeStripe, lookup_key: str) -> dict[str, Any]:
    """The one price holding the lookup key."""
    (price,) = [price for price in fake.prices.values() if price["lookup_key"] == lookup_key]
    return price


def writes(fake: FakeStripe) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in fake.requests if request.method != "GET"]


def test_the_first_run_creates_every_product_and_price_of_the_catalog(
    fake: FakeStripe, base_url: str, run: Callable[..., Run]
) -> None:
    result = run("--api-base", base_url)
    assert result.code == 0, result.err

    catalog = get_catalog()
    created: dict[str, str] = {}
    for entry in catalog.prices():
        plan_id, kind, price = entry.ref.plan, entry.ref.kind, entry.price
        plan_name = catalog.plans[plan_id].name
        product = fake.products[product_id(plan_id, kind)]
        assert (product["name"], product["active"]) == (plan_name if kind == "base" else f"{plan_name} extra site", True)
        assert product["metadata"] == {"catalog_plan": plan_id, "catalog_kind": kind}
        stripe_price = holder_of(fake, price.name)
        assert {
            name: stripe_price[name] for name in ("product", "unit_amount", "currency", "type", "billing_scheme", "active")
        } == {
            "product": product_id(plan_id, kind),
            "unit_amount": price.unit_amount,
            "currency": catalog.currency,
            "type": "recurring",
            "billing_scheme": "per_unit",
            "active": True,
        }
        recurring = stripe_price["recurring"]
        assert (recurring["interval"], recurring["interval_count"], recurring["usage_type"]) == (
            entry.ref.interval,
            1,
            "licensed",
        )
        assert stripe_price["metadata"] == {
            "catalog_plan": plan_id,
            "catalog_version": str(entry.ref.version),
            "catalog_price": price.name,
        }
        created[price.name] = stripe_price["id"]
    # One product per plan for its base prices and one for its add-on's, whatever the versions and intervals.
    assert len(fake.prices) == len(catalog.prices())
    assert sorted(fake.products) == sorted({product_id(entry.ref.plan, entry.ref.kind) for entry in catalog.prices()})
    assert {
        holder_of(fake, "pro_base_yearly")["recurring"]["interval"],
        holder_of(fake, "pro_base")["recurring"]["interval"],
    } == {
        "year",
        "month",
    }

    # The printed StripePrices is what the functions read, and resolves to exactly these prices.
    prices = parse_prices(result.stripe_prices)
    assert {name: setting.lookup_key for name, setting in prices.items()} == {name: name for name in created}
    settings = Settings(TABLE_NAME="billing-test", STRIPE_PRICES=prices)
    assert price_ids(settings, StripeAdapter(make_stripe_client(fake))) == created

    summary = result.out.splitlines()
    for name, price_id in created.items():
        assert any(name in line and price_id in line and "created" in line for line in summary), name
    assert TEST_API_KEY not in result.out + result.err


def test_a_second_run_writes_nothing_and_prints_the_same_stripe_prices(
    fake: FakeStripe, base_url: str, run: Callable[..., Run]
) -> None:
    first = run("--api-base", base_url)
    fake.reset_requests()
    second = run("--api-base", base_url)
    assert second.code == 0, second.err
    assert writes(fake) == []
    # One read per product and one prices.list for every ten lookup keys.
    catalog = get_catalog()
    products = {product_id(entry.ref.plan, entry.ref.kind) for entry in catalog.prices()}
    lists = -(-len(catalog.prices()) // 10)
    assert Counter((request.method, request.path) for request in fake.requests) == Counter(
        [("GET", "/v1/prices")] * lists + [("GET", f"/v1/products/{product}") for product in products]
    )
    assert second.stripe_prices == first.stripe_prices
    assert "created" not in second.out
    assert "unchanged" in second.out


def test_a_changed_amount_of_an_unsubscribed_price_moves_the_lookup_key_to_a_new_price(
    fake: FakeStripe,
    base_url: str,
    run: Callable[..., Run],
    edit_catalog: Callable[[Callable[[dict[str, Any]], object]], Catalog],
) -> None:
    first = run("--api-base", base_url)
    old_id = holder_of(fake, "pro_site")["id"]
    edit_catalog(lambda doc: doc["plans"]["pro"]["versions"]["1"]["prices"]["month"]["site"].update(unitAmount=2100))
    fake.reset_requests()

    result = run("--api-base", base_url)
    assert result.code == 0, result.err
    assert writes(fake) == [("POST", "/v1/prices")]
    (create,) = [request for request in fake.requests if request.method == "POST"]
    assert (create.params["lookup_key"], create.params["transfer_lookup_key"]) == ("pro_site", "true")
    new = holder_of(fake, "pro_site")
    assert (new["unit_amount"], new["product"], new["active"]) == (2100, "plan_pro_site", True)
    # The old price is left as it was, but for its lookup key.
    old = fake.prices[old_id]
    assert (old["active"], old["unit_amount"], old["lookup_key"]) == (True, 1900, None)
    # The StripePrices value is unchanged: no redeploy needed.
    assert result.stripe_prices == first.stripe_prices
    (line,) = [line for line in result.out.splitlines() if new["id"] in line]
    assert old_id in line
    assert "stays active (it had no live subscription)" in line
    assert "1900" in line
    assert "2100" in line
    assert "redeploy" in result.out

    fake.reset_requests()
    assert run("--api-base", base_url).code == 0
    assert writes(fake) == []


def test_a_changed_amount_of_a_price_with_live_subscribers_changes_nothing_and_names_them(
    fake: FakeStripe,
    client: stripe.StripeClient,
    base_url: str,
    run: Callable[..., Run],
    edit_catalog: Callable[[Callable[[dict[str, Any]], object]], Catalog],
) -> None:
    """The attack: moving the lookup key away from a price people pay for would leave them paying Pro
    while the functions, which know Pro only by the price the key resolves to, grant the fallback."""
    run("--api-base", base_url)
    old = holder_of(fake, "pro_base")
    customer = client.v1.customers.create(params={"email": "payer@example.com"}).id
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": old["id"], "quantity": 1}],
            "success_url": "https://app.example/ok",
        }
    )
    (subscription_id,) = {
        event["data"]["object"]["id"]
        for event in fake.complete_checkout(session.id)
        if event["type"].startswith("customer.subscription.")
    }
    edit_catalog(lambda doc: doc["plans"]["pro"]["versions"]["1"]["prices"]["month"]["base"].update(unitAmount=8900))
    fake.reset_requests()

    result = run("--api-base", base_url)
    assert result.code == 1
    assert writes(fake) == []
    assert f"pro_base: {old['id']} has 1 live subscription(s), e.g. {subscription_id}" in result.err
    assert "Nothing was changed" in result.err
    assert holder_of(fake, "pro_base")["id"] == old["id"]
    # Once the subscription has ended, the price may be replaced.
    fake.cancel_subscription(subscription_id)
    assert run("--api-base", base_url).code == 0
    assert holder_of(fake, "pro_base")["unit_amount"] == 8900


def test_a_renamed_plan_renames_its_products_in_place(
    fake: FakeStripe, client: stripe.StripeClient, edit_catalog: Callable[[Callable[[dict[str, Any]], object]], Catalog]
) -> None:
    bootstrap_catalog(client, get_catalog())
    prices_before = {key: holder_of(fake, key)["id"] for key in ("pro_base", "pro_site")}
    renamed = edit_catalog(lambda doc: doc["plans"]["pro"].update(name="Professional"))
    fake.reset_requests()

    outcomes = bootstrap_catalog(client, renamed)
    updates = [request for request in fake.requests if request.method != "GET"]
    assert [(request.path, request.params) for request in updates] == [
        ("/v1/products/plan_pro_base", {"name": "Professional"}),
        ("/v1/products/plan_pro_site", {"name": "Professional extra site"}),
    ]
    assert fake.products["plan_pro_base"]["name"] == "Professional"
    assert fake.products["plan_pro_site"]["name"] == "Professional extra site"
    assert {key: holder_of(fake, key)["id"] for key in prices_before} == prices_before
    changed = [(outcome.kind, outcome.name, outcome.action) for outcome in outcomes if outcome.action != "unchanged"]
    assert changed == [("product", "plan_pro_base", "updated"), ("product", "plan_pro_site", "updated")]


def test_an_archived_product_is_reactivated(fake: FakeStripe, client: stripe.StripeClient) -> None:
    bootstrap_catalog(client, get_catalog())
    client.v1.products.update("plan_starter_base", params={"active": False})
    fake.reset_requests()

    bootstrap_catalog(client, get_catalog())
    assert [(request.path, request.params) for request in fake.requests if request.method != "GET"] == [
        ("/v1/products/plan_starter_base", {"active": "true"})
    ]
    assert fake.products["plan_starter_base"]["active"] is True


@pytest.mark.parametrize(
    ("holder", "difference"),
    [
        pytest.param({"interval": "year"}, "recurrence every 1 year, licensed -> every 1 month, licensed)", id="yearly"),
        pytest.param({"product_id": "prod_by_hand"}, "product prod_by_hand -> plan_pro_base)", id="another-product"),
        pytest.param({"active": False}, "archived)", id="archived"),
        pytest.param({"currency": "eur"}, "currency eur -> {currency})", id="another-currency"),
        pytest.param({"unit_amount": 6900}, "unit amount 6900 -> {unit_amount})", id="another-amount"),
    ],
)
def test_a_price_holding_the_lookup_key_that_the_catalog_would_not_sell_is_replaced(
    fake: FakeStripe, client: stripe.StripeClient, holder: dict[str, Any], difference: str
) -> None:
    # Made by hand in the Dashboard with the catalog's lookup key: what the catalog sells but for one thing.
    catalog = get_catalog()
    pro_base = catalog.plans["pro"].current.prices["month"].base
    fields: dict[str, Any] = {
        "product_id": "plan_pro_base",
        "product_name": "Pro",
        "unit_amount": pro_base.unit_amount,
        "currency": catalog.currency,
    }
    by_hand = fake.add_price("price_by_hand", lookup_key="pro_base", **(fields | holder))

    outcomes = bootstrap_catalog(client, catalog)
    new = holder_of(fake, "pro_base")
    assert (new["product"], new["unit_amount"], new["currency"], new["active"]) == (
        "plan_pro_base",
        pro_base.unit_amount,
        catalog.currency,
        True,
    )
    assert new["recurring"]["interval"] == "month"
    # Nothing else of the old price changes.
    assert fake.prices["price_by_hand"] == {**by_hand, "lookup_key": None}
    (outcome,) = [outcome for outcome in outcomes if outcome.kind == "price" and outcome.name == "pro_base"]
    assert (outcome.action, outcome.stripe_id) == ("replaced", new["id"])
    assert (
        "from price_by_hand (" + difference.format(currency=catalog.currency, unit_amount=pro_base.unit_amount) in outcome.detail
    )


def test_an_interrupted_run_is_finished_by_the_next_one(fake: FakeStripe) -> None:
    catalog = get_catalog()
    # The starter plan's two prices (monthly and yearly, one product), then Pro's base product.
    done, stopped = catalog.prices()[:2], catalog.prices()[2]
    assert {product_id(entry.ref.plan, entry.ref.kind) for entry in done} == {"plan_starter_base"}
    client = make_stripe_client(fake, max_network_retries=0)
    # The second product's read gets no answer: the run stops there.
    fake.fail_next(1, connection_error=True, path_prefix=f"/v1/products/{product_id(stopped.ref.plan, stopped.ref.kind)}")
    with pytest.raises(stripe.APIConnectionError):
        bootstrap_catalog(client, catalog)
    assert sorted(fake.products) == ["plan_starter_base"] and len(fake.prices) == 2

    outcomes = bootstrap_catalog(client, catalog)
    assert len(fake.prices) == len(catalog.prices())
    actions = [(outcome.name, outcome.action) for outcome in outcomes]
    assert actions[:3] == [("plan_starter_base", "unchanged")] + [(entry.price.name, "unchanged") for entry in done]
    assert {action for _, action in actions[3:]} == {"created"}


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [LIVE_KEY, "rk_live_restricted_0123456789"])
def test_a_live_key_is_refused_without_any_request(fake: FakeStripe, base_url: str, run: Callable[..., Run], key: str) -> None:
    result = run("--api-base", base_url, key=key)
    assert result.code == 2
    assert "--live" in result.err
    assert fake.requests == []
    assert key not in result.out + result.err


def test_live_mode_needs_live(fake: FakeStripe, base_url: str, run: Callable[..., Run]) -> None:
    result = run("--live", "--api-base", base_url, key=LIVE_KEY)
    assert result.code == 0, result.err
    assert len(fake.prices) == len(get_catalog().prices())
    assert "live mode" in result.out
    assert LIVE_KEY not in result.out + result.err


def test_a_missing_key_is_refused(fake: FakeStripe, base_url: str, run: Callable[..., Run]) -> None:
    result = run("--api-base", base_url, key=None)
    assert result.code == 2
    assert "STRIPE_SECRET_KEY" in result.err
    assert fake.requests == []


@pytest.mark.parametrize("api_base", ["http://stripe.example.com", "ftp://127.0.0.1:3002", "127.0.0.1:3002"])
def test_the_key_is_sent_in_clear_only_to_this_machine(run: Callable[..., Run], api_base: str) -> None:
    with pytest.raises(SystemExit) as exited:
        run("--api-base", api_base)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("fault", "key", "says"),
    [
        pytest.param(None, "sk_test_not_this_account_0123abcd", "STRIPE_SECRET_KEY", id="invalid-key"),
        pytest.param(429, TEST_API_KEY, "rate limit", id="rate-limited"),
        pytest.param(400, TEST_API_KEY, "Injected failure.", id="invalid-request"),
    ],
)
def test_a_stripe_error_is_a_message_not_a_traceback(
    fake: FakeStripe, base_url: str, run: Callable[..., Run], fault: int | None, key: str, says: str
) -> None:
    if fault is not None:
        fake.fail_next(1, status=fault)
    result = run("--api-base", base_url, key=key)
    assert result.code == 1
    assert says in result.err
    assert "run it again" in result.err
    assert "Traceback" not in result.err
    # Not the key, nor the part of it Stripe's own message shows.
    assert key not in result.out + result.err
    assert key[-4:] not in result.out + result.err


def test_an_unreachable_api_is_a_message_not_a_traceback(run: Callable[..., Run]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run("--api-base", f"http://127.0.0.1:{port}")
    assert result.code == 1
    assert "Stripe could not be reached" in result.err
    assert "Traceback" not in result.err


def test_a_yearly_catalog_price_held_by_a_monthly_stripe_price_is_replaced_by_a_yearly_one(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    # Made by hand with the yearly price's lookup key but billing every month: a yearly checkout
    # would sell a year's amount every month. The run gives the lookup key to a yearly price.
    catalog = get_catalog()
    yearly = catalog.plans["pro"].current.prices["year"].base
    fake.add_price(
        "price_monthly_by_mistake",
        lookup_key=yearly.name,
        product_id="plan_pro_base",
        product_name="Pro",
        unit_amount=yearly.unit_amount,
        currency=catalog.currency,
        interval="month",
    )
    outcomes = bootstrap_catalog(client, catalog)
    holder = holder_of(fake, yearly.name)
    assert (holder["recurring"]["interval"], holder["unit_amount"]) == ("year", yearly.unit_amount)
    (outcome,) = [outcome for outcome in outcomes if outcome.kind == "price" and outcome.name == yearly.name]
    assert outcome.action == "replaced"
    assert "recurrence every 1 month, licensed -> every 1 year, licensed" in outcome.detail
