"""GET /billing/invoices: any member, newest first, a cursor bound to the organization."""

from __future__ import annotations

from typing import Any

import pytest

import invoices_handler
import subscription_handler
from tenant_billing.catalog import get_catalog
from tenant_billing.invoices_logic import encode_cursor
from tenant_billing.status_logic import iso_timestamp
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, subscribe, webhook_status

pytestmark = pytest.mark.usefixtures("billing")


def invoices(query: str = "", *, org_id: str | None = "org_demo", role: str = "member") -> tuple[int, Any]:
    event = api_event("GET", "/billing/invoices", org_id=org_id, role=role)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return call(invoices_handler, event)


def test_an_organization_without_a_customer_has_no_invoices(stripe_fake: FakeStripe) -> None:
    assert invoices() == (200, {"invoices": [], "nextCursor": None})
    assert stripe_fake.requests == []


def test_members_see_the_invoices_with_their_links(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=2).subscription_id
    stripe_fake.fail_payment(subscription_id)
    status, body = invoices()
    assert status == 200
    assert [invoice["status"] for invoice in body["invoices"]] == ["open", "paid"]  # newest first
    first = body["invoices"][-1]
    assert first["amountDue"] == first["amountPaid"] == get_catalog().monthly_value("pro", 2)
    assert first["currency"] == "usd" and first["number"]
    assert first["hostedInvoiceUrl"].startswith("https://") and first["invoicePdf"].startswith("https://")
    assert first["periodStart"] and first["periodEnd"] and first["created"]
    assert body["nextCursor"] is None


def item_period(fake: FakeStripe, subscription_id: str) -> tuple[str | None, str | None]:
    item = fake.subscriptions[subscription_id]["items"]["data"][0]
    return iso_timestamp(item["current_period_start"]), iso_timestamp(item["current_period_end"])


def test_each_invoice_has_the_service_period_it_bills(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake, sites=2, deliver_with=webhook_status).subscription_id
    first_period = item_period(stripe_fake, subscription_id)
    change = api_event("POST", "/billing/subscription", org_id="org_demo", role="admin", body={"plan": "enterprise"})
    assert call(subscription_handler, change)[0] == 200  # invoiced at once: prorations only
    stripe_fake.renew_subscription(subscription_id)
    renewed_period = item_period(stripe_fake, subscription_id)

    status, body = invoices()
    assert status == 200
    renewal, proration, first = body["invoices"]
    assert (first["periodStart"], first["periodEnd"]) == first_period
    # The prorations bill from the change to the end of the period it was made in.
    assert first_period[0] <= proration["periodStart"] < proration["periodEnd"] == first_period[1]
    assert (renewal["periodStart"], renewal["periodEnd"]) == renewed_period != first_period
    # Not Stripe's invoice-level period: on the first invoice a moment, on a renewal the period that ended.
    raw_first, raw_renewal = stripe_fake.invoices[first["id"]], stripe_fake.invoices[renewal["id"]]
    assert raw_first["period_start"] == raw_first["period_end"]
    assert (iso_timestamp(raw_renewal["period_start"]), iso_timestamp(raw_renewal["period_end"])) == first_period


def test_pages_follow_the_cursor(stripe_fake: FakeStripe) -> None:
    subscription_id = subscribe(stripe_fake).subscription_id
    for _ in range(2):
        stripe_fake.fail_payment(subscription_id)
        stripe_fake.pay_latest_invoice(subscription_id)
    seen: list[str] = []
    status, body = invoices("limit=2")
    while True:
        assert status == 200 and len(body["invoices"]) <= 2
        seen += [invoice["id"] for invoice in body["invoices"]]
        if body["nextCursor"] is None:
            break
        status, body = invoices(f"limit=2&cursor={body['nextCursor']}")
    all_ids = [
        invoice["id"] for invoice in stripe_fake.invoices.values() if invoice["customer"] == next(iter(stripe_fake.customers))
    ]
    assert sorted(seen) == sorted(all_ids) and len(seen) == len(set(seen)) == 3


def test_another_organizations_cursor_is_refused(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake, org_id="org_a")
    victim_invoice = next(iter(stripe_fake.invoices))
    stripe_fake.reset_requests()
    status, body = invoices(f"cursor={encode_cursor('org_a', victim_invoice)}", org_id="org_b")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_cursor", "cursor")
    assert stripe_fake.requests == []


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("limit=0", "invalid_field", "limit"),
        ("limit=101", "invalid_field", "limit"),
        ("limit=abc", "invalid_field", "limit"),
        ("cursor=not-base64!!", "invalid_cursor", "cursor"),
        ("customer=cus_1", "unknown_field", "customer"),
    ],
)
def test_bad_queries(stripe_fake: FakeStripe, query: str, code: str, field: str) -> None:
    subscribe(stripe_fake)
    stripe_fake.reset_requests()
    status, body = invoices(query)
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, code, field)
    assert stripe_fake.requests == []


def test_no_claims_is_401(stripe_fake: FakeStripe) -> None:
    assert invoices(org_id=None)[0] == 401


def test_stripe_down_is_502(stripe_fake: FakeStripe) -> None:
    subscribe(stripe_fake)
    stripe_fake.fail_next(3, status=500, path_prefix="/v1/invoices")
    status, body = invoices()
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
