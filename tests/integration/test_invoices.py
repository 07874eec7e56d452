"""GET /billing/invoices: any member, newest first, a cursor bound to the organization."""

from __future__ import annotations

from typing import Any

import pytest

import invoices_handler
from tenant_billing.catalog import get_catalog
from tenant_billing.invoices_logic import encode_cursor
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import call, subscribe

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
