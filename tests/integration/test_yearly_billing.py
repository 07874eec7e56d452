"""Monthly and yearly billing through the real handlers and the webhook: a yearly checkout, and a
change between intervals charged exactly what its preview showed (Stripe restarts the billing
period on an interval change, so the preview is of that, not of a prorated month)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import checkout_handler
import subscription_handler
from tests.conftest import TEST_PRICES
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, items_of, open_session_id, status_of, subscribe, webhook_status

pytestmark = pytest.mark.usefixtures("billing")
YEAR = 365 * 86400


def request(method: str, path: str, *, body: Any = None, query: str = "") -> tuple[int, Any]:
    event = api_event(method, path, body=body)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return call(subscription_handler, event)


def deliver_new(fake: FakeStripe, since: int) -> None:
    for stripe_event in fake.events[since:]:
        assert deliver(stripe_event)[0] == 200


def test_a_yearly_checkout_sells_the_yearly_prices_and_status_reports_the_interval(stripe_fake: FakeStripe) -> None:
    status, body = call(
        checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro", "siteQuantity": 2, "interval": "year"})
    )
    assert status == 200, body
    (create,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert create.params["line_items"] == [
        {"price": TEST_PRICES["pro_base_yearly"], "quantity": "1"},
        {"price": TEST_PRICES["pro_site_yearly"], "quantity": "2"},
    ]
    events = stripe_fake.complete_checkout(open_session_id(stripe_fake, "org_demo"))
    for stripe_event in events:
        assert deliver(stripe_event)[0] == 200
    (invoice,) = stripe_fake.invoices.values()
    assert invoice["amount_paid"] == 79000 + 2 * 19000

    shown = status_of()
    subscription = shown["subscription"]
    assert (subscription["plan"], subscription["interval"], subscription["planVersion"], subscription["siteQuantity"]) == (
        "pro",
        "year",
        1,
        2,
    )
    # A year's period, and the same entitlements as monthly Pro with two add-ons.
    (subscription_id,) = stripe_fake.subscriptions
    item = stripe_fake.subscriptions[subscription_id]["items"]["data"][0]
    assert item["current_period_end"] - item["current_period_start"] >= YEAR
    assert shown["entitlement"]["limits"]["sites"] == 4


def test_without_an_interval_checkout_sells_the_monthly_prices(stripe_fake: FakeStripe) -> None:
    status, _ = call(checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro", "siteQuantity": 1}))
    assert status == 200
    (create,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert [line["price"] for line in create.params["line_items"]] == [TEST_PRICES["pro_base"], TEST_PRICES["pro_site"]]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"plan": "pro", "interval": "week"}, "invalid_field", "interval"),
        ({"plan": "pro", "interval": "YEAR"}, "invalid_field", "interval"),
        ({"plan": "pro", "interval": 12}, "invalid_field", "interval"),
        ({"plan": "pro", "interval": ""}, "invalid_field", "interval"),
    ],
)
def test_an_interval_that_is_not_month_or_year_is_refused_and_changes_nothing(
    stripe_fake: FakeStripe, body: dict[str, Any], code: str, field: str
) -> None:
    status, answer = call(checkout_handler, api_event("POST", "/billing/checkout", body=body))
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, code, field)
    assert answer["error"]["message"] == "interval: Input should be 'month' or 'year'"
    assert stripe_fake.requests == []


def test_a_monthly_to_yearly_change_is_charged_exactly_its_preview(stripe_fake: FakeStripe) -> None:
    subscribed = subscribe(stripe_fake, plan="pro", sites=3, deliver_with=webhook_status)
    subscription_id = subscribed.subscription_id
    status, preview = request("GET", "/billing/subscription/preview", query="plan=pro&siteQuantity=3&interval=year")
    assert status == 200, preview
    assert (preview["interval"], preview["planVersion"]) == ("year", 1)
    monthly = 7900 + 3 * 1900
    yearly = 79000 + 3 * 19000
    # The new year in full, less the unused part of the month already paid (all of it, but seconds).
    assert yearly - monthly <= preview["amountDueNow"] < yearly
    assert preview["nextInvoiceTotal"] == yearly
    # The billing period restarts now: the next regular invoice is a year away, not at the month's end.
    now = stripe_fake.now()
    assert preview["nextInvoiceDate"] is not None
    next_date = int(datetime.fromisoformat(preview["nextInvoiceDate"].replace("Z", "+00:00")).timestamp())
    assert next_date >= now + YEAR - 86400

    # Stripe's clock runs five days ahead of the server's: a change prorated at Stripe's "now" would
    # credit five days less. Named by its previewId it is prorated at the preview's moment.
    stripe_fake.advance_clock(5 * 86400)
    since = len(stripe_fake.events)
    status, body = request(
        "POST",
        "/billing/subscription",
        body={"plan": "pro", "siteQuantity": 3, "interval": "year", "previewId": preview["previewId"]},
    )
    assert status == 200, body
    assert (body["subscription"]["interval"], body["subscription"]["plan"]) == ("year", "pro")
    charged = [
        invoice
        for invoice in stripe_fake.invoices.values()
        if invoice["billing_reason"] == "subscription_update" and invoice["status"] == "paid"
    ]
    assert [invoice["amount_paid"] for invoice in charged] == [preview["amountDueNow"]]
    assert items_of(stripe_fake, subscription_id) == [(TEST_PRICES["pro_base_yearly"], 1), (TEST_PRICES["pro_site_yearly"], 3)]
    deliver_new(stripe_fake, since)
    assert status_of()["subscription"]["interval"] == "year"


def test_an_interval_change_without_a_preview_is_prorated_now_and_stored(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, plan="enterprise", sites=1, deliver_with=webhook_status)
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 1, "interval": "year"})
    assert status == 200, body
    assert (body["subscription"]["interval"], body["subscription"]["siteQuantity"]) == ("year", 1)
    # Back to monthly: also a new period, the unused year credited.
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 1, "interval": "month"})
    assert status == 200, body
    assert body["subscription"]["interval"] == "month"


def test_a_change_that_names_no_interval_keeps_the_subscriptions(stripe_fake: FakeStripe) -> None:
    # An older client sends {plan, siteQuantity} only: a yearly subscriber adding a site stays yearly.
    status, _ = call(
        checkout_handler, api_event("POST", "/billing/checkout", body={"plan": "pro", "siteQuantity": 1, "interval": "year"})
    )
    assert status == 200
    for stripe_event in stripe_fake.complete_checkout(open_session_id(stripe_fake, "org_demo")):
        assert deliver(stripe_event)[0] == 200
    (subscription_id,) = stripe_fake.subscriptions
    status, preview = request("GET", "/billing/subscription/preview", query="plan=pro&siteQuantity=2")
    assert (status, preview["interval"]) == (200, "year")
    status, body = request(
        "POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 2, "previewId": preview["previewId"]}
    )
    assert status == 200, body
    assert body["subscription"]["interval"] == "year"
    assert items_of(stripe_fake, subscription_id) == [(TEST_PRICES["pro_base_yearly"], 1), (TEST_PRICES["pro_site_yearly"], 2)]


def test_a_preview_for_one_interval_does_not_buy_the_other(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, plan="pro", sites=1, deliver_with=webhook_status)
    status, preview = request("GET", "/billing/subscription/preview", query="plan=pro&siteQuantity=1&interval=year")
    assert status == 200, preview
    writes = len([r for r in stripe_fake.requests if r.method == "POST"])
    status, body = request(
        "POST",
        "/billing/subscription",
        body={"plan": "pro", "siteQuantity": 2, "interval": "month", "previewId": preview["previewId"]},
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_preview", "previewId")
    assert len([r for r in stripe_fake.requests if r.method == "POST"]) == writes
