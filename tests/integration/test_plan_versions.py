"""Plan versions and grandfathering through the real handlers and the webhook: the day Pro's prices
change (a new catalog version), existing subscribers keep their version's prices, features and
limits, and new checkouts buy the new version. Before versions an unknown price fell back to the
free plan, which would have downgraded every existing customer that day."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import checkout_handler
import subscription_handler
from tenant_billing import catalog as catalog_module
from tenant_billing.catalog import get_catalog, parse_catalog
from tests.conftest import TEST_PRICES, configure_prices
from tests.integration.conftest import add_catalog_prices
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, items_of, open_session_id, status_of, subscribe, webhook_status

pytestmark = pytest.mark.usefixtures("billing")

PRO_V2_PRICES = {
    "pro_v2_base": "price_pro_v2_base",
    "pro_v2_site": "price_pro_v2_site",
    "pro_v2_base_yearly": "price_pro_v2_base_yearly",
    "pro_v2_site_yearly": "price_pro_v2_site_yearly",
}
V1_STORAGE, V2_STORAGE = 10, 25


def pro_version_2(doc: dict[str, Any]) -> None:
    """Pro, version 2: dearer, with the CRM, 25 GB of storage; its own price names; current."""
    version = copy.deepcopy(doc["plans"]["pro"]["versions"]["1"])
    amounts = {"month": (9900, 2400), "year": (99000, 24000)}
    for interval, prices in version["prices"].items():
        suffix = "" if interval == "month" else "_yearly"
        prices["base"] = {"name": f"pro_v2_base{suffix}", "unitAmount": amounts[interval][0]}
        prices["site"] = {"name": f"pro_v2_site{suffix}", "unitAmount": amounts[interval][1], "limit": "sites"}
    version["features"].append("crm")
    version["limits"]["storage_gb"] = V2_STORAGE
    doc["plans"]["pro"]["versions"]["2"] = version
    doc["plans"]["pro"]["currentVersion"] = 2


@pytest.fixture
def publish_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe
) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    """Deploy an edited plans.json (and its new prices, configured and in Stripe): no code changed."""

    def publish(edit: Callable[[dict[str, Any]], None]) -> None:
        doc = json.loads(catalog_module.CATALOG_PATH.read_text())
        edit(doc)
        path = tmp_path / "plans.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setattr(catalog_module, "CATALOG_PATH", path)
        names = parse_catalog(path.read_bytes()).price_names()
        new = {name: PRO_V2_PRICES[name] for name in names if name in PRO_V2_PRICES}
        prices = configure_prices(monkeypatch, new, without=tuple(name for name in TEST_PRICES if name not in names))
        add_catalog_prices(stripe_fake, get_catalog(), {name: str(price) for name, price in prices.items()})

    return publish


def change(body: dict[str, Any], org_id: str = "org_demo") -> tuple[int, Any]:
    return call(subscription_handler, api_event("POST", "/billing/subscription", org_id=org_id, body=body))


def test_a_price_change_keeps_existing_subscribers_on_their_version_and_sells_the_new_one(
    stripe_fake: FakeStripe, publish_catalog: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    old = subscribe(stripe_fake, org_id="org_old", plan="pro", sites=1, deliver_with=webhook_status)
    publish_catalog(pro_version_2)

    # Stripe tells us about the old subscriber again (a renewal): still version 1's entitlements.
    since = len(stripe_fake.events)
    stripe_fake.renew_subscription(old.subscription_id)
    for stripe_event in stripe_fake.events[since:]:
        assert deliver(stripe_event)[0] == 200
    shown = status_of("org_old")
    assert (shown["subscription"]["plan"], shown["subscription"]["planVersion"], shown["subscription"]["status"]) == (
        "pro",
        1,
        "active",
    )
    assert shown["entitlement"]["limits"] == {"sites": 3, "pages_per_site": 100, "storage_gb": V1_STORAGE}
    assert "crm" not in shown["entitlement"]["features"]
    renewal = max(stripe_fake.invoices.values(), key=lambda invoice: invoice["created"])
    assert renewal["amount_paid"] == 7900 + 1900  # still charged version 1's prices

    # A new checkout buys version 2.
    status, body = call(
        checkout_handler, api_event("POST", "/billing/checkout", org_id="org_new", body={"plan": "pro", "siteQuantity": 1})
    )
    assert status == 200, body
    create = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"][-1]
    assert [line["price"] for line in create.params["line_items"]] == ["price_pro_v2_base", "price_pro_v2_site"]
    for stripe_event in stripe_fake.complete_checkout(open_session_id(stripe_fake, "org_new")):
        assert deliver(stripe_event)[0] == 200
    new = status_of("org_new")
    assert (new["subscription"]["plan"], new["subscription"]["planVersion"]) == ("pro", 2)
    assert new["entitlement"]["limits"]["storage_gb"] == V2_STORAGE and "crm" in new["entitlement"]["features"]

    # The old subscriber adds a site: at version 1's per-site price, still on version 1.
    status, body = change({"plan": "pro", "siteQuantity": 2}, org_id="org_old")
    assert status == 200, body
    assert items_of(stripe_fake, old.subscription_id) == [(TEST_PRICES["pro_base"], 1), (TEST_PRICES["pro_site"], 2)]
    assert (body["subscription"]["planVersion"], body["entitlement"]["limits"]["storage_gb"]) == (1, V1_STORAGE)


def test_a_grandfathered_subscriber_who_changes_plan_buys_the_new_plan_current_version(
    stripe_fake: FakeStripe, publish_catalog: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=1, deliver_with=webhook_status)
    publish_catalog(pro_version_2)
    assert change({"plan": "enterprise", "siteQuantity": 1})[0] == 200
    # And back to Pro: the current version now (the old one is no longer theirs to keep).
    status, body = change({"plan": "pro", "siteQuantity": 1})
    assert status == 200, body
    assert items_of(stripe_fake, subscribed.subscription_id) == [("price_pro_v2_base", 1), ("price_pro_v2_site", 1)]
    assert (body["subscription"]["planVersion"], body["entitlement"]["limits"]["storage_gb"]) == (2, V2_STORAGE)


def test_a_preview_priced_before_a_new_version_was_deployed_does_not_buy_the_new_prices(
    stripe_fake: FakeStripe, publish_catalog: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    subscribed = subscribe(stripe_fake, plan="starter", sites=0, deliver_with=webhook_status)
    query = {"rawQueryString": "plan=pro&siteQuantity=1", "queryStringParameters": {"plan": "pro", "siteQuantity": "1"}}
    status, preview = call(subscription_handler, {**api_event("GET", "/billing/subscription/preview"), **query})
    assert (status, preview["planVersion"]) == (200, 1)
    publish_catalog(pro_version_2)  # deployed while the customer reads the preview
    status, body = change({"plan": "pro", "siteQuantity": 1, "previewId": preview["previewId"]})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_preview", "previewId")
    assert "prices changed" in body["error"]["message"]
    assert items_of(stripe_fake, subscribed.subscription_id) == [(TEST_PRICES["starter_base"], 1)]


def test_an_interval_the_version_does_not_sell_is_refused_with_its_field(
    stripe_fake: FakeStripe, publish_catalog: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    publish_catalog(lambda doc: doc["plans"]["starter"]["versions"]["1"]["prices"].pop("year"))
    status, body = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "starter", "interval": "year"}))
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "interval_unavailable", "interval")
    assert stripe_fake.requests == []
