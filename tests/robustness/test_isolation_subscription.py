"""Subscribed isolation on the subscription and invoice endpoints: a billing admin of organization A
can neither preview, change, cancel, resume nor list the invoices of organization B, whatever of
B's ids (organization, customer, subscription, subscription item, invoice, a cursor issued to B)
it puts in the body, the query string, headers or extra claims. Every property compares B's table
items, B's Stripe subscription and B's invoices before and after, and checks that nothing sent to
Stripe or answered to A names B.

Setup: A and B both subscribed and live (A pro with 3 sites, B enterprise with 7), each with
several invoices.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invoices_handler
import subscription_handler
from tenant_billing.invoices_logic import encode_cursor
from tests.robustness.counts import ISOLATION, count
from tests.robustness.strategies import FOREIGN_FIELDS
from tests.robustness.support import (
    FUZZ_SETTINGS,
    ORG_A,
    ORG_B,
    Items,
    Reply,
    call_change,
    call_invoices,
    changed_keys,
    invoke,
    org_items,
    subscribe_synced,
    with_query,
)
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import Subscribed

pytestmark = pytest.mark.usefixtures("billing")
ISOLATION_SETTINGS = settings(FUZZ_SETTINGS, max_examples=20)


def check(condition: bool, message: str) -> None:
    count(ISOLATION)
    assert condition, message


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class Tenants:
    def __init__(self, fake: FakeStripe, table_items: Items) -> None:
        self.fake = fake
        self.table_items = table_items
        self.a: Subscribed = subscribe_synced(fake, ORG_A, plan="pro", sites=3)
        self.b: Subscribed = subscribe_synced(fake, ORG_B, plan="enterprise", sites=7)
        # More invoices: A's from prorated changes through our API, B's from a failed and a paid
        # renewal (which moves B's period into the fake's future: B is never previewed).
        for sites in (4, 3):
            assert call_change({"plan": "pro", "siteQuantity": sites}).status == 200
        fake.fail_payment(self.b.subscription_id)
        fake.pay_latest_invoice(self.b.subscription_id)
        self.a_invoices = self.invoices_of(self.a)
        self.b_invoices = self.invoices_of(self.b)
        assert len(self.a_invoices) >= 2 and len(self.b_invoices) >= 2
        b_invoice, a_invoice = next(iter(self.b_invoices)), next(iter(self.a_invoices))
        b_item = fake.subscriptions[self.b.subscription_id]["items"]["data"][0]["id"]
        self.b_values = {
            "$B_ORG": ORG_B,
            "$B_CUSTOMER": self.b.customer_id,
            "$B_SUBSCRIPTION": self.b.subscription_id,
            "$B_ITEM": b_item,
            "$B_INVOICE": b_invoice,
            # Cursors: B's own, B's naming A's invoice, A's naming B's invoice, and A's with B's ids added.
            "$B_CURSOR": encode_cursor(ORG_B, b_invoice),
            "$B_CURSOR_A_INVOICE": encode_cursor(ORG_B, a_invoice),
            "$A_CURSOR_B_INVOICE": encode_cursor(ORG_A, b_invoice),
            "$A_CURSOR_B_EXTRAS": _b64({"o": ORG_A, "a": b_invoice, "customer": self.b.customer_id, "org": ORG_B}),
        }
        self.b_before = self.b_state()

    def invoices_of(self, tenant: Subscribed) -> dict[str, Any]:
        return {i: copy.deepcopy(inv) for i, inv in self.fake.invoices.items() if inv["customer"] == tenant.customer_id}

    def b_state(self) -> tuple[Any, ...]:
        subscription = copy.deepcopy(self.fake.subscriptions[self.b.subscription_id])
        return org_items(self.table_items(), ORG_B), subscription, self.invoices_of(self.b)

    def resolve(self, value: Any) -> Any:
        text = json.dumps(value)
        for token, real in sorted(self.b_values.items(), key=lambda pair: -len(pair[0])):
            text = text.replace(token, real)
        return json.loads(text)

    def b_ids(self) -> set[str]:
        return {self.b.customer_id, self.b.subscription_id, self.b_values["$B_ITEM"], *self.b_invoices}

    def assert_b_untouched(self, reply: Reply, first_request: int, *, may_send: frozenset[str] = frozenset()) -> None:
        check(self.b_state() == self.b_before, "B's table items, Stripe subscription or invoices changed")
        answer = json.dumps(reply.body)
        sent = json.dumps([[r.path, r.params] for r in self.fake.requests[first_request:]])
        for secret in self.b_ids() - may_send:
            check(secret not in sent, f"B's id {secret} was sent to Stripe for A")
        for secret in self.b_ids():
            check(secret not in answer, f"B's id {secret} reached A")


@pytest.fixture
def tenants(stripe_fake: FakeStripe, table_items: Items) -> Tenants:
    return Tenants(stripe_fake, table_items)


B_TOKENS = st.sampled_from(
    [
        "$B_ORG",
        "$B_CUSTOMER",
        "$B_SUBSCRIPTION",
        "$B_ITEM",
        "$B_INVOICE",
        "$B_CURSOR",
        "$A_CURSOR_B_INVOICE",
        "org_bravo,org_alpha",
        "ORG#org_bravo",
    ]
)
query_injections = st.dictionaries(
    st.sampled_from(["orgId", "org_id", "customer", "customerId", "subscription", "subscriptionId", "invoice", "tenant"]),
    B_TOKENS,
    max_size=3,
)
header_injections = st.dictionaries(
    st.sampled_from(["x-org-id", "X-Org-Id", "x-tenant-id", "x-customer-id", "x-subscription-id", "stripe-account"]),
    B_TOKENS,
    max_size=3,
)
claim_injections = st.dictionaries(
    st.sampled_from(["custom:org_id", "tenant", "org", "organization_id", "orgId", "customer", "subscription", "org_ids"]),
    st.one_of(B_TOKENS, st.lists(B_TOKENS, max_size=2)),
    max_size=3,
)


def injected_event(
    tenants: Tenants,
    method: str,
    path: str,
    *,
    role: str = "admin",
    query: list[tuple[str, str]] | dict[str, str] | None = None,
    header_map: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    event = api_event(method, path, org_id=ORG_A, role=role, extra_claims=tenants.resolve(extra or {}), body=body)
    # The organization and role claims are the caller's own: an injection only adds other claims.
    event["requestContext"]["authorizer"]["jwt"]["claims"].update({"org_id": ORG_A, "org_role": role})
    with_query(event, tenants.resolve(list((query or {}).items()) if isinstance(query, dict) else query or []))
    event["headers"].update(tenants.resolve(header_map or {}))
    return event


def call(event: dict[str, Any]) -> Reply:
    handler = invoices_handler if event["rawPath"] == "/billing/invoices" else subscription_handler
    return invoke(handler.lambda_handler, event)


# --- preview ------------------------------------------------------------------------------------


@ISOLATION_SETTINGS
@given(query=query_injections, header_map=header_injections, extra=claim_injections)
def test_preview_for_a_is_for_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> None:
    first = len(tenants.fake.requests)
    pairs = [("plan", "enterprise"), ("siteQuantity", "4"), *query.items()]
    reply = call(injected_event(tenants, "GET", "/billing/subscription/preview", query=pairs, header_map=header_map, extra=extra))
    if query:
        check((reply.status, reply.code) == (400, "unknown_field"), f"a preview naming B was not refused: {reply}")
        check(tenants.fake.requests[first:] == [], "a refused preview reached Stripe")
    else:
        check(reply.status == 200 and reply.body["plan"] == "enterprise", f"A's preview failed: {reply}")
        paths = {r.path for r in tenants.fake.requests[first:]}
        check(paths == {f"/v1/subscriptions/{tenants.a.subscription_id}", "/v1/invoices/create_preview"}, f"{paths}")
        previews = [r.params for r in tenants.fake.requests[first:] if r.path == "/v1/invoices/create_preview"]
        check(all(p["customer"] == tenants.a.customer_id for p in previews), "a preview of another customer")
        check(all(p["subscription"] == tenants.a.subscription_id for p in previews), "a preview of another subscription")
    tenants.assert_b_untouched(reply, first)


# --- change, cancel, resume ---------------------------------------------------------------------


def a_items(tenants: Tenants) -> list[tuple[str, int]]:
    subscription = tenants.fake.subscriptions[tenants.a.subscription_id]
    return sorted((item["price"]["id"], item["quantity"]) for item in subscription["items"]["data"])


@ISOLATION_SETTINGS
@given(query=query_injections, header_map=header_injections, extra=claim_injections)
def test_change_for_a_changes_only_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> None:
    """A's valid change (alternating plans), with B's ids everywhere but the body."""
    to_enterprise = a_items(tenants) == [("price_pro_base", 1), ("price_pro_site", 3)]
    body = {"plan": "enterprise", "siteQuantity": 2} if to_enterprise else {"plan": "pro", "siteQuantity": 3}
    before, first = tenants.table_items(), len(tenants.fake.requests)
    event = injected_event(tenants, "POST", "/billing/subscription", query=query, header_map=header_map, extra=extra, body=body)
    reply = call(event)
    check(reply.status == 200 and reply.body["subscription"]["plan"] == body["plan"], f"A's change failed: {reply}")
    expected = (
        [("price_enterprise_base", 1), ("price_enterprise_site", 2)]
        if to_enterprise
        else [("price_pro_base", 1), ("price_pro_site", 3)]
    )
    check(a_items(tenants) == expected, "A's Stripe subscription did not change as asked")
    check(changed_keys(before, tenants.table_items()) <= {(f"ORG#{ORG_A}", "SUBSCRIPTION"), (f"ORG#{ORG_A}", "ENTITLEMENT")}, "")
    paths = {r.path for r in tenants.fake.requests[first:]}
    check(paths == {f"/v1/subscriptions/{tenants.a.subscription_id}"}, f"the change reached {paths}")
    tenants.assert_b_untouched(reply, first)


@ISOLATION_SETTINGS
@given(query=query_injections, header_map=header_injections, extra=claim_injections)
def test_cancel_and_resume_for_a_touch_only_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> None:
    for path, pending in (("/billing/subscription/cancel", True), ("/billing/subscription/resume", False)):
        first = len(tenants.fake.requests)
        reply = call(injected_event(tenants, "POST", path, query=query, header_map=header_map, extra=extra, body={}))
        check(reply.status == 200 and reply.body["subscription"]["cancelAtPeriodEnd"] is pending, f"{path}: {reply}")
        check(tenants.fake.subscriptions[tenants.a.subscription_id]["cancel_at_period_end"] is pending, f"{path} missed A")
        paths = {r.path for r in tenants.fake.requests[first:]}
        check(paths == {f"/v1/subscriptions/{tenants.a.subscription_id}"}, f"{path} reached {paths}")
        tenants.assert_b_untouched(reply, first)


def every_b_token(tenants: Tenants) -> dict[str, str]:
    return {f"x-b-{n}": token for n, token in enumerate(tenants.b_values)}


def test_an_immediate_cancellation_with_b_everywhere_ends_only_a(tenants: Tenants) -> None:
    tokens = every_b_token(tenants)
    first = len(tenants.fake.requests)
    event = injected_event(
        tenants,
        "POST",
        "/billing/subscription/cancel",
        query={"subscription": "$B_SUBSCRIPTION", "customer": "$B_CUSTOMER", "orgId": "$B_ORG"},
        header_map={**tokens, "x-org-id": "$B_ORG"},
        extra={"custom:org_id": "$B_ORG", "subscription": "$B_SUBSCRIPTION"},
        body={"immediately": True},
    )
    reply = call(event)
    check(reply.status == 200 and reply.body["subscription"]["status"] == "canceled", f"{reply}")
    check(tenants.fake.subscriptions[tenants.a.subscription_id]["status"] == "canceled", "A is not canceled")
    check(tenants.fake.subscriptions[tenants.b.subscription_id]["status"] == "active", "B was canceled")
    # The cancellation, then the read of A's own subscriptions (an ended one is synced whole).
    requests = tenants.fake.requests[first:]
    check(
        [(r.method, r.path) for r in requests]
        == [("DELETE", f"/v1/subscriptions/{tenants.a.subscription_id}"), ("GET", "/v1/subscriptions")],
        f"{[(r.method, r.path) for r in requests]}",
    )
    check(requests[1].params.get("customer") == tenants.a.customer_id, "the sync read another customer")
    tenants.assert_b_untouched(reply, first)


@ISOLATION_SETTINGS
@given(
    route=st.sampled_from(["/billing/subscription", "/billing/subscription/cancel", "/billing/subscription/resume"]),
    fields=st.dictionaries(
        st.sampled_from([*FOREIGN_FIELDS, "items", "invoice", "invoiceId", "cursor"]),
        st.one_of(B_TOKENS, st.dictionaries(st.just("organization_id"), B_TOKENS), st.lists(B_TOKENS, max_size=2)),
        min_size=1,
        max_size=3,
    ),
    role=st.sampled_from(["admin", "member"]),
)
def test_b_in_the_body_is_an_unknown_field(tenants: Tenants, route: str, fields: dict[str, Any], role: str) -> None:
    body = {"plan": "enterprise", **fields} if route == "/billing/subscription" else fields
    before, first = tenants.table_items(), len(tenants.fake.requests)
    reply = call(injected_event(tenants, "POST", route, role=role, body=tenants.resolve(body)))
    if role == "member":
        check((reply.status, reply.code) == (403, "forbidden"), f"a member got {reply}")
    else:
        named = set(fields) - {"plan"}
        check((reply.status, reply.code) == (400, "unknown_field"), f"a body naming B was not refused: {reply}")
        check(reply.body["error"]["field"] in named, f"the refusal names {reply.body['error']['field']}, not one of {named}")
    check(tenants.table_items() == before, "a refused request wrote")
    check(tenants.fake.requests[first:] == [], "a refused request reached Stripe")
    tenants.assert_b_untouched(reply, first)


# --- invoices -----------------------------------------------------------------------------------


def assert_only_as_invoices(tenants: Tenants, reply: Reply, first: int) -> None:
    ids = [invoice["id"] for invoice in reply.body["invoices"]]
    check(set(ids) <= set(tenants.a_invoices), f"invoices that are not A's: {set(ids) - set(tenants.a_invoices)}")
    listed = [r.params for r in tenants.fake.requests[first:] if r.path == "/v1/invoices"]
    check(all(params["customer"] == tenants.a.customer_id for params in listed), "invoices listed for another customer")
    if reply.body["nextCursor"] is not None:
        check(
            call_invoices({"cursor": reply.body["nextCursor"]}, org_id=ORG_B).code == "invalid_cursor", "A's cursor works for B"
        )


@ISOLATION_SETTINGS
@given(
    query=query_injections,
    header_map=header_injections,
    extra=claim_injections,
    role=st.sampled_from(["member", "admin"]),
    limit=st.sampled_from([None, "1", "2", "100"]),
)
def test_invoices_of_a_are_only_as(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any], role: str, limit: str | None
) -> None:
    first = len(tenants.fake.requests)
    pairs = [*([("limit", limit)] if limit else []), *query.items()]
    reply = call(injected_event(tenants, "GET", "/billing/invoices", role=role, query=pairs, header_map=header_map, extra=extra))
    if query:
        check((reply.status, reply.code) == (400, "unknown_field"), f"a query naming B was not refused: {reply}")
        check(tenants.fake.requests[first:] == [], "a refused request reached Stripe")
    else:
        check(reply.status == 200 and len(reply.body["invoices"]) >= 1, f"A's invoices failed: {reply}")
        assert_only_as_invoices(tenants, reply, first)
    tenants.assert_b_untouched(reply, first)


@pytest.mark.parametrize("token", ["$B_CURSOR", "$B_CURSOR_A_INVOICE"])
@pytest.mark.parametrize("limit", [None, "1"])
def test_a_cursor_issued_to_b_is_refused(tenants: Tenants, token: str, limit: str | None) -> None:
    first = len(tenants.fake.requests)
    pairs = [*([("limit", limit)] if limit else []), ("cursor", token)]
    reply = call(injected_event(tenants, "GET", "/billing/invoices", role="member", query=pairs))
    check((reply.status, reply.code, reply.body["error"].get("field")) == (400, "invalid_cursor", "cursor"), f"{reply}")
    check(tenants.fake.requests[first:] == [], "a cursor of B's reached Stripe")
    tenants.assert_b_untouched(reply, first)


@pytest.mark.parametrize("token", ["$A_CURSOR_B_INVOICE", "$A_CURSOR_B_EXTRAS"])
def test_as_cursor_naming_bs_invoice_lists_only_as(tenants: Tenants, token: str) -> None:
    """A cursor in A's name that points at one of B's invoices (the cursor is not signed, so A can
    write one): at most A's own invoices (Stripe lists by A's customer; B's invoice id may reach
    Stripe as the position), never B's; or refused. Never a 5xx."""
    first = len(tenants.fake.requests)
    reply = call(injected_event(tenants, "GET", "/billing/invoices", role="member", query={"cursor": token}))
    check(reply.status in {200, 400}, f"{reply}")
    if reply.status == 200:
        assert_only_as_invoices(tenants, reply, first)
    else:
        check(reply.code == "invalid_cursor", f"{reply}")
    tenants.assert_b_untouched(reply, first, may_send=frozenset(tenants.b_invoices))


def test_a_cursor_query_string_with_b_everywhere(tenants: Tenants) -> None:
    """Repeated cursor names (joined by API Gateway) and B's ids in every header."""
    first = len(tenants.fake.requests)
    event = injected_event(
        tenants,
        "GET",
        "/billing/invoices",
        role="member",
        query=[("cursor", "$B_CURSOR"), ("cursor", "$A_CURSOR_B_INVOICE")],
        header_map=every_b_token(tenants),
    )
    raw = urlencode(
        [(name, value) for name, value in tenants.resolve([["cursor", "$B_CURSOR"], ["cursor", "$A_CURSOR_B_INVOICE"]])]
    )
    check(event["rawQueryString"] == raw, f"{event['rawQueryString']}")
    reply = call(event)
    check(reply.status == 400 and reply.body["error"]["field"] == "cursor", f"{reply}")
    check(tenants.fake.requests[first:] == [], "refused, but reached Stripe")
    tenants.assert_b_untouched(reply, first)
