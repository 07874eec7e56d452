"""Fuzzing GET /billing/status, POST /billing/checkout and POST /billing/portal: bodies (any JSON,
any text, any bytes, isBase64Encoded with junk), headers and JWT claims.

Properties, for every case: the handler returns (nothing escapes it), never a 5xx for bad input,
always our one JSON error shape; a refused request changes nothing in the table and sends nothing
to Stripe; an accepted one writes only the caller's own organization's items.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given

import checkout_handler
import portal_handler
import status_handler
import sync_handler
from tests.robustness.counts import FUZZ, count
from tests.robustness.strategies import Body, binary_bodies, claims, headers, junk_base64_bodies, text_bodies
from tests.robustness.support import (
    FUZZ_SETTINGS,
    ORG_A,
    ORG_B,
    Items,
    Key,
    Reply,
    assert_links_consistent,
    by_key,
    call_checkout,
    changed_keys,
    delivery_status,
    invoke,
    linked_customer,
    org_items,
)
from tests.stripe_fake import FakeStripe
from tests.support.api_events import api_event
from tests.support.flows import subscribe

pytestmark = pytest.mark.usefixtures("billing")

Handler = Callable[..., dict[str, Any]]
ROUTES: dict[str, tuple[Handler, str, str]] = {
    "status": (status_handler.lambda_handler, "GET", "/billing/status"),
    "checkout": (checkout_handler.lambda_handler, "POST", "/billing/checkout"),
    "portal": (portal_handler.lambda_handler, "POST", "/billing/portal"),
    "sync": (sync_handler.lambda_handler, "POST", "/billing/sync"),
}
VALID_BODY = {"status": None, "checkout": '{"plan": "pro", "siteQuantity": 1}', "portal": "{}", "sync": "{}"}
# Routes any member may call, answering with the status body.
STATUS_ROUTES = ("status", "sync")


class World:
    """ORG_B subscribed (live), ORG_A with a Stripe customer but no subscription: every case must
    leave B alone, and may at most write A's (or the claimed organization's) own customer link."""

    def __init__(self, fake: FakeStripe, table_items: Items) -> None:
        self.fake = fake
        self.table_items = table_items
        subscribe(fake, ORG_B, plan="enterprise", sites=4, deliver_with=delivery_status)
        assert call_checkout({"plan": "pro"}, org_id=ORG_A).status == 200
        self.b_items = org_items(table_items(), ORG_B)

    def run(self, route: str, event: dict[str, Any], *, claimed_org: Any = ORG_A) -> Reply:
        handler = ROUTES[route][0]
        before, first_request = self.table_items(), len(self.fake.requests)
        reply = invoke(handler, event)
        after = self.table_items()
        count(FUZZ)
        assert reply.status < 500, reply
        changed = changed_keys(before, after)
        if reply.status >= 400:
            assert changed == set(), f"a refused request ({reply.status}) wrote {changed}"
            assert self.fake.requests[first_request:] == [], "a refused request reached Stripe"
        else:
            assert changed <= self.own_keys(claimed_org, after), changed
        assert_links_consistent(after)
        if claimed_org == ORG_B:
            # B's own sync may write B's sync slot (own_keys checked it): later examples compare to that.
            self.b_items = org_items(after, ORG_B)
        else:
            assert org_items(after, ORG_B) == self.b_items
        return reply

    @staticmethod
    def own_keys(org_id: Any, items: list[dict[str, Any]]) -> set[Key]:
        # Its customer link, the one open Checkout Session, the sync slot.
        keys: set[Key] = {(f"ORG#{org_id}", "CUSTOMER"), (f"ORG#{org_id}", "CHECKOUT"), (f"ORG#{org_id}", "SYNC")}
        if customer_id := linked_customer(items, str(org_id)):
            keys.add((f"CUSTOMER#{customer_id}", "ORG"))
        return keys


@pytest.fixture
def world(stripe_fake: FakeStripe, table_items: Items) -> World:
    return World(stripe_fake, table_items)


def event_for(
    route: str, *, body: Body | None = None, header_map: dict[str, str] | None = None, claim_map: Any = None
) -> dict[str, Any]:
    _, method, path = ROUTES[route]
    event = api_event(method, path, org_id=ORG_A, role="admin", claims=claim_map)
    if header_map is not None:
        event["headers"] = header_map
    if body is not None:
        body.apply(event)
    elif VALID_BODY[route] is not None:
        event["body"] = VALID_BODY[route]
    return event


def assert_status_body(reply: Reply) -> None:
    assert reply.status == 200, reply
    assert set(reply.body) == {"configured", "subscription", "entitlement", "hasStripeCustomer"}


def assert_api_refusal(route: str, reply: Reply) -> None:
    # A GET may refuse a body it does not take; what matters is a 4xx, never a 5xx.
    assert reply.status in {200, 400, 413}, reply
    if reply.status == 200 and route == "checkout":
        assert reply.body["url"].startswith("https://checkout.stripe.com/")


# --- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@FUZZ_SETTINGS
@given(body=text_bodies)
def test_text_and_json_bodies(world: World, route: str, body: Body) -> None:
    reply = world.run(route, event_for(route, body=body))
    assert_api_refusal(route, reply)


BINARY_EXAMPLE = Body(base64.b64encode(b"\xff\xfe{}").decode(), True)
JUNK_BASE64_EXAMPLE = Body("abc", True)


@pytest.mark.parametrize("route", ROUTES)
@FUZZ_SETTINGS
@given(body=binary_bodies)
@example(body=BINARY_EXAMPLE)
def test_arbitrary_bytes_bodies(world: World, route: str, body: Body) -> None:
    reply = world.run(route, event_for(route, body=body))
    assert_api_refusal(route, reply)


@pytest.mark.parametrize("route", ROUTES)
@FUZZ_SETTINGS
@given(body=junk_base64_bodies)
@example(body=JUNK_BASE64_EXAMPLE)
def test_base64_flag_with_junk_bodies(world: World, route: str, body: Body) -> None:
    reply = world.run(route, event_for(route, body=body))
    assert_api_refusal(route, reply)


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@FUZZ_SETTINGS
@given(header_map=headers)
@example(header_map={"content-type": "text/plain"})
def test_headers_never_break_or_retarget_a_request(world: World, route: str, header_map: dict[str, str]) -> None:
    """Headers (content type and encoding, x-org-id, ...) may get a valid request refused (a 4xx,
    e.g. for a content type we do not take) but never a 5xx, and never change whom it acts for."""
    reply = world.run(route, event_for(route, header_map=header_map))
    assert reply.status in {200, 400, 415}, reply
    if reply.status != 200:
        return
    if route in STATUS_ROUTES:
        assert_status_body(reply)
        assert reply.body["hasStripeCustomer"] is True and reply.body["subscription"] is None
    if route == "portal":
        session = list(world.fake.portal_sessions.values())[-1]
        assert session["customer"] == linked_customer(world.table_items(), ORG_A)
    if route == "checkout":
        session = list(world.fake.checkout_sessions.values())[-1]
        assert (session["customer"], session["client_reference_id"]) == (linked_customer(world.table_items(), ORG_A), ORG_A)


# --- claims -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@FUZZ_SETTINGS
@given(claim_map=claims)
def test_claims(world: World, route: str, claim_map: dict[str, Any]) -> None:
    """Odd types, long and unicode strings: 401 without a valid organization, 403 without an admin
    role, and whatever is accepted acts for the claimed organization only."""
    org_id = claim_map.get("org_id")
    reply = world.run(route, event_for(route, claim_map=claim_map), claimed_org=org_id)
    assert reply.status in {200, 401, 403, 409}, reply
    if reply.status == 401:
        assert reply.code == "unauthorized"
        return
    # Only a string organization id of at most 128 characters is ever accepted.
    assert isinstance(org_id, str) and 0 < len(org_id) <= 128, org_id
    if route in STATUS_ROUTES:
        assert_status_body(reply)
        expected_plan = "enterprise" if org_id == ORG_B else None
        assert (reply.body["subscription"] or {}).get("plan") == expected_plan
    elif reply.status == 403:
        assert reply.code == "forbidden"
    elif reply.status == 409:
        assert reply.code == ("subscription_exists" if route == "checkout" else "no_billing_account")
    elif route == "portal":
        session = list(world.fake.portal_sessions.values())[-1]
        assert session["customer"] == linked_customer(world.table_items(), org_id)
    else:
        session = list(world.fake.checkout_sessions.values())[-1]
        assert session["client_reference_id"] == org_id
        assert session["customer"] == by_key(world.table_items())[(f"ORG#{org_id}", "CUSTOMER")]["customer_id"]["S"]
