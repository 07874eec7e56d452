"""Plan and quantity changes with proration, preview, cancel and resume, through the real handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import subscription_handler
from tenant_billing.catalog import get_catalog
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, deliver, status_of, subscribe, webhook_status

Items = Callable[[], list[dict[str, Any]]]
pytestmark = pytest.mark.usefixtures("billing")
STARTER = {"sites": 1, "pages_per_site": 25, "storage_gb": 2}


def request(
    method: str, path: str, *, body: Any = None, role: str = "admin", org_id: str = "org_demo", query: str = ""
) -> tuple[int, Any]:
    event = api_event(method, path, org_id=org_id, role=role, body=body)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return call(subscription_handler, event)


def items_of(fake: FakeStripe, subscription_id: str) -> list[tuple[str, int]]:
    return sorted((item["price"]["id"], item["quantity"]) for item in fake.subscriptions[subscription_id]["items"]["data"])


def test_change_plan_and_quantity_is_prorated_and_visible_at_once(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 4})
    assert status == 200, body
    assert items_of(stripe_fake, subscription_id) == [("price_enterprise_base", 1), ("price_enterprise_site", 4)]
    assert body["subscription"]["plan"] == "enterprise" and body["subscription"]["siteQuantity"] == 4
    assert body["entitlement"]["limits"]["sites"] == 9
    assert status_of()["entitlement"]["limits"]["sites"] == 9
    # The base and per-site items kept their ids (swapped prices, prorated), no second subscription.
    assert len(stripe_fake.subscriptions) == 1
    (update,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == f"/v1/subscriptions/{subscription_id}"]
    assert update.params["proration_behavior"] == "always_invoice"
    assert all("id" in item for item in update.params["items"])


def test_removing_the_add_on_deletes_the_site_item(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    assert request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 0})[0] == 200
    assert items_of(stripe_fake, subscription_id) == [("price_pro_base", 1)]
    assert status_of()["entitlement"]["limits"]["sites"] == 2


def test_adding_an_add_on_adds_an_item(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=0, deliver_with=webhook_status).subscription_id
    assert request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 2})[0] == 200
    assert items_of(stripe_fake, subscription_id) == [("price_pro_base", 1), ("price_pro_site", 2)]


def test_the_same_plan_and_quantity_is_no_change(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, sites=3, deliver_with=webhook_status)
    status, body = request("POST", "/billing/subscription", body={"plan": "pro", "siteQuantity": 3})
    assert (status, body["error"]["code"]) == (400, "no_change")


def test_preview_reports_the_amount_due_now_and_the_next_invoice(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    before = items_of(stripe_fake, subscription_id)
    status, body = request("GET", "/billing/subscription/preview", query="plan=enterprise&siteQuantity=4")
    assert status == 200, body
    assert body["plan"] == "enterprise" and body["siteQuantity"] == 4 and body["currency"] == "usd"
    # Right after subscribing almost the whole period remains: about the price difference.
    # The amounts are the catalog's (plans.json): the fake's prices are created from it.
    enterprise_4, pro_3 = get_catalog().monthly_value("enterprise", 4), get_catalog().monthly_value("pro", 3)
    assert 0 < body["amountDueNow"] <= enterprise_4 - pro_3
    assert body["nextInvoiceTotal"] == enterprise_4
    assert body["nextInvoiceDate"] == status_of()["subscription"]["currentPeriodEnd"]
    assert items_of(stripe_fake, subscription_id) == before  # a preview changes nothing


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("siteQuantity=2", "missing_field", "plan"),
        ("plan=gold", "unknown_plan", "plan"),
        ("plan=pro&siteQuantity=-1", "invalid_site_quantity", "siteQuantity"),  # as on checkout and change
        ("plan=pro&siteQuantity=2.5", "invalid_field", "siteQuantity"),
        ("plan=pro&siteQuantity=101", "invalid_site_quantity", "siteQuantity"),
        ("plan=starter&siteQuantity=1", "site_addon_unavailable", "siteQuantity"),
        ("plan=pro&org=org_other", "unknown_field", "org"),
    ],
)
def test_preview_validation(stripe_fake: FakeStripe, query: str, code: str, field: str) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    stripe_fake.reset_requests()
    status, body = request("GET", "/billing/subscription/preview", query=query)
    assert (status, body["error"]["code"], body["error"].get("field")) == (400, code, field)
    assert stripe_fake.requests == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"plan": "pro", "siteQuantity": "3"}, "invalid_field"),
        ({"plan": "x"}, "unknown_plan"),
        ({"plan": "pro", "orgId": "o"}, "unknown_field"),
    ],
)
def test_change_validation_writes_nothing(stripe_fake: FakeStripe, table_items: Items, body: Any, code: str) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    before = table_items()
    stripe_fake.reset_requests()
    status, got = request("POST", "/billing/subscription", body=body)
    assert (status, got["error"]["code"]) == (400, code)
    assert table_items() == before and stripe_fake.requests == []


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("GET", "/billing/subscription/preview", None, "plan=pro"),
        ("POST", "/billing/subscription", {"plan": "pro"}, ""),
        ("POST", "/billing/subscription/cancel", {}, ""),
        ("POST", "/billing/subscription/resume", {}, ""),
    ],
)
def test_without_a_subscription_every_route_is_409(
    stripe_fake: FakeStripe, method: str, path: str, body: Any, query: str
) -> None:
    status, got = request(method, path, body=body, query=query)
    assert (status, got["error"]["code"]) == (409, "no_subscription")
    assert stripe_fake.requests == []


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("GET", "/billing/subscription/preview", None, "plan=enterprise"),
        ("POST", "/billing/subscription", {"plan": "enterprise"}, ""),
        ("POST", "/billing/subscription/cancel", {}, ""),
        ("POST", "/billing/subscription/resume", {}, ""),
    ],
)
def test_members_are_forbidden(stripe_fake: FakeStripe, method: str, path: str, body: Any, query: str) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    stripe_fake.reset_requests()
    assert request(method, path, body=body, query=query, role="member")[0] == 403
    assert stripe_fake.requests == []


def test_cancel_at_period_end_then_resume(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, deliver_with=webhook_status).subscription_id
    status, body = request("POST", "/billing/subscription/cancel", body={})
    assert status == 200
    assert stripe_fake.subscriptions[subscription_id]["cancel_at_period_end"] is True
    assert body["subscription"]["cancelAtPeriodEnd"] is True and body["subscription"]["status"] == "active"
    assert body["entitlement"]["limits"]["sites"] == 5  # paid until the period ends
    status, body = request("POST", "/billing/subscription/resume")
    assert status == 200
    assert stripe_fake.subscriptions[subscription_id]["cancel_at_period_end"] is False
    assert status_of()["subscription"]["cancelAtPeriodEnd"] is False
    # Resuming again is not an error: Stripe is asked (a cancellation whose webhook is late would
    # not be in the table) with one update that changes nothing.
    stripe_fake.reset_requests()
    before = dict(stripe_fake.subscriptions[subscription_id])
    assert request("POST", "/billing/subscription/resume", body={})[0] == 200
    assert [(r.method, r.params) for r in stripe_fake.requests] == [("POST", {"cancel_at": ""})]
    assert stripe_fake.subscriptions[subscription_id]["cancel_at"] is None
    assert stripe_fake.subscriptions[subscription_id]["items"] == before["items"]


def test_cancel_immediately_ends_access_at_once(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, deliver_with=webhook_status).subscription_id
    status, body = request("POST", "/billing/subscription/cancel", body={"immediately": True})
    assert status == 200
    assert stripe_fake.subscriptions[subscription_id]["status"] == "canceled"
    assert body["subscription"]["status"] == "canceled" and body["entitlement"]["limits"] == STARTER
    assert status_of()["entitlement"]["limits"] == STARTER
    # The webhook that follows finds the state already stored.
    (deleted,) = [event for event in stripe_fake.events if event["type"] == "customer.subscription.deleted"]
    assert deliver(deleted)[0] == 200
    assert status_of()["subscription"]["status"] == "canceled"
    assert request("POST", "/billing/subscription/cancel", body={})[1]["error"]["code"] == "no_subscription"


def test_cancel_rejects_a_non_boolean(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, deliver_with=webhook_status)
    status, body = request("POST", "/billing/subscription/cancel", body={"immediately": "yes"})
    assert (status, body["error"]["field"]) == (400, "immediately")


def test_stripe_down_during_a_change_is_502_and_changes_nothing(stripe_fake: FakeStripe, table_items: Items) -> None:
    subscription_id = subscribe(stripe_fake, deliver_with=webhook_status).subscription_id
    before, items = table_items(), items_of(stripe_fake, subscription_id)
    stripe_fake.fail_next(3, status=500, path_prefix=f"/v1/subscriptions/{subscription_id}")
    status, body = request("POST", "/billing/subscription", body={"plan": "enterprise"})
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
    assert table_items() == before and items_of(stripe_fake, subscription_id) == items


def test_a_change_named_by_its_preview_is_charged_exactly_the_preview(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=3, deliver_with=webhook_status).subscription_id
    preview = request("GET", "/billing/subscription/preview", query="plan=enterprise&siteQuantity=4")[1]
    status, _ = request(
        "POST", "/billing/subscription", body={"plan": "enterprise", "siteQuantity": 4, "previewId": preview["previewId"]}
    )
    assert status == 200
    (update,) = [r for r in stripe_fake.requests if r.method == "POST" and r.path == f"/v1/subscriptions/{subscription_id}"]
    # The server's own proration moment, from the quote; the client never sent one.
    assert update.params["proration_date"] == str(preview["prorationDate"])
    # The proration invoice charged exactly what the preview said was due now.
    (charged,) = [invoice for invoice in stripe_fake.invoices.values() if invoice["billing_reason"] == "subscription_update"]
    assert charged["amount_due"] == preview["amountDueNow"]


@pytest.mark.parametrize("age", [3700, -120, 0])
def test_a_client_proration_date_is_refused(stripe_fake: FakeStripe, age: int) -> None:
    import time

    subscribe(stripe_fake, deliver_with=webhook_status)
    stripe_fake.reset_requests()
    body = {"plan": "enterprise", "prorationDate": int(time.time()) - age}
    status, got = request("POST", "/billing/subscription", body=body)
    assert (status, got["error"]["code"], got["error"]["field"]) == (400, "unknown_field", "prorationDate")
    assert stripe_fake.requests == []
