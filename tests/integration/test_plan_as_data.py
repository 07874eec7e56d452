"""A plan added by data only: a catalog with an extra `team` plan, loaded through the same code,
its prices configured like the others (STRIPE_PRICES), sold and run end to end through the real
handlers. And prices given by their Stripe lookup key instead of their id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import checkout_handler
import status_handler
import subscription_handler
from tenant_billing import catalog as catalog_module
from tenant_billing.catalog import get_catalog
from tests.conftest import TEST_PRICES, configure_prices
from tests.integration.conftest import add_catalog_prices
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, open_session_id, status_of

pytestmark = pytest.mark.usefixtures("billing")

TEAM_FEATURES = ["page_builder", "media_library", "seo_toolkit", "analytics"]
TEAM = {
    "name": "Team",
    "currentVersion": 1,
    "versions": {
        "1": {
            "prices": {
                "month": {
                    "base": {"name": "team_base", "unitAmount": 4900},
                    "site": {"name": "team_site", "unitAmount": 1500, "limit": "sites"},
                }
            },
            "features": TEAM_FEATURES,
            "limits": {"sites": 3, "pages_per_site": 50, "storage_gb": 5},
        }
    },
}
TEAM_PRICES = {"team_base": "price_team_base", "team_site": "price_team_site"}


@pytest.fixture
def team_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe) -> None:
    """plans.json with a `team` plan, and its two prices configured and in Stripe. No code changed."""
    doc = json.loads(catalog_module.CATALOG_PATH.read_text())
    doc["plans"]["team"] = TEAM
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
    configure_prices(monkeypatch, TEAM_PRICES)
    add_catalog_prices(stripe_fake, get_catalog(), TEAM_PRICES)


def request(method: str, path: str, *, body: Any = None, query: str = "") -> tuple[int, Any]:
    event = api_event(method, path, org_id="org_demo", role="admin", body=body)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return call(subscription_handler, event)


def items_of(fake: FakeStripe, subscription_id: str) -> list[tuple[str, int]]:
    return sorted((item["price"]["id"], item["quantity"]) for item in fake.subscriptions[subscription_id]["items"]["data"])


@pytest.mark.usefixtures("team_catalog")
def test_a_plan_added_by_data_only_runs_end_to_end(stripe_fake: FakeStripe) -> None:
    # Status: configured, with the new plan's price among the others.
    assert status_of()["configured"] is True

    # Checkout: the team plan's base price and per-site add-on.
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "team", "siteQuantity": 2}))
    assert status == 200, body
    session_id = open_session_id(stripe_fake, "org_demo")
    (create,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert create.params["line_items"] == [
        {"price": "price_team_base", "quantity": "1"},
        {"price": "price_team_site", "quantity": "2"},
    ]

    # Webhook: the paid checkout's events store the subscription and the team plan's entitlements.
    events = stripe_fake.complete_checkout(session_id)
    for stripe_event in events:
        assert deliver(stripe_event)[0] == 200
    subscription_id = stripe_fake.checkout_sessions[session_id]["subscription"]
    body = status_of()
    assert (body["subscription"]["plan"], body["subscription"]["siteQuantity"]) == ("team", 2)
    assert body["entitlement"]["features"] == TEAM_FEATURES
    assert body["entitlement"]["limits"] == {"sites": 5, "pages_per_site": 50, "storage_gb": 5}

    # Preview, then the change it quotes (previewId): more team sites, charged exactly the preview.
    status, preview = request("GET", "/billing/subscription/preview", query="plan=team&siteQuantity=4")
    assert status == 200, preview
    assert (preview["plan"], preview["siteQuantity"]) == ("team", 4)
    assert preview["nextInvoiceTotal"] == 4900 + 4 * 1500
    status, body = request(
        "POST", "/billing/subscription", body={"plan": "team", "siteQuantity": 4, "previewId": preview["previewId"]}
    )
    assert status == 200, body
    assert items_of(stripe_fake, subscription_id) == [("price_team_base", 1), ("price_team_site", 4)]
    (charged,) = [i for i in stripe_fake.invoices.values() if i["billing_reason"] == "subscription_update"]
    assert charged["amount_due"] == preview["amountDueNow"] > 0
    assert status_of()["entitlement"]["limits"]["sites"] == 7

    # A change from the new plan to a shipped one reads the team items through the same catalog.
    status, preview = request("GET", "/billing/subscription/preview", query="plan=enterprise&siteQuantity=1")
    assert status == 200, preview
    assert preview["nextInvoiceTotal"] == 19900 + 900
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 1})
    assert status == 200, body
    assert items_of(stripe_fake, subscription_id) == [("price_enterprise_base", 1), ("price_enterprise_site", 1)]
    assert status_of()["subscription"]["plan"] == "enterprise"


@pytest.mark.usefixtures("team_catalog")
def test_a_new_plan_without_its_base_price_leaves_billing_unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, {"team_site": "price_team_site"})
    assert status_of()["configured"] is False
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro"}))
    assert (status, body["error"]["code"]) == (503, "billing_not_configured")


def by_lookup_key(fake: FakeStripe, names: tuple[str, ...]) -> dict[str, object]:
    """Give the fake's prices of `names` a lookup key, and STRIPE_PRICES those keys instead of ids."""
    prices: dict[str, object] = {}
    for name in names:
        fake.prices[TEST_PRICES[name]]["lookup_key"] = f"{name}_monthly"
        prices[name] = {"lookupKey": f"{name}_monthly"}
    return prices


def price_lists(fake: FakeStripe) -> list[Any]:
    return [r for r in fake.requests if r.method == "GET" and r.path == "/v1/prices"]


def test_prices_given_by_lookup_key_are_resolved_once(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, by_lookup_key(stripe_fake, ("pro_base", "pro_site")))
    stripe_fake.reset_requests()
    # Status needs no resolution: a lookup key counts as configured, and status never calls Stripe.
    assert status_of()["configured"] is True
    assert stripe_fake.requests == []

    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro", "siteQuantity": 2}))
    assert status == 200, body
    (listed,) = price_lists(stripe_fake)
    assert sorted(listed.params["lookup_keys"]) == ["pro_base_monthly", "pro_site_monthly"]
    (create,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert [item["price"] for item in create.params["line_items"]] == ["price_pro_base", "price_pro_site"]

    # Paid and delivered: the webhook maps the subscription's price ids back to the plan.
    for stripe_event in stripe_fake.complete_checkout(open_session_id(stripe_fake, "org_demo")):
        assert deliver(stripe_event)[0] == 200
    assert (status_of()["subscription"]["plan"], status_of()["subscription"]["siteQuantity"]) == ("pro", 2)
    # Cached for the execution environment: no second lookup.
    assert len(price_lists(stripe_fake)) == 1


def test_a_lookup_key_no_stripe_price_has_is_misconfigured(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_prices(monkeypatch, {"pro_base": {"lookupKey": "pro_gone"}})
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro"}))
    assert (status, body["error"]["code"]) == (503, "billing_misconfigured")
    assert "pro_gone" not in json.dumps(body)
    assert call(status_handler, api_event("GET", "/billing/status", role="member"))[1]["configured"] is True


def test_more_than_ten_lookup_keys_take_one_request_per_ten(
    stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc = json.loads(catalog_module.CATALOG_PATH.read_text())
    for n in range(12):
        prices = {"month": {"base": {"name": f"extra{n}_base", "unitAmount": 100 + n}}}
        version = {"prices": prices, "features": TEAM_FEATURES, "limits": {"sites": 1}}
        doc["plans"][f"extra{n}"] = {"name": f"Extra {n}", "currentVersion": 1, "versions": {"1": version}}
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
    extra = {f"extra{n}_base": f"price_extra{n}_base" for n in range(12)}
    configure_prices(monkeypatch, {name: {"lookupKey": name} for name in extra})
    add_catalog_prices(stripe_fake, get_catalog(), extra)
    for name, price_id in extra.items():
        stripe_fake.prices[price_id]["lookup_key"] = name
    stripe_fake.reset_requests()
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "extra11"}))
    assert status == 200, body
    assert [len(r.params["lookup_keys"]) for r in price_lists(stripe_fake)] == [10, 2]
    (create,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert create.params["line_items"] == [{"price": "price_extra11_base", "quantity": "1"}]
