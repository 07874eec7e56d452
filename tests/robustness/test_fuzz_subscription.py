"""Fuzzing the subscription and invoice endpoints: GET /billing/subscription/preview, POST
/billing/subscription, POST /billing/subscription/cancel, POST /billing/subscription/resume and
GET /billing/invoices. Bodies (any JSON, text, bytes, isBase64Encoded with junk, plan changes and
cancellations with every value), query strings (any names and values, repeated names, unicode,
huge, negative and decimal numbers, forged cursors), headers and JWT claims.

Properties, for every case: the handler returns (nothing escapes it), never a 5xx, always our one
JSON error shape; a refused request changes nothing in the table and sends nothing to Stripe (a
`no_change` refusal only reads the caller's own subscription: Stripe decides what "no change" is);
an accepted one writes only the calling organization's subscription and entitlement, sends Stripe
nothing naming another organization's customer or subscription, and answers nothing of another
organization's. B's table items and Stripe subscription never change unless B's admin calls.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

import invoices_handler
import subscription_handler
from tenant_billing.invoices_logic import encode_cursor
from tests.robustness.counts import FUZZ, count
from tests.robustness.strategies import (
    Body,
    cancel_objects,
    catalog_plans,
    claims,
    cursors,
    headers,
    number_texts,
    plans,
    query_pairs,
    resolve_now_offsets,
    subscription_bodies,
    undecodable_bodies,
    well_typed_changes,
)
from tests.robustness.support import (
    FUZZ_SETTINGS,
    ORG_A,
    ORG_B,
    Items,
    Key,
    Reply,
    assert_links_consistent,
    by_key,
    call_cancel,
    call_change,
    call_invoices,
    call_resume,
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

# Fewer examples than the first endpoints' fuzzing: five more routes, each case two table reads
# and, when accepted, Stripe and DynamoDB round trips; the suite stays within its time budget.
# A failure is shrunk, but not "explained" (the explain phase replays it many more times).
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
BROAD_SETTINGS = settings(FUZZ_SETTINGS, max_examples=25, phases=PHASES)
FOCUSED_SETTINGS = settings(FUZZ_SETTINGS, max_examples=50, phases=PHASES)
FEW_SETTINGS = settings(FUZZ_SETTINGS, max_examples=15, phases=PHASES)

Handler = Callable[..., dict[str, Any]]
ROUTES: dict[str, tuple[Handler, str, str]] = {
    "preview": (subscription_handler.lambda_handler, "GET", "/billing/subscription/preview"),
    "change": (subscription_handler.lambda_handler, "POST", "/billing/subscription"),
    "cancel": (subscription_handler.lambda_handler, "POST", "/billing/subscription/cancel"),
    "resume": (subscription_handler.lambda_handler, "POST", "/billing/subscription/resume"),
    "invoices": (invoices_handler.lambda_handler, "GET", "/billing/invoices"),
}
ADMIN_ROUTES = ("preview", "change", "cancel", "resume")
VALID_QUERY: dict[str, list[tuple[str, str]]] = {"preview": [("plan", "enterprise"), ("siteQuantity", "4")]}
VALID_CHANGE = json.dumps({"plan": "enterprise", "siteQuantity": 4})
# Refusals that only Stripe's state can decide may follow reads: "no change" (Stripe's items), a
# prorationDate outside the current period, a cursor naming an invoice Stripe does not have.
STRIPE_CHECKED_FIELDS = ("previewId", "cursor")
# What an accepted request may write: the caller's own subscription and entitlement, and a
# preview's quote issued to the caller.
OWN_SORT_KEYS = ("SUBSCRIPTION", "ENTITLEMENT")


def own_keys(org_id: Any, items: list[dict[str, Any]] | None = None) -> set[Key]:
    quotes = {
        (item["pk"]["S"], item["sk"]["S"])
        for item in items or []
        if item["sk"]["S"] == "QUOTE" and item.get("org_id", {}).get("S") == org_id
    }
    return {(f"ORG#{org_id}", sk) for sk in OWN_SORT_KEYS} | quotes


class World:
    """A (pro, 3 sites) and B (enterprise, 4 sites) subscribed. Before each case A is put back to
    pro with 3 sites, subscribed, with a cancellation pending before a resume and none otherwise."""

    def __init__(self, fake: FakeStripe, table_items: Items) -> None:
        self.fake = fake
        self.table_items = table_items
        self.tenants: dict[str, Subscribed] = {
            ORG_A: subscribe_synced(fake, ORG_A, plan="pro", sites=3),
            ORG_B: subscribe_synced(fake, ORG_B, plan="enterprise", sites=4),
        }
        # Every subscription id A ever had (A subscribes again after an immediate cancellation).
        self.a_subscriptions = {self.tenants[ORG_A].subscription_id}
        self.b_items = org_items(table_items(), ORG_B)
        self.b_stripe = self.stripe_subscription(ORG_B)

    def stripe_subscription(self, org_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.fake.subscriptions[self.tenants[org_id].subscription_id])

    def prepare(self, route: str) -> None:
        """Put A back where the route's valid request does something, so that every case (and its
        replay while Hypothesis shrinks) starts from the same state."""

        def a_subscription() -> dict[str, Any]:
            return self.fake.subscriptions[self.tenants[ORG_A].subscription_id]

        if a_subscription()["status"] == "canceled":
            self.tenants[ORG_A] = subscribe_synced(self.fake, ORG_A, plan="pro", sites=3)
            self.a_subscriptions.add(self.tenants[ORG_A].subscription_id)
        items = sorted((item["price"]["id"], item["quantity"]) for item in a_subscription()["items"]["data"])
        if route in ("change", "preview") and items != [("price_pro_base", 1), ("price_pro_site", 3)]:
            assert call_change({"plan": "pro", "siteQuantity": 3}).status == 200
        if route == "resume" and not a_subscription()["cancel_at_period_end"]:
            assert call_cancel({}).status == 200
        if route != "resume" and a_subscription()["cancel_at_period_end"]:
            assert call_resume().status == 200

    def valid_body(self, route: str) -> str | None:
        return {"change": VALID_CHANGE, "cancel": "{}"}.get(route)

    def ids_of(self, org_id: str) -> set[str]:
        tenant = self.tenants[org_id]
        ids = {tenant.customer_id, tenant.subscription_id}
        return ids | self.a_subscriptions if org_id == ORG_A else ids

    def run(self, route: str, event: dict[str, Any], *, claimed_org: Any = ORG_A) -> Reply:
        before, first_request = self.table_items(), len(self.fake.requests)
        reply = invoke(ROUTES[route][0], event)
        after = self.table_items()
        count(FUZZ)
        assert reply.status < 500, reply
        changed = changed_keys(before, after)
        requests = self.fake.requests[first_request:]
        if reply.status >= 400:
            assert changed == set(), f"a refused request ({reply.status} {reply.code}) wrote {changed}"
            if reply.code == "no_change" or reply.body["error"].get("field") in STRIPE_CHECKED_FIELDS:
                # Only Stripe knows: reads (of the caller's own objects, checked below), no change.
                assert all(r.method == "GET" for r in requests), requests
            else:
                assert requests == [], f"a refused request ({reply.status} {reply.code}) reached Stripe: {requests}"
        else:
            assert changed <= own_keys(claimed_org, after), changed
        foreign = set().union(*(self.ids_of(org) for org in self.tenants if org != claimed_org))
        sent = json.dumps([[r.path, r.params] for r in requests])
        assert not {text for text in foreign if text in sent}, f"a request for {claimed_org!r} sent another org's ids"
        assert not {text for text in foreign if text in json.dumps(reply.body)}, "another org's ids in the answer"
        if route == "invoices" and reply.status == 200:
            customer = self.tenants[claimed_org].customer_id if claimed_org in self.tenants else None
            assert all(self.fake.invoices[i["id"]]["customer"] == customer for i in reply.body["invoices"]), reply
        assert_links_consistent(after)
        if claimed_org != ORG_B:
            assert org_items(after, ORG_B) == self.b_items, "B's items changed"
            assert self.stripe_subscription(ORG_B) == self.b_stripe, "B's Stripe subscription changed"
        else:  # B's own admin may change B: the new state is what later cases must leave alone
            self.b_items, self.b_stripe = org_items(after, ORG_B), self.stripe_subscription(ORG_B)
        return reply

    def event(
        self,
        route: str,
        *,
        body: Body | None = None,
        query: list[tuple[str, str]] | None = None,
        header_map: dict[str, str] | None = None,
        claim_map: Any = None,
    ) -> dict[str, Any]:
        self.prepare(route)
        _, method, path = ROUTES[route]
        event = api_event(method, path, org_id=ORG_A, role="admin", claims=claim_map)
        with_query(event, VALID_QUERY.get(route) if query is None else query)
        if header_map is not None:
            event["headers"] = header_map
        if body is not None:
            body.apply(event)
        elif (valid := self.valid_body(route)) is not None:
            event["body"] = valid
        return event


@pytest.fixture
def world(stripe_fake: FakeStripe, table_items: Items) -> World:
    return World(stripe_fake, table_items)


# --- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@BROAD_SETTINGS
@given(body=subscription_bodies)
@example(body=Body('{"plan": "enterprise", "siteQuantity": 4, "subscriptionId": "sub_x"}', False))
@example(body=Body('{"immediately": true}', False))
@example(body=Body('{"immediately": "true"}', False))
def test_bodies(world: World, route: str, body: Body) -> None:
    reply = world.run(route, world.event(route, body=body))
    # A GET may refuse a body it does not take; what matters is a 4xx, never a 5xx.
    assert reply.status in {200, 400, 413}, reply


@FOCUSED_SETTINGS
@given(change=well_typed_changes)
@example(change={"plan": "enterprise", "siteQuantity": 2**63})
@example(change={"plan": "enterprise", "prorationDate": 2**70})
@example(change={"plan": "pro", "siteQuantity": 3})
def test_plan_changes(world: World, change: dict[str, Any]) -> None:
    """Well-typed plan changes, with every plan, quantity and prorationDate (around now, far off):
    a 400 for what is not a valid change (no_change for what A already has), never a 5xx."""
    change = resolve_now_offsets(change)
    reply = world.run("change", world.event("change", body=Body(json.dumps(change), False)))
    assert reply.status in {200, 400}, f"{change}: {reply}"
    if reply.status == 200:
        assert (reply.body["subscription"]["plan"], reply.body["subscription"]["siteQuantity"]) == (
            change["plan"],
            change.get("siteQuantity", 0),
        ), reply


@FOCUSED_SETTINGS
@given(cancel=cancel_objects)
def test_cancellations(world: World, cancel: dict[str, Any]) -> None:
    reply = world.run("cancel", world.event("cancel", body=Body(json.dumps(cancel), False)))
    assert reply.status in {200, 400}, reply
    if reply.status == 200:
        status = "canceled" if cancel.get("immediately") is True else "active"
        assert reply.body["subscription"]["status"] == status, reply


@pytest.mark.parametrize("route", ROUTES)
@FEW_SETTINGS
@given(body=undecodable_bodies)
def test_undecodable_bodies(world: World, route: str, body: Body) -> None:
    reply = world.run(route, world.event(route, body=body))
    assert reply.status in {200, 400, 413}, reply


# --- query strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["preview", "invoices"])
@BROAD_SETTINGS
@given(pairs=query_pairs, keep_valid=st.booleans())
@example(pairs=[("plan", "pro"), ("siteQuantity", "1"), ("siteQuantity", "2")], keep_valid=False)
@example(pairs=[("limit", "1"), ("limit", "2")], keep_valid=False)
@example(pairs=[("plan", "pro")], keep_valid=True)
@example(pairs=[("cursor", "e30"), ("cursor", "e30")], keep_valid=False)
@example(pairs=[("siteQuantity", "99999999999999999999999")], keep_valid=True)
@example(pairs=[("limit", "-1")], keep_valid=False)
def test_query_strings(world: World, route: str, pairs: list[tuple[str, str]], keep_valid: bool) -> None:
    """Any names and values, repeated names: a 400 (unknown_field for a name the route does not
    take), never a 5xx."""
    query = [*VALID_QUERY.get(route, []), *pairs] if keep_valid else pairs
    reply = world.run(route, world.event(route, query=query))
    assert reply.status in {200, 400}, reply
    if reply.status == 400 and {name for name, _ in pairs} - {"plan", "siteQuantity", "limit", "cursor"}:
        assert reply.code in {"unknown_field", "invalid_field", "missing_field", "unknown_plan", "invalid_cursor"}, reply


@pytest.mark.parametrize("route", ["change", "cancel", "resume"])
@FEW_SETTINGS
@given(pairs=query_pairs)
@example(pairs=[("orgId", ORG_B), ("subscription", "sub_x"), ("subscription", "sub_y")])
def test_query_strings_on_post_routes(world: World, route: str, pairs: list[tuple[str, str]]) -> None:
    """The POST routes take nothing from the query string: whatever it holds, they act for the
    caller as without it."""
    reply = world.run(route, world.event(route, query=pairs))
    assert reply.status == 200, f"a POST route read its query string: {reply}"
    assert_acted_for(world, route, reply, ORG_A)


def check_own_parameters(world: World, route: str, query: list[tuple[str, str]], names: tuple[str, ...]) -> Reply:
    reply = world.run(route, world.event(route, query=query))
    assert reply.status in {200, 400}, reply
    if reply.status == 400:
        assert reply.body["error"].get("field") in names, reply
    return reply


def pairs_of(named: dict[str, str | None]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in named.items() if value is not None]


@FOCUSED_SETTINGS
@given(
    plan=st.one_of(catalog_plans, st.none(), plans.map(str)),
    site_quantity=st.one_of(st.integers(min_value=0, max_value=5).map(str), st.none(), number_texts),
)
@example(plan="enterprise", site_quantity="\uff14")
@example(plan="pro", site_quantity="3")
def test_preview_parameters(world: World, plan: str | None, site_quantity: str | None) -> None:
    """plan and siteQuantity with every value (unicode, huge, negative, decimal): a 400 naming the
    parameter (no_change for what A has), never a 5xx. (Repeated names: test_query_strings.)"""
    query = pairs_of({"plan": plan, "siteQuantity": site_quantity})
    reply = check_own_parameters(world, "preview", query, ("plan", "siteQuantity"))
    if reply.status == 200:
        assert reply.body["currency"] == "usd" and isinstance(reply.body["amountDueNow"], int), reply


@FOCUSED_SETTINGS
@given(limit=st.one_of(st.integers(min_value=1, max_value=100).map(str), st.none(), number_texts), cursor=cursors)
@example(limit="100", cursor="")
@example(limit=None, cursor="e30")
def test_invoice_parameters(world: World, limit: str | None, cursor: str) -> None:
    """limit and cursor with every value, including cursors forged in the cursor's own format (for
    A, for B, naming invoices Stripe does not have): a 400 naming the parameter, never a 5xx."""
    query = pairs_of({"limit": limit, "cursor": cursor})
    reply = check_own_parameters(world, "invoices", query, ("limit", "cursor"))
    if reply.status == 200:
        assert len(reply.body["invoices"]) <= 100


# --- headers ------------------------------------------------------------------------------------


def assert_acted_for(world: World, route: str, reply: Reply, org_id: str) -> None:
    """An accepted request's answer is about `org_id`'s own subscription or invoices."""
    if route == "invoices":
        return  # run() checked every invoice is the caller's
    subscription = world.fake.subscriptions[world.tenants[org_id].subscription_id]
    if route == "preview":
        assert (reply.body["plan"], reply.body["siteQuantity"]) == ("enterprise", 4), reply
        return
    stored = by_key(world.table_items())[(f"ORG#{org_id}", "SUBSCRIPTION")]
    assert stored["subscription_id"]["S"] == subscription["id"]
    assert reply.body["subscription"]["cancelAtPeriodEnd"] is subscription["cancel_at_period_end"], reply
    if route == "cancel":
        assert subscription["cancel_at_period_end"] is True
    if route == "resume":
        assert subscription["cancel_at_period_end"] is False


@pytest.mark.parametrize("route", ROUTES)
@FEW_SETTINGS
@given(header_map=headers)
@example(header_map={"content-type": "text/plain"})
@example(header_map={"x-org-id": ORG_B, "content-type": "application/json"})
def test_headers(world: World, route: str, header_map: dict[str, str]) -> None:
    """Headers may get a valid request refused (415 for a body's content type) but never a 5xx,
    and never change whom it acts for."""
    reply = world.run(route, world.event(route, header_map=header_map))
    assert reply.status in {200, 400, 415}, reply
    if reply.status == 200:
        assert_acted_for(world, route, reply, ORG_A)


# --- claims -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@FEW_SETTINGS
@given(claim_map=claims)
@example(claim_map={"org_id": ORG_A, "org_role": "member"})
@example(claim_map={"org_id": ORG_A, "org_role": ["owner"]})
@example(claim_map={"org_id": "org_charlie", "org_role": "admin"})
def test_claims(world: World, route: str, claim_map: dict[str, Any]) -> None:
    """401 without a valid organization, 403 without an admin role (the admin routes), 409 for an
    organization without a subscription; whatever is accepted acts for the claimed organization."""
    org_id = claim_map.get("org_id")
    reply = world.run(route, world.event(route, claim_map=claim_map), claimed_org=org_id)
    assert reply.status in {200, 400, 401, 403, 409}, reply
    if reply.status == 401:
        assert reply.code == "unauthorized"
        return
    assert isinstance(org_id, str) and 0 < len(org_id) <= 128, org_id
    if reply.status == 403:
        assert route in ADMIN_ROUTES and reply.code == "forbidden", reply
    elif reply.status == 409:
        assert org_id not in world.tenants and reply.code == "no_subscription", reply
    elif reply.status == 400:
        assert (org_id, route, reply.code) == (ORG_B, "change", "no_change"), reply
    elif org_id in world.tenants:
        assert_acted_for(world, route, reply, org_id)
    else:
        assert route == "invoices" and reply.body == {"invoices": [], "nextCursor": None}, reply


# --- found by the fuzzing above: deterministic reproductions ------------------------------------


def test_a_client_proration_date_is_a_400_before_stripe(stripe_fake: FakeStripe, table_items: Items) -> None:
    """A proration moment is the server's (a preview's quote): a client's, even one inside the
    current period, is refused (400 on prorationDate) before anything reaches Stripe."""
    tenant = subscribe_synced(stripe_fake, ORG_A, plan="pro", sites=3)
    subscription = stripe_fake.subscriptions[tenant.subscription_id]
    period_start = subscription["items"]["data"][0]["current_period_start"]
    before, stripe_before, first = table_items(), copy.deepcopy(subscription), len(stripe_fake.requests)
    reply = call_change({"plan": "enterprise", "siteQuantity": 4, "prorationDate": period_start + 60})
    assert (reply.status, reply.code, reply.body["error"].get("field")) == (400, "unknown_field", "prorationDate"), reply
    assert table_items() == before
    assert stripe_fake.subscriptions[tenant.subscription_id] == stripe_before
    assert stripe_fake.requests[first:] == [], "a refused change reached Stripe"


@pytest.mark.parametrize("invoice_id", ["in_", "in_doesnotexist"])
def test_a_cursor_in_the_callers_name_naming_no_invoice_is_a_400(
    invoice_id: str, stripe_fake: FakeStripe, table_items: Items
) -> None:
    """The cursor is unsigned base64 JSON: anyone can write one in their own organization's name.
    One naming an invoice Stripe does not have is the caller's error (400 invalid_cursor), not an
    operator's 503 billing_misconfigured (logged as "Stripe rejected a request")."""
    subscribe_synced(stripe_fake, ORG_A)
    before, first = table_items(), len(stripe_fake.requests)
    reply = call_invoices({"cursor": encode_cursor(ORG_A, invoice_id)})
    assert (reply.status, reply.code, reply.body["error"].get("field")) == (400, "invalid_cursor", "cursor"), reply
    assert table_items() == before
    assert all(r.method == "GET" for r in stripe_fake.requests[first:])
