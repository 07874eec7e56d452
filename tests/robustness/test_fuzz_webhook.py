"""Fuzzing the Stripe webhook: random bodies and Stripe-Signature headers, real events with junk or
stale signatures, and correctly signed but malformed events.

Properties: never a 5xx and never an exception for bad input; anything unverified is a 400 that
writes nothing and calls nothing; a verified event writes at most the subscription, entitlement and
event marker of the organization that owns the event's customer; a signed event of an unknown type
or for an unknown customer is a 200 that writes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tenant_billing.webhook_logic import HANDLED_EVENTS
from tenant_billing.webhook_signature import compute_signature
from tests.robustness.counts import FUZZ, count
from tests.robustness.strategies import (
    any_signature_headers,
    ascii_signature_headers,
    event_ids,
    event_types,
    json_scalars,
    json_values,
    planted,
)
from tests.robustness.support import (
    FUZZ_SETTINGS,
    ORG_A,
    ORG_B,
    WEBHOOK_SECRET,
    Items,
    Reply,
    by_key,
    call_webhook,
    changed_keys,
    delivery_status,
    fresh_id,
    raw_function_url_event,
    register_delivery,
)
from tests.stripe_fake import FakeStripe
from tests.support.flows import Subscribed, subscribe
from tests.support.queue import drain
from tests.support.webhook_events import delivery_body, function_url_event

pytestmark = pytest.mark.usefixtures("billing")

REJECTION_CODES = {
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "timestamp_out_of_tolerance",
    "not_a_stripe_event",
}
TOKENS = ("$A_CUSTOMER", "$B_CUSTOMER", "$A_SUBSCRIPTION", "$B_SUBSCRIPTION")


class World:
    """Two subscribed organizations; A's events also kept undelivered-looking for replays."""

    def __init__(self, fake: FakeStripe, table_items: Items) -> None:
        self.fake = fake
        self.table_items = table_items
        self.a: Subscribed = subscribe(fake, ORG_A, plan="pro", sites=2, deliver_with=delivery_status)
        self.b: Subscribed = subscribe(fake, ORG_B, plan="enterprise", sites=7, deliver_with=delivery_status)
        self.owner = {self.a.customer_id: ORG_A, self.b.customer_id: ORG_B}
        self.tokens = {
            "$A_CUSTOMER": self.a.customer_id,
            "$B_CUSTOMER": self.b.customer_id,
            "$A_SUBSCRIPTION": self.a.subscription_id,
            "$B_SUBSCRIPTION": self.b.subscription_id,
        }

    def resolve(self, value: Any) -> Any:
        """Replace the symbolic ids the strategies use with this world's real Stripe ids."""
        text = json.dumps(value)
        for token, real in self.tokens.items():
            text = text.replace(token, real)
        return json.loads(text)

    def run(self, event: dict[str, Any]) -> tuple[Reply, set[tuple[str, str]]]:
        before, first_request = self.table_items(), len(self.fake.requests)
        reply = call_webhook(event)
        if reply.status == 200 and reply.outcome == "queued":
            # The consumer on the queue, at once: what the event did.
            reply = Reply(200, {**reply.body, "outcome": drain().only_outcome()})
        count(FUZZ)
        after = self.table_items()
        changed = changed_keys(before, after)
        assert reply.status < 500, reply
        if reply.status != 200:
            assert reply.status == 400 and reply.code in REJECTION_CODES, reply
            assert changed == set(), changed
            assert self.fake.requests[first_request:] == []
        return reply, changed


@pytest.fixture
def world(stripe_fake: FakeStripe, table_items: Items) -> World:
    return World(stripe_fake, table_items)


def assert_rejected(world: World, event: dict[str, Any]) -> None:
    reply, _ = world.run(event)
    assert reply.status == 400, reply


# --- unverified requests -------------------------------------------------------------------------

bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda event_id, event_type, obj: delivery_body(
            {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
        ),
        event_ids,
        event_types,
        st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    ),
)


@FUZZ_SETTINGS
@given(raw=bodies, header=st.one_of(st.none(), ascii_signature_headers))
def test_random_bodies_with_junk_signatures_are_400(world: World, raw: bytes, header: str | None) -> None:
    headers = {"content-type": "application/json"} | ({"stripe-signature": header} if header is not None else {})
    assert_rejected(world, raw_function_url_event(raw, headers))


@FUZZ_SETTINGS
@given(header=any_signature_headers)
@example(header="t=\u00b2,v1=00")
def test_any_stripe_signature_header_is_400(world: World, header: str) -> None:
    raw = delivery_body(world.a.event("invoice.paid"))
    assert_rejected(world, function_url_event(raw, {"stripe-signature": header}))


@dataclass(frozen=True)
class Forgery:
    kind: str
    value: Any


forgeries = st.one_of(
    st.builds(Forgery, st.just("wrong_secret"), st.text(min_size=1, max_size=40)),
    st.builds(Forgery, st.just("random_hex"), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    st.builds(Forgery, st.just("too_old"), st.integers(min_value=301, max_value=10**9)),
    st.builds(Forgery, st.just("too_new"), st.integers(min_value=301, max_value=10**12 - 2 * 10**9)),
    st.builds(Forgery, st.just("huge_timestamp"), st.integers(min_value=10**12, max_value=10**30)),
    st.builds(Forgery, st.just("tampered"), st.binary(min_size=1, max_size=8)),
    st.builds(Forgery, st.just("v0_only"), st.none()),
    st.builds(Forgery, st.just("other_timestamp"), st.integers(min_value=1, max_value=200)),
    st.builds(Forgery, st.just("truncated"), st.integers(min_value=0, max_value=63)),
)


def forge(raw: bytes, forgery: Forgery) -> dict[str, Any]:
    now = int(time.time())
    signature, timestamp, body = compute_signature(WEBHOOK_SECRET, now, raw), now, raw
    match forgery.kind:
        case "wrong_secret":
            signature = compute_signature(f"whsec_{forgery.value}x", now, raw)
        case "random_hex":
            signature = forgery.value
        case "too_old" | "too_new" | "huge_timestamp":
            timestamp = now - forgery.value if forgery.kind == "too_old" else now + forgery.value
            signature = compute_signature(WEBHOOK_SECRET, timestamp, raw)
        case "tampered":
            body = raw + forgery.value
        case "other_timestamp":
            timestamp = now - forgery.value
        case "truncated":
            signature = signature[: forgery.value]
    scheme = "v0" if forgery.kind == "v0_only" else "v1"
    register_delivery(body)
    return function_url_event(body, {"stripe-signature": f"t={timestamp},{scheme}={signature}"}, base64_body=True)


@FUZZ_SETTINGS
@given(pick=st.integers(min_value=0, max_value=10_000), forgery=forgeries)
def test_real_events_with_forged_or_stale_signatures_are_400(world: World, pick: int, forgery: Forgery) -> None:
    events = world.a.events + world.b.events
    assert_rejected(world, forge(delivery_body(events[pick % len(events)]), forgery))


# --- verified but malformed events ---------------------------------------------------------------


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` three times out of four: deep enough into the handler to reach the code under test.
    (Not st.one_of(usual, usual, usual, odd): one_of flattens and weighs nested branches.)"""
    return st.sampled_from([usual, usual, usual, odd]).flatmap(lambda strategy: strategy)


def without(keys: list[str]) -> Any:
    def drop(obj: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in obj.items() if key not in keys}

    return drop


customers = mostly(
    st.sampled_from(["$A_CUSTOMER", "$B_CUSTOMER"]),
    st.one_of(
        st.sampled_from(["cus_unknown_0001", "", "cus_"]),
        st.sampled_from(["$A_CUSTOMER", "$B_CUSTOMER"]).map(lambda token: {"id": token, "object": "customer"}),
        json_scalars,
    ),
)
subscriptions = mostly(
    st.sampled_from(["$A_SUBSCRIPTION", "$B_SUBSCRIPTION"]),
    st.one_of(
        st.sampled_from(["sub_unknown_0001", "", "sub_/../customers", "$A_SUBSCRIPTION?expand[]=x"]),
        st.sampled_from(["$A_SUBSCRIPTION", "$B_SUBSCRIPTION"]).map(lambda token: {"id": token, "object": "subscription"}),
        json_scalars,
    ),
)
orgs = st.one_of(st.sampled_from([ORG_A, ORG_B, "", "org_unknown"]), json_scalars)
# Containers are objects (or null), their content anything: what a Stripe-shaped but wrong event has.
parents = mostly(
    st.fixed_dictionaries(
        {
            "type": mostly(st.just("subscription_details"), json_scalars),
            "subscription_details": mostly(
                st.fixed_dictionaries({"subscription": subscriptions}, optional={"metadata": json_values}), st.none()
            ),
        }
    ),
    st.none(),
)
OBJECT_FIELDS = ["id", "object", "customer", "subscription", "parent", "mode", "client_reference_id", "metadata", "status"]
data_objects = st.builds(
    lambda obj, dropped: without(dropped)(obj),
    st.fixed_dictionaries(
        {
            "id": subscriptions,
            "object": st.sampled_from(["subscription", "invoice", "checkout.session", "customer"]),
            "customer": customers,
            "subscription": subscriptions,
            "parent": parents,
            "mode": mostly(st.just("subscription"), st.one_of(st.sampled_from(["payment", "setup"]), json_scalars)),
            "client_reference_id": st.one_of(st.none(), orgs),
            "metadata": st.dictionaries(
                st.sampled_from(["organization_id", "plan", "note"]), st.one_of(orgs, planted), max_size=3
            ),
            "status": st.one_of(st.sampled_from(["active", "canceled", "past_due"]), json_scalars),
        },
        optional={"items": json_values, "description": planted},
    ),
    st.lists(st.sampled_from(OBJECT_FIELDS), max_size=2),
)
valid_event_ids = st.builds(lambda: fresh_id("evt_fuzz_"))
stripe_events = st.fixed_dictionaries(
    {
        "id": mostly(valid_event_ids, event_ids),
        "object": mostly(st.just("event"), json_scalars),
        "type": mostly(st.sampled_from(sorted(HANDLED_EVENTS)), event_types),
        "data": mostly(st.fixed_dictionaries({"object": data_objects}), json_values),
    },
    optional={
        "api_version": st.one_of(st.just("2026-10-28.endive"), json_scalars),
        "created": json_scalars,
        "livemode": json_scalars,
    },
)


def assert_only_owner_written(world: World, stripe_event: dict[str, Any], reply: Reply, changed: set[tuple[str, str]]) -> None:
    if not changed:
        return
    assert reply.outcome in {"synced", "recorded"}, (reply, changed)
    obj = stripe_event["data"]["object"]
    customer = obj["customer"]["id"] if isinstance(obj.get("customer"), dict) else obj.get("customer")
    owner = world.owner.get(customer)
    assert owner is not None, f"an event for a customer that is not ours wrote {changed}"
    allowed = {(f"ORG#{owner}", "SUBSCRIPTION"), (f"ORG#{owner}", "ENTITLEMENT"), (f"EVENT#{stripe_event['id']}", "EVENT")}
    assert changed <= allowed, (changed, allowed)
    stored = by_key(world.table_items()).get((f"ORG#{owner}", "SUBSCRIPTION"))
    if stored is not None and (f"ORG#{owner}", "SUBSCRIPTION") in changed:
        # What was stored is Stripe's subscription of that same customer, never the payload's.
        assert world.fake.subscriptions[stored["subscription_id"]["S"]]["customer"] == customer


SUBSCRIPTION_EVENT_WITHOUT_ID = {
    "id": "evt_fuzz_without_subscription_id",
    "object": "event",
    "type": "customer.subscription.updated",
    "data": {"object": {"object": "subscription", "customer": "$A_CUSTOMER", "status": "active"}},
}


@FUZZ_SETTINGS
@given(template=stripe_events)
@example(template=SUBSCRIPTION_EVENT_WITHOUT_ID)
def test_signed_malformed_events_never_fail_or_write_elsewhere(world: World, template: dict[str, Any]) -> None:
    stripe_event = world.resolve(template)
    event = signed_event_for(stripe_event)
    reply, changed = world.run(event)
    assert reply.status in {200, 400}, reply
    if reply.status == 200:
        assert reply.outcome in {"synced", "duplicate", "superseded", "ignored", "not_ours", "recorded"}, reply
        assert_only_owner_written(world, stripe_event, reply, changed)


def signed_event_for(stripe_event: Any) -> dict[str, Any]:
    raw = delivery_body(stripe_event) if isinstance(stripe_event, dict) else json.dumps(stripe_event).encode()
    register_delivery(raw)
    header = f"t={int(time.time())},v1={compute_signature(WEBHOOK_SECRET, int(time.time()), raw)}"
    return function_url_event(raw, {"stripe-signature": header})


not_objects = st.one_of(st.text(max_size=10), st.lists(json_scalars, max_size=3), st.integers(), st.booleans())


@FUZZ_SETTINGS
@given(
    event_type=st.sampled_from(sorted(HANDLED_EVENTS)),
    field=st.sampled_from(["parent", "subscription_details", "metadata"]),
    junk=not_objects,
)
@example(event_type="invoice.paid", field="parent", junk="subscription_details")
def test_signed_events_with_non_object_fields_never_fail(world: World, event_type: str, field: str, junk: Any) -> None:
    """Fields that Stripe documents as objects, holding a string, list or number instead."""
    obj: dict[str, Any] = {
        "id": world.a.subscription_id,
        "customer": world.a.customer_id,
        "subscription": world.a.subscription_id,
        "mode": "subscription",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": world.a.subscription_id}},
    }
    if field == "subscription_details":
        obj["parent"]["subscription_details"] = junk
    else:
        obj[field] = junk
    stripe_event = {"id": fresh_id("evt_nonobj_"), "object": "event", "type": event_type, "data": {"object": obj}}
    reply, changed = world.run(signed_event_for(stripe_event))
    assert reply.status in {200, 400}, reply
    assert_only_owner_written(world, stripe_event, reply, changed)


# --- unknown types and customers -----------------------------------------------------------------


unknown_types = event_types.filter(lambda name: name not in HANDLED_EVENTS)
unknown_customers = st.text(min_size=1, max_size=40).map(lambda text: f"cus_x{text}")


@FUZZ_SETTINGS
@given(
    case=st.one_of(
        # An event type we do not handle, for one of our customers.
        st.tuples(unknown_types, st.sampled_from(["$A_CUSTOMER", "$B_CUSTOMER"])),
        # A type we handle, for a customer that is not ours (naming our subscription).
        st.tuples(st.sampled_from(sorted(HANDLED_EVENTS)), unknown_customers),
    ),
    obj=st.dictionaries(st.sampled_from(["metadata", "client_reference_id", "status", "note"]), json_values, max_size=3),
)
def test_signed_unknown_types_and_unknown_customers_are_200_without_writes(
    world: World, case: tuple[str, str], obj: dict[str, Any]
) -> None:
    event_type, customer = case
    stripe_event = world.resolve(
        {
            "id": fresh_id("evt_unknown_"),
            "object": "event",
            "type": event_type,
            "data": {
                "object": {
                    **obj,
                    "id": "$A_SUBSCRIPTION",
                    "customer": customer,
                    "subscription": "$A_SUBSCRIPTION",
                    "mode": "subscription",
                    "parent": {"type": "subscription_details", "subscription_details": {"subscription": "$A_SUBSCRIPTION"}},
                }
            },
        }
    )
    first_request = len(world.fake.requests)
    reply, changed = world.run(signed_event_for(stripe_event))
    assert (reply.status, reply.outcome) == (200, "ignored" if event_type not in HANDLED_EVENTS else "not_ours"), reply
    assert changed == set()
    assert world.fake.requests[first_request:] == []
