"""Subscribed isolation: a billing admin of organization A can neither read nor change anything of
organization B, whatever B's ids it puts in the body, the query string, headers or extra claims; and
a webhook event whose customer is A's never writes to B, whatever else in it names B.

Setup: A subscribed (pro) then canceled, so A may check out again and open the portal; B has a live
enterprise subscription. Every property compares B's items before and after.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checkout_handler
import portal_handler
import status_handler
from tests.robustness.counts import ISOLATION, count
from tests.robustness.strategies import FOREIGN_FIELDS
from tests.robustness.support import (
    FUZZ_SETTINGS,
    ORG_A,
    ORG_B,
    Item,
    Items,
    Key,
    Reply,
    call_status,
    changed_keys,
    deliver,
    delivery_status,
    fresh_id,
    invoke,
    org_items,
)
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import Subscribed, subscribe

pytestmark = pytest.mark.usefixtures("billing")
ISOLATION_SETTINGS = settings(FUZZ_SETTINGS, max_examples=60)


def check(condition: bool, message: str) -> None:
    count(ISOLATION)
    assert condition, message


class Tenants:
    def __init__(self, fake: FakeStripe, table_items: Items) -> None:
        self.fake = fake
        self.table_items = table_items
        self.a: Subscribed = subscribe(fake, ORG_A, plan="pro", sites=3, deliver_with=delivery_status)
        for stripe_event in fake.cancel_subscription(self.a.subscription_id):
            assert deliver(stripe_event).outcome == "synced"
        self.b: Subscribed = subscribe(fake, ORG_B, plan="enterprise", sites=7, deliver_with=delivery_status)
        self.status_a = call_status(ORG_A).body
        assert self.status_a["subscription"]["status"] == "canceled"
        self.b_items = org_items(table_items(), ORG_B)
        self.b_values = {"$B_ORG": ORG_B, "$B_CUSTOMER": self.b.customer_id, "$B_SUBSCRIPTION": self.b.subscription_id}

    def resolve(self, value: Any) -> Any:
        text = json.dumps(value)
        for token, real in self.b_values.items():
            text = text.replace(token, real)
        return json.loads(text)

    def assert_b_untouched(self, text: str) -> None:
        check(org_items(self.table_items(), ORG_B) == self.b_items, "B's items changed")
        for secret in (self.b.customer_id, self.b.subscription_id):
            check(secret not in text, f"B's id {secret} reached A")

    def all_items(self) -> list[Item]:
        return self.table_items()


@pytest.fixture
def tenants(stripe_fake: FakeStripe, table_items: Items) -> Tenants:
    return Tenants(stripe_fake, table_items)


B_TOKENS = st.sampled_from(["$B_ORG", "$B_CUSTOMER", "$B_SUBSCRIPTION", "org_bravo,org_alpha", "ORG#org_bravo"])
query_strings = st.dictionaries(
    st.sampled_from(["orgId", "org_id", "organization", "customer", "customerId", "subscription", "tenant", "org"]),
    B_TOKENS,
    max_size=4,
)
header_injections = st.dictionaries(
    st.sampled_from(["x-org-id", "X-Org-Id", "x-tenant-id", "org-id", "x-organization-id", "x-customer-id", "stripe-account"]),
    B_TOKENS,
    max_size=3,
)
claim_injections = st.dictionaries(
    st.sampled_from(["custom:org_id", "tenant", "org", "organization_id", "orgId", "https://example.com/org_id", "org_ids"]),
    st.one_of(B_TOKENS, st.lists(B_TOKENS, max_size=2)),
    max_size=3,
)


def injected_event(
    tenants: Tenants, method: str, path: str, role: str, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> dict[str, Any]:
    query, header_map, extra = tenants.resolve(query), tenants.resolve(header_map), tenants.resolve(extra)
    event = api_event(method, path, org_id=ORG_A, role=role, extra_claims=extra)
    # The organization and role claims are the caller's own: an injection only adds other claims.
    event["requestContext"]["authorizer"]["jwt"]["claims"].update({"org_id": ORG_A, "org_role": role})
    event["rawQueryString"] = urlencode(query)
    if query:
        event["queryStringParameters"] = query
    event["headers"].update(header_map)
    return event


@ISOLATION_SETTINGS
@given(query=query_strings, header_map=header_injections, extra=claim_injections, role=st.sampled_from(["member", "admin"]))
def test_status_of_a_shows_only_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any], role: str
) -> None:
    event = injected_event(tenants, "GET", "/billing/status", role, query, header_map, extra)
    reply = invoke(status_handler.lambda_handler, event)
    check(reply.status == 200 and reply.body == tenants.status_a, f"A's status changed: {reply}")
    check("enterprise" not in json.dumps(reply.body), "B's plan reached A")
    tenants.assert_b_untouched(json.dumps(reply.body))


@ISOLATION_SETTINGS
@given(query=query_strings, header_map=header_injections, extra=claim_injections)
def test_checkout_for_a_is_always_for_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> None:
    before, customers = tenants.all_items(), set(tenants.fake.customers)
    event = injected_event(tenants, "POST", "/billing/checkout", "admin", query, header_map, extra)
    event["body"] = json.dumps({"plan": "pro", "siteQuantity": 1})
    reply = invoke(checkout_handler.lambda_handler, event)
    check(reply.status == 200, f"checkout for A failed: {reply}")
    session = list(tenants.fake.checkout_sessions.values())[-1]
    check(session["customer"] == tenants.a.customer_id, "a checkout session for another customer")
    check(session["client_reference_id"] == ORG_A, "a checkout session naming another organization")
    check(session["metadata"]["organization_id"] == ORG_A, "checkout metadata naming another organization")
    check(set(tenants.fake.customers) == customers, "a new Stripe customer")
    after = [item for item in tenants.all_items() if (item["pk"]["S"], item["sk"]["S"]) != (f"ORG#{ORG_A}", "CHECKOUT")]
    check(after == [item for item in before if item["sk"]["S"] != "CHECKOUT" or item["pk"]["S"] != f"ORG#{ORG_A}"],
          "checkout for an already linked organization wrote more than its open session to the table")  # fmt: skip
    (open_session,) = [
        s for s in tenants.fake.checkout_sessions.values() if s["client_reference_id"] == ORG_A and s["status"] == "open"
    ]
    check(open_session is session, "more than one open Checkout Session for A")
    tenants.assert_b_untouched(json.dumps(reply.body))


@ISOLATION_SETTINGS
@given(query=query_strings, header_map=header_injections, extra=claim_injections)
def test_portal_for_a_is_always_for_a(
    tenants: Tenants, query: dict[str, str], header_map: dict[str, str], extra: dict[str, Any]
) -> None:
    event = injected_event(tenants, "POST", "/billing/portal", "admin", query, header_map, extra)
    reply = invoke(portal_handler.lambda_handler, event)
    check(reply.status == 200, f"portal for A failed: {reply}")
    session = list(tenants.fake.portal_sessions.values())[-1]
    check(session["customer"] == tenants.a.customer_id, "a portal session for another organization's customer")
    tenants.assert_b_untouched(json.dumps(reply.body))


@ISOLATION_SETTINGS
@given(
    route=st.sampled_from(["checkout", "portal"]),
    fields=st.dictionaries(
        st.sampled_from(FOREIGN_FIELDS),
        st.one_of(B_TOKENS, st.dictionaries(st.just("organization_id"), B_TOKENS)),
        min_size=1,
        max_size=3,
    ),
    role=st.sampled_from(["admin", "member"]),
)
def test_b_in_the_body_is_an_unknown_field(tenants: Tenants, route: str, fields: dict[str, Any], role: str) -> None:
    handler = checkout_handler.lambda_handler if route == "checkout" else portal_handler.lambda_handler
    body = tenants.resolve({"plan": "pro", **fields} if route == "checkout" else fields)
    before, first_request = tenants.all_items(), len(tenants.fake.requests)
    reply: Reply = invoke(handler, api_event("POST", f"/billing/{route}", org_id=ORG_A, role=role, body=body))
    if role == "member":
        check((reply.status, reply.code) == (403, "forbidden"), f"a member got {reply}")
    else:
        named = {name for name in fields if route == "portal" or name != "plan"}
        check((reply.status, reply.code) == (400, "unknown_field"), f"a body naming B was not refused: {reply}")
        check(reply.body["error"]["field"] in named, f"the refusal names {reply.body['error']['field']}, not one of {named}")
    check(tenants.all_items() == before, "a refused request wrote")
    check(tenants.fake.requests[first_request:] == [], "a refused request reached Stripe")
    tenants.assert_b_untouched(json.dumps(reply.body))


# --- the webhook ---------------------------------------------------------------------------------

B_NAMING = ("client_reference_id", "metadata", "subscription_metadata", "expanded_customer", "parent_metadata")


def name_b(stripe_event: dict[str, Any], where: frozenset[str], tenants: Tenants) -> dict[str, Any]:
    forged = copy.deepcopy(stripe_event)
    forged["id"] = fresh_id("evt_isolation_")
    obj = forged["data"]["object"]
    if "client_reference_id" in where:
        obj["client_reference_id"] = ORG_B
    if "metadata" in where:
        obj["metadata"] = {**(obj.get("metadata") or {}), "organization_id": ORG_B}
    if "subscription_metadata" in where and isinstance(obj.get("subscription_details"), dict):
        obj["subscription_details"]["metadata"] = {"organization_id": ORG_B}
    if "expanded_customer" in where:
        obj["customer"] = {"id": tenants.a.customer_id, "object": "customer", "metadata": {"organization_id": ORG_B}}
    if "parent_metadata" in where and isinstance(obj.get("parent"), dict):
        details = obj["parent"].get("subscription_details")
        if isinstance(details, dict):
            details["metadata"] = {"organization_id": ORG_B}
    return forged


def a_keys(event_id: str) -> set[Key]:
    return {(f"ORG#{ORG_A}", "SUBSCRIPTION"), (f"ORG#{ORG_A}", "ENTITLEMENT"), (f"EVENT#{event_id}", "EVENT")}


@ISOLATION_SETTINGS
@given(pick=st.integers(min_value=0, max_value=1000), where=st.frozensets(st.sampled_from(B_NAMING), min_size=1))
def test_an_event_for_as_customer_never_writes_to_b(tenants: Tenants, pick: int, where: frozenset[str]) -> None:
    stripe_event = name_b(tenants.a.events[pick % len(tenants.a.events)], where, tenants)
    before = tenants.all_items()
    reply = deliver(stripe_event)
    check(reply.status == 200, f"{reply}")
    changed = changed_keys(before, tenants.all_items())
    check(changed <= a_keys(stripe_event["id"]), f"an event of A's customer wrote {changed}")
    if stripe_event["type"] == "checkout.session.completed" and (
        "client_reference_id" in where or ("metadata" in where and not stripe_event["data"]["object"].get("client_reference_id"))
    ):
        check(reply.outcome == "not_ours" and changed == set(), f"a checkout naming B was trusted: {reply}")
    tenants.assert_b_untouched(json.dumps(reply.body))


@pytest.mark.parametrize(("customer", "subscription"), [("B", "A"), ("A", "B"), ("unknown", "B")])
def test_crossed_customer_and_subscription_write_nothing(tenants: Tenants, customer: str, subscription: str) -> None:
    """Stripe's subscription must belong to the event's customer: naming one organization's customer
    and the other's subscription is not ours, and nothing is written."""
    ids = {"A": tenants.a, "B": tenants.b}
    customer_id = ids[customer].customer_id if customer in ids else "cus_not_ours"
    subscription_id = ids[subscription].subscription_id
    before = tenants.all_items()
    for event_type in ("customer.subscription.updated", "invoice.paid", "checkout.session.completed"):
        obj: dict[str, Any] = {
            "id": subscription_id if event_type.startswith("customer.") else "in_or_cs_crossed",
            "customer": customer_id,
            "subscription": subscription_id,
            "mode": "subscription",
            "client_reference_id": None,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription_id}},
        }
        reply = deliver({"id": fresh_id("evt_crossed_"), "object": "event", "type": event_type, "data": {"object": obj}})
        check((reply.status, reply.outcome) == (200, "not_ours"), f"{event_type}: {reply}")
        check(tenants.all_items() == before, f"{event_type} wrote")
    tenants.assert_b_untouched("")
